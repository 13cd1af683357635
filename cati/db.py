"""Engine and session handling, for the web app (one session per request) and the CLI (one per command)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine tuned for each backend.

    SQLite gets WAL, a busy timeout and enforced foreign keys, and its transactions start with
    ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes fails at once with "database is
    locked" when another writer committed in between (its read snapshot went stale, and the busy timeout does
    not apply to that case). Taking the write lock up front makes writers queue instead. Read-only work that
    must not wait for writers can ask for ``execution_options(sqlite_begin="DEFERRED")``.
    """
    if url.startswith("sqlite"):
        # Threads queue for the write lock while holding a connection, so the pool must hold one per
        # concurrent worker (SQLite connections are cheap): 100 interviewers' requests must not time out here.
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=10, max_overflow=190, pool_timeout=120)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
            # Let SQLAlchemy's own BEGIN handling be used (pysqlite's implicit transactions are off).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # SQLite has one writer at a time. Writers of this process queue on a FIFO lock and wake the moment
        # the previous one commits, instead of polling in SQLite's busy handler (whose back-off sleeps of up to
        # 100 ms made p99 claim latency seconds long with 50 claimers); other processes still meet the busy
        # timeout.
        write_lock = threading.Lock()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            if mode != "DEFERRED":
                if not write_lock.acquire(timeout=60):
                    raise TimeoutError("waited 60 s for the SQLite write lock")
                conn.info["cati_write_lock"] = True
            try:
                conn.exec_driver_sql(f"BEGIN {mode}")
            except BaseException:
                _release(conn)
                raise

        def _release(conn) -> None:
            if conn.info.pop("cati_write_lock", False):
                write_lock.release()

        event.listen(engine, "commit", lambda conn: _release(conn))
        event.listen(engine, "rollback", lambda conn: _release(conn))

        # A connection going back to the pool (even from a session that was dropped without close) must not
        # keep the lock: the pool record shares ``info`` with the Connection.
        @event.listens_for(engine, "checkin")
        def _checkin(_dbapi_conn, record):  # pragma: no cover
            if record is not None and record.info.pop("cati_write_lock", False):
                write_lock.release()

        return engine
    return create_engine(url, echo=echo, pool_size=20, max_overflow=40, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error. The edge (CLI command, request) uses this."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class Database:
    """Flask extension: created without an app, bound by :meth:`init_app`."""

    def init_app(self, app) -> None:
        engine = make_engine(app.config["SQLALCHEMY_DATABASE_URI"], echo=app.config.get("SQL_ECHO", False))
        app.extensions["cati.db"] = {"engine": engine, "sessionmaker": make_sessionmaker(engine)}

        @app.teardown_appcontext
        def _close_session(exc):
            from flask import g

            session = g.pop("db_session", None)
            if session is not None:
                if exc is not None:
                    session.rollback()
                session.close()

    @staticmethod
    def _ext():
        from flask import current_app

        return current_app.extensions["cati.db"]

    @property
    def engine(self) -> Engine:
        return self._ext()["engine"]

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        return self._ext()["sessionmaker"]

    @property
    def session(self) -> Session:
        """The request's session (created on first use, closed at teardown; commit explicitly at the edge)."""
        from flask import g

        if "db_session" not in g:
            g.db_session = self.sessionmaker()
        return g.db_session


db = Database()


@contextmanager
def session_scope(app=None) -> Iterator[Session]:
    """A committed unit of work outside a request (CLI, scripts): ``with session_scope(app) as s: ...``."""
    if app is None:
        from flask import current_app

        app = current_app
    with transaction(app.extensions["cati.db"]["sessionmaker"]) as session:
        yield session
