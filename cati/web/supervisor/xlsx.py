"""The quota board as an xlsx workbook: the enterprises shown, the industry and region roll-ups, the quota cells."""

from __future__ import annotations

import io

from cati.services import supervision as sv
from scoring.cells import append_row

from .common import local_text, tr


def board_workbook(rows: list[sv.BoardRow], shown: list[sv.BoardRow], cells: list) -> io.BytesIO:
    """The workbook of the board: ``shown`` (the filtered rows) on the first sheet, roll-ups of all ``rows``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = tr("sheet_board")
    head = [tr("ent_id"), tr("enterprise"), tr("industry"), tr("region"), tr("completes"), tr("quota"),
            tr("pct_done"), tr("in_progress"), tr("callable_left"), tr("unreleased"), tr("appointments"),
            tr("projected"), tr("shortfall"), tr("rate_per_hour"), tr("eta"), tr("status")]
    append_row(ws, head)
    red = PatternFill("solid", fgColor="FDE2E1")
    for r in shown:
        append_row(ws, [r.external_id, r.name, r.industry, r.region, r.completes, r.quota_target, round(r.pct / 100, 4),
                   r.in_progress, r.callable_left, r.unreleased, r.appointments, round(r.projected, 1),
                   round(r.shortfall, 1), round(r.rate_per_hour, 2), local_text(r.eta, "%Y-%m-%d %H:%M"),
                   tr(f"ent_st_{r.status}")])
        ws.cell(ws.max_row, 7).number_format = "0.0%"
        if r.short:
            for c in ws[ws.max_row]:
                c.fill = red
    for c in ws[1]:
        c.font = Font(bold=True)
    ws.freeze_panes = "C2"
    for key in ("industry", "region"):
        sh = wb.create_sheet(tr(key))
        append_row(sh, [tr(key), tr("enterprises"), tr("target"), tr("completes"), tr("pct_done"), tr("in_progress"),
                   tr("callable_left"), tr("appointments"), tr("n_done"), tr("n_short")])
        for gr in sv.rollup(rows, key):
            append_row(sh, [gr["key"], gr["enterprises"], gr["target"], gr["completes"], gr["pct"] / 100,
                       gr["in_progress"], gr["callable_left"], gr["appointments"], gr["done"], gr["short"]])
            sh.cell(sh.max_row, 5).number_format = "0.0%"
    if cells:
        sh = wb.create_sheet(tr("quota_cells"))
        append_row(sh, [tr("quota_variable"), tr("quota_scope"), tr("quota_value"), tr("completes"), tr("target"),
                   tr("pct_done"), tr("in_progress"), tr("open_cases")])
        for c in cells:
            append_row(sh, [tr("industry") if c.variable == "industry" else c.variable, c.scope_name or tr("study_wide"),
                       c.value, c.completes, c.target, round(c.pct / 100, 4), c.in_progress, c.open_cases])
            sh.cell(sh.max_row, 6).number_format = "0.0%"
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf
