"""The audit study type: config/studies/ccso_audit.yaml, the loader's errors, XLSX import and the YAML writer."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from openpyxl import Workbook

from cati.study.audit import (
    XLSX_COLUMNS,
    AuditStudyError,
    load_audit_study,
    read_audit_xlsx,
    validate_audit_mapping,
    write_audit_yaml,
)
from cati.study.loader import StudyError

CCSO = Path(__file__).resolve().parents[2] / "config" / "studies" / "ccso_audit.yaml"
CATEGORY_NAMES = ["规划及发展方向", "人员管理", "现场管理", "流程管理", "绩效管理", "客户价值与满意度", "技术管理",
                  "网络与信息安全", "客户权益保护"]


def _minimal() -> dict:
    return {
        "type": "audit", "id": "mini", "version": 1, "title": {"zh-CN": "小", "en": "Mini"},
        "pass_rules": {"category_threshold": 0.9, "all_categories_must_pass": True},
        "categories": [{
            "code": "1", "name": {"zh-CN": "一", "en": "One"},
            "core_items": [{"code": "1.1", "name": {"zh-CN": "甲", "en": "A"}, "requirements": [
                {"code": "1.1.1", "evidence": ["A"], "text": {"zh-CN": "文", "en": "t"}},
                {"code": "1.1.2", "evidence": ["B", "C"], "allow_na": True, "text": {"zh-CN": "文", "en": "t"}},
            ]}],
        }],
    }


# --------------------------------------------------------------------------------------------------------------
# The shipped example


def test_the_ccso_example_loads_with_the_standards_structure():
    study = load_audit_study(CCSO)
    n_cat, n_items, n_req = study.counts()
    assert (n_cat, n_items) == (9, 46) and n_req >= 138
    assert [c.name.zh_CN for c in study.categories] == CATEGORY_NAMES
    assert all(len(item.requirements) >= 3 for c in study.categories for item in c.core_items)
    assert study.pass_rules.category_threshold == pytest.approx(0.90) and study.pass_rules.all_categories_must_pass
    assert study.type == "audit" and study.example
    codes = [r.code for _, _, r in study.iter_requirements()]
    assert len(codes) == len(set(codes)) and codes[0] == "1.1.1"
    assert {e for _, _, r in study.iter_requirements() for e in r.evidence} == {"A", "B", "C"}
    # every requirement sits under its core item's code; every category keeps judgements that cannot be n/a
    for cat, item, req in study.iter_requirements():
        assert req.code.startswith(item.code + ".") and item.code.startswith(cat.code + ".")
    for cat in study.categories:
        assert any(not r.allow_na for item in cat.core_items for r in item.requirements)
    assert any(r.allow_na for _, _, r in study.iter_requirements())


def test_the_example_says_it_is_an_example():
    head = CCSO.read_text(encoding="utf-8")[:1500]
    assert "EXAMPLE" in head and "licensed checklist" in head and "示例" in head


def test_yaml_writer_round_trips(tmp_path):
    study = load_audit_study(CCSO)
    out = write_audit_yaml(study, tmp_path / "copy.yaml")
    assert load_audit_study(out) == study


# --------------------------------------------------------------------------------------------------------------
# Bad YAML


def _load_text(tmp_path, text: str):
    path = tmp_path / "audit.yaml"
    path.write_text(text, encoding="utf-8")
    return load_audit_study(path)


def _errors_of(tmp_path, data) -> str:
    with pytest.raises(AuditStudyError) as info:
        _load_text(tmp_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert isinstance(info.value, StudyError) and isinstance(info.value, ValueError)
    return str(info.value)


def test_minimal_is_valid():
    assert validate_audit_mapping(_minimal()).counts() == (1, 1, 2)


def _set(data, path, value):
    cur = data
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return data


REQ = ("categories", 0, "core_items", 0, "requirements")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: _set(d, (*REQ, 1, "code"), "1.1.1"),
     "categories[0].core_items[0].requirements[1].code: duplicate requirement code '1.1.1' "
     "(also at categories[0].core_items[0].requirements[0])"),
    (lambda d: _set(d, (*REQ, 0, "evidence"), ["A", "D"]),
     "categories[0].core_items[0].requirements[0].evidence: 'D' is not an evidence type"),
    (lambda d: _set(d, (*REQ, 0, "evidence"), []),
     "requirements[0].evidence: at least one evidence type is required"),
    (lambda d: _set(d, ("pass_rules", "category_threshold"), 90),
     "pass_rules.category_threshold: category_threshold must be a share in (0, 1], got 90"),
    (lambda d: _set(d, ("pass_rules", "category_threshold"), 0),
     "pass_rules.category_threshold: category_threshold must be a share in (0, 1]"),
    (lambda d: _set(d, ("categories", 0, "core_items", 0, "requirements"), []),
     "categories[0].core_items[0].requirements: a core item needs at least one requirement"),
    (lambda d: _set(d, ("categories", 0, "core_items"), []),
     "categories[0].core_items: a category needs at least one core item"),
    (lambda d: (d[REQ[0]][0]["core_items"][0]["requirements"][0]["text"].pop("en"), d)[1],
     "categories[0].core_items[0].requirements[0].text.en: the en text is missing (both zh-CN and en are required)"),
    (lambda d: _set(d, ("categories", 0, "name", "zh-CN"), "  "),
     "categories[0].name.zh-CN: the zh-CN text is empty"),
    (lambda d: _set(d, ("type",), "survey"), "type: an audit file has 'type: audit'"),
    (lambda d: _set(d, (*REQ, 0, "evidance"), ["A"]),
     "requirements[0].evidance: unknown key 'evidance' (did you mean 'evidence'?)"),
    (lambda d: _set(d, ("categories", 0, "core_items", 0, "code"), 1.1),
     'categories[0].core_items[0].code: a code must be a quoted string, got the number 1.1'),
])
def test_each_kind_of_bad_yaml_names_its_path_and_line(tmp_path, change, expected):
    text = _errors_of(tmp_path, change(copy.deepcopy(_minimal())))
    assert expected in text
    assert "audit.yaml: " in text and "(line " in text


def test_every_problem_is_reported_at_once(tmp_path):
    data = _minimal()
    _set(data, (*REQ, 1, "code"), "1.1.1")
    _set(data, (*REQ, 0, "evidence"), ["X"])
    _set(data, ("pass_rules", "category_threshold"), 1.5)
    text = _errors_of(tmp_path, data)
    assert "duplicate requirement code" in text and "'X' is not an evidence type" in text and "(0, 1]" in text
    assert len(text.splitlines()) == 3


def test_evidence_spellings_are_normalised():
    data = _minimal()
    _set(data, (*REQ, 0, "evidence"), "a、c")
    _set(data, (*REQ, 1, "evidence"), "AB")
    study = validate_audit_mapping(data)
    assert [r.evidence for _, _, r in study.iter_requirements()] == [["A", "C"], ["A", "B"]]


def test_unreadable_files(tmp_path):
    with pytest.raises(AuditStudyError, match="file not found"):
        load_audit_study(tmp_path / "nope.yaml")
    with pytest.raises(AuditStudyError, match="YAML syntax error"):
        _load_text(tmp_path, "type: audit\ncategories: [\n")
    with pytest.raises(AuditStudyError, match="must be a mapping"):
        _load_text(tmp_path, "- a\n- b\n")
    (tmp_path / "gbk.yaml").write_bytes("title: 测试".encode("gbk"))
    with pytest.raises(AuditStudyError, match="not UTF-8"):
        load_audit_study(tmp_path / "gbk.yaml")


# --------------------------------------------------------------------------------------------------------------
# XLSX import


GOOD_ROWS = [
    ("1 规划及发展方向 / Planning", "1.1 战略规划 / Strategy", "1.1.1", "有规划", "A plan exists", "A", "否"),
    (None, None, "1.1.2", "规划有评审", "The plan is reviewed", "A,C", ""),
    ("1 规划及发展方向 / Planning", "1.2 承诺 / Commitments", "1.2.1", "有承诺", "Commitments exist", "B", "yes"),
    ("2 人员管理 / People", "2.1 培训 / Training", "2.1.1", "有培训", "Training exists", "AB", 1),
]


def _xlsx(tmp_path, rows, header=XLSX_COLUMNS, name="client checklist.xlsx") -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    path = tmp_path / name
    wb.save(path)
    return path


def test_xlsx_import_builds_the_same_model_and_writes_yaml(tmp_path):
    path = _xlsx(tmp_path, GOOD_ROWS)
    study = read_audit_xlsx(path, title_zh="客户清单", title_en="Client checklist")
    assert study.id == "client_checklist" and study.counts() == (2, 3, 4)
    cat, item, req = study.requirement("1.1.2")
    assert (cat.name.zh_CN, cat.name.en, item.code, item.name.en) == ("规划及发展方向", "Planning", "1.1", "Strategy")
    assert req.evidence == ["A", "C"] and not req.allow_na
    assert study.requirement("1.2.1")[2].allow_na and study.requirement("2.1.1")[2].evidence == ["A", "B"]
    assert load_audit_study(path) == read_audit_xlsx(path)  # load_audit_study dispatches on .xlsx
    out = write_audit_yaml(study, tmp_path / "client.yaml", source=str(path))
    assert load_audit_study(out) == study


def test_xlsx_english_names_from_optional_columns(tmp_path):
    header = (*XLSX_COLUMNS, "category_en", "core_item_en")
    rows = [("1 规划", "1.1 战略", "1.1.1", "有规划", "A plan", "A", "", "Planning", "Strategy"),
            (None, None, "1.1.2", "有评审", "Reviewed", "B", "", None, None)]
    study = read_audit_xlsx(_xlsx(tmp_path, rows, header))
    assert study.categories[0].name.en == "Planning" and study.categories[0].core_items[0].name.en == "Strategy"
    assert study.counts() == (1, 1, 2)


@pytest.mark.parametrize(("row", "expected"), [
    (("1 规划 / P", "1.1 战略 / S", "1.1.1", "x", "x", "D", ""), "row 3: evidence: 'D' is not an evidence type"),
    (("1 规划 / P", "1.1 战略 / S", "1.1.1", "x", "x", "A", ""),
     "row 3: requirement_code: duplicate requirement code 1.1.1 (also on row 2)"),
    (("1 规划 / P", "1.1 战略 / S", "1.1.9", "", "x", "A", ""), "row 3: requirement_zh: empty"),
    (("1 规划 / P", "1.1 战略 / S", "1.1.9", "x", "", "A", ""), "row 3: requirement_en: empty"),
    (("1 规划 / P", "1.1 战略 / S", "1.1.9", "x", "x", "A", "maybe"), "row 3: allow_na: 'maybe' is not yes/no"),
    (("1 规划 / P", "1.1 战略 / S", "", "x", "x", "A", ""), "row 3: requirement_code: empty"),
    (("1 规划 / P", "1.1 战略 / S", 1.2, "x", "x", "A", ""), "row 3: requirement_code: 1.2 is a number cell"),
    (("规划 / P", "1.1 战略 / S", "1.1.9", "x", "x", "A", ""), "row 3: category: must start with its code"),
    (("1 规划", "1.1 战略 / S", "1.1.9", "x", "x", "A", ""), "row 3: category: has no English name"),
    (("1 计划 / P", "1.1 战略 / S", "1.1.9", "x", "x", "A", ""),
     "row 3: category: category 1 is named '计划 / P' here but '规划 / P' on row 2"),
    (("2 人员 / People", "1.1 战略 / S", "2.1.9", "x", "x", "A", ""),
     "row 3: core_item: core item 1.1 is under category 1 on row 2, not 2"),
])
def test_each_bad_xlsx_row_is_refused_with_its_row_number(tmp_path, row, expected):
    good = ("1 规划 / P", "1.1 战略 / S", "1.1.1", "x", "x", "A", "")
    with pytest.raises(AuditStudyError) as info:
        read_audit_xlsx(_xlsx(tmp_path, [good, row]))
    assert expected in str(info.value)


def test_xlsx_bad_rows_are_all_listed(tmp_path):
    rows = [("1 规划 / P", "1.1 战略 / S", "1.1.1", "x", "x", "Z", ""), (), ("1 规划 / P", "1.1 战略 / S", "1.1.2", "x",
                                                                         "x", "A", "?")]
    with pytest.raises(AuditStudyError) as info:
        read_audit_xlsx(_xlsx(tmp_path, rows))
    text = str(info.value)
    assert "row 2: evidence" in text and "row 4: allow_na" in text  # the blank row 3 is skipped, not reported


def test_xlsx_missing_columns_and_empty_sheets(tmp_path):
    with pytest.raises(AuditStudyError, match=r"row 1: missing column\(s\): evidence, allow_na"):
        read_audit_xlsx(_xlsx(tmp_path, [], header=XLSX_COLUMNS[:5]))
    with pytest.raises(AuditStudyError, match="no requirement rows"):
        read_audit_xlsx(_xlsx(tmp_path, [], name="b.xlsx"))
    wb = Workbook()
    wb.save(tmp_path / "empty.xlsx")
    with pytest.raises(AuditStudyError, match="the sheet is empty"):
        read_audit_xlsx(tmp_path / "empty.xlsx")
    (tmp_path / "fake.xlsx").write_text("not a zip")
    with pytest.raises(AuditStudyError, match="cannot open as an XLSX workbook"):
        read_audit_xlsx(tmp_path / "fake.xlsx")


def test_xlsx_category_codes_may_be_chinese_numerals(tmp_path):
    rows = [("一、规划及发展方向 / Planning", "1.1 战略 / Strategy", "1.1.1", "有规划", "A plan", "A", ""),
            ("九 客户权益保护 / Rights", "9.1 个人信息 / Personal data", "9.1.1", "有制度", "A policy", "A", "")]
    study = read_audit_xlsx(_xlsx(tmp_path, rows))
    assert [(c.code, c.name.zh_CN) for c in study.categories] == [("1", "规划及发展方向"), ("9", "客户权益保护")]


def test_the_survey_loader_points_an_audit_file_to_the_audit_commands():
    from cati.study.loader import load_study

    with pytest.raises(StudyError) as info:
        load_study(CCSO)
    assert len(info.value.problems) == 1 and "audit checklist (type: audit)" in str(info.value)
    assert "cati audit check" in str(info.value)


def test_xlsx_export_round_trips(tmp_path):
    from cati.study.audit import write_audit_xlsx

    study = load_audit_study(CCSO)
    back = read_audit_xlsx(write_audit_xlsx(study, tmp_path / "ccso.xlsx"), study_id=study.id, version=study.version)
    assert back.categories == study.categories  # every name, text, evidence type and allow_na
