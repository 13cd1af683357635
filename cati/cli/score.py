"""``cati score``: score a responses file (or the live database) and write the scoring file contract.

评分：读答卷宽表 CSV（或数据库），输出企业、行业、总体得分与驱动因素分析。
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import click


def _default_study_file() -> Path:
    try:
        from cati.services.studies import default_study_file

        return Path(default_study_file())
    except ImportError:  # the scoring command must work on files alone
        return Path("config/studies/csat_contact_center.yaml")


def _responses_from_db(study_id: int):
    """The wide responses frame of a study in the database (through the one ORM-to-DataFrame bridge) and the
    study definition stored with it."""
    try:
        from cati.services.frames import responses_frame
    except ImportError as exc:
        raise click.ClickException(
            "scoring from the database (--study-id) is not available yet: the bridge cati.services.frames is "
            f"missing ({exc}); export the responses to CSV and score the file instead"
        ) from None
    from cati.db import session_scope
    from cati.models import Study

    from .common import get_app

    app = get_app()
    with app.app_context(), session_scope(app) as session:
        study = session.get(Study, study_id)
        if study is None:
            raise click.ClickException(f"--study-id {study_id}: no such study in the database")
        return responses_frame(session, study_id), dict(study.definition or {})


def _pad(text: str, width: int) -> str:
    """Left-justify by display width (a CJK character takes two columns)."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - shown)


def _fmt(v, digits: int = 2) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "—" if f != f else f"{f:.{digits}f}"


def _read_study(path: Path) -> dict:
    """The raw mapping of a study file (errors name the file)."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ValueError(f"{path}: study file not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a study file is a mapping of keys")
    return raw


def _echo_index(result, source: str, study_label: str, paths: dict) -> None:
    """The summary of an index study: the index, the sections, the driver quadrants."""
    ov, m = result.overall, result.method
    click.echo(f"scored {source} with {study_label}")
    click.echo(f"  respondents {ov['n_respondents']} (dropped, not complete: {m['n_dropped_not_complete']}), "
               f"enterprises {ov['n_enterprises']}; bootstrap {m['n_boot']}, seed {m['seed']}")
    click.echo(f"  {_pad('指数 index', 16)}{_fmt(ov['index']):>8}  [{_fmt(ov['ci_low'])}, {_fmt(ov['ci_high'])}]"
               f"  n = {ov['n']}")
    sections = result.scores[result.scores["level"] == "section"]
    for _, row in sections.iterrows():
        click.echo(f"  {_pad(f'{row.name_zh} {row.code}', 16)}{_fmt(row.score):>8}")
    if len(result.drivers):
        for quadrant, part in result.drivers.groupby("quadrant", sort=False):
            items = ", ".join(f"{c} {n}" for c, n in zip(part["code"], part["name_zh"], strict=True))
            click.echo(f"  {quadrant}: {items}")
    suppressed = int(result.breakdowns["suppressed"].sum()) if len(result.breakdowns) else 0
    click.echo(f"  breakdown cells {len(result.breakdowns)}, suppressed (n < {m['min_cell_size']}): {suppressed}")
    click.echo("written:")
    for path in paths.values():
        click.echo(f"  {path}")


@click.command("score")
@click.argument("responses", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--study", "study_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Study file with the indicator tree and scoring section "
                   "(default: config/studies/csat_contact_center.yaml).")
@click.option("--study-id", type=int, default=None,
              help="Score the completes of this study in the database instead of a file (indicator tree from the "
                   "stored study definition unless --study is given).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("scores"),
              show_default=True, help="Directory for enterprise_scores.csv, industry_scores.csv, overall.json, "
                                      "drivers.csv.")
@click.option("--n-boot", type=click.IntRange(min=0), default=None,
              help="Bootstrap replicates (default: the study's scoring.bootstrap_replicates; 0 = point estimates).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--industry-aggregation", type=click.Choice(["enterprise_mean", "respondent_mean"]), default=None,
              help="Industry score = mean of enterprises (default) or respondent-weighted.")
def score(responses: Path | None, study_file: Path | None, study_id: int | None, out_dir: Path,
          n_boot: int | None, seed: int, industry_aggregation: str | None) -> None:
    """Score RESPONSES.csv (wide: respondent_id, enterprise_id, enterprise_name, industry, A1…F4, Q0 …).

    按研究文件的指标体系计算得分、置信区间、排名区间、显著性分层和驱动因素。An index study (scoring.kind: index, e.g.
    config/studies/happiness_index.yaml) writes its index, item and section scores, breakdowns, driver quadrants and
    multiple-choice shares instead.
    """
    from scoring import (
        IndexSpec,
        ScoringSpec,
        is_index_study,
        read_responses_csv,
        score_index_study,
        score_study,
    )

    if (responses is None) == (study_id is None):
        raise click.UsageError("give either RESPONSES.csv or --study-id (not both)")
    try:
        if responses is not None:
            study_label = str(study_file or _default_study_file())
            definition = _read_study(study_file or _default_study_file())
            frame = None
            source = str(responses)
        else:
            frame, definition = _responses_from_db(study_id)
            source = f"study {study_id} (database)"
            study_label = "the study definition in the database"
            if study_file is not None:  # an explicit file overrides the stored definition
                definition, study_label = _read_study(study_file), str(study_file)
            if len(frame) == 0:
                raise ValueError(f"study {study_id} has no complete interviews yet (nothing to score)")
        if is_index_study(definition):  # the staff happiness index: an index, not a weighted composite
            ispec = IndexSpec.from_study(definition)
            if frame is None:
                frame = read_responses_csv(responses, ispec.scoring)
            index_result = score_index_study(frame, ispec, n_boot=n_boot, seed=seed)
            paths = index_result.write(out_dir)
        else:
            spec = ScoringSpec.from_study(definition)
            if frame is None:
                frame = read_responses_csv(responses, spec)
            result = score_study(frame, spec, n_boot=n_boot, seed=seed, industry_aggregation=industry_aggregation)
            paths = result.write(out_dir)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    if is_index_study(definition):
        _echo_index(index_result, source, study_label, paths)
        return

    ov, m = result.overall, result.method
    click.echo(f"scored {source} with {study_label}")
    click.echo(f"  respondents {m['n_respondents']} (dropped, not complete: {m['n_dropped_not_complete']}), "
               f"enterprises {m['n_enterprises']}, industries {m['n_industries']}; bootstrap {m['n_boot']}, "
               f"seed {m['seed']}, industry aggregation {m['industry_aggregation']}")
    codes = list(result.spec.indicator_codes)
    header = "  " + _pad("", 16) + "".join(f"{c:>8}" for c in codes) + f"{'composite':>12}{'95% CI':>18}"
    click.echo(header)
    click.echo("  " + _pad("总体 overall", 16) + "".join(f"{_fmt(ov[c]):>8}" for c in codes)
               + f"{_fmt(ov['composite']):>12}{'[' + _fmt(ov['ci_low']) + ', ' + _fmt(ov['ci_high']) + ']':>18}")
    ind = result.industries.sort_values("rank")
    for _, row in ind.head(5).iterrows():
        label = f"#{row['rank']} {row['industry']}"
        click.echo("  " + _pad(label, 16) + "".join(f"{_fmt(row[c]):>8}" for c in codes)
                   + f"{_fmt(row['composite']):>12}{'[' + _fmt(row['ci_low']) + ', ' + _fmt(row['ci_high']) + ']':>18}")
    if len(ind) > 5:
        click.echo(f"  … {len(ind) - 5} more industries in industry_scores.csv")
    tiers = result.enterprises["tier"].value_counts()
    click.echo(f"  enterprises vs their industry ({m['multiple_comparison_correction']}): "
               f"above {tiers.get('above', 0)}, not different {tiers.get('not_different', 0)}, "
               f"below {tiers.get('below', 0)}")
    click.echo("written:")
    for path in paths.values():
        click.echo(f"  {path}")
