"""The ``cati`` command line."""

from __future__ import annotations

import click

from .common import get_app, with_session


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cati")
def main() -> None:
    """CATI for contact-centre customer-satisfaction surveys. 呼叫中心满意度电话调查系统。"""


@main.command()
@click.option("--study", "study_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Study file to load (default: config/studies/csat_contact_center.yaml).")
@click.option("--admin-password", envvar="CATI_ADMIN_PASSWORD", default=None,
              help="Create user 'admin' with this password (or set CATI_ADMIN_PASSWORD).")
def init(study_file: str | None, admin_password: str | None) -> None:
    """Create or migrate the database and load a study."""
    from cati.db import session_scope
    from cati.migrate import current_revision, upgrade
    from cati.services.studies import default_study_file, install_study

    app = get_app()
    with app.app_context():
        engine = app.extensions["cati.db"]["engine"]
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
        click.echo(f"database: {engine.url.render_as_string(hide_password=True)} (schema {before or 'empty'} → {after})")
        try:
            with session_scope(app) as session:
                study = install_study(session, study_file or default_study_file())
                click.echo(f"study: {study.code} v{study.version} — {study.title}")
                if admin_password:
                    from sqlalchemy import select

                    from cati.models import Role, User
                    from cati.services.users import create_user

                    if session.scalar(select(User.id).where(User.username == "admin")) is None:
                        create_user(session, "admin", admin_password, Role.ADMIN, display_name="管理员")
                        click.echo("user: admin created")
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc


@main.group()
def users() -> None:
    """Manage users and roles."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["interviewer", "supervisor", "analyst", "admin", "auditor", "centre"]),
              required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, envvar="CATI_NEW_USER_PASSWORD")
@click.option("--name", "display_name", default=None)
@click.option("--extension", default=None, help="Telephony extension of the interviewer's headset.")
@with_session
def users_add(session, username, role, password, display_name, extension) -> None:
    """Add a user."""
    from cati.services.users import UserError, create_user

    try:
        user = create_user(session, username, password, role, display_name=display_name, extension=extension)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {user.username} ({user.role.value}) created")


@users.command("list")
@with_session
def users_list(session) -> None:
    """List users."""
    from sqlalchemy import select

    from cati.models import User

    for user in session.scalars(select(User).order_by(User.username)):
        click.echo(f"{user.username:20} {user.role.value:12} {'active' if user.is_active else 'disabled'}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=0, type=int, help="Run under gunicorn with this many workers (0: built-in server).")
@click.option("--no-jobs", is_flag=True, help="Do not run the report/export job worker here (run `cati jobs worker`).")
def serve(host: str, port: int, workers: int, no_jobs: bool) -> None:
    """Serve the web app, and run the worker of the analyst's report/export jobs (unless --no-jobs)."""
    if workers:
        import os

        if not no_jobs:  # the job worker in its own process, ended with the server (PR_SET_PDEATHSIG)
            import subprocess
            import sys

            subprocess.Popen([sys.executable, "-m", "cati", "jobs", "worker"], preexec_fn=_die_with_parent)
        from cati.config import load_settings

        threads = str(load_settings().serve_threads)
        os.execvp("gunicorn", ["gunicorn", "-c", "python:cati.gunicorn_conf", "-w", str(workers), "-k", "gthread",
                               "--threads", threads, "--keep-alive", "75", "-b", f"{host}:{port}",
                               "cati.app:create_app()"])
    app = get_app()
    import gc

    gc.collect()
    gc.freeze()  # see cati/gunicorn_conf.py
    if not no_jobs:
        from cati.services.jobs import start_worker

        start_worker(app)
        click.echo("report/export jobs: worker running in this process")
    click.echo(f"serving on http://{host}:{port}/login")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def _die_with_parent() -> None:
    """In a child process: receive SIGTERM when the parent (the server) exits (Linux; elsewhere a no-op)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@main.group()
def jobs() -> None:
    """The analyst's report and export jobs (queued from the web app)."""


@jobs.command("worker")
@click.option("--threads", default=1, show_default=True, type=int, help="Jobs run at once.")
def jobs_worker(threads: int) -> None:
    """Run the job worker until stopped (what `cati serve` does in-process; use it beside `--no-jobs`)."""
    import signal
    import threading

    from cati.services.jobs import start_worker

    app = get_app()
    stop = start_worker(app, workers=threads)
    click.echo("report/export job worker running; Ctrl-C stops it")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    stop()


@jobs.command("run")
def jobs_run() -> None:
    """Run the queued jobs now, in this process, and exit."""
    from cati.services.jobs import recover, run_pending

    app = get_app()
    recover(app)
    click.echo(f"{run_pending(app)} job(s) run")


def _register() -> None:
    # Command groups living in their own modules (kept out of this file so each stays small).
    from .demo import demo, simulate
    from .imports import import_
    from .report import export, report
    from .score import score
    from .study import study
    from .telephony import telephony

    for command in (demo, simulate, study, import_, score, report, export, telephony):
        main.add_command(command)
    main.add_command(__import__("cati.cli.audit", fromlist=["audit"]).audit)  # cati audit (CCSO checklists)


_register()
