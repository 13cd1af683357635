"""The staff happiness index study (a web self-completion study) and the engine features it needs: multiple
choice with min/max choices, "other, please specify", per-question prefer-not-to-say, keyed answer errors."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cati import i18n
from cati.study.engine import AnswerError, Questionnaire
from cati.study.loader import DEFAULT_STUDY_PATH, StudyError, load_study, validate_study_mapping

PATH = Path(__file__).resolve().parents[2] / "config" / "studies" / "happiness_index.yaml"
STUDY = load_study(PATH)
Q = Questionnaire.for_study(STUDY)
RAW = yaml.safe_load(PATH.read_text(encoding="utf-8"))


def full() -> dict:
    """A finished response: every question answered."""
    answers = {f"P{i}": 1 for i in range(1, 15)}
    answers.update({"P8": 44, "P9": 2, "P12": 1})
    answers.update({f"H{i}": 4 for i in range(1, 16)})
    answers.update({"M1": [2, 3], "M2": [1, 8], "M3": [2], "M4": [1, 3], "O1": "客户不理解", "O2": "帮助到客户"})
    return answers


def problems(mutate) -> list[tuple[str, str]]:
    data = copy.deepcopy(RAW)
    mutate(data)
    with pytest.raises(StudyError) as info:
        validate_study_mapping(data, source="happiness.yaml")
    return [(p.path, p.message) for p in info.value.problems]


def _q(data: dict, code: str) -> dict:
    return next(q for q in data["questions"] if q["code"] == code)


# -- the study file --------------------------------------------------------------------------------------------


def test_the_study_loads_as_a_web_study_without_calling_rules():
    assert STUDY.id == "happiness_index" and STUDY.mode == "cawi"
    assert STUDY.calling_rules is None and STUDY.quota is None
    assert STUDY.zone_name == "Asia/Shanghai"
    assert STUDY.warnings == []
    assert Counter(q.type for q in STUDY.questions) == {"single": 14, "rating": 15, "multi": 4, "open": 2, "info": 2}
    assert [ind.code for ind in STUDY.indicators] == ["OVR", "ENT", "PER", "SOC"]
    assert [len(ind.items) for ind in STUDY.indicators] == [3, 4, 4, 4]
    assert STUDY.item_codes == [f"H{i}" for i in range(1, 16)]
    assert STUDY.scoring.kind == "index" and STUDY.scoring.index_item == "H1"
    assert STUDY.scoring.min_cell_size == 5
    assert STUDY.localise(STUDY.question("H10").text, "zh-CN").startswith("员工薪酬：我所在企业提供了具有市场竞争力")
    for q in STUDY.questions:  # every text in both languages
        assert set(q.text) == {"zh-CN", "en"}


def test_the_improvement_block_has_the_option_lists_of_the_questionnaire():
    counts = {code: len(STUDY.scale_of(code).labels) for code in ("M1", "M2", "M3", "M4")}
    assert counts == {"M1": 9, "M2": 9, "M3": 12, "M4": 8}  # the seed's options + 其他（请注明）
    assert all(STUDY.question(c).other_code == 97 for c in counts)


def test_the_csat_study_still_loads_and_needs_its_calling_rules():
    csat = load_study(DEFAULT_STUDY_PATH)
    assert csat.mode == "cati" and csat.calling_rules is not None and csat.zone_name == "Asia/Shanghai"
    raw = yaml.safe_load(Path(DEFAULT_STUDY_PATH).read_text(encoding="utf-8"))
    del raw["calling_rules"]
    with pytest.raises(StudyError, match="calling_rules: required key is missing"):
        validate_study_mapping(raw, source="csat.yaml")


def test_a_route_through_the_whole_questionnaire_completes():
    assert Q.first() == "INTRO"
    assert Q.is_complete(full())
    answered, step = Q.advance_through({"INTRO": None, **full(), "END": None}, "INTRO")
    assert step is not None and step.complete and step.next_code is None
    assert len(answered) == 37  # 35 questions and the two info screens


# -- multiple choice: min / max ----------------------------------------------------------------------------------


def test_multi_choice_counts_are_checked():
    assert Q.validate("M1", [3, 1]) == [1, 3]
    assert Q.validate("M1", "1, 2 3") == [1, 2, 3]
    with pytest.raises(AnswerError) as info:
        Q.validate("M1", [1, 2, 3, 4])
    assert (info.value.key, info.value.params) == ("answer_too_many_choices", {"max": 3, "n": 4})
    assert info.value.message("en") == "choose at most 3 options (you chose 4)"
    assert info.value.message("zh-CN") == "最多选择 3 项（已选 4 项）"
    assert Q.validate("M2", [1, 2, 3, 4, 5, 6, 7, 8]) == [1, 2, 3, 4, 5, 6, 7, 8]  # no maximum


def test_min_choices_is_checked_on_a_study_that_asks_for_two():
    data = copy.deepcopy(RAW)
    _q(data, "M2")["min_choices"] = 2
    q = Questionnaire(validate_study_mapping(data))
    with pytest.raises(AnswerError) as info:
        q.validate("M2", [4])
    assert (info.value.key, info.value.params) == ("answer_too_few_choices", {"min": 2, "n": 1})
    assert q.validate("M2", [4, 5]) == [4, 5]


def test_an_empty_or_unknown_choice_is_refused_with_the_codes():
    with pytest.raises(AnswerError) as info:
        Q.validate("M4", [1, 42])
    assert info.value.key == "answer_choose_some"
    assert info.value.params["codes"] == [1, 2, 3, 4, 5, 6, 7, 97]
    assert "1、2、3" in info.value.message("zh-CN") and "1, 2, 3" in info.value.message("en")
    assert i18n.render(info.value, "zh-CN") == info.value.message("zh-CN")  # as the web's message() shows it
    with pytest.raises(AnswerError):
        Q.validate("M4", [])


# -- other, please specify ----------------------------------------------------------------------------------------


def test_other_needs_its_text():
    with pytest.raises(AnswerError) as info:
        Q.validate("M1", [2, 97])
    assert info.value.key == "answer_other_required"
    assert info.value.message("zh-CN") == "选择“其他（请注明）”时请注明具体内容"
    assert info.value.message("en") == 'please specify "Other (please specify)"'
    with pytest.raises(AnswerError, match="other_required|请注明"):
        Q.validate("M1", {"value": [97], "other": "   "})
    assert Q.validate_full("M1", {"value": [2, 97], "other": "  弹性休假 "}) == ([2, 97], "弹性休假")
    # The text of an option not chosen is ignored (a web form may post a leftover text).
    assert Q.validate_full("M1", {"value": [2], "other": "x"}) == ([2], None)


def test_other_text_is_length_checked():
    with pytest.raises(AnswerError) as info:
        Q.validate("P9", {"value": 97, "other": "长" * 201})
    assert (info.value.key, info.value.params["n"], info.value.params["max"]) == ("answer_other_too_long", 201, 200)
    assert Q.validate_full("P9", {"value": 97, "other": "能源业"}) == (97, "能源业")


def test_other_text_is_stored_beside_the_answer_and_dropped_when_unticked():
    answers = {k: v for k, v in full().items() if k not in ("M1",)}
    step = Q.advance(answers, "M1", {"value": [1, 97], "other": "弹性休假"})
    assert step.other == "弹性休假"
    assert step.answers["M1"] == [1, 97] and step.answers["M1_other"] == "弹性休假"
    again = Q.advance(step.answers, "M1", [1])
    assert "M1_other" not in again.answers and again.dropped == {"M1_other": "弹性休假"}
    # Stored answers without the text are not complete; advance_through reads the text from <code>_other.
    assert not Q.is_complete({**full(), "M1": [97]})
    assert Q.is_complete({**full(), "M1": [97], "M1_other": "弹性休假"})
    answered, step = Q.advance_through({"INTRO": None, **full(), "M1": [97], "M1_other": "弹性休假", "END": None},
                                       "INTRO")
    assert ("M1_other", "弹性休假") in answered and step.complete


# -- prefer not to say --------------------------------------------------------------------------------------------


def test_prefer_not_to_say_is_offered_where_the_question_asks_for_it():
    assert Q.validate("P5", 99) == 99
    assert Q.validate("H10", "99") == 99
    assert Q.validate("O1", 99) == 99 and Q.validate("O1", "99") == "99"  # typed text stays text
    with pytest.raises(AnswerError):
        Q.validate("H1", 99)  # the index item has no prefer-not-to-say
    with pytest.raises(AnswerError):
        Q.validate("P6", 99)
    view = Q.render("P5", "en")
    assert view["options"][-1] == {"code": 99, "key": "99", "label": "Prefer not to say", "missing": True}
    assert view["prefer_not_code"] == 99
    assert Q.render("H1", "en")["prefer_not_code"] is None
    assert Q.is_complete({**full(), "P5": 99, "H10": 99, "O1": 99})


def test_prefer_not_to_say_is_exclusive_in_a_multi_question():
    data = copy.deepcopy(RAW)
    _q(data, "M4")["prefer_not"] = True
    q = Questionnaire(validate_study_mapping(data))
    assert q.validate("M4", [99]) == [99]
    with pytest.raises(AnswerError) as info:
        q.validate("M4", [1, 99])
    assert info.value.key == "answer_exclusive"
    assert info.value.message("zh-CN") == "“不愿透露”不能与其他选项同时选择"
    assert info.value.message("en") == "Prefer not to say cannot be combined with other answers"


def test_render_describes_the_choice_rules():
    view = Q.render("M1", "zh-CN")
    assert (view["min_choices"], view["max_choices"], view["other_code"], view["other_key"],
            view["other_max_length"]) == (1, 3, 97, "M1_other", 200)
    assert [o["code"] for o in view["options"]] == [1, 2, 3, 4, 5, 6, 7, 8, 97]


# -- answer errors carry a key --------------------------------------------------------------------------------------


def test_every_answer_error_has_both_languages():
    keys = [k for k in i18n.messages("zh-CN") if k.startswith("answer_")]
    assert len(keys) >= 11 and all(i18n.messages("en").get(k) for k in keys)  # in the catalogue, both languages
    err = AnswerError("X", "answer_out_of_range", min="0", max="10", got="11")
    assert err.messages == {"zh-CN": "数值须在 0 到 10 之间（收到：11）",
                            "en": "the number must be between 0 and 10 (got 11)"}
    assert err.message("fr") == err.message("zh-CN")
    with pytest.raises(KeyError):
        AnswerError("X", "no_such_message")


# -- the loader checks the new keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mutate, path, words", [
    (lambda d: _q(d, "M1").update(min_choices=4), "questions[30].min_choices", "greater than max_choices 3"),
    (lambda d: _q(d, "M1").update(max_choices=12), "questions[30].max_choices", "more than the 9 options"),
    (lambda d: _q(d, "P1").update(min_choices=1), "questions[1].min_choices", "multi questions only"),
    (lambda d: _q(d, "M1").update(other_code=98), "questions[30].other_code", "not an answer code of scale"),
    (lambda d: _q(d, "H1").update(other_code=5), "questions[15].other_code", "single and multi questions only"),
    (lambda d: _q(d, "P6").update(other_max_length=10), "questions[6].other_max_length", "needs other_code"),
    (lambda d: d.pop("prefer_not_to_say"), "questions[1].prefer_not", "no prefer_not_to_say code"),
    (lambda d: d["prefer_not_to_say"].update(code=9), "questions[14].prefer_not", "already a code of scale"),
    (lambda d: d["scoring"].update(missing_codes=[]), "scoring.missing_codes", "prefer-not-to-say code 99"),
    (lambda d: d["scoring"].update(index_item="P1"), "scoring.index_item", "not a rating item"),
    (lambda d: d["scoring"].update(driver_items=["H1"]), "scoring.driver_items[0]", "cannot drive itself"),
    (lambda d: d["scoring"].update(breakdowns=["M1"]), "scoring.breakdowns[0]", "single-choice questions"),
    (lambda d: d.pop("timezone"), "timezone", "needs its respondents' timezone"),
    (lambda d: d.update(mode="mixed"), "quota", "required key is missing"),
])
def test_the_loader_names_each_mistake(mutate, path, words):
    found = problems(mutate)
    assert any(p == path and words in m for p, m in found), found
