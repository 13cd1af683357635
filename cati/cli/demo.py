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
    from cati.cli.common import progress_bar

    return progress_bar(total=total, unit="完成", desc="访问完成 completes", leave=True)


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="cati-demo", show_default=True,
              help="Where the database, reports and summary.json go.")
@click.option("--world", "world_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="World file (default config/worlds/default.yaml).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--enterprises", type=int, default=None,
              help="Enterprises (default 360 for the CSAT study, 250 for the happiness index).")
@click.option("--study", "study_name", type=click.Choice(["csat_contact_center", "happiness_index"]),
              default="csat_contact_center", show_default=True,
              help="csat_contact_center: telephone fieldwork; happiness_index: a web (CAWI) wave.")
@click.option("--respondents", type=int, default=None,
              help="happiness_index: respondents in the wave (default 160 per enterprise: 40,000 for 250).")
@click.option("--web-respondents", type=int, default=None,
              help="happiness_index: at most this many answer through the web pages (default: all of them, "
                   "within --web-seconds).")
@click.option("--web-seconds", type=float, default=150.0, show_default=True,
              help="happiness_index: stop starting web respondents after this many seconds (0: no limit).")
@click.option("--force", is_flag=True, help="Replace an existing demo in --out.")
@click.option("--no-reports", is_flag=True, help="Skip scoring and reports (fieldwork only).")
def demo(out_dir, world_file, seed, enterprises, study_name, respondents, web_respondents, web_seconds, force,
         no_reports) -> None:
    """A complete simulated study: 360 enterprises in 15 industries, fieldwork until every quota is filled,
    scores and reports; or (--study happiness_index) a web wave of the staff happiness index.
    一键演示：模拟执行、计分、报告。"""
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
    if study_name == "happiness_index":
        _happiness_demo(out, db_path, seed=seed, enterprises=enterprises or 250, respondents=respondents,
                        web_respondents=web_respondents, web_seconds=web_seconds or None, no_reports=no_reports,
                        t0=t0)
        return
    enterprises = enterprises or 360
    world = _world(world_file)
    url = f"sqlite:///{db_path}"
    engine, factory = _engine(url)
    timings: dict[str, float] = {}
    try:
        _demo_users(factory)
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


def _demo_users(factory) -> None:
    from sqlalchemy import select

    from cati.db import transaction
    from cati.models import Role, User
    from cati.services.users import create_user

    with transaction(factory) as s:
        for username, password, role, name in DEMO_USERS:
            if s.scalar(select(User.id).where(User.username == username)) is None:
                create_user(s, username, password, Role(role), display_name=name)


def _happiness_demo(out: Path, db_path: Path, *, seed: int, enterprises: int, respondents: int | None,
                    web_respondents: int | None, web_seconds: float | None, no_reports: bool, t0: float) -> None:
    """The staff happiness index as a web wave (``cati.simulation.cawi_wave``): the planned answers of every
    respondent, as many of them as fit answering through the real web pages, then the whole wave scored and
    reported (the respondents who did not go through the pages are scored from the plan and counted apart)."""
    import dataclasses

    from cati.models import Study
    from cati.services import frames, publishing
    from cati.simulation import cawi_wave
    from scoring.synthetic import make_happiness_responses

    respondents = respondents or 160 * enterprises
    if enterprises < 1 or respondents < enterprises:
        raise click.ClickException("need --respondents >= --enterprises >= 1")
    url = f"sqlite:///{db_path}"
    engine, factory = _engine(url)
    _demo_users(factory)
    engine.dispose()
    click.echo(f"数据库 database: {db_path}")
    plan = make_happiness_responses(enterprises, respondents, seed=seed)
    wanted = cawi_wave.pick_web(plan, len(plan) if web_respondents is None else min(web_respondents, len(plan)))
    timings: dict[str, float] = {}
    t = time.perf_counter()
    from cati.cli.common import progress_bar

    with progress_bar(total=len(wanted), unit="人", desc="网络填答 web respondents", leave=True) as bar:
        try:
            wave = cawi_wave.run_web_wave(url, out / "instance", plan, wanted, progress=bar.update,
                                          seconds=web_seconds)
        except cawi_wave.WaveError as exc:
            raise click.ClickException(str(exc)) from exc
    timings["web_seconds"] = round(time.perf_counter() - t, 1)
    n_web = len(wave.web_ids)
    posts = sorted(wave.post_ms)
    click.echo(f"网络填答 through the web pages: {n_web} of {len(plan)} respondents ({100 * wave.web_share:.2f} %), "
               f"{wave.requests} requests, {wave.answer_posts} answers saved in {wave.web_seconds:.0f} s; "
               f"answer POST median {posts[len(posts) // 2]:.1f} ms (in-process, no network)")
    click.echo(f"其余 {len(plan) - n_web} respondents are scored from the synthetic plan (mode=synthetic), "
               "not stored as web answers")
    summary: dict = {
        "study": "happiness_index", "seed": seed, "database": str(db_path), "enterprises": enterprises,
        "respondents": len(plan), "web_respondents": n_web, "web_share": round(wave.web_share, 4),
        "synthetic_respondents": len(plan) - n_web, "web_requests": wave.requests,
        "web_answers_saved": wave.answer_posts,
        "answer_post_ms_median": round(posts[len(posts) // 2], 1) if posts else None,
        "answer_post_ms_p95": round(posts[int(0.95 * (len(posts) - 1))], 1) if posts else None,
        "how": "web respondents: Flask test client (the app's WSGI interface in-process, own cookie jar each) "
               "through the open link, every page and form; the rest: the synthetic plan's rows, only in the "
               "scored frame (mode=synthetic), never in the database",
    }
    if not no_reports:
        t = time.perf_counter()
        with factory() as s:
            data = publishing.read_study_data(s, s.get(Study, wave.study_id))
            data = dataclasses.replace(data, responses=cawi_wave.wave_frame(
                frames.responses_frame(s, wave.study_id), plan, wave.web_ids, wave.provinces))
        engine.dispose()
        with progress_bar(total=enterprises, unit="份", desc="企业报告 enterprise reports", leave=True) as bar:

            def done(product: str, info: dict | None, error: str | None) -> None:
                bar.write(f"  {product}: {info['files']} file(s)" if info is not None
                          else f"  {product}: FAILED ({error})")

            formats = {"industry": ("html", "xlsx", "pdf"), "enterprise": ("html",)}
            built = publishing.build_products(data, out / "reports", products=("scores", "industry", "enterprise"),
                                              formats=formats, n_boot=200, seed=1, on_product=done, workers=2,
                                              progress=lambda _p, n: bar.update(n))
        timings["reports_seconds"] = round(time.perf_counter() - t, 1)
        click.echo(f"幸福指数 happiness index: {built.overall.get('index')} (n = {int(built.overall.get('n') or 0)})")
        summary.update({"overall": built.overall, "report_errors": dict(built.errors),
                        "reports": {name: {"files": info["files"], "seconds": info["seconds"],
                                           "example": str(info["paths"][0]) if info["paths"] else None}
                                    for name, info in built.products.items()}})
    timings["total_seconds"] = round(time.perf_counter() - t0, 1)
    summary["timings"] = timings
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1, default=str) + "\n",
                                      encoding="utf-8")
    click.echo(f"完成 done in {timings['total_seconds']:.0f} s")
    click.echo(f"  数据库 database : {db_path}")
    click.echo(f"  报告 reports    : {out / 'reports'}")
    click.echo(f"  摘要 summary    : {out / 'summary.json'}")
    click.echo("打开网页版 open the web app on the same data (supervisor → web links):")
    click.echo(f"  CATI_DATABASE_URL={url} cati serve")
    for username, password, role, _name in DEMO_USERS:
        click.echo(f"  {username:<11} {password:<22} {role}")


def _score_and_report(factory, study_id: int, reports_dir: Path, echo) -> dict:
    """Score the completes and write every product (``cati.services.publishing``); a failing product is noted in
    the summary and does not stop the others. The data exports run in a second process while this one scores,
    so both cores are busy: the database connections are closed first, so the fork inherits none."""
    from cati.models import Study
    from cati.services import publishing

    with factory() as s:
        data = publishing.read_study_data(s, s.get(Study, study_id))
        engine = s.get_bind()
    engine.dispose()

    def done(product: str, info: dict | None, error: str | None) -> None:
        echo(f"  {product}: {info['files']} file(s)" if info is not None else f"  {product}: FAILED ({error})")

    formats = {"industry": ("html", "xlsx", "pdf"), "enterprise": ("html",), "fieldwork": ("html", "xlsx")}
    built = publishing.build_products(data, reports_dir, formats=formats, n_boot=1000, seed=1, workers=2,
                                      exports_in_second_process=True, on_product=done)
    echo(f"总体得分 overall composite: {built.overall.get('composite')}")
    return {
        "reports": {name: {"files": info["files"], "seconds": info["seconds"],
                           "example": str(info["paths"][0]) if info["paths"] else None}
                    for name, info in built.products.items()},
        "report_errors": dict(built.errors),
        "overall_composite": built.overall.get("composite"),
        "overall": built.overall,
        "aapor_rates_frames": built.rates,
    }
