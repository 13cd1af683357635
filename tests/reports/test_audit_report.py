"""The audit report (reports/audit.py) and ``cati audit report``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from pypdf import PdfReader

from cati.cli import main
from cati.study.audit import load_audit_study
from reports.audit import audit_document, build_audit_report, category_table, nonconformity_table
from scoring.audit import score_audit

CCSO = Path(__file__).resolve().parents[2] / "config" / "studies" / "ccso_audit.yaml"
NO = ("5.2.3", "6.1.1", "6.2.3", "6.4.3")
NA = ("9.3.1", "9.3.2", "9.3.3")


@pytest.fixture(scope="module")
def study():
    return load_audit_study(CCSO)


@pytest.fixture(scope="module")
def judged(study):
    j = {code: "no" if code in NO else "na" if code in NA else "yes" for code in study.requirement_categories()}
    return j, score_audit(j, study.requirement_categories())


def test_tables_by_hand(study, judged):
    j, result = judged
    cats = category_table(study, result).set_index("code")
    assert cats.loc["6", ["conforming", "nonconforming", "applicable"]].tolist() == [16, 3, 19]
    assert cats.loc["6", "status"] == "fail" and cats.loc["9", "not_applicable"] == 3
    nc = nonconformity_table(study, j)
    assert nc["code"].tolist() == list(NO)
    assert nc.loc[0, "category"] == "5 绩效管理" and nc.loc[0, "evidence"] == "B 数据, C 现场"
    assert "重新计算的服务水平" in nc.loc[0, "requirement"]
    assert nonconformity_table(study, j, "en").loc[0, "evidence"] == "B data, C on-site"


def test_document_kpis_and_sections(study, judged):
    j, result = judged
    doc, sheets = audit_document(study, j, result, centre="示例呼叫中心")
    assert doc.kpis[0]["value"] == "未达标" and doc.kpis[0]["sub"] == "audit=fail categories_passed=8/9"
    assert doc.kpis[1]["value"] == "8 / 9" and doc.kpis[3]["value"] == "4"
    assert [s.id for s in doc.sections] == ["results", "nonconformities", "not-applicable"]
    assert "示例呼叫中心" in doc.subtitle
    assert [s.name for s in sheets] == ["类别结果", "不符合项", "全部判定"]


def test_html_pdf_xlsx(study, judged, tmp_path):
    j, result = judged
    paths = build_audit_report(study, j, result, out_dir=tmp_path, centre="示例呼叫中心")
    html = paths["html"].read_text(encoding="utf-8")
    assert "呼叫中心评审报告" in html and "不符合项清单" in html and "客户价值与满意度" in html
    assert "84.2%" in html and "未达标" in html and all(code in html for code in NO)
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(paths["pdf"]).pages))
    assert "各类别评审结果" in text and "不符合项清单" in text and "6.4.3" in text
    wb = load_workbook(paths["xlsx"])
    assert wb.sheetnames == ["类别结果", "不符合项", "全部判定"]
    assert wb["不符合项"].max_row == 1 + len(NO) and wb["全部判定"].max_row == 1 + len(j)


def test_a_passing_audit_in_english_has_no_nonconformities(study, tmp_path):
    j = dict.fromkeys(study.requirement_categories(), "yes")
    result = score_audit(j, study.requirement_categories())
    paths = build_audit_report(study, j, result, lang="en", out_dir=tmp_path, formats=("html",))
    html = paths["html"].read_text(encoding="utf-8")
    assert "Contact-centre audit report" in html and "No non-conformities." in html and ">Pass<" in html
    assert list(paths) == ["html"]


def test_cli_report(tmp_path):
    runner = CliRunner()
    tpl = tmp_path / "t.csv"
    assert runner.invoke(main, ["audit", "template", "--study", str(CCSO), "--out", str(tpl)]).exit_code == 0
    lines = tpl.read_text(encoding="utf-8-sig").splitlines()
    filled = [lines[0]] + [line + ("no" if line.split(",")[2].startswith("6.1.1 ") else "yes") for line in lines[1:]]
    (tmp_path / "j.csv").write_text("\n".join(filled) + "\n", encoding="utf-8-sig")
    res = runner.invoke(main, ["audit", "report", str(tmp_path / "j.csv"), "--study", str(CCSO), "--out",
                               str(tmp_path / "rep"), "--format", "html", "--format", "xlsx"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == "audit=pass categories_passed=9/9"  # 14 / 15 = 93.3 % still passes
    assert (tmp_path / "rep" / "audit_report.zh-CN.html").exists()
    assert (tmp_path / "rep" / "audit_report.zh-CN.xlsx").exists()
    assert "6.1.1" in (tmp_path / "rep" / "audit_report.zh-CN.html").read_text(encoding="utf-8")
    # a bad judgements file writes nothing
    (tmp_path / "bad.csv").write_text("\n".join([lines[0], *filled[1:-1]]) + "\n", encoding="utf-8")
    res = runner.invoke(main, ["audit", "report", str(tmp_path / "bad.csv"), "--study", str(CCSO), "--out",
                               str(tmp_path / "rep2")])
    assert res.exit_code != 0 and "is missing from the file" in res.output and not (tmp_path / "rep2").exists()


def test_auditor_notes_reach_the_nonconformity_list(study, judged, tmp_path):
    j, result = judged
    notes = {"6.1.1": "测评方案未写样本量", "1.1.1": "规划已见"}
    nc = nonconformity_table(study, j, notes=notes)
    assert nc.loc[nc["code"] == "6.1.1", "note"].item() == "测评方案未写样本量" and nc.loc[0, "note"] == ""
    paths = build_audit_report(study, j, result, out_dir=tmp_path, formats=("html", "xlsx"), notes=notes)
    html = paths["html"].read_text(encoding="utf-8")
    assert "测评方案未写样本量" in html and "<th>说明</th>" in html
    sheet = load_workbook(paths["xlsx"])["全部判定"]
    assert [c.value for c in sheet[1]][-1] == "说明"
    assert any(row[-1] == "规划已见" for row in sheet.iter_rows(values_only=True))


def test_cli_report_reads_a_note_column(tmp_path):
    runner = CliRunner()
    tpl = tmp_path / "t.csv"
    runner.invoke(main, ["audit", "template", "--study", str(CCSO), "--out", str(tpl)])
    lines = tpl.read_text(encoding="utf-8-sig").splitlines()
    body = [line + ("no,抽查 3 份工单，1 份超时未闭环" if line.split(",")[2].startswith("4.4.3 ") else "yes,")
            for line in lines[1:]]
    (tmp_path / "j.csv").write_text("\n".join([lines[0] + ",备注", *body]) + "\n", encoding="utf-8")
    res = runner.invoke(main, ["audit", "report", str(tmp_path / "j.csv"), "--study", str(CCSO), "--out",
                               str(tmp_path / "rep"), "--format", "html"])
    assert res.exit_code == 0, res.output
    assert "抽查 3 份工单，1 份超时未闭环" in (tmp_path / "rep" / "audit_report.zh-CN.html").read_text(encoding="utf-8")
    res = runner.invoke(main, ["audit", "score", str(tmp_path / "j.csv"), "--study", str(CCSO)])
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "audit=pass categories_passed=9/9"
