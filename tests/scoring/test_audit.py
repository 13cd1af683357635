"""Audit scoring (scoring/audit.py) against hand-worked cases."""

from __future__ import annotations

import math

import pytest

from scoring.audit import score_audit


def _checklist(sizes: dict[str, int]) -> dict[str, str]:
    """Requirement code -> category code: ``{"1": 3}`` gives 1.1.1, 1.1.2, 1.1.3 in category 1."""
    return {f"{cat}.1.{i}": cat for cat, n in sizes.items() for i in range(1, n + 1)}


def _judge(cat: str, yes: int, no: int = 0, na: int = 0) -> dict[str, str]:
    values = ["yes"] * yes + ["no"] * no + ["na"] * na
    return {f"{cat}.1.{i}": v for i, v in enumerate(values, start=1)}


def test_not_applicable_is_left_out_of_the_base():
    # 9 yes, 1 no, 5 na: 9 / 10 = 90 % (not 9 / 15 = 60 %)
    r = score_audit(_judge("1", 9, 1, 5), _checklist({"1": 15}))
    row = r.categories.loc["1"]
    assert (row.conforming, row.nonconforming, row.not_applicable, row.applicable) == (9, 1, 5, 10)
    assert row.percentage == pytest.approx(90.0) and row.status == "pass" and row.passed
    assert r.passed and r.summary == "audit=pass categories_passed=1/1"


def test_exactly_90_percent_passes_and_89_9_fails():
    # 27 / 30 = 0.9 exactly; 899 / 1000 = 0.899
    at = score_audit(_judge("1", 27, 3), _checklist({"1": 30}))
    assert at.categories.loc["1", "passed"] and at.passed
    below = score_audit(_judge("1", 899, 101), _checklist({"1": 1000}))
    assert below.categories.loc["1", "percentage"] == pytest.approx(89.9)
    assert below.categories.loc["1", "status"] == "fail" and not below.passed
    assert below.summary == "audit=fail categories_passed=0/1"
    # a hair under 90 % fails though it would print as 90.0
    hair = score_audit(_judge("1", 8999, 1001), _checklist({"1": 10000}))
    assert not hair.passed


def test_a_centre_failing_one_category_fails_overall():
    sizes = {str(k): 10 for k in range(1, 10)}
    j: dict[str, str] = {}
    for k in range(1, 10):
        j |= _judge(str(k), 10) if k != 6 else _judge("6", 8, 2)  # category 6: 80 %
    r = score_audit(j, _checklist(sizes))
    assert list(r.categories.index) == [str(k) for k in range(1, 10)]
    assert r.categories["passed"].tolist() == [k != 6 for k in range(1, 10)]
    assert r.categories.loc["6", "percentage"] == pytest.approx(80.0)
    assert not r.passed and r.categories_passed == 8 and r.categories_total == 9
    assert r.summary == "audit=fail categories_passed=8/9"
    assert r.nonconforming == ["6.1.9", "6.1.10"]


def test_all_nine_pass():
    j: dict[str, str] = {}
    for k in range(1, 10):
        j |= _judge(str(k), 18, 2)
    r = score_audit(j, _checklist({str(k): 20 for k in range(1, 10)}))
    assert r.passed and r.summary == "audit=pass categories_passed=9/9"


def test_a_category_with_every_item_not_applicable_is_not_assessed_and_not_passed():
    # Deliberate (module docstring): 0 applicable judgements show no conformity, so the category is
    # "not_assessed", does not count as passed, and the standard's all-must-pass rule fails the audit.
    j = _judge("1", 3) | _judge("2", 0, 0, 3)
    r = score_audit(j, _checklist({"1": 3, "2": 3}))
    row = r.categories.loc["2"]
    assert row.applicable == 0 and row.not_applicable == 3 and math.isnan(row.percentage)
    assert row.status == "not_assessed" and not row.passed
    assert not r.passed and r.summary == "audit=fail categories_passed=1/2"


def test_pooled_rule_when_not_all_categories_must_pass():
    # 10/10 and 8/10: category 2 fails but the pooled 18/20 = 90 % reaches the threshold
    j = _judge("1", 10) | _judge("2", 8, 2)
    r = score_audit(j, _checklist({"1": 10, "2": 10}), all_categories_must_pass=False)
    assert r.passed and r.categories_passed == 1
    r = score_audit(_judge("1", 10) | _judge("2", 7, 3), _checklist({"1": 10, "2": 10}),
                    all_categories_must_pass=False)
    assert not r.passed  # 17 / 20


def test_threshold_is_configurable():
    j = _judge("1", 8, 2)
    assert score_audit(j, _checklist({"1": 10}), category_threshold=0.8).passed
    assert not score_audit(j, _checklist({"1": 10}), category_threshold=0.85).passed
    assert score_audit(_judge("1", 1, 0), _checklist({"1": 1}), category_threshold=1).passed


@pytest.mark.parametrize(("judgements", "message"), [
    ({"1.1.1": "yes"}, "without a judgement: 1.1.2"),
    ({"1.1.1": "yes", "1.1.2": "yes", "9.9.9": "no"}, "unknown requirement"),
    ({"1.1.1": "yes", "1.1.2": "maybe"}, "'maybe' is not one of yes, no, na"),
])
def test_bad_input_is_refused(judgements, message):
    with pytest.raises(ValueError, match=message):
        score_audit(judgements, _checklist({"1": 2}))


@pytest.mark.parametrize("threshold", [0, -0.1, 1.01])
def test_threshold_out_of_range(threshold):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        score_audit(_judge("1", 1), _checklist({"1": 1}), category_threshold=threshold)
