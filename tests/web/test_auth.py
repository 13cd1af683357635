"""Sign-in: argon2 passwords via the users service, sessions, logout, language choice, rate limiting."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cati.models.agents import AgentState, AgentStatus

from .conftest import csrf_of, login


def test_login_page_is_chinese_by_default_and_english_on_request(client, world):
    html = client.get("/login").get_data(as_text=True)
    assert "访员 / 督导登录" in html and 'lang="zh-CN"' in html
    token = csrf_of(client)
    r = client.post("/lang", data={"lang": "en", "csrf_token": token, "next": "/login"})
    assert r.status_code == 302
    html = client.get("/login").get_data(as_text=True)
    assert "Sign in" in html and 'lang="en"' in html and "访员 / 督导登录" not in html


def test_sign_in_lands_on_the_console_and_starts_the_shift(client, world, session_factory):
    r = login(client, "ann")
    assert r.status_code == 302 and r.headers["Location"].endswith("/interviewer")
    assert "下一个样本" in client.get("/interviewer").get_data(as_text=True)
    with session_factory() as s:
        state = s.get(AgentState, world["ann"])
        assert state.status == AgentStatus.READY


def test_wrong_password_is_refused_with_a_message(client, world):
    r = login(client, "ann", "wrong-password")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.get_data(as_text=True)
    assert client.get("/interviewer").status_code == 302  # still signed out


def test_logout_ends_the_session_and_the_shift_state(client, world, session_factory):
    login(client, "ann")
    token = csrf_of(client, "/interviewer")
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 302
    assert client.get("/interviewer").status_code == 302
    with session_factory() as s:
        assert s.get(AgentState, world["ann"]).status == AgentStatus.OFFLINE


@pytest.fixture
def strict_app(db_url, tmp_path, world):
    """The same database served by an app allowing 3 failed sign-ins per 15 minutes."""
    from cati.app import create_app

    app = create_app({"database_url": db_url, "instance_path": tmp_path / "strict", "testing": True,
                      "secret_key": "test-secret", "login_rate_limit": 3})
    yield app
    app.extensions["cati.db"]["engine"].dispose()


def test_rate_limit_blocks_the_username_from_that_address_only(strict_app):
    console_app = strict_app
    limit = console_app.config["CATI_SETTINGS"].login_rate_limit
    assert limit == 3
    attacker = console_app.test_client()
    for _ in range(limit):
        assert login(attacker, "ann", "guess-guess").status_code == 401
    # Now even the right password is refused from this address for this username…
    r = login(attacker, "ann")
    assert r.status_code == 429 and "15 分钟" in r.get_data(as_text=True)
    # …while the same user from another address, and another user from this address, still get in.
    other = console_app.test_client()
    token = csrf_of(other)
    r = other.post("/login", data={"username": "ann", "password": "password-123", "csrf_token": token},
                   environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert r.status_code == 302
    assert login(attacker, "bob").status_code == 302


def test_next_parameter_cannot_redirect_off_site(client, world):
    token = csrf_of(client)
    r = client.post("/login", data={"username": "ann", "password": "password-123", "csrf_token": token,
                                    "next": "//evil.example.com/x"})
    assert r.headers["Location"].endswith("/interviewer")


def test_password_change_signs_out_other_sessions(client, world, session_factory):
    login(client, "ann")
    assert client.get("/interviewer").status_code == 200
    from cati.models import User
    from cati.services.users import hash_password

    with session_factory() as s, s.begin():
        s.scalar(select(User).where(User.username == "ann")).password_hash = hash_password("new-password-1")
    assert client.get("/interviewer").status_code == 302
