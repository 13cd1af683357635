"""Report and export jobs asked for in the web app, run in the background by a huey worker.

Why huey: it is maintained, small (pure Python, no other server), and its ``SqliteHuey`` keeps the queue in a
SQLite file, so the embedded default needs nothing else and a queued job survives a restart of the server; the
same code runs on Redis (``RedisHuey``) where several hosts share a queue. RQ and dramatiq need Redis or RabbitMQ;
procrastinate needs PostgreSQL.

The queue only carries a job's id. What to build, its progress, its failure reason and its files live in the
``analysis_jobs`` table, so the page shows them from the database, and the worker builds the products through
:func:`cati.services.publishing.build_all` — the very path of ``cati report`` / ``cati export`` — so a download
is the file the CLI writes for the same release, byte for byte.

A worker that dies mid-job loses huey's copy of the task; :func:`recover` (run when a worker starts) puts every
job that is still queued or running but absent from the queue back on it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import AnalysisJob, JobStatus, Study

from . import audit

#: Products the web can build, and the formats each offers.
PRODUCT_FORMATS: dict[str, tuple[str, ...]] = {
    "industry": ("html", "pdf", "xlsx"), "enterprise": ("html", "pdf", "xlsx"), "fieldwork": ("html", "pdf", "xlsx"),
    "exports": ("csv", "xlsx", "sav"),
}
TASK_NAME = "cati.analysis_job"
_hueys: dict[str, Any] = {}
_tasks: dict[str, Any] = {}
_apps: dict[str, Any] = {}
_lock = threading.Lock()


def queue_file(instance_path: Path) -> Path:
    return Path(instance_path) / "jobs.sqlite"


def jobs_folder(instance_path: Path) -> Path:
    return Path(instance_path) / "jobs"


def huey_for(app: Any) -> Any:
    """The app's job queue (a ``SqliteHuey`` in the instance folder), its task registered; one per file."""
    from huey import SqliteHuey

    app = app._get_current_object() if hasattr(app, "_get_current_object") else app  # never Flask's proxy
    path = str(queue_file(Path(app.instance_path)).resolve())
    with _lock:
        _apps[path] = app
        if path not in _hueys:
            h = SqliteHuey(name="cati-jobs", filename=path, results=False)

            def task(job_id: int, _path: str = path) -> None:
                run_job(_apps[_path], job_id)

            _tasks[path] = h.task(name=TASK_NAME, retries=0)(task)
            _hueys[path] = h
        return _hueys[path]


def enqueue(app: Any, job_id: int) -> None:
    huey = huey_for(app)
    _tasks[huey.storage.filename](job_id)  # calling the task puts it on the queue


def pending_ids(app: Any) -> set[int]:
    return {int(t.args[0]) for t in huey_for(app).pending() if t.name == TASK_NAME}


def create_job(session: Session, study: Study, *, product: str, formats: list[str], lang: str,
               release_id: int | None, enterprise_ids: list[str] | None, include_phone: bool,
               user_id: int | None) -> AnalysisJob:
    """Record a job (flushes; the caller commits and then :func:`enqueue`s it)."""
    if product not in PRODUCT_FORMATS:
        raise KeyedError("an_job_product_unknown", product=product)
    formats = [f for f in PRODUCT_FORMATS[product] if f in set(formats)]
    if not formats:
        raise KeyedError("an_job_no_format")
    if lang not in ("zh-CN", "en"):
        lang = "zh-CN"
    if include_phone and product != "exports":
        include_phone = False
    if release_id is not None:
        from .releases import release_row

        release_row(session, study, release_id)
    ids = [i.strip() for i in enterprise_ids or [] if i.strip()] if product == "enterprise" else []
    job = AnalysisJob(study_id=study.id, release_id=release_id, product=product, formats=formats, lang=lang,
                      enterprise_ids=ids or None, include_phone=include_phone, created_by_id=user_id,
                      total=max(1, len(ids)) if product == "enterprise" and ids else 1)
    session.add(job)
    session.flush()
    audit.record(session, user_id=user_id, action="job.create", entity="analysis_job", entity_id=job.id,
                 after={"product": product, "formats": formats, "release_id": release_id,
                        "include_phone": include_phone, "enterprises": len(ids) or "all"})
    return job


def jobs(session: Session, study: Study, limit: int = 50) -> list[AnalysisJob]:
    return list(session.scalars(select(AnalysisJob).where(AnalysisJob.study_id == study.id)
                                .order_by(AnalysisJob.id.desc()).limit(limit)))


def _update(app: Any, job_id: int, **values: Any) -> None:
    from cati.db import db

    with db.sessionmaker() as s, s.begin():
        job = s.get(AnalysisJob, job_id)
        for k, v in values.items():
            setattr(job, k, v)


def run_job(app: Any, job_id: int, *, workers: int = 2) -> None:
    """Build a job's products into ``<instance>/jobs/<id>/`` and record the outcome; never raises for a failed
    build (the reason is stored on the job)."""
    from cati.db import db

    from . import publishing
    from .releases import release_row

    with app.app_context():
        with db.sessionmaker() as s:
            job = s.get(AnalysisJob, job_id)
            if job is None or job.status in (JobStatus.DONE, JobStatus.FAILED):
                return
            out = jobs_folder(Path(app.instance_path)) / str(job.id)
            spec = {"product": job.product, "formats": list(job.formats), "lang": job.lang,
                    "ids": list(job.enterprise_ids or []) or None, "phone": job.include_phone,
                    "release_id": job.release_id, "study_id": job.study_id}
        if out.exists():
            shutil.rmtree(out)
        _update(app, job_id, status=JobStatus.RUNNING, started_at=datetime.now(UTC), done=0, error=None)
        last = [0.0, 0]

        def progress(_product: str, n: int) -> None:
            last[1] += n
            if time.monotonic() - last[0] > 0.5:
                last[0] = time.monotonic()
                _update(app, job_id, done=last[1])

        try:
            with db.sessionmaker() as s:
                # only reads: a deferred BEGIN, so the progress updates (own short transactions) can write
                s.connection(execution_options={"sqlite_begin": "DEFERRED"})
                study = s.get(Study, spec["study_id"])
                release = release_row(s, study, spec["release_id"]) if spec["release_id"] is not None else None
                if spec["product"] == "enterprise":
                    from .releases import from_release, live

                    scored = from_release(s, study, release.id) if release is not None else live(s, study)
                    total = len(spec["ids"]) if spec["ids"] else (len(scored.result.enterprises) if scored else 1)
                    _update(app, job_id, total=max(1, total))
                built = publishing.build_all(
                    s, study, out, release=release, products=(spec["product"],),
                    formats={spec["product"]: spec["formats"]}, lang=spec["lang"], enterprise_ids=spec["ids"],
                    include_phone=spec["phone"], workers=workers, progress=progress,
                    layout={spec["product"]: ""})
        except Exception as exc:  # noqa: BLE001 - any failure is the job's reason, shown on the page
            _update(app, job_id, status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}",
                    finished_at=datetime.now(UTC))
            return
        if built.errors:
            _update(app, job_id, status=JobStatus.FAILED, error="; ".join(built.errors.values()),
                    finished_at=datetime.now(UTC))
            return
        files = sorted(p.relative_to(out).as_posix() for p in built.paths())
        with db.sessionmaker() as s, s.begin():
            job = s.get(AnalysisJob, job_id)
            job.status, job.files, job.finished_at = JobStatus.DONE, files, datetime.now(UTC)
            job.done = job.total


def job_file(app: Any, job: AnalysisJob, name: str) -> Path:
    """The path of one of a finished job's files (KeyedError for anything else: no path escapes the folder)."""
    if job.status != JobStatus.DONE or name not in (job.files or []):
        raise KeyedError("an_job_file_unknown")
    return jobs_folder(Path(app.instance_path)) / str(job.id) / name


def record_download(session: Session, job: AnalysisJob, name: str, user_id: int | None) -> None:
    audit.record(session, user_id=user_id, action="download", entity="analysis_job", entity_id=job.id,
                 after={"file": name, "product": job.product, "release_id": job.release_id,
                        "include_phone": job.include_phone})


def recover(app: Any) -> list[int]:
    """Put back on the queue every job left queued or running without a queued task (a worker or server that
    stopped mid-job). Returns their ids."""
    from cati.db import db

    with app.app_context():
        waiting = pending_ids(app)
        with db.sessionmaker() as s, s.begin():
            lost = [j for j in s.scalars(select(AnalysisJob).where(
                AnalysisJob.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))) if j.id not in waiting]
            for j in lost:
                j.status, j.done = JobStatus.QUEUED, 0
            ids = [j.id for j in lost]
    for job_id in ids:
        enqueue(app, job_id)
    return ids


def run_pending(app: Any, limit: int | None = None) -> int:
    """Run queued tasks in this thread until the queue is empty (tests, ``cati jobs run``). Returns how many ran."""
    huey = huey_for(app)
    ran = 0
    while limit is None or ran < limit:
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
        ran += 1
    return ran


class _QuietConsumer:
    """huey's consumer without its signal handlers: it runs beside the web server, whose Ctrl-C must still stop
    the server (the worker threads are daemons)."""

    def __init__(self, huey: Any, workers: int = 1):
        from huey.consumer import Consumer

        class Quiet(Consumer):
            def _set_signal_handlers(self) -> None:
                pass

        self.consumer = Quiet(huey, workers=workers, worker_type="thread", periodic=False, initial_delay=0.2,
                              max_delay=2.0, check_worker_health=False)

    def start(self) -> None:
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop(graceful=False)


def start_worker(app: Any, workers: int = 1) -> Callable[[], None]:
    """Start the job worker in this process (threads) after recovering lost jobs; returns a stop function.
    huey's own log (a task that crashed outside :func:`run_job`'s guard) goes to stderr."""
    import logging

    log = logging.getLogger("huey")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s jobs %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
    recover(app)
    consumer = _QuietConsumer(huey_for(app), workers=workers)
    consumer.start()
    return consumer.stop
