"""Staffing (``/supervisor/staffing``): which parts of which days give the most completes per paid hour, and a
shift plan for what remains."""

from __future__ import annotations

from flask import render_template

from cati.services.staffing import staffing_advice

from ..i18n import T
from .common import now_utc, screen, study_reading, tr


@screen("/staffing")
def staffing():
    now = now_utc()
    with study_reading() as (s, study):
        advice = staffing_advice(s, study, now)

    def part_label(name: str) -> str:  # the study names its parts of the day; the usual three are translated
        return tr(f"part_{name}") if f"part_{name}" in T else name

    return render_template("supervisor/staffing.html", advice=advice, now=now, tab="staffing",
                           part_label=part_label)
