"""Questionnaire engine on the default study: routing, termination, pruning, validation, piping, progress."""

from __future__ import annotations

import copy
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cati.study.engine import AnswerError, Questionnaire
from cati.study.loader import DEFAULT_STUDY_PATH, load_study, validate_study_mapping

STUDY = load_study(DEFAULT_STUDY_PATH)
Q = Questionnaire.for_study(STUDY)
ALL = STUDY.question_codes
D_ITEMS = ["D1", "D2", "D3"]


def full(d0: int = 1) -> dict:
    """A finished interview: screening passed, every item answered, D block per ``d0``."""
    answers = {"CONSENT": 1, "S1": 1, "S2": 1, "D0": d0, "Q0": 4, "CB1": 2, "OPEN1": "接通太慢", "P1": 2,
               "P2": 3, "P3": 1}
    answers.update({code: 4 for code in STUDY.item_codes if code not in D_ITEMS})
    if d0 == 1:
        answers.update({"D1": 5, "D2": 3, "D3": 8})
    return answers


def test_for_study_is_cached_per_study():
    assert Questionnaire.for_study(STUDY) is Q
    assert Q.first() == "INTRO"


# -- routing -----------------------------------------------------------------------------------------------


def test_d_block_is_asked_only_when_follow_up_was_needed():
    assert Q.next_code({**full(1), "D0": 1}, "D0") == "D1"
    for d0 in (2, 9):  # no follow-up needed / don't know: D1-D3 are not applicable, never a low score
        assert Q.next_code({"D0": d0}, "D0") == "E1"
        assert Q.previous_code({"D0": d0}, "E1") == "D0"
        assert not set(D_ITEMS) & set(Q.path(full(d0)))
    assert Q.previous_code(full(1), "E1") == "D3"
    assert Q.path(full(1)) == ALL
    assert len(Q.path(full(2))) == len(ALL) - 3


def test_walk_by_next_code_visits_the_route_in_order():
    answers, code, seen = full(2), Q.first(), []
    while code is not None:
        seen.append(code)
        code = Q.next_code(answers, code)
    assert seen == [c for c in ALL if c not in D_ITEMS]
    assert Q.previous_code(answers, "INTRO") is None
    assert Q.next_code(answers, "END") is None
    assert Q.next_code({}, None) == "INTRO"


@pytest.mark.parametrize(("code", "disposition"), [("CONSENT", "2.112"), ("S1", "4.70"), ("S2", "4.70")])
def test_screening_and_consent_terminate(code, disposition):
    answers = {"CONSENT": 1, "S1": 1, "S2": 1, code: 2}
    assert Q.termination(code, answers) == disposition
    assert Q.terminated(answers) == (code, disposition)
    assert Q.next_code(answers, code) is None
    assert Q.path(answers)[-1] == code
    assert not Q.is_complete({**full(), code: 2})
    step = Q.advance({k: v for k, v in answers.items() if k != code}, code, "2")
    assert (step.termination, step.next_code, step.complete) == (disposition, None, False)


def test_no_termination_when_screening_passes():
    answers = {"CONSENT": 1, "S1": 1, "S2": 1}
    assert [Q.termination(c, answers) for c in ("CONSENT", "S1", "S2", "A1")] == [None] * 4
    assert Q.terminated(answers) is None
    assert Q.next_code(answers, "S2") == "A1"


def test_back_navigation_change_drops_answers_off_the_route():
    answers = full(1)
    answers["D0"] = 2  # the interviewer went back and corrected D0
    kept, dropped = Q.prune(answers)
    assert dropped == {"D1": 5, "D2": 3, "D3": 8}
    assert kept == {k: v for k, v in answers.items() if k not in D_ITEMS}
    assert list(kept) == [c for c in ALL if c in kept]  # questionnaire order
    assert Q.is_complete(kept)
    # Changing it back re-opens the D block, now unanswered
    again = {**kept, "D0": 1}
    assert Q.next_code(again, "D0") == "D1"
    assert not Q.is_complete(again)


def test_advance_reports_what_a_changed_answer_dropped():
    step = Q.advance(full(1), "D0", "2")
    assert step.dropped == {"D1": 5, "D2": 3, "D3": 8}
    assert step.next_code == "E1"
    assert "D1" not in step.answers


def test_refusal_after_the_fact_drops_everything_after_consent():
    kept, dropped = Q.prune({**full(), "CONSENT": 2})
    assert kept == {"CONSENT": 2}
    assert set(dropped) == set(full()) - {"CONSENT"}


def test_stale_answers_never_steer_routing():
    # E1 asked only if D1 was rated 5: a D1 answer left behind after D0 changed to 2 must not count.
    raw = copy.deepcopy(STUDY.raw)
    e1 = next(q for q in raw["questions"] if q["code"] == "E1")
    e1["ask_if"] = "D1 == 5"
    q = Questionnaire(validate_study_mapping(raw, source="variant"))
    assert "E1" in q.path({"D0": 1, "D1": 5})
    assert "E1" not in q.path({"D0": 2, "D1": 5})
    assert q.prune({"D0": 2, "D1": 5, "E1": 4})[1] == {"D1": 5, "E1": 4}


def test_grid_codes_follow_section_and_route():
    assert Q.grid_codes({}, "A1") == ["A1", "A2", "A3", "A4"]
    assert Q.grid_codes({}, "A3") == ["A3", "A4"]
    assert Q.grid_codes({"D0": 1}, "D1") == ["D1", "D2", "D3"]
    assert Q.grid_codes({"D0": 1}, "F1") == ["F1", "F2", "F3", "F4"]  # Q0 is another section
    assert Q.grid_codes({}, "D0") == ["D0"]


def test_unknown_code_is_a_key_error():
    with pytest.raises(KeyError, match="no question 'Z1'"):
        Q.next_code({}, "Z1")


# -- progress and completion -------------------------------------------------------------------------------


def test_progress_counts_the_projected_route():
    # Nothing answered: D0 unknown so D1-D3 are not (yet) on the route: 34 - 3 = 31 screens.
    assert Q.progress({}, "INTRO") == (1, 31)
    assert Q.progress({}, "A1") == (5, 31)  # after INTRO, CONSENT, S1, S2
    assert Q.progress(full(1), "E1") == (21, 34)
    assert Q.progress(full(2), "E1") == (18, 31)
    assert Q.progress(full(1), "END") == (34, 34)


def test_completion_needs_every_question_on_the_route():
    assert Q.is_complete(full(1))
    assert Q.is_complete(full(2))
    assert Q.is_complete(full(9))
    assert not Q.is_complete({k: v for k, v in full(1).items() if k != "D2"})
    assert not Q.is_complete({k: v for k, v in full(2).items() if k != "OPEN1"})
    assert not Q.is_complete({})


def test_a_keyboard_interview_reaches_complete_and_is_fast():
    keys = {"CONSENT": "1", "S1": "1", "S2": "1", "D0": "1", "OPEN1": "希望缩短等待时间", "CB1": "9", "P1": "2",
            "P2": "3", "P3": "1"}
    started = time.perf_counter()
    answers: dict = {}
    code, steps = Q.first(), 0
    while code is not None:
        kind = STUDY.question(code).type
        step = Q.advance(answers, code, keys.get(code, "4" if kind == "rating" else None))
        answers, code, steps = step.answers, step.next_code, steps + 1
    elapsed = time.perf_counter() - started
    assert steps == 34 and step.complete and step.code == "END"
    assert answers["CB1"] == 9 and answers["A1"] == 4 and len(answers) == 32
    # All 34 steps of validation, routing and pruning: a tiny fraction of one spoken question.
    assert elapsed < 0.05, f"{elapsed * 1000:.1f} ms"


# -- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "value"), [(5, 5), ("1", 1), (" 4 ", 4), (8, 8), ("9", 9), (3.0, 3)])
def test_rating_accepts_scale_and_missing_codes(raw, value):
    assert Q.validate("A1", raw) == value


@pytest.mark.parametrize("raw", [0, 6, 7, "x", "", None, True, 4.5, "５", [5]])
def test_rating_rejects_other_input_in_both_languages(raw):
    with pytest.raises(AnswerError) as info:
        Q.validate("A1", raw)
    assert info.value.message("zh-CN").startswith("请输入 5、4、3、2、1、8、9 之一")
    assert info.value.message("en").startswith("enter one of 5, 4, 3, 2, 1, 8, 9")
    assert isinstance(info.value, ValueError)


def test_single_uses_its_own_scale():
    assert Q.validate("D0", "9") == 9
    with pytest.raises(AnswerError, match="enter one of 1, 2, 9"):
        Q.validate("D0", 8)  # yesno_dk has no "not applicable"
    with pytest.raises(AnswerError, match="enter one of 1, 2 "):
        Q.validate("S1", 9)


def test_open_answers_are_trimmed_and_bounded():
    assert Q.validate("OPEN1", "  客服更耐心一些 ") == "客服更耐心一些"
    assert Q.validate("OPEN1", "好" * 2000) == "好" * 2000
    with pytest.raises(AnswerError) as info:
        Q.validate("OPEN1", "好" * 2001)
    assert info.value.messages == {"zh-CN": "回答过长：2001 字，最多 2000 字",
                                   "en": "answer too long: 2001 characters, at most 2000"}
    with pytest.raises(AnswerError, match="an answer is required"):
        Q.validate("OPEN1", "   ")


def test_info_screens_take_no_answer():
    assert Q.validate("INTRO", "anything") is None


@pytest.fixture(scope="module")
def variant() -> Questionnaire:
    """The mini study plus a multi-choice question."""
    raw = copy.deepcopy(load_study(DEFAULT_STUDY_PATH.parents[2] / "tests/study/data/minimal.yaml").raw)
    raw["scales"]["channel"] = {"labels": {1: {"zh-CN": "电话", "en": "Phone"}, 2: {"zh-CN": "网页", "en": "Web"},
                                           3: {"zh-CN": "App", "en": "App"}},
                                "missing": {9: {"zh-CN": "不知道", "en": "Don't know"}}}
    raw["questions"].insert(3, {"code": "CH", "type": "multi", "scale": "channel",
                                "text": {"zh-CN": "您用过哪些渠道？", "en": "Which channels did you use?"}})
    return Questionnaire(validate_study_mapping(raw, source="variant"))


def test_numeric_bounds(variant):
    assert variant.validate("AGE", "42") == 42
    assert variant.validate("AGE", "42.5") == 42.5
    assert variant.validate("AGE", 18) == 18
    with pytest.raises(AnswerError) as info:
        variant.validate("AGE", "17")
    assert info.value.messages["en"] == "the number must be between 18 and 99 (got 17)"
    assert info.value.messages["zh-CN"] == "数值须在 18 到 99 之间（收到：17）"
    for bad in ("abc", "nan", float("inf"), None, True):
        with pytest.raises(AnswerError, match="enter a number"):
            variant.validate("AGE", bad)


def test_multi_choice(variant):
    assert variant.validate("CH", "3,1") == [1, 3]
    assert variant.validate("CH", [2, "2"]) == [2]
    assert variant.validate("CH", "9") == [9]
    with pytest.raises(AnswerError, match="cannot be combined"):
        variant.validate("CH", "1 9")
    with pytest.raises(AnswerError, match="choose one or more of 1, 2, 3, 9"):
        variant.validate("CH", "1,4")
    with pytest.raises(AnswerError):
        variant.validate("CH", "")


def test_ask_if_with_in_list_in_the_mini_study(variant):
    # X2 is asked only when X1 is 1 or 2; CH (inserted after X2) follows either way
    assert variant.next_code({"S1": 1, "X1": 2}, "X1") == "X2"
    assert variant.next_code({"S1": 1, "X1": 4}, "X1") == "CH"
    assert variant.path({"S1": 1, "X1": 4}) == ["S1", "X1", "CH", "AGE", "END"]


# -- rendering -----------------------------------------------------------------------------------------------


def test_render_pipes_enterprise_name_in_both_languages():
    ctx = {"enterprise_name": "招商银行", "interviewer_name": "王芳"}
    zh = Q.render("S1", "zh-CN", ctx)
    assert zh["text"] == "请问您最近3个月内是否拨打过招商银行的客服热线？"
    en = Q.render("S1", "en", {"enterprise_name": "China Merchants Bank", "months": 6})
    assert en["text"] == "In the last 6 months, have you called the customer-service hotline of China Merchants Bank?"
    intro = Q.render("INTRO", "zh-CN", ctx)["text"]
    assert intro.startswith("您好！我是联信调研的访员王芳。我们受委托开展一项关于招商银行客服热线服务质量的独立调查，想了解")
    assert Q.render("INTRO", "en", ctx)["text"].startswith("Hello! I am 王芳 from Lianxin Research.")


def test_render_missing_context_shows_a_visible_placeholder():
    assert Q.render("S1", "zh-CN")["text"] == "请问您最近3个月内是否拨打过[enterprise_name]的客服热线？"
    assert Q.render("S1", "de", {})["lang"] == "zh-CN"  # unknown language: study default


def test_render_options_with_keys_and_missing_flags():
    view = Q.render("A1", "en", {"enterprise_name": "ACME"})
    assert (view["code"], view["type"], view["section"]) == ("A1", "rating", "A")
    assert [(o["key"], o["label"], o["missing"]) for o in view["options"]] == [
        ("5", "Very satisfied", False), ("4", "Satisfied", False), ("3", "Neutral", False),
        ("2", "Dissatisfied", False), ("1", "Very dissatisfied", False),
        ("8", "Not applicable", True), ("9", "Don't know / can't remember", True)]
    assert [o["label"] for o in Q.render("D0", "zh-CN")["options"]] == ["是", "否", "不知道/不记得"]
    open_view = Q.render("OPEN1", "zh-CN", {"enterprise_name": "某银行"})
    assert open_view["options"] == [] and open_view["max_length"] == 2000
    # Callers may mutate what they get without changing the next render
    view["options"].clear()
    assert len(Q.render("A1", "en")["options"]) == 7


# -- rules (hypothesis) --------------------------------------------------------------------------------------

codes = st.sampled_from(ALL + ["ZZ9"])
values = st.one_of(st.none(), st.integers(0, 10), st.sampled_from(["", "1", "x", "好"]))


@settings(max_examples=200, deadline=None)
@given(answers=st.dictionaries(codes, values, max_size=20))
def test_prune_is_a_fixed_point_and_loses_nothing(answers):
    kept, dropped = Q.prune(answers)
    assert Q.prune(kept) == (kept, {})
    assert set(kept) <= set(Q.path(answers))
    assert set(kept).isdisjoint(dropped)
    assert {**kept, **dropped} == {k: v for k, v in answers.items() if v not in (None, "")}
    assert Q.path(kept) == Q.path(answers)
    if Q.is_complete(answers):
        assert all(c in kept for c in Q.path(answers) if STUDY.question(c).type != "info")


@settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.sampled_from(["1", "2", "4", "5", "8", "9", "x", "", "好"]), max_size=60))
def test_random_key_presses_keep_answers_consistent(keys):
    answers: dict = {}
    code = Q.first()
    for key in keys:
        if code is None:
            break
        try:
            step = Q.advance(answers, code, key)
        except AnswerError:
            continue  # invalid key: nothing changes, same question
        answers, code = step.answers, step.next_code
        assert Q.prune(answers) == (answers, {})
        assert step.termination is None or code is None


# -- answering a whole interview in one pass -----------------------------------------------------------------


def _one_by_one(answers: dict, start: str):
    """The reference: advance answer by answer along the route (what the console does, key press by key press)."""
    current: dict = {}
    answered, step, code = [], None, start
    while code is not None and code in answers:
        step = Q.advance(current, code, answers[code])
        current = step.answers
        answered.append((code, step.value))
        if step.termination:
            break
        code = step.next_code
    return answered, step


_VALUE = st.one_of(st.sampled_from([1, 2, 3, 4, 5, 8, 9]), st.none(), st.just(""), st.just("好"))


@settings(max_examples=150, deadline=None)
@given(consent=st.sampled_from([1, 2]), s1=st.sampled_from([1, 2]), s2=st.sampled_from([1, 2]),
       d0=st.sampled_from([1, 2, 9]), cut=st.integers(0, 45), extra=st.dictionaries(st.sampled_from(ALL), _VALUE))
def test_advance_through_gives_what_advancing_answer_by_answer_gives(consent, s1, s2, d0, cut, extra):
    answers = {"INTRO": None, **full(d0), "CONSENT": consent, "S1": s1, "S2": s2, "END": None}
    answers = dict(list(answers.items())[:cut])  # a break-off somewhere
    for code, value in extra.items():  # odd values where they are valid, skipped answers elsewhere
        try:
            Q.validate(code, value)
        except AnswerError:
            continue
        answers[code] = value
    expected = _one_by_one(answers, Q.first())
    assert Q.advance_through(answers, Q.first()) == expected


def test_advance_through_stops_at_a_screen_out_with_its_disposition():
    answered, step = Q.advance_through({"INTRO": None, "CONSENT": 1, "S1": 2, "S2": 1, "D0": 1}, "INTRO")
    assert [c for c, _v in answered] == ["INTRO", "CONSENT", "S1"]
    assert step.termination == "4.70" and step.next_code is None


def test_advance_through_rejects_an_invalid_answer():
    with pytest.raises(AnswerError):
        Q.advance_through({"INTRO": None, "CONSENT": 7}, "INTRO")
