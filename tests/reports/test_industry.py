"""The industry report: numbers in the XLSX/HTML/PDF equal the scoring output; Chinese text present; method
section reflects the run."""

from __future__ import annotations

import re

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from reports.i18n import tier_label
from reports.industry import build_industry_report


@pytest.fixture(scope="module")
def files(result, study, fieldwork, tmp_path_factory):
    _, _, rates = fieldwork
    out = tmp_path_factory.mktemp("industry")
    return build_industry_report(result, study, rates=rates, out_dir=out, formats=("html", "pdf", "xlsx"))


def _sheet_records(ws):
    rows = list(ws.iter_rows(values_only=True))
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:] if any(v is not None for v in r)]


def test_xlsx_enterprise_and_industry_numbers_equal_scoring(files, result):
    wb = load_workbook(files["xlsx"])
    assert {"总体", "行业排名", "企业得分", "驱动因素", "应答率", "方法"} <= set(wb.sheetnames)
    ent = {r["enterprise_id"]: r for r in _sheet_records(wb["企业得分"])}
    assert len(ent) == len(result.enterprises)
    for row in result.enterprises.itertuples():
        got = ent[row.enterprise_id]
        for col in ("A", "B", "C", "D", "E", "F", "composite", "composite_ci_low", "composite_ci_high"):
            assert got[col] == pytest.approx(getattr(row, col), abs=1e-9)
        assert got["tier"] == row.tier
        assert (got["rank"], got["rank_low"], got["rank_high"]) == (row.rank, row.rank_low, row.rank_high)
    ind = {r["industry"]: r for r in _sheet_records(wb["行业排名"])}
    for row in result.industries.itertuples():
        assert ind[row.industry]["composite"] == pytest.approx(row.composite, abs=1e-9)
        assert ind[row.industry]["ci_low"] == pytest.approx(row.ci_low, abs=1e-9)
        counts = result.enterprises[result.enterprises.industry == row.industry].tier.value_counts()
        assert ind[row.industry]["tier_above"] == counts.get("above", 0)


def test_xlsx_is_formatted(files):
    wb = load_workbook(files["xlsx"])
    ws = wb["企业得分"]
    assert ws.freeze_panes == "A2"
    assert ws["A1"].font.bold
    header = [c.value for c in ws[1]]
    assert ws.cell(row=2, column=header.index("composite") + 1).number_format == "0.00"


def test_html_is_self_contained_and_shows_scores(files, result):
    html = files["html"].read_text(encoding="utf-8")
    assert "客户联络中心客户满意度行业报告" in html
    assert f"{result.overall['composite']:.2f}" in html
    for row in result.industries.itertuples():
        assert f"{row.composite:.2f}" in html and row.industry in html
    srcs = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_html_enterprise_rows_lead_with_tier(files, result):
    html = files["html"].read_text(encoding="utf-8")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S)
    for e in result.enterprises.itertuples():
        row = next(r for r in rows if f"<td>{e.enterprise_name}</td>" in r)
        assert tier_label(e.tier, "zh-CN") in row
        assert f"{e.rank_low}–{e.rank_high}" in row  # rank shown with its interval


def test_method_section_comes_from_the_run(files, result, fieldwork):
    _, _, rates = fieldwork
    html = files["html"].read_text(encoding="utf-8")
    method = html[html.index('id="method"'):]
    assert f"{result.method['n_boot']} 次重抽样" in method
    assert f"{result.overall['n_respondents']} 个成功样本" in method
    assert f"RR3 {100 * rates.iloc[0]['RR3']:.1f}%" in method
    assert "Benjamini–Hochberg" in method
    widths = (result.enterprises.rank_high - result.enterprises.rank_low + 1).median()
    assert f"总排名区间宽度中位数为 {widths:.0f} 位" in method


def test_pdf_has_chinese_text_and_numbers(files, result):
    text = "".join(page.extract_text() for page in PdfReader(files["pdf"]).pages)
    squashed = re.sub(r"\s+", "", text)
    assert "客户联络中心客户满意度行业报告" in squashed
    assert "方法说明" in squashed and "驱动因素分析" in squashed
    assert f"{result.overall['composite']:.2f}" in squashed
    for industry in result.industries.industry:
        assert industry in squashed


def test_english_report(result, study, tmp_path):
    paths = build_industry_report(result, study, lang="en", out_dir=tmp_path, formats=("html",))
    html = paths["html"].read_text(encoding="utf-8")
    assert "Industry ranking" in html and "Access convenience" in html and "Method" in html
    assert "行业排名" not in html
    assert "Response rate" not in html  # no rates given → the method says so instead
    assert "no call-outcome data" in html


def test_bad_format_is_refused(result, study, tmp_path):
    with pytest.raises(ValueError, match="docx"):
        build_industry_report(result, study, out_dir=tmp_path, formats=("docx",))


def test_grouped_rates_are_pooled_for_the_study_wide_figures(result, study, fieldwork, tmp_path):
    from scoring import response_rates

    cases, _, _ = fieldwork
    by_industry = response_rates(cases, by="industry")
    html = build_industry_report(result, study, rates=by_industry, out_dir=tmp_path,
                                 formats=("html",))["html"].read_text(encoding="utf-8")
    overall = response_rates(cases).iloc[0]
    method = html[html.index('id="method"'):]
    assert f"RR3 {100 * overall['RR3']:.1f}%" in method  # pooled counts, not the first industry's row
    first = by_industry.iloc[0]
    assert f"RR3 {100 * first['RR3']:.1f}%" not in method or first["RR3"] == overall["RR3"]
    for row in by_industry.itertuples():
        assert f"{100 * row.RR3:.1f}%" in method  # the per-group table
