"""The foundation: settings layers, migrations from empty, users, the app factory, the CLI basics."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, select

from cati.config import SettingsError, load_settings
from cati.migrate import current_revision, upgrade
from cati.models import Role, Study, User
from cati.services.users import UserError, authenticate, create_user


def test_settings_layers_later_wins(tmp_path):
    cfg = tmp_path / "cati.toml"
    cfg.write_text('default_language = "en"\nsql_echo = true\n')
    s = load_settings({"sql_echo": False}, environ={"CATI_CONFIG": str(cfg), "CATI_LOGIN_RATE_LIMIT": "3"})
    assert s.default_language == "en"  # from the file
    assert s.login_rate_limit == 3  # from the environment
    assert s.sql_echo is False  # override beats the file


def test_settings_reject_unknown_keys(tmp_path):
    cfg = tmp_path / "cati.toml"
    cfg.write_text('databse_url = "sqlite://"\n')
    with pytest.raises(SettingsError, match="databse_url"):
        load_settings(environ={"CATI_CONFIG": str(cfg)})
    with pytest.raises(SettingsError, match="CATI_DATABSE_URL"):
        load_settings(environ={"CATI_DATABSE_URL": "sqlite://"})


def test_settings_default_database_is_sqlite_under_instance(tmp_path):
    s = load_settings({"instance_path": tmp_path}, environ={})
    assert s.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'cati.sqlite'}"
    s = load_settings(environ={"CATI_DATABASE_URL": "postgresql://u@h/db"})
    assert s.resolved_database_url().startswith("postgresql+psycopg://")


def test_migrations_apply_from_empty(db_url):
    # db_url comes migrated; migrating again is a no-op and the head revision is recorded.
    from cati.db import make_engine

    engine = make_engine(db_url)
    upgrade(engine)
    assert current_revision(engine) == "0015"
    tables = set(inspect(engine).get_table_names())
    assert {"studies", "enterprises", "cases", "case_phones", "call_attempts", "appointments", "interviews",
            "answers", "answer_revisions", "users", "do_not_call", "audit_log", "cawi_invitations", "cawi_responses",
            "cawi_question_times", "ccso_audits", "ccso_audit_members", "ccso_evidence_files", "ccso_judgements",
            "ccso_nonconformities", "supervisor_messages", "message_receipts", "login_sessions", "qc_reviews",
            "analysis_releases", "analysis_jobs"} <= tables
    engine.dispose()


def test_users_hashed_and_authenticated(session):
    user = create_user(session, "li.na", "secret-pass-1", "interviewer", display_name="李娜")
    assert user.password_hash.startswith("$argon2id$")
    assert "secret-pass-1" not in user.password_hash
    assert authenticate(session, "li.na", "secret-pass-1") is user
    assert authenticate(session, "li.na", "wrong-password") is None
    assert authenticate(session, "nobody", "secret-pass-1") is None
    with pytest.raises(UserError, match="already exists"):
        create_user(session, "li.na", "another-pass", Role.INTERVIEWER)
    with pytest.raises(UserError, match="at least"):
        create_user(session, "wang", "short", Role.INTERVIEWER)
    with pytest.raises(UserError, match="unknown role"):
        create_user(session, "wang", "long-enough-pw", "boss")


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_cli_init_creates_db_study_and_admin(tmp_path, monkeypatch):
    from cati.cli import main

    monkeypatch.setenv("CATI_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.delenv("CATI_DATABASE_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["init", "--admin-password", "admin-pass-123"])
    assert result.exit_code == 0, result.output
    assert "csat_contact_center" in result.output
    again = runner.invoke(main, ["init"])  # idempotent
    assert again.exit_code == 0, again.output
    from cati.db import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{tmp_path / 'inst' / 'cati.sqlite'}")
    with make_sessionmaker(engine)() as s:
        assert s.scalars(select(Study.code)).all() == ["csat_contact_center"]
        assert s.scalar(select(User.role).where(User.username == "admin")) == Role.ADMIN
    engine.dispose()
