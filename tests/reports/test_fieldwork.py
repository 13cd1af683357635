"""Fieldwork report: dispositions, rates, quotas, interviewer productivity and calls by hour equal the inputs."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from reports.fieldwork import build_fieldwork_report, calls_by_hour, interviewer_table, quota_table


@pytest.fixture(scope="module")
def files(fieldwork, tmp_path_factory):
    cases, attempts, rates = fieldwork
    return build_fieldwork_report(cases, attempts, rates, None, tz="Asia/Shanghai", out_dir=tmp_path_factory.mktemp("fw"))


def _records(ws):
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:] if r[0] is not None]


def test_xlsx_dispositions_and_rates_equal_inputs(files, fieldwork):
    cases, attempts, rates = fieldwork
    wb = load_workbook(files["xlsx"])
    disp = {r["处理结果代码"]: r["数量"] for r in _records(wb["处理结果"])}
    assert disp == cases.disposition.value_counts().to_dict()
    rr = _records(wb["应答率"])[0]
    for col in ("RR1", "RR3", "COOP1", "REF1", "CON1", "e"):
        assert rr[col] == pytest.approx(rates.iloc[0][col], abs=1e-12)
    assert wb["应答率"].cell(row=2, column=list(rates.columns).index("RR3") + 1).number_format == "0.0%"
    hours = _records(wb["拨打时段"])
    assert sum(sum(v for k, v in r.items() if k != "hour") for r in hours) == len(attempts)


def test_interviewer_productivity_by_hand():
    t0 = pd.Timestamp("2026-03-02 02:00", tz="UTC")
    attempts = pd.DataFrame({
        "interviewer": ["a", "a", "a", "b"],
        "placed_at": [t0] * 4,
        "answered_at": [t0 + pd.Timedelta(seconds=10), pd.NaT, t0 + pd.Timedelta(seconds=10), pd.NaT],
        "ended_at": [t0 + pd.Timedelta(minutes=10, seconds=10), t0 + pd.Timedelta(seconds=30),
                     t0 + pd.Timedelta(minutes=5, seconds=10), t0 + pd.Timedelta(seconds=30)],
        "outcome": ["1.1", "3.13", "2.112", "3.13"],
    })
    cases = pd.DataFrame({"enterprise_id": ["E1", "E1"], "disposition": ["1.1", "2.112"],
                          "interviewer": ["a", "a"]})
    tab = interviewer_table(attempts, cases).set_index("interviewer")
    assert tab.loc["a", "calls"] == 3 and tab.loc["a", "answered"] == 2 and tab.loc["a", "completes"] == 1
    assert tab.loc["a", "talk_hours"] == pytest.approx(15 / 60)
    assert tab.loc["a", "completes_per_hour"] == pytest.approx(4.0)
    assert tab.loc["a", "mean_call_min"] == pytest.approx(7.5)
    assert tab.loc["b", "completes"] == 0 and pd.isna(tab.loc["b", "calls_per_complete"])


def test_hour_of_day_is_respondent_local_time():
    attempts = pd.DataFrame({"placed_at": [pd.Timestamp("2026-03-02 01:30", tz="UTC"),
                                           pd.Timestamp("2026-03-02 12:59", tz="UTC")],
                             "outcome": ["1.1", "1.1"]})
    tab = calls_by_hour(attempts, tz="Asia/Shanghai")
    assert list(tab.index) == [9, 20]


def test_quota_table_by_hand():
    cases = pd.DataFrame({"enterprise_id": ["E1"] * 3 + ["E2"], "disposition": ["1.1", "1.1", "2.112", "1.1"],
                          "enterprise_name": ["甲"] * 3 + ["乙"], "industry": ["银行"] * 4})
    q = quota_table(None, cases, target=2).set_index("enterprise_id")
    assert q.loc["E1", "completes"] == 2 and bool(q.loc["E1", "met"])
    assert q.loc["E2", "completion"] == pytest.approx(0.5) and not bool(q.loc["E2", "met"])
    given = pd.DataFrame({"enterprise_id": ["E1"], "target": [20], "completes": [5]})
    assert quota_table(given, cases).loc[0, "completion"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="completes"):
        quota_table(pd.DataFrame({"enterprise_id": ["E1"], "target": [20]}), cases)


def test_pdf_and_html_in_chinese_without_phone_numbers(files, fieldwork):
    _, attempts, _ = fieldwork
    html = files["html"].read_text(encoding="utf-8")
    assert "电话调查执行报告" in html and "访员工作效率" in html
    assert not any(p in html for p in attempts.phone)
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(files["pdf"]).pages))
    assert "AAPOR最终处理结果" in text and "配额完成情况" in text


def test_headline_rates_are_study_wide_when_rates_are_grouped(fieldwork, tmp_path):
    from scoring import response_rates

    cases, attempts, _ = fieldwork
    by_industry = response_rates(cases, by="industry")
    paths = build_fieldwork_report(cases, attempts, by_industry, None, tz="Asia/Shanghai", out_dir=tmp_path,
                                   formats=("html",))
    html = paths["html"].read_text(encoding="utf-8")
    overall = response_rates(cases).iloc[0]
    kpis = html[html.index('class="kpis"'):html.index("</header>")]
    assert f"{100 * overall['RR3']:.1f}%" in kpis
    for row in by_industry.itertuples():  # and each industry's own row in the rates table
        assert row.industry in html and f"{100 * row.RR3:.1f}%" in html
