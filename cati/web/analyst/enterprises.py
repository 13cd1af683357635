"""Enterprises (``/analyst/enterprises``): sortable, filterable by industry, province and name; one enterprise
(``/analyst/enterprises/<id>``) against its industry, all enterprises and its province."""

from __future__ import annotations

from flask import abort, render_template, request

from cati.services import analysis

from ..i18n import current_language
from .common import scored_and_releases, screen


@screen("/enterprises")
def enterprises():
    scored, listed = scored_and_releases()
    args = request.args
    sort = args.get("sort", "rank") if args.get("sort", "rank") in analysis.SORTS else "rank"
    desc = args.get("dir") == "desc"
    page = int(args["page"]) if args.get("page", "").isdigit() else 1
    filters = {"industry": args.get("industry", ""), "province": args.get("province", ""), "q": args.get("q", "")}
    data = analysis.enterprises(scored, sort=sort, desc=desc, page=page, **filters) if scored is not None else None
    return render_template("analyst/enterprises.html", scored=scored, releases=listed, data=data, sort=sort,
                           desc=desc, filters=filters, tab="enterprises")


@screen("/enterprises/<eid>")
def enterprise(eid: str):
    scored, listed = scored_and_releases()
    detail = analysis.enterprise_detail(scored, eid, current_language()) if scored is not None else None
    if detail is None:
        abort(404)
    return render_template("analyst/enterprise.html", scored=scored, releases=listed, e=detail, tab="enterprises")
