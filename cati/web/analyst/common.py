"""What every analyst screen shares: the blueprint, the role check, the choice of live scores or a release, and
template helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, abort, g, request, url_for

from cati.i18n import KeyedError
from cati.models import Role
from cati.services import releases as rel_service
from cati.services.releases import Scored

from ..i18n import translate
from ..security import roles_required
from ..supervisor.common import release_request_tx, study_reading

bp = Blueprint("analyst", __name__, url_prefix="/analyst")

#: Analysts, supervisors (and admins, who pass every check) read every page and download.
viewer = roles_required(Role.ANALYST, Role.SUPERVISOR)

tr = translate


def num(v, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def interval(low, high, digits: int = 2) -> str:
    """As the reports write an interval (``reports.render.interval``), so page and PDF read alike."""
    return "—" if low is None or high is None else f"{low:.{digits}f}–{high:.{digits}f}"


def rank_interval(low, high) -> str:
    return "—" if low is None or high is None else f"{low}–{high}"


def pct(v, digits: int = 1) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def release_arg() -> int | None:
    """The release asked for (``?release=<id>``); None = live."""
    raw = request.args.get("release", "")
    return int(raw) if raw.isdigit() else None


def link(endpoint: str, **values) -> str:
    """A link to another analyst page that keeps the chosen release."""
    rid = release_arg()
    if rid is not None and "release" not in values:
        values["release"] = rid
    return url_for(endpoint, **values)


def template_helpers() -> dict:
    user = g.get("user")
    return {"t": tr, "num": num, "interval": interval, "rank_interval": rank_interval, "pct": pct, "link": link,
            "is_admin": user is not None and user.role == Role.ADMIN}


bp.context_processor(template_helpers)


def scored_and_releases() -> tuple[Scored | None, list]:
    """The scores the page shows (a release, or live) and the study's releases for the picker. An unknown
    release is a 404."""
    with study_reading() as (s, study):
        rid = release_arg()
        try:
            scored = rel_service.from_release(s, study, rid) if rid is not None else rel_service.live(s, study)
        except KeyedError:
            abort(404)
        listed = [{"id": r.id, "name": r.name, "created_at": r.created_at, "n": r.n_completes}
                  for r in rel_service.releases(s, study)]
    return scored, listed


def screen(rule: str, **options) -> Callable:
    """A reading screen: ``GET rule`` for analysts, supervisors and admins, with its server time."""

    def decorate(view: Callable[..., str]) -> Callable[..., Response]:
        @wraps(view)
        def timed_view(**kwargs) -> Response:
            started = time.perf_counter()
            release_request_tx()
            got = view(**kwargs)
            resp = got if isinstance(got, Response) else Response(got)
            resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return resp

        return bp.get(rule, **options)(viewer(timed_view))

    return decorate
