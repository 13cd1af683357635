"""Industries (``/analyst/industries``): the ranking with rank intervals and tiers, and one industry with its
first-level scores and its enterprises."""

from __future__ import annotations

from flask import abort, render_template

from cati.services import analysis

from ..i18n import current_language
from .common import scored_and_releases, screen


@screen("/industries")
def industries():
    scored, listed = scored_and_releases()
    rows = analysis.industries(scored) if scored is not None else []
    return render_template("analyst/industries.html", scored=scored, releases=listed, rows=rows, tab="industries")


@screen("/industries/<path:name>")
def industry(name: str):
    scored, listed = scored_and_releases()
    detail = analysis.industry_detail(scored, name, current_language()) if scored is not None else None
    if detail is None:
        abort(404)
    ents = analysis.enterprises(scored, industry=name, sort="rank")
    return render_template("analyst/industry.html", scored=scored, releases=listed, d=detail, ents=ents,
                           tab="industries")
