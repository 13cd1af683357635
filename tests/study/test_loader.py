"""Study loader: the default study loads; every kind of broken file is rejected naming file, path and problem."""

from __future__ import annotations

import copy
import json
from datetime import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cati.study.loader import DEFAULT_STUDY_PATH, StudyError, load_study, validate_study_mapping

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def default_raw() -> dict:
    return load_study(DEFAULT_STUDY_PATH).raw


def problems(raw: dict, mutate) -> list[tuple[str, str]]:
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(StudyError) as info:
        validate_study_mapping(data, source="study.yaml")
    return [(p.path, p.message) for p in info.value.problems]


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (so tests do not hard-code line numbers)."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in {path}")


# ------------------------------------------------------------------------------------------------------------
# The default study


def test_default_study_loads_with_the_design_contents():
    study = load_study(DEFAULT_STUDY_PATH)
    assert study.id == "csat_contact_center"
    assert study.languages == ["zh-CN", "en"]
    assert study.item_codes == [f"{block}{i}" for block, n in zip("ABCDEF", (4, 4, 4, 3, 3, 4), strict=True)
                                for i in range(1, n + 1)]
    assert [ind.code for ind in study.indicators] == list("ABCDEF")
    assert study.question("D2").ask_if == "D0 == 1"
    assert study.scales["sat5"].codes == [5, 4, 3, 2, 1, 8, 9]
    assert study.scoring.item_scores == {5: 100, 4: 80, 3: 60, 2: 40, 1: 20}
    assert study.quota.per_enterprise == 20
    rules = study.calling_rules
    assert rules.windows.weekday == [(time(9), time(12)), (time(13, 30), time(21))]
    assert rules.windows.weekend == [(time(10), time(18))]
    assert rules.zone.key == "Asia/Shanghai"
    assert study.warnings == []


def test_default_study_survives_a_json_round_trip(default_raw):
    # The database stores `raw` as JSON, which turns the integer answer codes into strings.
    again = validate_study_mapping(json.loads(json.dumps(default_raw)), source="db")
    assert again.scales["sat5"].codes == [5, 4, 3, 2, 1, 8, 9]
    assert again.scoring.item_scores[1] == 20


def test_text_pipes_context_then_defaults_then_placeholder():
    study = load_study(DEFAULT_STUDY_PATH)
    s1 = study.question("S1").text
    assert study.text(s1, "en", enterprise_name="ACME Bank") == (
        "In the last 3 months, have you called the customer-service hotline of ACME Bank?")
    assert study.text(s1, "zh-CN", enterprise_name="招商银行", months=6) == "请问您最近6个月内是否拨打过招商银行的客服热线？"
    assert study.text(s1, "zh-CN") == "请问您最近3个月内是否拨打过[enterprise_name]的客服热线？"
    # An unknown language falls back to the default (zh-CN); a localised context value follows the language.
    name = {"zh-CN": "招商银行", "en": "China Merchants Bank"}
    assert study.text(s1, "fr", enterprise_name=name).startswith("请问您最近3个月内是否拨打过招商银行")
    assert "China Merchants Bank" in study.text(s1, "en", enterprise_name=name)
    with pytest.raises(KeyError, match="no question 'ZZ'"):
        study.question("ZZ")


def test_unknown_placeholder_is_a_warning_not_an_error(default_raw):
    data = copy.deepcopy(default_raw)
    data["questions"][4]["text"]["en"] = "Your {product} line: how satisfied are you?"
    study = validate_study_mapping(data, source="study.yaml")
    assert [(w.path, w.severity) for w in study.warnings] == [("questions[4].text.en", "warning")]
    assert "{product}" in study.warnings[0].message
    assert study.text(study.question("A1").text, "en", product="broadband") == (
        "Your broadband line: how satisfied are you?")


# ------------------------------------------------------------------------------------------------------------
# One mutation per kind of error: (mutation, path, words of the message)


def _set(path: list, value):
    def mutate(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return mutate


def _pop(path: list):
    def mutate(d):
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]
    return mutate


CASES = {
    "duplicate code": (_set(["questions", 5, "code"], "A1"), "questions[5].code",
                       "duplicate question code 'A1' (first used by questions[4])"),
    "unknown in ask_if": (_set(["questions", 17, "ask_if"], "X9 == 1"), "questions[17].ask_if",
                          "unknown question 'X9'"),
    "unknown in terminate": (_set(["questions", 2, "terminate", "if"], "S9 == 2"), "questions[2].terminate.if",
                             "unknown question 'S9'"),
    "later question": (_set(["questions", 17, "ask_if"], "D2 == 1"), "questions[17].ask_if",
                       "refers to later question 'D2' (questions[18])"),
    "condition on itself": (_set(["questions", 17, "ask_if"], "D1 == 1"), "questions[17].ask_if",
                            "refers to itself"),
    "condition on info screen": (_set(["questions", 17, "ask_if"], "answered(INTRO)"), "questions[17].ask_if",
                                 "'INTRO' is an info screen and has no answer"),
    "condition syntax": (_set(["questions", 17, "ask_if"], "D0 = 1"), "questions[17].ask_if",
                         "use == to compare"),
    "condition literal not on scale": (_set(["questions", 17, "ask_if"], "D0 == 3"), "questions[17].ask_if",
                                       "'D0' has no answer code 3"),
    "condition text on coded question": (_set(["questions", 17, "ask_if"], "D0 == 'yes'"), "questions[17].ask_if",
                                         "'D0' is answered with codes [1, 2, 9], not text 'yes'"),
    "indicator item unknown": (_set(["indicators", 0, "items", 0, "code"], "A9"), "indicators[0].items[0].code",
                               "unknown question 'A9'"),
    "indicator item not rating": (_set(["indicators", 3, "items", 0, "code"], "D0"),
                                  "indicators[3].items[0].code", "indicator items must be rating questions"),
    "indicator item twice": (_set(["indicators", 1, "items", 0, "code"], "A1"), "indicators[1].items[0].code",
                             "already scored under indicator 'A'"),
    "indicator weights": (_set(["indicators", 0, "weight"], 0.5), "indicators",
                          "indicator weights sum to 1.333333, not 1"),
    "item weights": (_set(["indicators", 3, "items", 2, "weight"], 0.3), "indicators[3].items",
                     "item weights of indicator 'D' sum to 0.9666666, not 1"),
    "negative weight": (_set(["indicators", 0, "items", 0, "weight"], -0.25), "indicators[0].items[0].weight",
                        "greater than or equal to 0"),
    "scale without labels": (_set(["scales", "gender", "labels"], {}), "scales.gender", "scale has no labels"),
    "unknown scale": (_set(["questions", 4, "scale"], "sat7"), "questions[4].scale", "unknown scale 'sat7'"),
    "rating without scale": (_pop(["questions", 4, "scale"]), "questions[4].scale",
                             "a rating question needs a scale"),
    "open with scale": (_set(["questions", 29, "scale"], "sat5"), "questions[29].scale",
                        "an open question takes no scale"),
    "codes in labels and missing": (_set(["scales", "sat5", "missing", 5], {"zh-CN": "x", "en": "x"}),
                                    "scales.sat5", "code(s) [5] appear both in labels and in missing"),
    "missing language text": (_pop(["questions", 6, "text", "en"]), "questions[6].text", "missing en text"),
    "missing label language": (_pop(["scales", "sat5", "labels", 3, "zh-CN"]), "scales.sat5.labels.3",
                               "missing zh-CN text"),
    "language not declared": (_set(["indicators", 2, "name", "fr"], "Réactivité"), "indicators[2].name.fr",
                              "language 'fr' is not listed in languages"),
    "empty text": (_set(["title", "en"], "  "), "title.en", "empty text"),
    "default language": (_set(["default_language"], "fr"), "default_language", "'fr' is not one of languages"),
    "placeholder syntax": (_set(["questions", 4, "text", "zh-CN"], "{enterprise_name的热线"),
                           "questions[4].text.zh-CN", "stray '{'"),
    "placeholder not a name": (_set(["questions", 4, "text", "en"], "Hotline of {enterprise.name}"),
                               "questions[4].text.en", "invalid placeholder '{enterprise.name}'"),
    "item_scores not covering": (_pop(["scoring", "item_scores", 1]), "scoring.item_scores",
                                 "no score for code(s) [1] of scale 'sat5'"),
    "item_scores beyond labels": (_set(["scoring", "item_scores", 7], 120), "scoring.item_scores",
                                  "code(s) [7] are not labels"),
    "missing code neither scored nor missing": (_set(["scoring", "missing_codes"], [9]), "scoring.missing_codes",
                                                "missing code(s) [8] of scale 'sat5'"),
    "outcome unknown": (_set(["scoring", "outcome"], "Q9"), "scoring.outcome", "unknown question 'Q9'"),
    "disposition not AAPOR": (_set(["questions", 1, "terminate", "disposition"], "refused"),
                              "questions[1].terminate.disposition", "'refused' is not an AAPOR disposition code"),
    "disposition complete": (_set(["questions", 2, "terminate", "disposition"], "1.1"),
                             "questions[2].terminate.disposition", "1.1 (complete) is reached at the end"),
    "windows overlap": (_set(["calling_rules", "windows", "weekday"], [["09:00", "12:00"], ["11:30", "21:00"]]),
                        "calling_rules.windows.weekday", "windows 09:00-12:00 and 11:30-21:00 overlap"),
    "window backwards": (_set(["calling_rules", "windows", "weekend"], [["18:00", "10:00"]]),
                         "calling_rules.windows.weekend[0]", "start 18:00 must be before end 10:00"),
    "window bad time": (_set(["calling_rules", "windows", "weekend"], [["10:00", "25:00"]]),
                        "calling_rules.windows.weekend[0][1]", "'25:00' is out of range"),
    "window not a pair": (_set(["calling_rules", "windows", "weekend"], [["10:00"]]),
                          "calling_rules.windows.weekend[0][1]", "a time window is a pair"),
    "no window": (_set(["calling_rules", "windows"], {}), "calling_rules.windows", "no calling window at all"),
    "day parts overlap": (_set(["calling_rules", "day_parts", "lunch"], ["11:00", "13:00"]),
                          "calling_rules.day_parts", "day parts 09:00-12:00 and 11:00-13:00 overlap"),
    "unknown time zone": (_set(["calling_rules", "timezone_default"], "Asia/Beijing"),
                          "calling_rules.timezone_default", "unknown time zone 'Asia/Beijing'"),
    "max attempts": (_set(["calling_rules", "max_attempts"], 0), "calling_rules.max_attempts",
                     "greater than or equal to 1"),
    "best time ratio": (_set(["calling_rules", "best_time_ratio"], 1.5), "calling_rules.best_time_ratio",
                        "less than or equal to 1"),
    "contact prior part": (_set(["calling_rules", "contact_prior"], {"weekday": {"night": 2.0}}),
                           "calling_rules", "contact_prior.weekday: unknown part of the day 'night'"),
    "retry key": (_set(["calling_rules", "retry_minutes"], {"busy": 15}), "calling_rules.retry_minutes.busy",
                  "'busy' is not an AAPOR disposition code"),
    "qc rejected action": (_set(["qc", "rejected", "action"], "redial"), "qc.rejected.action",
                           "Input should be 'verify' or 'close'"),
    "qc rejected delay": (_set(["qc", "rejected", "delay_hours"], -1), "qc.rejected.delay_hours",
                          "greater than or equal to 0"),
    "qc rejected close code": (_set(["qc", "rejected", "close_with"], "3.13"), "qc.rejected.close_with",
                               "close_with: 3.13 must be a final code"),
    "unknown key": (_set(["questions", 3, "ask_iff"], "S1 == 1"), "questions[3].ask_iff",
                    "unknown key 'ask_iff' (did you mean 'ask_if'?)"),
    "required key": (_pop(["quota"]), "quota", "required key is missing"),
    "bad type": (_set(["questions", 4, "type"], "likert"), "questions[4].type", "Input should be 'info'"),
    "bad question code": (_set(["questions", 30, "code"], "1OPEN"), "questions[30].code",
                          "must start with a letter"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_of_error_names_path_and_problem(default_raw, name):
    mutate, path, words = CASES[name]
    found = problems(default_raw, mutate)
    assert any(p == path and words in m for p, m in found), found


def test_every_problem_is_reported_at_once(default_raw):
    def mutate(d):
        for case in ("duplicate code", "unknown in ask_if", "indicator weights", "windows overlap",
                     "missing language text", "unknown key", "bad type"):
            CASES[case][0](d)

    found = problems(default_raw, mutate)
    paths = {p for p, _ in found}
    assert {"questions[5].code", "questions[17].ask_if", "indicators", "calling_rules.windows.weekday",
            "questions[6].text", "questions[3].ask_iff", "questions[4].type"} <= paths


def test_error_text_lists_one_problem_per_line_as_file_path_message(default_raw):
    data = copy.deepcopy(default_raw)
    data["questions"][12]["ask_if"] = "X9 == 1"
    data["questions"][13]["ask_if"] = "Y7 == 1"
    with pytest.raises(StudyError) as info:
        validate_study_mapping(data, source="csat.yaml")
    assert str(info.value).splitlines() == [
        "csat.yaml: questions[12].ask_if: unknown question 'X9'",
        "csat.yaml: questions[13].ask_if: unknown question 'Y7'",
    ]
    assert isinstance(info.value, ValueError)


def test_non_mapping_is_rejected():
    with pytest.raises(StudyError, match="must be a mapping"):
        validate_study_mapping(["not", "a", "study"], source="x.yaml")


# ------------------------------------------------------------------------------------------------------------
# Broken files: YAML-level mistakes and line numbers


def test_minimal_example_is_valid():
    study = load_study(DATA / "minimal.yaml")
    assert study.piping_defaults == {"months": "6"}  # numbers become text for piping
    assert study.item_codes == ["X1", "X2"]


FILES = {
    "syntax_error.yaml": ("", "YAML syntax error: mapping values are not allowed", "oops"),
    "duplicate_key.yaml": ("title", "duplicate key 'title' (also on line 4)", "Mini study"),
    "unquoted_time.yaml": ("calling_rules.windows.weekday[1][0]", "write \"13:30\"", "[13:30,"),
    "unquoted_disposition.yaml": ("questions[0].terminate.disposition", "write \"4.70\"", "disposition: 4.70"),
    "unknown_question.yaml": ("questions[2].ask_if", "unknown question 'X9'", "X9 in"),
    "unquoted_yes.yaml": ("scales.yesno.labels.1.en", "boolean True; put the text in quotes", "en: Yes"),
    "unknown_key.yaml": ("questions[2].ask_iff", "unknown key 'ask_iff'", "ask_iff"),
}


@pytest.mark.parametrize("name", list(FILES))
def test_broken_file_reports_file_path_problem_and_line(name):
    path, words, needle = FILES[name]
    file = DATA / name
    with pytest.raises(StudyError) as info:
        load_study(file)
    match = [p for p in info.value.problems if p.path == path and words in p.message]
    assert match, info.value.problems
    problem = match[0]
    assert problem.file == str(file)
    assert problem.line == line_of(file, needle)
    assert str(problem).startswith(f"{file}: ")


def test_syntax_error_has_line_and_column():
    file = DATA / "syntax_error.yaml"
    with pytest.raises(StudyError) as info:
        load_study(file)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (line_of(file, "oops"), 9)
    assert str(problem).startswith(f"{file}: line {problem.line}, column 9: YAML syntax error")


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(StudyError, match="file not found"):
        load_study(tmp_path / "nope.yaml")
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes("title: 客户满意度\n".encode("gbk"))
    with pytest.raises(StudyError, match="not UTF-8"):
        load_study(gbk)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + (DATA / "minimal.yaml").read_bytes())
    assert load_study(bom).id == "mini"


# ------------------------------------------------------------------------------------------------------------
# Rules over the whole file


def _text_paths(node, path="", keys=()):
    """Every localised text of a study mapping: (path as the loader prints it, keys to reach it)."""
    if isinstance(node, dict):
        if "zh-CN" in node and "en" in node:
            yield path, keys
            return
        for key, value in node.items():
            yield from _text_paths(value, f"{path}.{key}" if path else str(key), (*keys, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _text_paths(value, f"{path}[{i}]", (*keys, i))


def _get(data, keys):
    for key in keys:
        data = data[key]
    return data


RAW = load_study(DEFAULT_STUDY_PATH).raw
TEXT_PATHS = list(_text_paths(RAW))


def test_text_paths_cover_the_whole_questionnaire():
    # title, firm name; scale texts 7 + 2 + 3 + 2 + 6 + 4; 34 questions; 6 indicator names
    assert len(TEXT_PATHS) == 2 + 24 + 34 + 6


@settings(max_examples=60, deadline=None)
@given(where=st.sampled_from(TEXT_PATHS), lang=st.sampled_from(["zh-CN", "en"]))
def test_any_missing_translation_is_reported_at_its_path(where, lang):
    path, keys = where
    data = copy.deepcopy(RAW)
    del _get(data, keys)[lang]
    with pytest.raises(StudyError) as info:
        validate_study_mapping(data, source="s.yaml")
    assert [(p.path, p.message) for p in info.value.problems] == [(path, f"missing {lang} text")]


@settings(max_examples=60, deadline=None)
@given(which=st.integers(0, 5), delta=st.floats(1e-5, 0.5) | st.floats(-0.1, -1e-5))
def test_indicator_weights_off_by_more_than_tolerance_are_rejected(which, delta):
    data = copy.deepcopy(RAW)
    data["indicators"][which]["weight"] += delta
    with pytest.raises(StudyError, match="indicator weights sum to"):
        validate_study_mapping(data, source="s.yaml")


@settings(max_examples=30, deadline=None)
@given(which=st.integers(0, 5), delta=st.floats(-1e-7, 1e-7))
def test_rounding_within_tolerance_is_accepted(which, delta):
    data = copy.deepcopy(RAW)
    data["indicators"][which]["weight"] += delta
    assert validate_study_mapping(data, source="s.yaml").indicators[which].weight == pytest.approx(
        RAW["indicators"][which]["weight"] + delta)
