"""``cati demo`` (a whole simulated study, end to end) and ``cati simulate`` (a fieldwork simulation report)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

DEMO_USERS = (
    ("admin", "demo-admin-2026", "admin", "管理员"),
    ("supervisor", "demo-supervisor-2026", "supervisor", "督导"),
    ("analyst", "demo-analyst-2026", "analyst", "分析师"),
)


def _world(path: str | None):
    from cati.simulation import World, WorldError

    try:
        return World.load(path)
    except WorldError as exc:
        raise click.ClickException(str(exc)) from exc


def _engine(url: str):
    from cati.db import make_engine, make_sessionmaker
    from cati.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    return engine, make_sessionmaker(engine)


@click.command("simulate")
@click.option("--world", "world_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="World file (default config/worlds/default.yaml).")
@click.option("--enterprises", type=int, default=None, help="Enterprises to simulate (default: the world's).")
@click.option("--interviewers", type=int, default=None, help="Virtual interviewers (default: the world's).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--strategy", type=click.Choice(["ours", "call_list", "quexs_style", "oracle"]), default="ours",
              show_default=True, help="Case selection to simulate.")
@click.option("--database", "database_url", default=None,
              help="Database URL to run on (default: a temporary SQLite file). An existing study's cases are "
                   "used as they are; an empty database gets the default study and a synthetic sample.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the report here.")
def simulate(world_file, enterprises, interviewers, seed, strategy, database_url, json_path) -> None:
    """Simulate fieldwork with virtual interviewers and respondents; print the report. 模拟执行。"""
    import tempfile

    from cati.simulation import Simulator

    world = _world(world_file)
    tmp = None
    if database_url is None:
        tmp = tempfile.TemporaryDirectory(prefix="cati-simulate-")
        database_url = f"sqlite:///{Path(tmp.name) / 'cati.sqlite'}"
    engine, factory = _engine(database_url)
    try:
        with _progress(None) as bar:
            sim = Simulator(factory, world, strategy=strategy, seed=seed, n_enterprises=enterprises,
                            n_interviewers=interviewers, progress=bar.update)
            bar.total = sim.quota_total
            report = sim.run()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
        if tmp is not None:
            tmp.cleanup()
    click.echo(report.table())
    click.echo(report.line())
    if json_path:
        Path(json_path).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")


def _progress(total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, unit="完成", desc="访问完成 completes", dynamic_ncols=True, leave=True)


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="cati-demo", show_default=True,
              help="Where the database, reports and summary.json go.")
@click.option("--world", "world_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="World file (default config/worlds/default.yaml).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--enterprises", type=int, default=360, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing demo in --out.")
@click.option("--no-reports", is_flag=True, help="Skip scoring and reports (fieldwork only).")
def demo(out_dir, world_file, seed, enterprises, force, no_reports) -> None:
    """A complete simulated study: 360 enterprises in 15 industries, fieldwork until every quota is filled,
    scores and reports. 一键演示：模拟执行、计分、报告。"""
    from cati.db import transaction
    from cati.models import Role, User
    from cati.services.users import create_user
    from cati.simulation import Simulator
    from cati.simulation.engine import SIM_PASSWORD

    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    db_path = out / "cati.sqlite"
    if db_path.exists():
        if not force:
            raise click.ClickException(f"{db_path} exists; use --force to replace the demo, or --out elsewhere")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    world = _world(world_file)
    url = f"sqlite:///{db_path}"
    engine, factory = _engine(url)
    timings: dict[str, float] = {}
    try:
        with transaction(factory) as s:
            from sqlalchemy import select

            for username, password, role, name in DEMO_USERS:
                if s.scalar(select(User.id).where(User.username == username)) is None:
                    create_user(s, username, password, Role(role), display_name=name)
        click.echo(f"数据库 database: {db_path}")
        t = time.perf_counter()
        with _progress(None) as bar:
            sim = Simulator(factory, world, seed=seed, n_enterprises=enterprises, progress=bar.update,
                            workdir=out / "input")
            bar.total = sim.quota_total
            bar.refresh()
            report = sim.run()
        timings["fieldwork_seconds"] = round(time.perf_counter() - t, 1)
        click.echo(report.table())
        click.echo(f"每付薪访员小时完成 completes per paid interviewer-hour: {report.completes_per_paid_hour:.3f} "
                   f"({report.completes} completes / {report.interviewer_hours:.0f} paid hours, "
                   f"{report.idle_share:.0%} of them waiting; {report.calendar_days} calendar days)")
        summary: dict = {
            "world": world.name, "seed": seed, "database": str(db_path),
            "quotas_filled": report.quotas_filled, "enterprises": report.enterprises,
            "completes": report.completes, "quota_total": report.quota_total, "overquota": report.overquota,
            "interviewer_hours": report.interviewer_hours, "paid_interviewer_hours": report.interviewer_hours,
            "calendar_days": report.calendar_days,
            "completes_per_paid_hour": round(report.completes_per_paid_hour, 3),
            "idle_share": round(report.idle_share, 4),
            "completes_per_interviewer_hour": round(report.completes_per_interviewer_hour, 3),
            "dials": report.dials, "dials_per_complete": round(report.dials_per_complete, 2),
            "aapor_rates": {k: round(v, 4) for k, v in report.rates.items()},
            "fieldwork": report.to_dict(),
        }
        if not no_reports:
            t = time.perf_counter()
            summary.update(_score_and_report(factory, sim.study_id, out / "reports", click.echo))
            timings["reports_seconds"] = round(time.perf_counter() - t, 1)
    finally:
        engine.dispose()
    timings["total_seconds"] = round(time.perf_counter() - t0, 1)
    summary["timings"] = timings
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1, default=str) + "\n",
                                      encoding="utf-8")
    click.echo("")
    click.echo(f"完成 done in {timings['total_seconds']:.0f} s")
    click.echo(f"  数据库 database : {db_path}")
    click.echo(f"  报告 reports    : {out / 'reports'}")
    click.echo(f"  摘要 summary    : {out / 'summary.json'}")
    click.echo("打开网页版 open the web app on the same data:")
    click.echo(f"  CATI_DATABASE_URL={url} cati serve")
    click.echo("演示账号 demo users (username / password):")
    for username, password, role, _name in DEMO_USERS:
        click.echo(f"  {username:<11} {password:<22} {role}")
    click.echo(f"  sim01 … sim{sim.n_interviewers:02d} {SIM_PASSWORD:<14} interviewer")


REPORT_ORDER = ("scores", "industry", "enterprise", "fieldwork", "exports", "paradata")


def _timed(name: str, fn) -> tuple[str, dict | None, str | None]:
    """Run one report builder: (name, {"files", "seconds", "example"}, None) or (name, None, error)."""
    t = time.perf_counter()
    try:
        got = fn()
    except Exception as exc:  # noqa: BLE001 - one broken report must not lose the others
        return name, None, f"{type(exc).__name__}: {exc}"
    paths = list(got.values()) if isinstance(got, dict) else list(got)
    return name, {"files": len(paths), "seconds": round(time.perf_counter() - t, 1),
                  "example": str(paths[0]) if paths else None}, None


def _data_exports(responses, attempts, definition, data_dir: Path) -> list[tuple[str, dict | None, str | None]]:
    """The data files (responses as CSV/SAV/XLSX, the call history as CSV/XLSX): they need no scores, so the demo
    writes them in a second process while it scores and builds the reports."""
    from reports import exports

    return [_timed("exports", lambda: exports.export_responses(responses, definition, data_dir)),
            _timed("paradata", lambda: exports.export_paradata(attempts, data_dir))]


def _score_and_report(factory, study_id: int, reports_dir: Path, echo) -> dict:
    """Score the completes and write every report the reports package offers; a failing report is noted in the
    summary and does not stop the others.

    The data exports run in a second process (see :func:`_data_exports`) alongside scoring and the reports, so
    the two cores are both busy; the summary lists the reports in the same order either way.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_all_start_methods, get_context

    from cati.models import Study
    from cati.services import frames
    from scoring import ScoringSpec, response_rates, score_study

    reports_dir.mkdir(parents=True, exist_ok=True)
    result_info: dict = {"reports": {}, "report_errors": {}}
    with factory() as s:
        study = s.get(Study, study_id)
        definition = study.definition
        responses = frames.responses_frame(s, study_id, complete_only=True)
        cases = frames.cases_frame(s, study_id)
        attempts = frames.attempts_frame(s, study_id, mask_phones=True)
        dispositions = frames.dispositions_frame(s, study_id)
        engine = s.get_bind()
    # Everything is read: close the pooled SQLite connections, so that the second process (a fork where the
    # platform has it: no re-import, nothing to pickle but the frames) inherits no open database connection.
    engine.dispose()
    done: dict[str, tuple[dict | None, str | None]] = {}

    def record(name: str, info: dict | None, error: str | None) -> None:
        done[name] = (info, error)
        echo(f"  {name}: {info['files']} file(s)" if info is not None else f"  {name}: FAILED ({error})")

    ctx = get_context("fork") if "fork" in get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as side:
        data_files = side.submit(_data_exports, responses, attempts, definition, reports_dir / "data")

        spec = ScoringSpec.from_study(definition)
        result = score_study(responses, spec, n_boot=1000, seed=1)
        overall = result.overall
        composite = overall.get("composite") if isinstance(overall, dict) else None
        result_info["overall_composite"] = None if composite is None else round(float(composite), 2)
        result_info["overall"] = {k: (round(float(v), 2) if isinstance(v, int | float) else v)
                                  for k, v in (overall.items() if isinstance(overall, dict) else [])}
        echo(f"总体得分 overall composite: {result_info['overall_composite']}")
        rates = response_rates(dispositions)
        by_industry = response_rates(dispositions, by="industry") if "industry" in dispositions else rates

        from reports.enterprise import build_enterprise_reports
        from reports.fieldwork import build_fieldwork_report
        from reports.industry import build_industry_report

        record(*_timed("scores", lambda: result.write(reports_dir / "scores")))
        record(*_timed("industry", lambda: build_industry_report(result, definition, rates=by_industry,
                                                                 out_dir=reports_dir, formats=("html", "xlsx", "pdf"))))
        verbatims = responses[["enterprise_id", "OPEN1"]] if "OPEN1" in responses else None
        record(*_timed("enterprise", lambda: build_enterprise_reports(
            result, definition, verbatims=verbatims, out_dir=reports_dir / "enterprises", formats=("html",),
            workers=2)))
        record(*_timed("fieldwork", lambda: build_fieldwork_report(cases, attempts, rates, None, out_dir=reports_dir,
                                                                   formats=("html", "xlsx"))))
        try:
            side_results = data_files.result()
        except Exception as exc:  # noqa: BLE001 - the second process died: its reports failed, the others stand
            side_results = [(name, None, f"{type(exc).__name__}: {exc}") for name in ("exports", "paradata")]
        for got in side_results:
            record(*got)
    for name in REPORT_ORDER:
        if name in done:
            info, error = done[name]
            if info is not None:
                result_info["reports"][name] = info
            else:
                result_info["report_errors"][name] = error
    row = rates.iloc[0]
    result_info["aapor_rates_frames"] = {k: round(float(row[k]), 4) for k in ("RR1", "RR3", "COOP1", "REF1", "CON1", "e")}
    return result_info
