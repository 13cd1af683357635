"""The quota board (``/supervisor/``): enterprises against their quotas with roll-ups and quota cells, its xlsx
export, releasing sample and stopping an enterprise, and releasing the best-time deferral."""

from __future__ import annotations

from flask import flash, render_template, request, send_file, url_for

from cati.db import db
from cati.services import sample_admin as sa
from cati.services import supervision as sv
from cati.services.cawi import mode_counts
from cati.services.dialing import dialing_status
from cati.services.pacing import study_pace
from cati.services.quotas import cell_progress
from cati.services.scheduling import best_time_deferral, release_best_time_deferral

from ..i18n import message
from ..security import current_user
from ..uow import commit
from .common import (
    actor,
    back,
    bp,
    local_text,
    now_utc,
    release_request_tx,
    screen,
    study_reading,
    the_study,
    tr,
    viewer,
)
from .xlsx import board_workbook

#: From this many released cases on, the board starts building the outcomes frame in the background (~1 s per
#: 50,000 cases); below, the outcomes screen builds it in well under a second itself.
WARM_MIN_CASES = 20_000


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


def totals(rows: list[sv.BoardRow]) -> dict:
    target = sum(r.quota_target for r in rows)
    capped = sum(min(r.completes, r.quota_target) for r in rows)
    return {"enterprises": len(rows), "target": target, "completes": sum(r.completes for r in rows),
            "in_progress": sum(r.in_progress for r in rows), "callable_left": sum(r.callable_left for r in rows),
            "appointments": sum(r.appointments for r in rows), "done": sum(r.done for r in rows),
            "short": sum(r.short for r in rows), "pct": f"{100 * capped / target:.1f}%" if target else "—"}


def board_args() -> dict:
    a = request.args
    return {"q": a.get("q", ""), "industry": a.get("industry", ""), "region": a.get("region", ""),
            "only": a.get("only", ""), "sort": a.get("sort", "external_id"), "desc": a.get("desc") == "1"}


@screen("/")
def board():
    now = now_utc()
    args = board_args()
    with study_reading() as (s, study):
        rows = sv.quota_board(s, study, now)
        cells = cell_progress(s, study)
        deferral = best_time_deferral(s, study, now)
        pace = study_pace(s, study, now)
        modes = mode_counts(s, study)
        dialing = dialing_status(s, study, now)
        if sum(r.final_cases + r.callable_left + r.claimed for r in rows) >= WARM_MIN_CASES:
            from .outcomes import warm_frame  # (outcomes → live → board: imported here)

            warm_frame(study)  # the outcomes screen's frame, built while the supervisor reads the board
    try:
        shown = sv.filter_board(rows, **args)
    except ValueError as exc:
        flash(message(exc), "error")
        args["sort"] = "external_id"
        shown = sv.filter_board(rows, **args)
    done_text = tr("done")
    return render_template(
        "supervisor/board.html", rows=shown, views={r.enterprise_id: row_view(r, done_text) for r in shown}, args=args,
        industries=sorted({r.industry for r in rows}), regions=sorted({r.region for r in rows if r.region}),
        by_industry=sv.rollup(rows, "industry"), by_region=sv.rollup(rows, "region"), totals=totals(shown),
        filtered=len(shown) != len(rows),
        sort_keys=sv.BOARD_SORT_KEYS, now=now, study=study, cells=cells, deferral=deferral, pace=pace,
        modes={m: c.get("complete", 0) for m, c in modes.items()}, status=dialing, tab="board")


@bp.get("/board.xlsx")
@viewer
def board_xlsx():
    release_request_tx()
    now = now_utc()
    with study_reading() as (s, study):
        rows = sv.quota_board(s, study, now)
        cells = cell_progress(s, study)
    try:
        shown = sv.filter_board(rows, **board_args())
    except ValueError:
        shown = rows
    stamp = local_text(now, "%Y%m%d-%H%M")
    return send_file(board_workbook(rows, shown, cells), as_attachment=True,
                     download_name=f"quota-board-{stamp}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.post("/best-time/release")
@actor
def release_best_time():
    """Release the cases the best-time preference defers: until their better part of the day, every callable
    case is dialed by quota need alone."""
    user = current_user()
    released = commit(lambda: release_best_time_deferral(db.session, the_study(db.session), now_utc(),
                                                         user_id=user.id)).value
    if released.cases:
        flash(tr("best_time_released_n", n=released.cases, until=local_text(released.until, "%H:%M")), "info")
    else:
        flash(tr("best_time_nothing"), "info")
    return back(url_for("supervisor.board"))


@bp.post("/enterprise/<int:eid>/release")
@actor
def release(eid: int):
    user = current_user()
    commit(lambda: sa.release(db.session, eid, None, now_utc(), user_id=user.id), sa.SampleAdminError,
           ok=lambda n: tr("released_n", n=n))
    return back(url_for("supervisor.board"))


@bp.post("/enterprise/<int:eid>/status")
@actor
def enterprise_status(eid: int):
    user = current_user()
    commit(lambda: sa.set_enterprise_status(db.session, eid, request.form.get("action") == "stop", user_id=user.id,
                                            note=request.form.get("note") or None),
           sa.SampleAdminError, ok=tr("done_ok"))
    return back(url_for("supervisor.board"))
