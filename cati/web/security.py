"""Who is signed in, role checks, and the sign-in rate limit.

The signed-in user id lives in Flask's signed session cookie; the user row is loaded once per request into
``g.user`` (a disabled account or a changed role takes effect on the next request). Failed sign-ins are
stored in the database (``login_failures``), so the limit holds across server processes and restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import abort, current_app, g, redirect, request, session, url_for
from sqlalchemy import delete, func, select

from cati.db import db
from cati.models import Role, User
from cati.models.agents import AgentState, AgentStatus, LoginFailure

RATE_WINDOW = timedelta(minutes=15)


def current_user() -> User | None:
    """The signed-in, active user of this request (None when signed out)."""
    if "user" not in g:
        uid = session.get("uid")
        user = None
        if uid is not None:
            user = db.session.get(User, uid)
            if user is not None and (not session_user_matches(user) or _signed_out_by_supervisor(user)):
                user = None
        g.user = user
    return g.user


def session_user_matches(user: User) -> bool:
    """The session's user is still active, with the password and role the session was signed in with."""
    return user.is_active and session.get("uid") == user.id and session.get("uver") == _user_version(user)


def _signed_out_by_supervisor(user: User) -> bool:
    """A supervisor's "sign out" sets the interviewer offline after this session began: the session ends."""
    if user.role != Role.INTERVIEWER:
        return False
    state = db.session.get(AgentState, user.id)
    started = session.get("signed_in_at", 0.0)
    return state is not None and state.status == AgentStatus.OFFLINE and state.since_at.timestamp() > started


def _user_version(user: User) -> str:
    # Ties the session to the password: changing the password (or the role) signs out every other session.
    return f"{user.role.value}:{user.password_hash[-16:]}"


def sign_in(user: User) -> None:
    """Start a fresh session for ``user`` (clears the old one: no session fixation)."""
    lang = session.get("lang")
    session.clear()
    session["uid"] = user.id
    session["uver"] = _user_version(user)
    session["signed_in_at"] = time.time()
    if lang:
        session["lang"] = lang
    session.permanent = False
    g.user = user


def sign_out() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    g.user = None


def roles_required(*roles: Role | str) -> Callable:
    """Decorator: signed in (else redirect to /login, or 401 for fetch/JSON) with one of ``roles`` (else 403).

    Admins pass every check.
    """
    allowed = {Role(r) for r in roles}

    def deco(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            user = current_user()
            if user is None:
                if wants_json():
                    abort(401)
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if allowed and user.role not in allowed and user.role != Role.ADMIN:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return deco


login_required = roles_required()


def wants_json() -> bool:
    """The request came from the console's fetch() (asks for JSON), not from a full-page form."""
    return (request.headers.get("X-Requested-With") == "fetch"
            or request.accept_mimetypes.best == "application/json")


def home_for(user: User) -> str:
    """The landing page of a role."""
    return {
        Role.INTERVIEWER: "/interviewer",
        Role.SUPERVISOR: "/supervisor",
        Role.ANALYST: "/analyst",
        Role.ADMIN: "/admin",
        Role.AUDITOR: "/audit/",
        Role.CENTRE: "/audit/",
    }[user.role]


# -------------------------------------------------------------------------------------------- rate limiting

def client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def login_blocked(username: str, address: str, now: datetime) -> bool:
    """True when this username from this address failed ``login_rate_limit`` times in the last 15 minutes."""
    limit = current_app.config["CATI_SETTINGS"].login_rate_limit
    with db.sessionmaker() as s:
        n = s.scalar(select(func.count(LoginFailure.id)).where(
            LoginFailure.username == username[:64], LoginFailure.address == address,
            LoginFailure.at > now - RATE_WINDOW))
    return (n or 0) >= limit


def record_login_failure(username: str, address: str, now: datetime) -> None:
    with db.sessionmaker() as s, s.begin():
        s.add(LoginFailure(username=username[:64], address=address, at=now))
        # Old rows are useless for the limit; drop them now and then (cheap, indexed).
        s.execute(delete(LoginFailure).where(LoginFailure.at < now - RATE_WINDOW * 4))


def clear_login_failures(username: str, address: str) -> None:
    with db.sessionmaker() as s, s.begin():
        s.execute(delete(LoginFailure).where(LoginFailure.username == username[:64],
                                             LoginFailure.address == address))
