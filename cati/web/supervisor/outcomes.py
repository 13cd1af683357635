"""Outcomes (``/supervisor/outcomes``): the AAPOR disposition table, response rates by a grouping, and completes
per day against the plan."""

from __future__ import annotations

import threading
import time
from datetime import date

from flask import current_app, flash, render_template, request
from sqlalchemy.orm import Session

from cati.models import Study
from cati.services import frames
from cati.services import supervision as sv

from ..i18n import current_language
from .charts import per_day_svg
from .common import centre_tz, local_text, now_utc, screen, study_reading, tr
from .live import app_cache

#: The dispositions frame reads every released case (~1 s for 54,000): outcome tables may be this many seconds old.
FRAME_TTL = 30.0
_frames_lock = threading.Lock()


def _build(s: Session, study: Study) -> None:
    cache = app_cache("frames")
    now = now_utc()
    frame = frames.dispositions_frame(s, study, tz=centre_tz())
    with _frames_lock:
        cache[(study.id, study.version)] = (time.monotonic(), now, frame)
        cache.pop(("building", study.id), None)


def _build_in_background(study: Study) -> None:
    """Rebuild the study's frame on a thread of its own (its own session); one build at a time per study."""
    app = current_app._get_current_object()
    cache = app_cache("frames")
    study_id = study.id  # the caller's Study is detached once its request's session closes
    with _frames_lock:
        if cache.get(("building", study_id)):
            return
        cache[("building", study_id)] = True

    def run() -> None:
        try:
            with app.app_context(), study_reading() as (s, st):
                _build(s, st)
        finally:
            with _frames_lock:
                cache.pop(("building", study_id), None)

    threading.Thread(target=run, name="outcomes-frame", daemon=True).start()


def warm_frame(study: Study) -> None:
    """Start building the outcomes frame if this process has none yet (the board, the supervisor's landing page,
    calls it): the first open of the outcomes screen then finds it ready instead of waiting ~3 s at 200,000
    cases."""
    with _frames_lock:
        ready = (study.id, study.version) in app_cache("frames")
    if not ready:
        _build_in_background(study)


def _frame(s: Session, study: Study):
    """The study's dispositions frame: built once per process, then served from memory; a frame older than
    :data:`FRAME_TTL` seconds is still served while a fresh one is built in the background (stale-while-
    revalidate: only a process's very first open, without :func:`warm_frame`, waits for the build)."""
    cache = app_cache("frames")
    key = (study.id, study.version)
    with _frames_lock:
        hit = cache.get(key)
    if hit is not None:
        if time.monotonic() - hit[0] >= FRAME_TTL:
            _build_in_background(study)
        return hit[2], hit[1]
    with _frames_lock:  # nothing yet: wait for a build running now, or build here
        building = cache.get(("building", study.id))
    if building:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with _frames_lock:
                hit = cache.get(key)
            if hit is not None:
                return hit[2], hit[1]
    _build(s, study)
    with _frames_lock:
        hit = cache[key]
    return hit[2], hit[1]


@screen("/outcomes")
def outcomes():
    group = request.args.get("group", "study")
    if group not in frames.GROUPINGS:
        group = "study"
    only_key = request.args.get("only_key", "")
    only_value = request.args.get("only_value", "")
    plan_days = max(1, min(int(request.args.get("plan_days") or 14), 365))
    plan_start = None
    if request.args.get("plan_start"):
        try:
            plan_start = date.fromisoformat(request.args["plan_start"])
        except ValueError:
            flash(tr("plan_start_invalid", value=request.args["plan_start"]), "error")
    with study_reading() as (s, study):
        frame, frame_at = _frame(s, study)
        per_day = sv.completes_per_day(s, study, plan_start=plan_start, plan_days=plan_days, tz=centre_tz())
    choices = {k: sorted(frame[k].dropna().astype(str).unique()) for k in ("industry", "enterprise", "interviewer",
                                                                         "day", "region")} if len(frame) else {}
    if only_key in choices and only_value:
        frame = frame[frame[only_key].astype(str) == only_value]
    table = sv.disposition_table(frame, current_language())
    rates = frames.rates(frame, by=frames.GROUPINGS[group])
    return render_template(
        "supervisor/outcomes.html", table=table, rates=rates, group=group, groups=list(frames.GROUPINGS),
        key=frames.GROUPINGS[group], rate_cols=frames.RATE_COLUMNS, choices=choices, only_key=only_key,
        only_value=only_value, per_day=per_day, chart=per_day_svg(per_day), plan_days=plan_days,
        plan_start=plan_start.isoformat() if plan_start else "", n_cases=len(frame),
        frame_at=local_text(frame_at, "%H:%M:%S"),
        today=local_text(now_utc(), "%Y-%m-%d"), tab="outcomes")
