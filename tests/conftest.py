"""Fixtures shared by all tests: a migrated database on SQLite (always) and PostgreSQL (when
``CATI_TEST_POSTGRES_URL`` is set), sessions, an app, and the default study installed.

Database-backed tests take the ``db_url`` fixture (directly or through ``engine``/``session``/``app``) and so run
once per backend. PostgreSQL runs use one throw-away database per test session; tables are emptied between tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.models import Base

# Property tests run beside real Asterisk instances and PostgreSQL on 2 cores: a slow example is load, not a
# defect, so the timing health checks and deadlines are off (the properties themselves are unchanged).
settings.register_profile("cati", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("cati")

PG_URL = os.environ.get("CATI_TEST_POSTGRES_URL")
ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = ROOT / "config" / "studies" / "csat_contact_center.yaml"

BACKENDS = [pytest.param("sqlite", id="sqlite")]
if PG_URL:
    BACKENDS.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))


def _pg_admin_url() -> str:
    url = PG_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    raw = engine.raw_connection()  # a checkpoint can't run inside a transaction
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this test session, migrated from empty; dropped at the end."""
    if not PG_URL:
        pytest.skip("CATI_TEST_POSTGRES_URL not set")
    admin = make_engine(_pg_admin_url())
    name = f"cati_test_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = _pg_admin_url().rpartition("/")
    url = f"{base}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path / "cati.sqlite"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_database")
    yield url
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def session(session_factory):
    session = session_factory()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def study(session_factory):
    """The default study installed (committed), as a detached ORM row."""
    from cati.services.studies import install_study

    with transaction(session_factory) as s:
        row = install_study(s, STUDY_FILE)
    return row


@pytest.fixture
def app(db_url, tmp_path):
    from cati.app import create_app

    app = create_app({"database_url": db_url, "instance_path": tmp_path / "instance", "testing": True,
                      "secret_key": "test-secret"})
    yield app
    app.extensions["cati.db"]["engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()
