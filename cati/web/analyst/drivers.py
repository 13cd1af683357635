"""Drivers (``/analyst/drivers``): the quadrant chart with each indicator's quadrant probabilities, and the
relative weights."""

from __future__ import annotations

from flask import render_template, request

from cati.services import analysis

from ..i18n import current_language
from .common import scored_and_releases, screen, tr


@screen("/drivers")
def drivers():
    scored, listed = scored_and_releases()
    level = "item" if request.args.get("level") == "item" else "indicator"
    data = analysis.drivers(scored, current_language(), level) if scored is not None else None
    return render_template("analyst/drivers.html", scored=scored, releases=listed, data=data, level=level,
                           quadrants=list(analysis.QUADRANT_KEYS.values()),
                           qnames={k: tr(k) for k in analysis.QUADRANT_KEYS.values()}, tab="drivers")
