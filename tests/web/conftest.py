"""Console fixtures: the app with the console wired in, a simulated telephony backend on the real clock with
scripted numbers, and an enterprise whose respondents live in a time zone where it is now mid-afternoon (the
console runs on the real clock, and the calling window must be open whenever the suite runs)."""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cati.db import transaction
from cati.models import CallAttempt, Role, User
from tests import factories


def open_timezone(now: datetime | None = None) -> str:
    """An Etc/GMT zone where local time is 14:xx now: inside both the weekday (13:30–21:00) and weekend
    (10:00–18:00) calling windows for at least an hour."""
    now = now or datetime.now(UTC)
    h = 14 - now.hour  # in [-9, 14]: every such whole-hour zone exists
    return "Etc/GMT" if h == 0 else (f"Etc/GMT-{h}" if h > 0 else f"Etc/GMT+{-h}")


@pytest.fixture
def backend():
    from cati.telephony.simulated import SimulatedBackend

    b = SimulatedBackend(mix={"human": 1.0})
    yield b
    b.close()


@pytest.fixture
def console_app(app, backend):
    from cati.web.interviewer import use_backend

    use_backend(app, backend)
    return app


@pytest.fixture
def world(console_app, session_factory, study):
    """One enterprise with 5 callable cases in an open time zone, two interviewers and a supervisor."""
    tz = open_timezone()
    with transaction(session_factory) as s:
        ent = factories.enterprise(s, study, name="招商银行")
        ids = factories.cases(s, study, ent, 5, timezone=tz, next_call_at=datetime.now(UTC) - timedelta(minutes=5))
        a = fast_user(s, "ann", Role.INTERVIEWER, display_name="王芳", extension="8001")
        b = fast_user(s, "bob", Role.INTERVIEWER, display_name="李强", extension="8002")
        sup = fast_user(s, "sue", Role.SUPERVISOR)
        out = {"enterprise_id": ent.id, "case_ids": ids, "tz": tz, "ann": a.id, "bob": b.id, "sue": sup.id,
               "study_id": study.id}
    return out


@functools.lru_cache(maxsize=1)
def _password_hash() -> str:
    from cati.services.users import hash_password

    return hash_password("password-123")


def fast_user(s, username: str, role: Role, **kw) -> User:
    """A user with password "password-123", hashed once per test session (argon2 costs ~0.5 s a hash on a
    busy machine; the sign-in itself still verifies it for real)."""
    user = User(username=username, display_name=kw.pop("display_name", username), password_hash=_password_hash(),
                role=role, **kw)
    s.add(user)
    s.flush()
    return user


CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = CSRF_RE.search(html)
    assert m, f"no csrf token on {path}"
    return m.group(1)


def login(client, username: str, password: str = "password-123"):
    token = csrf_of(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


class Console:
    """A signed-in interviewer driving the console through fetch-style requests (JSON answers)."""

    def __init__(self, client, username: str):
        self.client = client
        r = login(client, username)
        assert r.status_code == 302, r.get_data(as_text=True)
        self.token = csrf_of(client, "/interviewer")

    def post(self, path: str, data: dict | None = None, *, fetch: bool = True):
        headers = {"X-CSRFToken": self.token}
        if fetch:
            headers["X-Requested-With"] = "fetch"
        return self.client.post(path, data=data or {}, headers=headers)

    def page(self) -> str:
        return self.client.get("/interviewer").get_data(as_text=True)


def wait_for(fn, timeout: float = 10.0, every: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def attempt_of(session_factory, call_id: str) -> CallAttempt:
    with session_factory() as s:
        return s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))


def lunchtime_of_no_answers(session_factory, world, *, enterprises: int = 40, per_enterprise: int = 10):
    """The browser session of issue 20 on the real clock: a fresh study of many enterprises in the world's time
    zone (local time 14:xx, the afternoon), and 30 dials of the last 45 minutes that all rang out, settled (coded
    and over 10 minutes old). The contact model then finds the afternoon poor next to the coming evening and
    defers fresh sample to it. Returns what the scheduler defers now (``best_time_deferral``)."""
    from cati.models import Study
    from cati.services.contact_model import reset_contact_models
    from cati.services.scheduling import best_time_deferral

    reset_contact_models()
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        study = s.get(Study, world["study_id"])
        factories.lunchtime_of_no_answers(s, study, world["tz"], now, enterprises=enterprises,
                                          per_enterprise=per_enterprise)
        return best_time_deferral(s, study, now)
