"""``cati report …`` (industry, enterprise, fieldwork) and ``cati export``.

Two ways in: the live database (``--study-id``, through ``cati.services.frames``), or files — ``--responses CSV``
(scored here, so reports work without a database) or ``--from-scores DIR`` (the output of ``cati score --out``).
报告与数据导出：可直接读数据库，也可读答卷 CSV 或评分结果目录。
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cati.config import DEFAULT_CENTRE_TIMEZONE

LANGS = ("zh-CN", "en")


def _default_study_file() -> Path:
    from cati.services.studies import default_study_file

    return Path(default_study_file())


def _read_study(path: str | None) -> dict:
    import yaml

    p = Path(path) if path else _default_study_file()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.ClickException(f"{p}: study file not found") from None
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{p}: not a study file (expected a mapping)")
    return data


def _frames_module():
    try:
        from cati.services import frames
    except ImportError as exc:
        raise click.ClickException(
            "the database bridge (cati.services.frames) is not available in this build; use --responses CSV or "
            f"--from-scores DIR instead ({exc})") from None
    return frames


class _DB:
    """Opens the app and a session for the database path; resolves ``--study-id`` (number or study code)."""

    def __init__(self, study_id: str):
        from cati.cli.common import get_app
        from cati.db import session_scope

        self.frames = _frames_module()
        self.app = get_app()
        self._ctx = self.app.app_context()
        self._ctx.push()
        self._scope = session_scope(self.app)
        self.session = self._scope.__enter__()
        from cati.models import Study
        from cati.services.studies import get_study

        study = self.session.get(Study, int(study_id)) if str(study_id).isdigit() else None
        if study is None:
            try:
                study = get_study(self.session, str(study_id))
            except LookupError as exc:
                self.close()
                raise click.ClickException(str(exc)) from None
        self.study = study
        self.study_id = study.id
        self.definition = dict(study.definition)

    def close(self) -> None:
        self._scope.__exit__(None, None, None)
        self._ctx.pop()


def _common(func: Callable) -> Callable:
    options = [
        click.option("--study-id", default=None, help="Study id or code in the database (default: the database's study when no file is given)."),
        click.option("--responses", "responses_csv", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Wide responses CSV (file contract); scored here."),
        click.option("--from-scores", "scores_dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Folder written by `cati score --out`."),
        click.option("--study", "study_file", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Study file for names/labels in the file paths (default: the csat study)."),
        click.option("--lang", type=click.Choice(LANGS), default="zh-CN", show_default=True),
        click.option("--format", "formats", multiple=True, type=click.Choice(["html", "pdf", "xlsx"]),
                     help="Output format(s); repeat the option. Default: html, pdf, xlsx."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports_out", show_default=True),
        click.option("--n-boot", type=int, default=None, help="Bootstrap replicates when scoring (default: study)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--release", "release", default=None,
                     help="Database path: the products of this frozen release (its name or id; made in the web "
                          "app's Releases page) — the same files the web app's downloads are."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _one_source(study_id, responses_csv, scores_dir) -> None:
    """At most one source; none means the database's study (the only one, or the first active one)."""
    given = [x for x in (study_id, responses_csv, scores_dir) if x]
    if len(given) > 1:
        raise click.UsageError("give one of --study-id, --responses CSV, --from-scores DIR (none: the database's "
                               "study)")


def _score(responses, spec, n_boot, seed):
    from scoring import score_study

    click.echo(f"scoring {len(responses)} interviews …", err=True)
    try:
        return score_study(responses, spec, n_boot=n_boot, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _release_of(db: _DB, release: str):
    from sqlalchemy import select

    from cati.models import AnalysisRelease

    rows = db.session.scalars(select(AnalysisRelease).where(AnalysisRelease.study_id == db.study.id)).all()
    hit = [r for r in rows if r.name == release] or [r for r in rows if str(r.id) == str(release)]
    if not hit:
        names = ", ".join(r.name for r in rows) or "none yet"
        raise click.ClickException(f"--release {release}: no such release of study {db.study.code} ({names})")
    return hit[0]


def _from_db(study_id: str, products: tuple[str, ...], *, complete_only: bool = True,
             admin_user: str | None = None, include_phone: bool = False, release: str | None = None,
             **options) -> list[Path]:
    """The database path of every command: ``cati.services.publishing`` reads the study and writes the
    products, the same path as the demo and the web's report jobs. A failed product is an error here. With
    ``release``, the products of that frozen release (its completes, scores, bootstrap parameters and date)."""
    from cati.services import publishing

    db = _DB(study_id)
    try:
        if include_phone:
            _check_admin(db, admin_user)
        if release:
            if not complete_only:
                raise click.UsageError("--all-interviews and --release exclude each other (a release holds completes)")
            rel = _release_of(db, release)
            data, result = publishing.read_release_data(db.session, db.study, rel, include_phone=include_phone)
            options.update(result=result, as_of=rel.created_at, n_boot=rel.n_boot, seed=rel.seed)
            if options.get("previous") is None:  # the release's previous wave (本企业去年), as the web's reports
                from cati.services.releases import release_previous

                options["previous"] = release_previous(rel)
        else:
            data = publishing.read_study_data(db.session, db.study, complete_only=complete_only,
                                              include_phone=include_phone)
    finally:
        db.close()
    built = publishing.build_products(data, options.pop("out_dir"), products=products, include_phone=include_phone,
                                      **options)
    if built.errors:
        raise click.ClickException("; ".join(f"{name}: {error}" for name, error in built.errors.items()))
    return built.paths()


def _load(responses_csv, scores_dir, study_file, n_boot, seed):
    """File path: → (result, study mapping, verbatims or None)."""
    from scoring import read_responses_csv
    from scoring.spec import ScoringSpec

    study = _read_study(study_file)
    try:
        spec = ScoringSpec.from_study(study)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if scores_dir:
        from reports.loading import load_score_result

        try:
            return load_score_result(scores_dir, spec), study, None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        responses = read_responses_csv(responses_csv, spec)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    result = _score(responses, spec, n_boot, seed)
    verb = responses[["enterprise_id", "OPEN1"]] if "OPEN1" in responses.columns else None
    return result, study, verb


def _is_index(study_file) -> bool:
    from scoring import is_index_study

    return bool(study_file) and is_index_study(_read_study(study_file))


def _index_file(responses_csv, scores_dir, study_file, n_boot, seed):
    """File path of an index study (the staff happiness index): → (IndexResult, study, responses), or None when
    the study file is not an index study. Its reports need the responses, not only a scoring folder."""
    from scoring import IndexSpec, is_index_study, read_responses_csv, score_index_study

    study = _read_study(study_file)
    if not is_index_study(study):
        return None
    if scores_dir:
        raise click.UsageError("an index study's reports are made from --responses CSV (or the database), "
                               "not from a scoring folder")
    try:
        spec = IndexSpec.from_study(study)
        responses = read_responses_csv(responses_csv, spec.scoring)
        click.echo(f"scoring {len(responses)} responses …", err=True)
        return score_index_study(responses, spec, n_boot=n_boot, seed=seed), study, responses
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _rates(cases, response_rates):
    """AAPOR rates over cases with a valid disposition code (cases still in progress have none yet)."""
    from scoring import aapor_symbol

    col = "disposition" if "disposition" in cases.columns else "status"
    if col not in cases.columns or len(cases) == 0:
        return None

    def ok(v: Any) -> bool:
        try:
            aapor_symbol(str(v))
            return True
        except (ValueError, TypeError):
            return False

    valid = cases[cases[col].map(ok)]
    if len(valid) < len(cases):
        click.echo(f"note: {len(cases) - len(valid)} case(s) without a disposition code are not in the rates",
                   err=True)
    return response_rates(valid, disposition_col=col) if len(valid) else None


def _closing(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValueError, RuntimeError) as exc:  # bad input files, missing CJK font: message, not traceback
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group("report")
def report() -> None:
    """Industry, enterprise and fieldwork reports (HTML, PDF, XLSX). 行业报告、企业报告、执行报告。"""


@report.command("industry")
@_common
@click.option("--dispositions", "dispositions_csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File path only: CSV with one row per case and a `disposition` column, for response rates.")
@_closing
def industry_cmd(study_id, responses_csv, scores_dir, study_file, lang, formats, out_dir, n_boot, seed, release,
                 dispositions_csv) -> None:
    """The industry report (overall, industry ranking with intervals and tiers, drivers, method).

    行业报告：总体得分、行业排名（含区间与分层）、驱动因素、方法说明。
    """
    import pandas as pd

    from reports.industry import build_industry_report
    from scoring import response_rates

    _one_source(study_id, responses_csv, scores_dir)
    fmts = formats or ("html", "pdf", "xlsx")
    if not (responses_csv or scores_dir):
        if dispositions_csv:
            raise click.UsageError("--dispositions is for the file path; with --study-id the rates come from the "
                                   "database")
        paths = _from_db(study_id or "", ("industry",), formats=fmts, lang=lang, out_dir=out_dir, n_boot=n_boot,
                         seed=seed, release=release, layout={"industry": ""})
    elif (index := _index_file(responses_csv, scores_dir, study_file, n_boot, seed)) is not None:
        from reports.happiness import build_happiness_industry_report

        paths = list(build_happiness_industry_report(index[0], index[2], index[1], lang=lang, out_dir=out_dir,
                                                     formats=fmts).values())
    else:
        result, study, _ = _load(responses_csv, scores_dir, study_file, n_boot, seed)
        rates = None
        if dispositions_csv:
            rates = _rates(pd.read_csv(dispositions_csv, dtype=str, encoding="utf-8-sig"), response_rates)
        paths = list(build_industry_report(result, study, rates=rates, lang=lang, out_dir=out_dir,
                                           formats=fmts).values())
    for path in paths:
        click.echo(f"{path.suffix.lstrip('.')}: {path}")


@report.command("enterprise")
@_common
@click.argument("enterprise_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every enterprise in the study.")
@click.option("--workers", type=int, default=2, show_default=True, help="Parallel worker processes.")
@click.option("--previous-scores", type=click.Path(exists=True, file_okay=False), default=None,
              help="Scoring output folder of the previous wave (本企业去年).")
@click.option("--previous-responses", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Responses CSV of the previous wave (scored here, point estimates).")
@_closing
def enterprise_cmd(study_id, responses_csv, scores_dir, study_file, lang, formats, out_dir, n_boot, seed, release,
                   enterprise_ids, all_, workers, previous_scores, previous_responses) -> None:
    """One report per enterprise (`--all` or enterprise ids). 企业报告（--all 或指定企业编号）。"""
    from cati.cli.common import progress_bar
    from reports.enterprise import build_enterprise_reports

    if bool(all_) == bool(enterprise_ids):
        raise click.UsageError("give --all or one or more enterprise ids (not both)")
    _one_source(study_id, responses_csv, scores_dir)
    fmts = formats or ("html", "pdf", "xlsx")
    ids = None if all_ else list(enterprise_ids)
    previous = None
    index_study = _is_index(study_file)
    if index_study and previous_responses:  # an index study compares with last wave's responses themselves
        from scoring import IndexSpec, read_responses_csv

        try:
            previous = read_responses_csv(previous_responses, IndexSpec.from_study(_read_study(study_file)).scoring)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    elif index_study and previous_scores:
        raise click.UsageError("an index study's 本企业去年 comes from --previous-responses, not a scoring folder")
    elif previous_scores or previous_responses:
        from scoring import read_responses_csv
        from scoring.spec import ScoringSpec

        spec = ScoringSpec.from_study(_read_study(study_file))
        if previous_scores:
            from reports.loading import load_score_result

            previous = load_score_result(previous_scores, spec)
        else:
            previous = _score(read_responses_csv(previous_responses, spec), spec, 0, seed)
    with progress_bar(total=len(ids) if ids is not None else None, unit="report", desc="enterprise reports",
              disable=ids is not None and len(ids) < 2) as bar:
        if not (responses_csv or scores_dir):
            paths = _from_db(study_id or "", ("enterprise",), formats=fmts, lang=lang, out_dir=out_dir, n_boot=n_boot,
                             seed=seed, enterprise_ids=ids, previous=previous, workers=workers, layout={"enterprise": ""},
                             release=release,
                             progress=lambda _product, n: bar.update(n))
        elif (index := _index_file(responses_csv, scores_dir, study_file, n_boot, seed)) is not None:
            from reports.happiness import build_happiness_enterprise_reports

            bar.total = index[2]["enterprise_id"].nunique() if ids is None else len(ids)
            try:
                paths = build_happiness_enterprise_reports(index[0], index[2], index[1], enterprise_ids=ids,
                                                           previous=previous, lang=lang, out_dir=out_dir,
                                                           formats=fmts, progress=bar.update)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
        else:
            result, study, verbatims = _load(responses_csv, scores_dir, study_file, n_boot, seed)
            bar.total = len(result.enterprises) if ids is None else len(ids)
            paths = build_enterprise_reports(result, study, enterprise_ids=ids, previous=previous,
                                             verbatims=verbatims, lang=lang, out_dir=out_dir, formats=fmts,
                                             workers=workers, progress=bar.update)
    click.echo(f"{len(paths)} file(s) written to {out_dir}")


@report.command("fieldwork")
@click.option("--study-id", default=None, help="Study id or code (default: the database's study when no file is given).")
@click.option("--cases", "cases_csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File path: one row per case (enterprise_id, disposition, interviewer …).")
@click.option("--attempts", "attempts_csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File path: one row per call attempt (interviewer, placed_at UTC, answered_at, ended_at, outcome).")
@click.option("--quotas", "quotas_csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Optional CSV: enterprise_id, target, completes.")
@click.option("--lang", type=click.Choice(LANGS), default="zh-CN", show_default=True)
@click.option("--format", "formats", multiple=True, type=click.Choice(["html", "pdf", "xlsx"]))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports_out", show_default=True)
@click.option("--tz", default=DEFAULT_CENTRE_TIMEZONE, show_default=True, help="Time zone for hour of day.")
@_closing
def fieldwork_cmd(study_id, cases_csv, attempts_csv, quotas_csv, lang, formats, out_dir, tz) -> None:
    """Fieldwork report: dispositions, AAPOR rates, quotas, interviewers, calls by hour. 执行报告。"""
    import pandas as pd

    from reports.fieldwork import build_fieldwork_report
    from scoring import response_rates

    fmts = formats or ("html", "pdf", "xlsx")
    if study_id or not (cases_csv or attempts_csv):
        if cases_csv or attempts_csv or quotas_csv:
            raise click.UsageError("give --study-id or --cases/--attempts/--quotas files, not both")
        paths = _from_db(study_id or "", ("fieldwork",), formats=fmts, lang=lang, out_dir=out_dir)
        for path in paths:
            click.echo(f"{path.suffix.lstrip('.')}: {path}")
        return
    if not (cases_csv and attempts_csv):
        raise click.UsageError("give --study-id, or both --cases and --attempts CSV files")
    quotas = pd.read_csv(quotas_csv, dtype={"enterprise_id": str}, encoding="utf-8-sig") if quotas_csv else None
    cases = pd.read_csv(cases_csv, dtype={"disposition": str, "enterprise_id": str}, encoding="utf-8-sig")
    attempts = pd.read_csv(attempts_csv, encoding="utf-8-sig")
    rates = _rates(cases, response_rates)
    paths = build_fieldwork_report(cases, attempts, rates, quotas, lang=lang, out_dir=out_dir, formats=fmts, tz=tz)
    for fmt, path in paths.items():
        click.echo(f"{fmt}: {path}")


def _check_admin(db: _DB, username: str | None) -> None:
    """Full phone numbers only for an admin who proves it (password prompt, checked against the user table)."""
    from cati.models import Role
    from cati.services.users import authenticate

    if not username:
        raise click.UsageError("--include-phone needs --admin USERNAME (an admin account; you will be asked for "
                               "its password)")
    password = click.prompt(f"password for {username}", hide_input=True)
    user = authenticate(db.session, username, password)
    if user is None or getattr(user, "role", None) != Role.ADMIN:
        raise click.ClickException("--include-phone: not an admin or wrong password; phone numbers stay masked")


@click.command("export")
@click.option("--study-id", default=None, help="Study id or code (default: the database's study when no file is given).")
@click.option("--responses", "responses_csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File path: a responses CSV to convert (e.g. to SPSS).")
@click.option("--attempts", "attempts_csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File path: call attempts CSV for the call-history export.")
@click.option("--study", "study_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--format", "formats", multiple=True, type=click.Choice(["csv", "xlsx", "sav"]),
              help="Responses format(s); default csv, xlsx, sav.")
@click.option("--paradata/--no-paradata", default=True, show_default=True, help="Also export the call history.")
@click.option("--all-interviews", is_flag=True, help="Include incomplete interviews (database path).")
@click.option("--lang", type=click.Choice(LANGS), default="zh-CN", show_default=True,
              help="Language of variable and value labels.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="exports_out", show_default=True)
@click.option("--include-phone", is_flag=True, help="Full phone numbers (admin only; needs --admin).")
@click.option("--admin", "admin_user", default=None, help="Admin username, checked with a password prompt.")
@click.option("--release", default=None, help="The completes of this frozen release (name or id), as the web app's "
                                              "downloads of it.")
@_closing
def export(study_id, responses_csv, attempts_csv, study_file, formats, paradata, all_interviews, lang, out_dir,
           include_phone, admin_user, release) -> None:
    """Export responses (CSV with BOM, XLSX, SPSS .sav with labels) and the call history; phones masked.

    导出答卷（CSV/XLSX/SPSS）与拨打记录；电话号码默认打码，仅管理员显式指定时导出完整号码。
    """
    import pandas as pd

    from reports.exports import export_paradata, export_responses

    fmts = formats or ("csv", "xlsx", "sav")
    written: dict[str, Path] = {}
    if study_id or not (responses_csv or attempts_csv):
        if responses_csv or attempts_csv:
            raise click.UsageError("give --study-id or files, not both")
        products = ("exports", "paradata") if paradata else ("exports",)
        for path in _from_db(study_id or "", products, complete_only=not all_interviews, admin_user=admin_user,
                             include_phone=include_phone, out_dir=out_dir, lang=lang, release=release,
                             formats={"exports": fmts}, layout={"exports": "", "paradata": ""}):
            written[path.name] = path
    else:
        if include_phone:
            raise click.UsageError("--include-phone is only available with --study-id (admin check in the database)")
        if not responses_csv and not attempts_csv:
            raise click.UsageError("give --study-id, or --responses and/or --attempts CSV files")
        study = _read_study(study_file)
        if responses_csv:
            frame = pd.read_csv(responses_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            codes = {str(q.get("code")) for q in study.get("questions") or [] if q.get("scale")}
            for c in frame.columns:
                if c in codes:
                    frame[c] = pd.to_numeric(frame[c].replace("", None), errors="coerce")
            written.update(export_responses(frame, study, out_dir, formats=fmts, lang=lang))
        if attempts_csv and paradata:
            for k, v in export_paradata(pd.read_csv(attempts_csv, encoding="utf-8-sig"), out_dir).items():
                written[f"call_history.{k}"] = v
    for name, path in written.items():
        click.echo(f"{name}: {path}")
