"""Engine and session handling, for the web app (one session per request) and the CLI (one per command)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine tuned for each backend.

    SQLite gets WAL (readers don't block the writer), a busy timeout (writers queue instead of failing with
    "database is locked") and enforced foreign keys; ``BEGIN IMMEDIATE`` on write transactions is not forced
    globally, the scheduler asks for it where a claim must be atomic.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

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

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

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
