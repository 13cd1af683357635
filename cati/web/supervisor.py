"""The supervisor dashboard (``/supervisor``): quota board (live over SSE, xlsx export), interviewers live with
listen/whisper/barge/pause/sign-out, outcomes and AAPOR rates, sample and appointments, one case, quality control.

Views are thin: parse → one service call → render. Reading views end the request's transaction as soon as the
user is known and read through a short *deferred* session (on SQLite a deferred read does not take the single
write lock, so a supervisor's screen never makes 100 interviewers wait). Actions commit at once.

Texts come from the one table in :mod:`cati.web.i18n`; templates call ``t()`` as everywhere else.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from html import escape

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cati.db import db
from cati.models import (
    AnswerRevision,
    AuditLog,
    CallAttempt,
    Case,
    CaseStatus,
    Interview,
    Role,
    Study,
    User,
)
from cati.services import audit, qc
from cati.services import sample_admin as sa
from cati.services import supervision as sv
from cati.services.calling import zone
from cati.services.pacing import study_pace
from cati.services.phones import mask_phone
from cati.services.quotas import cell_progress
from cati.services.scheduling import best_time_deferral, release_best_time_deferral
from cati.services.studies import get_study

from .i18n import T, translate
from .security import current_user, roles_required

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor", template_folder="templates")

viewer = roles_required(Role.SUPERVISOR, Role.ANALYST)
actor = roles_required(Role.SUPERVISOR)

#: The call centre's clock for shifts, days and the times shown (respondents' own zones are on the case).


def centre_tz() -> str:
    """The call centre's time zone (setting ``centre_timezone``): supervisors' screens show times in it."""
    from flask import current_app

    return current_app.config["CATI_SETTINGS"].centre_timezone


#: Live screens poll the database this often (the SSE lag budget is 1 s).
POLL_SECONDS = 0.3



tr = translate


def local_text(dt: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC timestamp as the call centre's local time."""
    return dt.astimezone(zone(centre_tz())).strftime(fmt) if dt else "—"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or x != x else f"{100 * x:.{digits}f}%"


def json_text(value) -> str:
    """Audit before/after as readable JSON (Chinese kept as is)."""
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def template_helpers() -> dict:
    user = g.get("user")
    return {"t": tr, "local_text": local_text, "fmt_duration": sv.fmt_duration, "pct": pct, "json_text": json_text,
            "is_supervisor": user is not None and user.role in (Role.SUPERVISOR, Role.ADMIN),
            "is_admin": user is not None and user.role == Role.ADMIN}


bp.context_processor(template_helpers)


def _now() -> datetime:
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


def _release_request_tx() -> User:
    """The signed-in user, with the request's transaction ended (it was opened to load the user)."""
    user = current_user()
    db.session.commit()  # commit, not rollback: g.user stays loaded for the templates
    return user


def _study(s: Session) -> Study:
    try:
        return get_study(s)
    except LookupError:
        abort(404)


def _timed(resp: Response, started: float) -> Response:
    resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return resp


def _back(default: str) -> Response:
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = default
    return redirect(target)


def _fail(err) -> None:
    from .i18n import current_language

    msg = err.message(current_language()) if hasattr(err, "message") else str(err)
    flash(msg, "error")


# ------------------------------------------------------------------------------------------------ quota board


def row_view(r: sv.BoardRow, done_text: str | None = None) -> dict:
    """What a board row shows (the template and the live stream use the same values)."""
    return {
        "eid": r.enterprise_id, "completes": r.completes, "quota_target": r.quota_target,
        "pct": f"{r.pct:.0f}%", "pct_num": round(min(r.pct, 100.0), 1), "in_progress": r.in_progress,
        "callable_left": r.callable_left, "unreleased": r.unreleased, "appointments": r.appointments,
        # Sample enough for the quota shows as "≥20"; only a shortfall needs the decimal figure.
        "projected": f"≥{r.quota_target}" if r.projected >= r.quota_target else f"{r.projected:.1f}",
        "rate_per_hour": f"{r.rate_per_hour:.1f}",
        "eta": (done_text or tr("done")) if r.done else local_text(r.eta), "short": r.short,
        "flag": tr("flag_short", n=f"{r.shortfall:.1f}") if r.short else "",
        "status": r.status, "done": r.done,
        "cls": " ".join(c for c, on in (("short", r.short), ("done", r.done), ("stopped", r.status == "stopped")) if on),
    }


def _board_args() -> dict:
    a = request.args
    return {"q": a.get("q", ""), "industry": a.get("industry", ""), "region": a.get("region", ""),
            "only": a.get("only", ""), "sort": a.get("sort", "external_id"), "desc": a.get("desc") == "1"}


@bp.get("/")
@viewer
def board():
    started = time.perf_counter()
    _release_request_tx()
    now = _now()
    args = _board_args()
    with reading() as s:
        study = _study(s)
        rows = sv.quota_board(s, study, now)
        cells = cell_progress(s, study)
        deferral = best_time_deferral(s, study, now)
        pace = study_pace(s, study, now)
    try:
        shown = sv.filter_board(rows, **args)
    except ValueError as exc:
        flash(str(exc), "error")
        args["sort"] = "external_id"
        shown = sv.filter_board(rows, **args)
    totals = _totals(rows)
    done_text = tr("done")
    resp = Response(render_template(
        "supervisor/board.html", rows=shown, views={r.enterprise_id: row_view(r, done_text) for r in shown}, args=args,
        industries=sorted({r.industry for r in rows}), regions=sorted({r.region for r in rows if r.region}),
        by_industry=sv.rollup(rows, "industry"), by_region=sv.rollup(rows, "region"), totals=totals,
        sort_keys=sv.BOARD_SORT_KEYS, now=now, study=study, cells=cells, deferral=deferral, pace=pace,
        tab="board"))
    return _timed(resp, started)


@bp.get("/staffing")
@viewer
def staffing():
    """Which parts of which days give the most completes per paid hour, and a shift plan for what remains."""
    from cati.services.staffing import staffing_advice

    started = time.perf_counter()
    _release_request_tx()
    now = _now()
    with reading() as s:
        study = _study(s)
        advice = staffing_advice(s, study, now)
    def part_label(name: str) -> str:  # the study names its parts of the day; the usual three are translated
        return tr(f"part_{name}") if f"part_{name}" in T else name

    return _timed(Response(render_template("supervisor/staffing.html", advice=advice, now=now, tab="staffing",
                                           part_label=part_label)), started)


@bp.post("/best-time/release")
@actor
def release_best_time():
    """Release the cases the best-time preference defers: until their better part of the day, every callable
    case is dialed by quota need alone."""
    user = current_user()
    study = _study(db.session)
    released = release_best_time_deferral(db.session, study, _now(), user_id=user.id)
    db.session.commit()
    if released.cases:
        flash(tr("best_time_released_n", n=released.cases, until=local_text(released.until, "%H:%M")), "info")
    else:
        flash(tr("best_time_nothing"), "info")
    return _back(url_for("supervisor.board"))


def _totals(rows: list[sv.BoardRow]) -> dict:
    target = sum(r.quota_target for r in rows)
    capped = sum(min(r.completes, r.quota_target) for r in rows)
    return {"enterprises": len(rows), "target": target, "completes": sum(r.completes for r in rows),
            "in_progress": sum(r.in_progress for r in rows), "callable_left": sum(r.callable_left for r in rows),
            "appointments": sum(r.appointments for r in rows), "done": sum(r.done for r in rows),
            "short": sum(r.short for r in rows), "pct": f"{100 * capped / target:.1f}%" if target else "—"}


@bp.get("/board.xlsx")
@viewer
def board_xlsx():
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    _release_request_tx()
    now = _now()
    with reading() as s:
        study = _study(s)
        rows = sv.quota_board(s, study, now)
        cells = cell_progress(s, study)
    try:
        shown = sv.filter_board(rows, **_board_args())
    except ValueError:
        shown = rows
    wb = Workbook()
    ws = wb.active
    ws.title = "board"
    head = [tr("ent_id"), tr("enterprise"), tr("industry"), tr("region"), tr("completes"), tr("quota"),
            tr("pct_done"), tr("in_progress"), tr("callable_left"), tr("unreleased"), tr("appointments"),
            tr("projected"), "shortfall", tr("rate_per_hour"), tr("eta"), tr("status")]
    ws.append(head)
    red = PatternFill("solid", fgColor="FDE2E1")
    for r in shown:
        ws.append([r.external_id, r.name, r.industry, r.region, r.completes, r.quota_target, round(r.pct / 100, 4),
                   r.in_progress, r.callable_left, r.unreleased, r.appointments, round(r.projected, 1),
                   round(r.shortfall, 1), round(r.rate_per_hour, 2), local_text(r.eta, "%Y-%m-%d %H:%M"),
                   r.status])
        ws.cell(ws.max_row, 7).number_format = "0.0%"
        if r.short:
            for c in ws[ws.max_row]:
                c.fill = red
    for c in ws[1]:
        c.font = Font(bold=True)
    ws.freeze_panes = "C2"
    for name, key in (("industry", "industry"), ("region", "region")):
        sh = wb.create_sheet(name)
        sh.append([tr(key), tr("enterprises"), tr("target"), tr("completes"), tr("pct_done"), tr("in_progress"),
                   tr("callable_left"), tr("appointments"), tr("n_done"), tr("n_short")])
        for gr in sv.rollup(rows, key):
            sh.append([gr["key"], gr["enterprises"], gr["target"], gr["completes"], gr["pct"] / 100,
                       gr["in_progress"], gr["callable_left"], gr["appointments"], gr["done"], gr["short"]])
            sh.cell(sh.max_row, 5).number_format = "0.0%"
    if cells:
        sh = wb.create_sheet("quota_cells")
        sh.append([tr("quota_variable"), tr("quota_scope"), tr("quota_value"), tr("completes"), tr("target"),
                   tr("pct_done"), tr("in_progress"), tr("open_cases")])
        for c in cells:
            sh.append([tr("industry") if c.variable == "industry" else c.variable, c.scope_name or tr("study_wide"),
                       c.value, c.completes, c.target, round(c.pct / 100, 4), c.in_progress, c.open_cases])
            sh.cell(sh.max_row, 6).number_format = "0.0%"
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    stamp = local_text(now, "%Y%m%d-%H%M")
    return send_file(buf, as_attachment=True, download_name=f"quota-board-{stamp}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class _Snapshot:
    """The latest board / interviewers reading of this process, shared by every open stream: ten supervisors
    watching cost one query per interval, not ten."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = float("-inf")
        self.value: tuple = (None, None)


_cache_lock = threading.Lock()


def _app_cache(name: str) -> dict:
    """A per-app dict in ``app.extensions`` (a new app, e.g. a test's, starts empty)."""
    from flask import current_app

    with _cache_lock:
        return current_app.extensions.setdefault(f"cati.supervisor.{name}", {})


def _shared(kind: str, max_age: float) -> tuple:
    """(now, rows) for ``kind`` board | agents, read at most once per ``max_age`` seconds per process."""
    snaps = _app_cache("snapshots")
    with _cache_lock:
        snap = snaps.setdefault(kind, _Snapshot())
    with snap.lock:  # one stream reads, the others wait for its result instead of reading again
        if max_age <= 0 or time.monotonic() - snap.at >= max_age * 0.9:
            now = _now()
            with reading() as s:
                study = _study(s)
                value = (sv.quota_board(s, study, now) if kind == "board"
                         else sv.interviewers_live(s, study, now, tz=centre_tz()))
            snap.value, snap.at = (now, value), time.monotonic()
        return snap.value


@bp.get("/stream")
@viewer
def stream():
    """Server-sent events for the live screens: ``board`` (only the rows that changed since the last event,
    plus totals) and ``agents`` (the interviewers table, re-rendered when anything in it changed).

    Each poll reads in its own short deferred transaction (shared by all streams of the process: :func:`_shared`);
    nothing is held while sleeping. The stream ends after
    ``max`` seconds (default 300; EventSource reconnects by itself and gets a full board again).
    """
    _release_request_tx()
    what = set((request.args.get("what") or "board").split(","))
    limit = min(float(request.args.get("max", 300)), 3600)
    interval = max(float(request.args.get("interval", POLL_SECONDS)), 0.05)

    def gen():
        last_rows: dict[int, tuple] = {}
        last_agents = None
        started = time.monotonic()
        beat = started
        yield "retry: 1000\n\n"
        while time.monotonic() - started < limit:
            tick = time.monotonic()
            # A stream's first reading is its own: a shared one from before the page loaded could put back
            # values the page already shows newer (e.g. just after an action and its redirect).
            age = interval if last_rows or last_agents is not None else 0.0
            now, rows = _shared("board", age) if "board" in what else (_now(), [])
            live = _shared("agents", age)[1] if "agents" in what else None
            sent = False
            if "board" in what:
                fp = sv.board_fingerprint(rows)
                changed = [r for r in rows if last_rows.get(r.enterprise_id) != fp[r.enterprise_id]]
                if changed:
                    last_rows = fp
                    done_text = tr("done")
                    payload = {"rows": [row_view(r, done_text) for r in changed], "totals": _totals(rows),
                               "at": local_text(now, "%H:%M:%S"), "sent": time.time()}
                    yield f"event: board\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                    sent = True
            if live is not None:
                key = [(x.user_id, x.status, x.pause_reason, x.case_id, int(x.seconds_in_state) // 5,
                        x.stats.as_dict() if x.stats else None) for x in live]
                if key != last_agents:
                    last_agents = key
                    html = render_template("supervisor/_agents.html", live=live, now=now, monitoring=_monitoring())
                    yield f"event: agents\ndata: {json.dumps({'html': html}, ensure_ascii=False)}\n\n"
                    sent = True
            if sent:
                beat = time.monotonic()
            elif time.monotonic() - beat > 15:
                yield ": keep-alive\n\n"
                beat = time.monotonic()
            time.sleep(max(interval - (time.monotonic() - tick), 0.02))

    return Response(stream_with_context(gen()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.post("/enterprise/<int:eid>/release")
@actor
def release(eid: int):
    user = current_user()
    try:
        n = sa.release(db.session, eid, None, _now(), user_id=user.id)
        db.session.commit()
        flash(tr("released_n", n=n), "info")
    except sa.SampleAdminError as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.board"))


@bp.post("/enterprise/<int:eid>/status")
@actor
def enterprise_status(eid: int):
    user = current_user()
    try:
        sa.set_enterprise_status(db.session, eid, request.form.get("action") == "stop", user_id=user.id,
                                 note=request.form.get("note") or None)
        db.session.commit()
        flash(tr("done_ok"), "info")
    except sa.SampleAdminError as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.board"))


# ------------------------------------------------------------------------------------------- interviewers


@bp.get("/interviewers")
@viewer
def interviewers():
    started = time.perf_counter()
    _release_request_tx()
    now = _now()
    with reading() as s:
        study = _study(s)
        live = sv.interviewers_live(s, study, now, tz=centre_tz())
    return _timed(Response(render_template("supervisor/interviewers.html", live=live, now=now, tab="agents",
                                           monitoring=_monitoring())), started)


_MONITORING_CACHE: dict = {"at": 0.0, "value": {}}


def _monitoring() -> dict[str, list[dict]]:
    """Who monitors which call (call id → sessions), read from the PBX itself, so that every web worker and
    every supervisor sees the same; cached for 2 s (the live table may re-render often)."""
    from cati.telephony.base import TelephonyError

    from .interviewer import get_backend

    if time.monotonic() - _MONITORING_CACHE["at"] < 2.0:
        return _MONITORING_CACHE["value"]
    out: dict[str, list[dict]] = {}
    try:
        sessions = get_backend().monitors()
    except (TelephonyError, OSError):
        sessions = []
    with reading() as s:
        names = dict(s.execute(select(User.extension, User.display_name)
                               .where(User.extension.in_([m["supervisor_extension"] for m in sessions]))).all()) \
            if sessions else {}
    for m in sessions:
        if m.get("call_id"):
            who = names.get(m["supervisor_extension"]) or m["supervisor_extension"]
            out.setdefault(m["call_id"], []).append(dict(m, who=who))
    _MONITORING_CACHE.update(at=time.monotonic(), value=out)
    return out


def _agent_call(uid: int) -> str | None:
    from cati.models.agents import AgentState

    st = db.session.get(AgentState, uid)
    return st.call_id if st is not None else None


@bp.post("/interviewers/<int:uid>/<any(listen, whisper, barge):mode>")
@actor
def spy(uid: int, mode: str):
    from cati.telephony.base import TelephonyError

    user = current_user()
    call_id = _agent_call(uid)
    extension = user.extension
    if not call_id:
        db.session.rollback()
        flash(tr("no_call"), "error")
        return redirect(url_for("supervisor.interviewers"))
    if not extension:
        db.session.rollback()
        flash(tr("no_extension"), "error")
        return redirect(url_for("supervisor.interviewers"))
    audit.record(db.session, user_id=user.id, action=f"call.{mode}", entity="interviewer", entity_id=uid,
                 after={"call_id": call_id, "extension": extension})
    db.session.commit()  # before talking to the telephony backend: no lock held while it works
    from .interviewer import get_backend

    try:
        # One session per supervisor: a new mode replaces the one before (the backend ends the old spy leg).
        leg = get_backend().monitor(call_id, extension, mode)
        _MONITORING_CACHE["at"] = 0.0
        flash(tr("spy_started", mode=tr(mode), leg=leg), "info")
    except TelephonyError as exc:
        flash(tr("telephony_error", err=str(exc)), "error")
    return redirect(url_for("supervisor.interviewers"))


@bp.post("/monitoring/stop")
@actor
def stop_monitoring():
    from cati.telephony.base import TelephonyError

    user = current_user()
    if not user.extension:
        db.session.rollback()
        flash(tr("no_extension"), "error")
        return redirect(url_for("supervisor.interviewers"))
    audit.record(db.session, user_id=user.id, action="call.monitor_stop", entity="user", entity_id=user.id,
                 after={"extension": user.extension})
    db.session.commit()
    from .interviewer import get_backend

    try:
        n = get_backend().stop_monitor(user.extension)
        _MONITORING_CACHE["at"] = 0.0
        flash(tr("monitor_stopped") if n else tr("monitor_none"), "info")
    except TelephonyError as exc:
        flash(tr("telephony_error", err=str(exc)), "error")
    return redirect(url_for("supervisor.interviewers"))


@bp.post("/interviewers/<int:uid>/pause")
@actor
def pause_agent(uid: int):
    from cati.models.agents import AgentStatus
    from cati.services import agents

    user = current_user()
    reason = request.form.get("reason") or "other"
    try:
        st = agents.state_of(db.session, uid, _now())
        before = st.status.value
        agents.set_state(db.session, uid, AgentStatus.PAUSED, _now(), reason=reason, case_id=st.case_id,
                         call_id=st.call_id)
        audit.record(db.session, user_id=user.id, action="agent.pause", entity="interviewer", entity_id=uid,
                     before={"status": before}, after={"status": "paused", "reason": reason})
        db.session.commit()
        flash(tr("done_ok"), "info")
    except ValueError as err:
        db.session.rollback()
        _fail(err)
    return redirect(url_for("supervisor.interviewers"))


@bp.post("/interviewers/<int:uid>/signout")
@actor
def sign_out_agent(uid: int):
    from cati.services import agents

    user = current_user()
    st = agents.state_of(db.session, uid, _now())
    before = st.status.value
    agents.end_shift(db.session, uid, _now())
    audit.record(db.session, user_id=user.id, action="agent.sign_out", entity="interviewer", entity_id=uid,
                 before={"status": before}, after={"status": "offline"})
    db.session.commit()
    flash(tr("done_ok"), "info")
    return redirect(url_for("supervisor.interviewers"))


# ------------------------------------------------------------------------------------------------ outcomes


@bp.get("/outcomes")
@viewer
def outcomes():
    started = time.perf_counter()
    _release_request_tx()
    group = request.args.get("group", "study")
    if group not in sv.GROUPINGS:
        group = "study"
    only_key = request.args.get("only_key", "")
    only_value = request.args.get("only_value", "")
    plan_days = max(1, min(int(request.args.get("plan_days") or 14), 365))
    plan_start = None
    if request.args.get("plan_start"):
        try:
            plan_start = date.fromisoformat(request.args["plan_start"])
        except ValueError:
            flash(f"plan_start: {request.args['plan_start']!r} is not a date (YYYY-MM-DD)", "error")
    with reading() as s:
        study = _study(s)
        frame, frame_at = _frame(s, study)
        per_day = sv.completes_per_day(s, study, plan_start=plan_start, plan_days=plan_days, tz=centre_tz())
    choices = {k: sorted(frame[k].dropna().astype(str).unique()) for k in ("industry", "enterprise", "interviewer",
                                                                         "day", "region")} if len(frame) else {}
    if only_key in choices and only_value:
        frame = frame[frame[only_key].astype(str) == only_value]
    from .i18n import current_language

    table = sv.disposition_table(frame, current_language())
    rates = sv.rates(frame, by=sv.GROUPINGS[group])
    return _timed(Response(render_template(
        "supervisor/outcomes.html", table=table, rates=rates, group=group, groups=list(sv.GROUPINGS),
        key=sv.GROUPINGS[group], rate_cols=sv.RATE_COLUMNS, choices=choices, only_key=only_key,
        only_value=only_value, per_day=per_day, chart=per_day_svg(per_day), plan_days=plan_days,
        plan_start=plan_start.isoformat() if plan_start else "", n_cases=len(frame),
        frame_at=local_text(frame_at, "%H:%M:%S"),
        today=local_text(_now(), "%Y-%m-%d"), tab="outcomes")), started)


#: The dispositions frame reads every released case (~1 s for 54,000): outcome tables may be this many seconds old.
FRAME_TTL = 30.0
_frames_lock = threading.Lock()


def _frame(s: Session, study: Study):
    """The study's dispositions frame, re-read at most every :data:`FRAME_TTL` seconds per process."""
    _frames = _app_cache("frames")
    key = (study.id, study.version)
    with _frames_lock:
        hit = _frames.get(key)
        if hit is not None and time.monotonic() - hit[0] < FRAME_TTL:
            return hit[2], hit[1]
        now = _now()
        frame = sv.dispositions_frame(s, study, tz=centre_tz())
        _frames[key] = (time.monotonic(), now, frame)
        return frame, now


def _nice(x: float) -> float:
    """The smallest "round" top (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8 × 10^k) at or above ``x``: quarters read well."""
    import math

    exp = 10 ** math.floor(math.log10(x))
    return next(m * exp for m in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10) if m * exp >= x)


def per_day_svg(df, width: int = 900, height: int = 260) -> str:
    """Completes per day (bars, left axis) with cumulative completes and the cumulative plan (lines, right
    axis), as inline SVG."""
    if df.empty:
        return ""
    n = len(df)
    pad_l, pad_r, pad_t, pad_b = 44, 54, 14, 40
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    bar_max = _nice(max(int(df["completes"].max()), 4))
    cum_max = _nice(max(float(df["plan_cumulative"].max()), float(df["cumulative"].max()), 4.0))
    step = w / n
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(tr("per_day"))}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for k in range(5):  # grid + axes labels
        y = pad_t + h - h * k / 4
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" class="ax" text-anchor="end">{bar_max * k / 4:.0f}</text>')
        parts.append(f'<text x="{pad_l + w + 6}" y="{y + 4:.1f}" class="ax">{cum_max * k / 4:.0f}</text>')
    every = max(1, n // 12)
    cum_pts, plan_pts = [], []
    today = local_text(datetime.now(UTC), "%Y-%m-%d")
    for i, r in enumerate(df.itertuples()):
        x = pad_l + i * step
        bh = h * r.completes / bar_max
        parts.append(f'<rect x="{x + step * .15:.1f}" y="{pad_t + h - bh:.1f}" width="{step * .7:.1f}" '
                     f'height="{bh:.1f}" class="bar"><title>{r.day}: {r.completes}</title></rect>')
        cx = x + step / 2
        if r.day <= today or r.completes:  # the achieved line stops today; the plan runs on
            cum_pts.append(f"{cx:.1f},{pad_t + h - h * r.cumulative / cum_max:.1f}")
        plan_pts.append(f"{cx:.1f},{pad_t + h - h * r.plan_cumulative / cum_max:.1f}")
        if i % every == 0:
            parts.append(f'<text x="{cx:.1f}" y="{pad_t + h + 16}" class="ax" text-anchor="middle">{r.day[5:]}</text>')
    parts.append(f'<polyline points="{" ".join(plan_pts)}" class="plan"/>')
    parts.append(f'<polyline points="{" ".join(cum_pts)}" class="cum"/>')
    ly = height - 8
    parts.append(f'<rect x="{pad_l}" y="{ly - 9}" width="12" height="9" class="bar"/>'
                 f'<text x="{pad_l + 16}" y="{ly}" class="ax">{escape(tr("completes"))}</text>'
                 f'<line x1="{pad_l + 110}" x2="{pad_l + 130}" y1="{ly - 4}" y2="{ly - 4}" class="cum"/>'
                 f'<text x="{pad_l + 134}" y="{ly}" class="ax">{escape(tr("cumulative"))}</text>'
                 f'<line x1="{pad_l + 220}" x2="{pad_l + 240}" y1="{ly - 4}" y2="{ly - 4}" class="plan"/>'
                 f'<text x="{pad_l + 244}" y="{ly}" class="ax">{escape(tr("plan"))}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -------------------------------------------------------------------------------------------------- sample


def _interviewer_choices(s: Session) -> list[tuple[int, str]]:
    return [(u.id, u.display_name) for u in s.scalars(
        select(User).where(User.role == Role.INTERVIEWER, User.is_active.is_(True)).order_by(User.display_name))]


@bp.get("/sample")
@viewer
def sample():
    started = time.perf_counter()
    _release_request_tx()
    now = _now()
    with reading() as s:
        study = _study(s)
        rows = sv.quota_board(s, study, now)
        reps = sa.unreleased_by_enterprise(s, study.id)
        waiting = [(r, reps[r.enterprise_id]) for r in rows if r.enterprise_id in reps]
        auto = sa.automatic_releases(s, study.id)
        appts = sa.pending_appointments(s, study.id)
        people = _interviewer_choices(s)
        soft = s.scalar(select(func.count(Case.id)).where(Case.study_id == study.id, Case.needs_converter.is_(True),
                                                          Case.status == CaseStatus.READY))
    return _timed(Response(render_template("supervisor/sample.html", waiting=waiting, auto=auto, appts=appts, people=people,
                                           soft=soft or 0, tab="sample")), started)


@bp.post("/sample/release")
@actor
def release_replicate():
    user = current_user()
    try:
        number = request.form.get("number")
        n = sa.release(db.session, int(request.form["enterprise_id"]), int(number) if number else None, _now(),
                       user_id=user.id)
        db.session.commit()
        flash(tr("released_n", n=n), "info")
    except (sa.SampleAdminError, KeyError, ValueError) as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.sample"))


def _parse_local(value: str | None) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` in centre time → UTC (None when empty)."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise sa.SampleAdminError(f"时间格式错误：{value}", f"not a date-time: {value}") from None
    return naive.replace(tzinfo=zone(centre_tz())).astimezone(UTC)


def _who(value: str | None) -> int | None:
    return int(value) if value not in (None, "", "anyone") else None


@bp.post("/appointments/<int:appt_id>/move")
@actor
def move_appointment(appt_id: int):
    user = current_user()
    try:
        sa.move_appointment(db.session, appt_id, _who(request.form.get("to")), user_id=user.id,
                            due_at=_parse_local(request.form.get("due_at")), note=request.form.get("note") or None)
        db.session.commit()
        flash(tr("done_ok"), "info")
    except (sa.SampleAdminError, ValueError) as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.sample"))


@bp.post("/appointments/move-all")
@actor
def move_all():
    user = current_user()
    try:
        n = sa.move_all_appointments(db.session, int(request.form["from"]), _who(request.form.get("to")),
                                     user_id=user.id)
        db.session.commit()
        flash(tr("moved_n", n=n), "info")
    except (sa.SampleAdminError, KeyError, ValueError) as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.sample"))


@bp.post("/dnc")
@actor
def dnc():
    user = current_user()
    numbers = (request.form.get("numbers") or "").splitlines()
    try:
        added, stopped, bad = sa.add_do_not_call(db.session, numbers, _now(), user_id=user.id,
                                                 reason=request.form.get("reason") or "supervisor")
        db.session.commit()
        if added:
            flash(tr("dnc_done", n=added, c=stopped), "info")
        if bad:
            flash(tr("dnc_bad", items="; ".join(f"{m} ({r})" for m, r in bad)), "error")
    except sa.SampleAdminError as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.sample"))


@bp.post("/refusal-conversion")
@actor
def refusal_conversion():
    user = current_user()
    try:
        study = _study(db.session)
        ids = [int(x) for x in request.form.getlist("interviewers")]
        out = sa.assign_refusal_conversion(db.session, study.id, ids, user_id=user.id)
        db.session.commit()
        flash(tr("assigned_n", n=sum(len(v) for v in out.values())), "info")
    except (sa.SampleAdminError, ValueError) as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.sample"))


@bp.get("/case")
@viewer
def find_case():
    ref = (request.args.get("ref") or "").strip()
    with reading() as s:
        study = _study(s)
        cid = s.scalar(select(Case.id).where(Case.study_id == study.id, Case.case_ref == ref))
        if cid is None and ref.isdigit():
            cid = s.scalar(select(Case.id).where(Case.id == int(ref)))
    _release_request_tx()
    if cid is None:
        flash(tr("case_not_found"), "error")
        return redirect(url_for("supervisor.sample"))
    return redirect(url_for("supervisor.case", case_id=cid))


@bp.get("/case/<int:case_id>")
@viewer
def case(case_id: int):
    """One case. Supervisors see its numbers in full here (opening a case is audited); analysts masked."""
    from .i18n import current_language

    user = current_user()
    full = user.role in (Role.SUPERVISOR, Role.ADMIN)
    c = db.session.get(Case, case_id)
    if c is None:
        db.session.rollback()
        abort(404)
    if full:
        audit.record(db.session, user_id=user.id, action="case.open", entity="case", entity_id=case_id)
    db.session.commit()
    with reading() as s:
        c = s.get(Case, case_id)
        phones = [(p.e164 if full else mask_phone(p.e164), p.status.value, p.kind) for p in c.phones]
        attempts = s.execute(select(CallAttempt, User.display_name)
                             .outerjoin(User, User.id == CallAttempt.interviewer_id)
                             .where(CallAttempt.case_id == case_id).order_by(CallAttempt.requested_at)).all()
        interviews = s.scalars(select(Interview).where(Interview.case_id == case_id).order_by(Interview.id)).all()
        from cati.services.interviews import answers_of, questionnaire_for

        q = questionnaire_for(s.get(Study, c.study_id))
        answers = {iv.id: answers_of(s, iv, q) for iv in interviews}
        iv_ids = [iv.id for iv in interviews]
        revisions = s.execute(select(AnswerRevision, User.display_name)
                              .outerjoin(User, User.id == AnswerRevision.changed_by_id)
                              .where(AnswerRevision.interview_id.in_(iv_ids))
                              .order_by(AnswerRevision.changed_at, AnswerRevision.id)).all() if iv_ids else []
        trail = s.execute(select(AuditLog, User.display_name).outerjoin(User, User.id == AuditLog.user_id).where(
            ((AuditLog.entity == "case") & (AuditLog.entity_id == str(case_id)))
            | ((AuditLog.entity == "interview") & (AuditLog.entity_id.in_([str(i) for i in iv_ids])))
        ).order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(200)).all()
        people = _interviewer_choices(s)
        assigned = s.get(User, c.assigned_to_id).display_name if c.assigned_to_id else ""
        codes = [code for code in q.codes if q.study.question(code).type != "info"]
        labels = _answer_labels(q.study, current_language())
        # Rendered inside the read session: the rows are live ORM objects.
        return render_template("supervisor/case.html", c=c, ent=c.enterprise, phones=phones, full=full,
                               attempts=attempts, interviews=interviews, answers=answers, revisions=revisions,
                               trail=trail, people=people, assigned=assigned, codes=codes, labels=labels,
                               tab="sample")


def _answer_labels(spec, lang: str) -> dict[str, dict[int, str]]:
    """{question: {code: label}} for coded questions (answers are shown as "4 满意")."""
    out: dict[str, dict[int, str]] = {}
    for question in spec.questions:
        scale = spec.scales.get(question.scale) if getattr(question, "scale", None) else None
        if scale is not None:
            out[question.code] = {k: v.get(lang) or v.get("zh-CN") or "" for k, v in
                                  {**scale.labels, **scale.missing}.items()}
    return out


@bp.post("/case/<int:case_id>/<any(stop, resume):action>")
@actor
def case_status(case_id: int, action: str):
    user = current_user()
    try:
        if action == "stop":
            sa.stop_case(db.session, case_id, user_id=user.id, note=request.form.get("note") or None)
        else:
            sa.resume_case(db.session, case_id, _now(), user_id=user.id, note=request.form.get("note") or None)
        db.session.commit()
        flash(tr("done_ok"), "info")
    except sa.SampleAdminError as err:
        db.session.rollback()
        _fail(err)
    return redirect(url_for("supervisor.case", case_id=case_id))


@bp.post("/case/<int:case_id>/reassign")
@actor
def case_reassign(case_id: int):
    user = current_user()
    try:
        sa.reassign_case(db.session, case_id, _who(request.form.get("to")), user_id=user.id,
                         note=request.form.get("note") or None)
        db.session.commit()
        flash(tr("done_ok"), "info")
    except (sa.SampleAdminError, ValueError) as err:
        db.session.rollback()
        _fail(err)
    return redirect(url_for("supervisor.case", case_id=case_id))


@bp.post("/case/<int:case_id>/dnc")
@actor
def case_dnc(case_id: int):
    user = current_user()
    c = db.session.get(Case, case_id)
    if c is None:
        abort(404)
    try:
        sa.add_do_not_call(db.session, [p.e164 for p in c.phones], _now(), user_id=user.id,
                           reason=request.form.get("reason") or "supervisor")
        db.session.commit()
        flash(tr("done_ok"), "info")
    except sa.SampleAdminError as err:
        db.session.rollback()
        _fail(err)
    return redirect(url_for("supervisor.case", case_id=case_id))


@bp.post("/interview/<int:interview_id>/answer")
@actor
def edit_answer(interview_id: int):
    """Change an answer after the fact (a reason is required); ``save_answer`` keeps the revision and audits."""
    from cati.services.interviews import save_answer
    from cati.study.engine import AnswerError

    from .i18n import current_language

    user = current_user()
    iv = db.session.get(Interview, interview_id)
    if iv is None:
        abort(404)
    code = request.form.get("question", "")
    raw = request.form.get("value", "")
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        db.session.rollback()
        flash(tr("reason_required"), "error")
        return redirect(url_for("supervisor.case", case_id=iv.case_id))
    try:
        save_answer(db.session, iv, code, raw, user_id=user.id, now=_now(), reason=reason)
        db.session.commit()
        flash(tr("answer_changed"), "info")
    except AnswerError as err:
        db.session.rollback()
        flash(f"{code}: {err.message(current_language())}", "error")
    except (KeyError, ValueError) as err:
        db.session.rollback()
        flash(f"{code}: {err}", "error")
    return redirect(url_for("supervisor.case", case_id=iv.case_id))


# ------------------------------------------------------------------------------------------------------ QC


#: Newest completes listed on the QC page (filters narrow it down).
QC_PAGE = 200


@bp.get("/qc")
@viewer
def qc_page():
    started = time.perf_counter()
    _release_request_tx()
    status = request.args.get("status", "")
    flagged = request.args.get("flagged") == "1"
    try:
        share = float(request.args.get("share") or 0.1)
        if not 0 <= share <= 1:
            raise ValueError
    except ValueError:
        flash(f"share: {request.args.get('share')!r} must be a number between 0 and 1", "error")
        share = 0.1
    with reading() as s:
        study = _study(s)
        rows = qc.qc_rows(s, study, status=status or None, flagged_only=flagged, limit=QC_PAGE)
        median = qc.median_length(s, study)
        callback = qc.callback_list(s, study, share)
    return _timed(Response(render_template("supervisor/qc.html", rows=rows, status=status, flagged=flagged,
                                           median=median, callback=callback, share=share, flag_text=qc.FLAG_TEXT,
                                           tab="qc")), started)


@bp.post("/qc/<int:interview_id>/<any(verify, reject):decision>")
@actor
def qc_decide(interview_id: int, decision: str):
    user = current_user()
    note = (request.form.get("note") or "").strip()
    try:
        if decision == "verify":
            qc.verify(db.session, interview_id, user_id=user.id, note=note or None)
            msg = tr("verified_msg")
        else:
            out = qc.reject(db.session, interview_id, _now(), user_id=user.id, note=note)
            msg = tr("rejected_msg", n=out["reopened_quota_cases"])
        db.session.commit()
        flash(msg, "info")
    except qc.QCError as err:
        db.session.rollback()
        _fail(err)
    return _back(url_for("supervisor.qc_page"))


# ---------------------------------------------------------------------------------------------- wiring


def init_supervision(app: Flask) -> None:
    """Register the supervisor and admin blueprints (and the console's auth/CSRF/i18n they rely on).
    Idempotent."""
    from .auth import init_web

    init_web(app)
    if "supervisor" not in app.blueprints:
        app.register_blueprint(bp)
    if "admin" not in app.blueprints:
        from .admin import bp as admin_bp

        app.register_blueprint(admin_bp)



def wsgi_app() -> Flask:
    """``gunicorn 'cati.web.supervisor:wsgi_app()'``: the console app with the supervisor and admin screens,
    whether or not ``register_blueprints`` already includes them."""
    from .auth import wsgi_app as console_app

    app = console_app()
    init_supervision(app)
    return app
