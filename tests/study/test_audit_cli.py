"""``cati audit template`` → fill → ``cati audit score`` round trip, every refusal with its line number, and
``cati audit import`` / ``check``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from cati.cli import main
from cati.study.audit import XLSX_COLUMNS, load_audit_study

CCSO = Path(__file__).resolve().parents[2] / "config" / "studies" / "ccso_audit.yaml"
TEMPLATE_HEADER = ("category", "core_item", "requirement", "evidence", "judgement")
CATEGORY_NAMES = ["规划及发展方向", "人员管理", "现场管理", "流程管理", "绩效管理", "客户价值与满意度", "技术管理",
                  "网络与信息安全", "客户权益保护"]


def run(*args: str):
    return CliRunner().invoke(main, ["audit", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def template_rows(tmp_path_factory) -> list[list[str]]:
    out = tmp_path_factory.mktemp("tpl") / "judgements.csv"
    res = run("template", "--study", str(CCSO), "--out", str(out))
    assert res.exit_code == 0, res.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, so Excel opens it
    return list(csv.reader(raw.decode("utf-8-sig").splitlines()))


def _write(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _filled(rows: list[list[str]], overrides: dict[str, str] | None = None, default: str = "yes") -> list[list[str]]:
    out = [list(rows[0])]
    for row in rows[1:]:
        code = row[2].split()[0]
        out.append([*row[:4], (overrides or {}).get(code, default)])
    return out


def test_template_has_one_empty_row_per_requirement(template_rows):
    study = load_audit_study(CCSO)
    assert template_rows[0] == ["category", "core_item", "requirement", "evidence", "judgement"]
    body = template_rows[1:]
    assert len(body) == study.counts()[2] >= 138
    assert [r[2].split()[0] for r in body] == [req.code for _, _, req in study.iter_requirements()]
    assert all(r[4] == "" for r in body)
    assert body[0][:2] == ["1 规划及发展方向", "1.1 战略规划与目标"] and body[0][3] == "A"
    assert {r[3] for r in body} >= {"A", "B", "C", "A,C"}


def test_template_to_stdout_in_english():
    res = run("template", "--study", str(CCSO), "--lang", "en")
    assert res.exit_code == 0
    lines = res.output.lstrip("\ufeff").splitlines()
    assert lines[0] == "category,core_item,requirement,evidence,judgement"
    assert lines[1].startswith("1 Planning and development direction,1.1 Strategy and objectives,\"1.1.1 A three-year")


def test_round_trip_all_conforming_passes(tmp_path, template_rows):
    res = run("score", str(_write(tmp_path / "j.csv", _filled(template_rows))), "--study", str(CCSO))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[-1] == "audit=pass categories_passed=9/9"
    for name in CATEGORY_NAMES:
        assert any(name in line and "pass" in line for line in lines)


def test_round_trip_one_failing_category_fails_the_audit_gbk_and_spellings(tmp_path, template_rows):
    # category 6 (19 requirements): 3 × 否 → 16 / 19 = 84.2 %; category 9 (15): the three outbound items n/a,
    # 12 / 12; category 5 (20): one "No" → 19 / 20 = 95 %, a pass
    overrides = {"6.1.1": "否", "6.2.3": " NO ", "6.4.3": "no", "9.3.1": "不适用", "9.3.2": "NA", "9.3.3": " na ",
                 "5.2.3": "No"}
    path = _write(tmp_path / "gbk.csv", _filled(template_rows, overrides, default="是"), encoding="gbk")
    res = run("score", str(path), "--study", str(CCSO))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[-1] == "audit=fail categories_passed=8/9"
    six = next(line for line in lines if "客户价值与满意度" in line)
    assert six.split()[2:5] == ["16", "19", "84.2"] and "fail" in six
    nine = next(line for line in lines if "客户权益保护" in line)
    assert nine.split()[2:5] == ["12", "12", "100.0"] and "pass" in nine
    five = next(line for line in lines if "绩效管理" in line)
    assert five.split()[2:5] == ["19", "20", "95.0"] and "pass" in five
    assert "non-conformities: 4 (5.2.3, 6.1.1, 6.2.3, 6.4.3)" in res.output


def test_a_category_at_exactly_90_percent_passes(tmp_path, template_rows):
    # category 5 has 20 requirements: 2 × no → 18 / 20 = 90 %
    res = run("score", str(_write(tmp_path / "j.csv", _filled(template_rows, {"5.1.1": "no", "5.5.4": "no"}))),
              "--study", str(CCSO))
    line = next(x for x in res.output.splitlines() if "绩效管理" in x)
    assert line.split()[2:5] == ["18", "20", "90.0"] and "pass" in line
    assert res.output.splitlines()[-1] == "audit=pass categories_passed=9/9"


def _refused(tmp_path, rows, *needles: str) -> str:
    res = run("score", str(_write(tmp_path / "bad.csv", rows)), "--study", str(CCSO))
    assert res.exit_code != 0
    assert "audit=" not in res.output and "类别 category" not in res.output  # nothing printed as a result
    for needle in needles:
        assert needle in res.output, res.output
    return res.output


def test_unknown_requirement_code_is_refused_with_its_line(tmp_path, template_rows):
    rows = _filled(template_rows)
    replaced = rows[5][2].split()[0]
    rows[5][2] = "1.9.9 不存在的要求"
    _refused(tmp_path, rows, "line 6: unknown requirement code '1.9.9'",
             f"requirement {replaced} is missing from the file")


def test_duplicate_requirement_is_refused(tmp_path, template_rows):
    rows = _filled(template_rows)
    rows.append(list(rows[3]))
    _refused(tmp_path, rows, f"line {len(rows)}: requirement 1.1.3 appears twice (also on line 4)")


def test_missing_requirement_is_refused_by_name(tmp_path, template_rows):
    rows = _filled(template_rows)
    dropped = rows.pop(10)[2].split()[0]
    out = _refused(tmp_path, rows, f"requirement {dropped} is missing from the file")
    assert "1 problem(s)" in out


@pytest.mark.parametrize(("value", "needle"), [
    ("", "line 8: requirement {code}: the judgement is blank"),
    ("   ", "line 8: requirement {code}: the judgement is blank"),
    ("maybe", "line 8: requirement {code}: unknown judgement 'maybe'"),
    ("na", "line 8: requirement {code}: 'not applicable' is not allowed"),
])
def test_blank_unknown_and_not_allowed_judgements_are_refused(tmp_path, template_rows, value, needle):
    rows = _filled(template_rows)
    rows[7][4] = value
    code = rows[7][2].split()[0]
    assert not load_audit_study(CCSO).requirement(code)[2].allow_na
    _refused(tmp_path, rows, needle.format(code=code))


def test_every_problem_is_listed(tmp_path, template_rows):
    rows = _filled(template_rows)
    rows[1][4] = ""
    rows[2][4] = "?"
    rows[3][2] = "X.1 nothing"
    out = _refused(tmp_path, rows, "line 2:", "line 3:", "line 4:", "requirement 1.1.3 is missing")
    assert "4 problem(s)" in out


def test_line_numbers_count_blank_lines_and_multiline_cells(tmp_path, template_rows):
    text = "\ufeffcategory,core_item,requirement,evidence,judgement\n\n"
    body = _filled(template_rows)[1:]
    body[0][2] = "1.1.1 first line\nsecond line"
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(body)
    lines = buf.getvalue().splitlines()
    lines.insert(3, "1.1.9,x,1.9.9,A,yes")
    (tmp_path / "odd.csv").write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
    res = run("score", str(tmp_path / "odd.csv"), "--study", str(CCSO))
    assert res.exit_code != 0 and "line 6: unknown requirement code '1.9.9'" in res.output


def test_bad_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    assert "the file is empty" in run("score", str(tmp_path / "empty.csv"), "--study", str(CCSO)).output
    (tmp_path / "cols.csv").write_text("category,requirement\n1,1.1.1\n")
    out = run("score", str(tmp_path / "cols.csv"), "--study", str(CCSO)).output
    assert "line 1: missing column(s) judgement" in out
    res = run("score", str(tmp_path / "none.csv"), "--study", str(CCSO))
    assert res.exit_code != 0 and "file not found" in res.output
    (tmp_path / "bad.yaml").write_text("type: audit\n")
    res = run("score", str(tmp_path / "cols.csv"), "--study", str(tmp_path / "bad.yaml"))
    assert res.exit_code != 0 and "not a usable audit checklist" in res.output


def test_import_xlsx_then_template_and_score(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(list(XLSX_COLUMNS))
    ws.append(["1 规划 / Planning", "1.1 战略 / Strategy", "1.1.1", "有规划", "A plan", "A", "否"])
    ws.append([None, None, "1.1.2", "有评审", "Reviewed", "B", "是"])
    ws.append(["2 人员 / People", "2.1 培训 / Training", "2.1.1", "有培训", "Training", "A,C", ""])
    wb.save(tmp_path / "client.xlsx")
    res = run("import", str(tmp_path / "client.xlsx"), "--out", str(tmp_path / "client.yaml"), "--title-zh", "客户")
    assert res.exit_code == 0, res.output
    assert "2 categories, 2 core items, 3 requirements" in res.output
    res = run("check", str(tmp_path / "client.yaml"), str(CCSO))
    assert res.exit_code == 0 and "9 categories, 46 core items" in res.output and "EXAMPLE" in res.output
    run("template", "--study", str(tmp_path / "client.yaml"), "--out", str(tmp_path / "t.csv"))
    rows = list(csv.reader((tmp_path / "t.csv").read_text(encoding="utf-8-sig").splitlines()))
    rows = [rows[0]] + [[*r[:4], j] for r, j in zip(rows[1:], ["yes", "na", "yes"], strict=True)]
    res = run("score", str(_write(tmp_path / "j.csv", rows)), "--study", str(tmp_path / "client.yaml"))
    assert res.output.splitlines()[-1] == "audit=pass categories_passed=2/2"


def test_import_refuses_bad_rows(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(list(XLSX_COLUMNS))
    ws.append(["1 规划 / Planning", "1.1 战略 / Strategy", "1.1.1", "有规划", "A plan", "Z", ""])
    wb.save(tmp_path / "bad.xlsx")
    res = run("import", str(tmp_path / "bad.xlsx"), "--out", str(tmp_path / "x.yaml"))
    assert res.exit_code != 0 and "row 2: evidence" in res.output and not (tmp_path / "x.yaml").exists()
    res = run("check", str(tmp_path / "bad.xlsx"))
    assert res.exit_code == 1


def test_full_width_judgements_are_read(tmp_path, template_rows):
    res = run("score", str(_write(tmp_path / "j.csv", _filled(template_rows, {"1.1.1": "ＹＥＳ", "1.1.2": "\u3000是\u3000"}))),
              "--study", str(CCSO))
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "audit=pass categories_passed=9/9"


def test_a_category_judged_entirely_not_applicable_is_shown_not_assessed(tmp_path):
    checklist = tmp_path / "mini.yaml"
    checklist.write_text("""
type: audit
id: mini
title: {zh-CN: 小清单, en: Mini}
pass_rules: {category_threshold: 0.9, all_categories_must_pass: true}
categories:
  - code: "1"
    name: {zh-CN: 规划, en: Planning}
    core_items:
      - code: "1.1"
        name: {zh-CN: 战略, en: Strategy}
        requirements:
          - {code: "1.1.1", evidence: [A], text: {zh-CN: 有规划, en: A plan}}
  - code: "2"
    name: {zh-CN: 外呼, en: Outbound}
    core_items:
      - code: "2.1"
        name: {zh-CN: 外呼时段, en: Hours}
        requirements:
          - {code: "2.1.1", evidence: [A], allow_na: true, text: {zh-CN: 时段合规, en: Hours kept}}
          - {code: "2.1.2", evidence: [B], allow_na: true, text: {zh-CN: 拒绝名单, en: Do-not-call}}
""", encoding="utf-8")
    rows = [list(TEMPLATE_HEADER), ["1", "1.1", "1.1.1", "A", "yes"], ["2", "2.1", "2.1.1", "A", "na"],
            ["2", "2.1", "2.1.2", "B", "不适用"]]
    res = run("score", str(_write(tmp_path / "j.csv", rows)), "--study", str(checklist))
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("二 外呼"))
    assert line.split()[2:5] == ["0", "0", "—"] and "未评定" in line
    assert res.output.splitlines()[-1] == "audit=fail categories_passed=1/2"


def test_an_xlsx_judgements_file_and_the_default_study(tmp_path, template_rows):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in _filled(template_rows, {"6.1.1": "no", "6.2.1": "否"}):
        ws.append(row)
    ws.append([])
    ws.append(["x", "x", "1.1.1 again", "A", "yes"])
    wb.save(tmp_path / "j.xlsx")
    res = run("score", str(tmp_path / "j.xlsx"))  # --study defaults to the shipped example
    n = len(template_rows)
    assert res.exit_code != 0 and f"line {n + 2}: requirement 1.1.1 appears twice (also on line 2)" in res.output
    ws.delete_rows(n + 1, 2)
    wb.save(tmp_path / "j.xlsx")
    res = run("score", str(tmp_path / "j.xlsx"))
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "audit=fail categories_passed=8/9"
    six = next(x for x in res.output.splitlines() if "客户价值与满意度" in x)
    assert six.split()[2:5] == ["17", "19", "89.5"] and "fail" in six  # 89.47 %: shown 89.5, still a fail


def test_export_edit_import(tmp_path):
    from openpyxl import load_workbook

    res = run("export", "--study", str(CCSO), "--out", str(tmp_path / "ccso.xlsx"))
    assert res.exit_code == 0 and "requirements in 46 core items and 9 categories" in res.output
    wb = load_workbook(tmp_path / "ccso.xlsx")
    ws = wb["checklist"]
    ws.append(["9 客户权益保护 / Protection of customer rights", "9.4 投诉渠道与争议处理 / Complaint channels and disputes",
               "9.4.9", "争议处理结果书面告知客户", "Customers are told the outcome of a dispute in writing", "A", "no"])
    wb.save(tmp_path / "edited.xlsx")
    res = run("import", str(tmp_path / "edited.xlsx"), "--out", str(tmp_path / "edited.yaml"), "--id", "client")
    assert res.exit_code == 0, res.output
    study = load_audit_study(tmp_path / "edited.yaml")
    assert study.requirement("9.4.9")[1].code == "9.4" and study.counts()[2] == load_audit_study(CCSO).counts()[2] + 1
