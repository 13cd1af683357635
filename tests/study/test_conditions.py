"""The skip-rule language: worked examples, rejected constructs, and rules checked with hypothesis."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cati.study.conditions import ConditionError, compile_condition

EXAMPLES = [
    # expression, answers, expected
    ("D0 == 1", {"D0": 1}, True),
    ("D0 == 1", {"D0": 2}, False),
    ("D0 == 1", {}, False),  # unanswered is None; comparisons with None are false ...
    ("D0 != 1", {}, False),  # ... all of them
    ("not D0 == 1", {}, True),  # but `not` still negates the false comparison
    ("D0 == 1", {"D0": "1"}, True),  # digits from a form compare as numbers
    ("A1 >= 4", {"A1": 5}, True),
    ("A1 >= 4", {"A1": 3}, False),
    ("A1 < 3", {"A1": "x"}, False),  # incomparable: false, no error
    ("1 <= A1 <= 3", {"A1": 2}, True),
    ("1 <= A1 <= 3", {"A1": 4}, False),
    ("S1 in [1, 2]", {"S1": 2}, True),
    ("S1 in [1, 2]", {"S1": 9}, False),
    ("S1 not in [8, 9]", {"S1": 2}, True),
    ("S1 not in [8, 9]", {}, False),
    ("P0 == 'north'", {"P0": "north"}, True),
    ("P0 in ('north', 'east')", {"P0": "west"}, False),
    ("T < -5", {"T": -7}, True),
    ("answered(D0)", {"D0": 9}, True),  # don't know is an answer
    ("answered(D0)", {"D0": ""}, False),
    ("answered(D0)", {"D0": None}, False),
    ("not answered(D0)", {}, True),
    ("D0 == 1 and A1 >= 4", {"D0": 1, "A1": 4}, True),
    ("D0 == 1 and A1 >= 4", {"D0": 1, "A1": 3}, False),
    ("D0 == 1 or A1 >= 4", {"D0": 2, "A1": 5}, True),
    ("(D0 == 1 or D0 == 9) and not S1 == 2", {"D0": 9, "S1": 1}, True),
    ("(D0 == 1 or D0 == 9) and not S1 == 2", {"D0": 9, "S1": 2}, False),
]


@pytest.mark.parametrize(("expr", "answers", "expected"), EXAMPLES)
def test_worked_examples(expr, answers, expected):
    assert compile_condition(expr).evaluate(answers) is expected


def test_codes_and_literals_are_exposed():
    cond = compile_condition("D0 == 1 and (S1 in [1, 2] or not answered(P1))")
    assert cond.codes == frozenset({"D0", "S1", "P1"})
    assert set(cond.literals) == {("D0", 1), ("S1", 1), ("S1", 2)}


REJECTED = [
    ("D0 = 1", "use == to compare"),
    ("D0 == 1 && S1 == 1", "use and / or"),
    ("D0", "expected a comparison"),
    ("1", "expected a comparison"),
    ("len(D0) == 1", "the only function is answered"),
    ("answered(D0, S1)", "exactly one question code"),
    ("answered(D0) == 1", "not a value to compare"),
    ("D0 == True", "literal True is not allowed"),
    ("D0 == None", "literal None is not allowed"),
    ("D0.real == 1", "Attribute is not allowed"),
    ("D0 + 1 == 2", "BinOp is not allowed"),
    ("D0 in 3", "needs a list of values"),
    ("D0 == [1, 2]", "a list can only follow 'in'"),
    ("D0 is 1", "operator Is is not allowed"),
    ("__import__('os').system('true')", "the only function is answered"),
    ("(lambda: 1)() == 1", "the only function is answered"),
    ("[x for x in D0] == 1", "ListComp is not allowed"),
    ("D0 == 1 if S1 else 2", "IfExp is not allowed"),
    ("", "empty condition"),
]


@pytest.mark.parametrize(("expr", "words"), REJECTED)
def test_constructs_outside_the_language_are_rejected(expr, words):
    with pytest.raises(ConditionError, match=words.replace("(", r"\(").replace("[", r"\[")):
        compile_condition(expr)


def test_known_codes_rejects_unknown_questions():
    assert compile_condition("D0 == 1", known_codes={"D0"}).codes == {"D0"}
    with pytest.raises(ConditionError, match="unknown questions 'X8', 'X9'"):
        compile_condition("X9 == 1 or X8 == 2 or D0 == 1", known_codes={"D0"})


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(ConditionError):
        compile_condition("not " * 5000 + "D0 == 1")


# ------------------------------------------------------------------------------------------------------------
# Rules

answer_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.binary(max_size=3),
)
CODES = ["D0", "A1", "S1", "P0"]
answer_dicts = st.dictionaries(st.sampled_from(CODES), answer_values)
CONDITIONS = [compile_condition(e) for e, _, _ in EXAMPLES if set(compile_condition(e).codes) <= set(CODES)]


@settings(max_examples=300, deadline=None)
@given(answers=answer_dicts)
def test_evaluate_never_raises_and_returns_a_bool(answers):
    for cond in CONDITIONS:
        assert cond.evaluate(answers) in (True, False)


OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
       ">=": operator.ge}


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(sorted(OPS)), literal=st.integers(-20, 20), value=st.one_of(st.none(), st.integers(-20, 20)))
def test_integer_comparisons_follow_arithmetic_and_none_is_false(op, literal, value):
    cond = compile_condition(f"X {op} {literal}")
    expected = False if value is None else OPS[op](value, literal)
    assert cond.evaluate({"X": value}) is expected
    # `not` is the exact negation, also for unanswered questions
    assert compile_condition(f"not X {op} {literal}").evaluate({"X": value}) is (not expected)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 9), max_size=4), value=st.one_of(st.none(), st.integers(0, 9)))
def test_in_and_not_in_are_complements_except_for_none(values, value):
    listed = ", ".join(map(str, values))
    inside = compile_condition(f"X in [{listed}]").evaluate({"X": value})
    outside = compile_condition(f"X not in [{listed}]").evaluate({"X": value})
    if value is None:
        assert (inside, outside) == (False, False)
    else:
        assert inside is (value in values)
        assert outside is (not inside)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="D0A1 ()[]=!<>,'\"-notandrinswe_.+*:", max_size=30))
def test_compile_accepts_or_raises_condition_error_only(text):
    try:
        cond = compile_condition(text)
    except ConditionError:
        return
    assert cond.evaluate({}) in (True, False)
