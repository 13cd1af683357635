"""What every supervisor screen shares: the blueprint, role checks, the centre's clock, template helpers and the
short read-only session the reading views use."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps

from flask import Blueprint, Response, abort, current_app, g, redirect, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.db import db
from cati.models import Role, Study, User
from cati.services import supervision as sv
from cati.services.calling import zone
from cati.services.studies import get_study

from ..i18n import translate
from ..security import current_user, roles_required

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")

viewer = roles_required(Role.SUPERVISOR, Role.ANALYST)
actor = roles_required(Role.SUPERVISOR)

tr = translate


def centre_tz() -> str:
    """The call centre's time zone (setting ``centre_timezone``): supervisors' screens show times in it."""
    return current_app.config["CATI_SETTINGS"].centre_timezone


def local_text(dt: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC timestamp as the call centre's local time."""
    return dt.astimezone(zone(centre_tz())).strftime(fmt) if dt else "—"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or x != x else f"{100 * x:.{digits}f}%"


def json_text(value) -> str:
    """Audit before/after as readable JSON (Chinese kept as is)."""
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def agent_alert(x) -> str | None:
    """The live table's alert for one interviewer, in the screen's language (thresholds: ``console`` settings)."""
    from flask import current_app

    c = current_app.config["CATI_SETTINGS"].console
    found = x.alert(idle_minutes=c.alert_idle_minutes, wrapup_minutes=c.alert_wrapup_minutes,
                    call_minutes=c.alert_call_minutes, silent_seconds=3 * c.heartbeat_seconds)
    return tr(found[0], **found[1]) if found else None


def template_helpers() -> dict:
    user = g.get("user")
    return {"t": tr, "local_text": local_text, "fmt_duration": sv.fmt_duration, "pct": pct, "json_text": json_text,
            "agent_alert": agent_alert,
            "is_supervisor": user is not None and user.role in (Role.SUPERVISOR, Role.ADMIN),
            "is_admin": user is not None and user.role == Role.ADMIN}


bp.context_processor(template_helpers)


def now_utc() -> datetime:
    return datetime.now(UTC)


@contextmanager
def reading() -> Iterator[Session]:
    """A short read-only session that does not take SQLite's write lock (deferred BEGIN)."""
    s = db.sessionmaker()
    try:
        s.connection(execution_options={"sqlite_begin": "DEFERRED"})
        yield s
    finally:
        s.rollback()
        s.close()


def release_request_tx() -> User:
    """The signed-in user, with the request's transaction ended (it was opened to load the user)."""
    user = current_user()
    db.session.commit()  # commit, not rollback: g.user stays loaded for the templates
    return user


def the_study(s: Session) -> Study:
    try:
        return get_study(s)
    except LookupError:
        abort(404)


@contextmanager
def study_reading() -> Iterator[tuple[Session, Study]]:
    """:func:`reading` with the study (404 without one)."""
    with reading() as s:
        yield s, the_study(s)


def screen(rule: str) -> Callable:
    """A reading screen: ``GET rule`` for supervisors and analysts. The request's transaction ends before the view
    runs (it reads through :func:`study_reading`); the response says its server time (``Server-Timing``)."""

    def decorate(view: Callable[..., str]) -> Callable[..., Response]:
        @wraps(view)
        def timed_view(**kwargs) -> Response:
            started = time.perf_counter()
            release_request_tx()
            resp = Response(view(**kwargs))
            resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return resp

        return bp.get(rule)(viewer(timed_view))

    return decorate


def get_or_404(model, ident: int):
    """The row, or a 404 page."""
    row = db.session.get(model, ident)
    if row is None:
        abort(404)
    return row


def back(default: str) -> Response:
    """Back to the page the form came from (``next``, same site only), else ``default``."""
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = default
    return redirect(target)


def interviewer_choices(s: Session) -> list[tuple[int, str]]:
    return [(u.id, u.display_name) for u in s.scalars(
        select(User).where(User.role == Role.INTERVIEWER, User.is_active.is_(True)).order_by(User.display_name))]


def who(value: str | None) -> int | None:
    """An interviewer id from a form ("anyone" or empty: None)."""
    return int(value) if value not in (None, "", "anyone") else None
