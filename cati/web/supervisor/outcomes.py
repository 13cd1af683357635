"""Outcomes (``/supervisor/outcomes``): the AAPOR disposition table, response rates by a grouping, and completes
per day against the plan."""

from __future__ import annotations

import threading
import time
from datetime import date

from flask import flash, render_template, request
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


def _frame(s: Session, study: Study):
    """The study's dispositions frame, re-read at most every :data:`FRAME_TTL` seconds per process."""
    cache = app_cache("frames")
    key = (study.id, study.version)
    with _frames_lock:
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < FRAME_TTL:
            return hit[2], hit[1]
        now = now_utc()
        frame = frames.dispositions_frame(s, study, tz=centre_tz())
        cache[key] = (time.monotonic(), now, frame)
        return frame, now


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
