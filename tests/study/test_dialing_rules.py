"""calling_rules.dialing in the study schema: the mode, and an abandon target never above its ceiling."""

from __future__ import annotations

import copy

import pytest
import yaml

from cati.services.calling import CallRules
from cati.study.loader import DEFAULT_STUDY_PATH, StudyError, validate_study_mapping


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(DEFAULT_STUDY_PATH.read_text(encoding="utf-8"))


def _with(raw, dialing):
    data = copy.deepcopy(raw)
    data["calling_rules"]["dialing"] = dialing
    return data


def test_without_dialing_rules_a_study_dials_in_preview_under_3_percent(raw):
    rules = CallRules.from_definition(raw)
    assert (rules.dialing_mode, rules.abandon_target, rules.abandon_ceiling) == ("preview", 0.03, 0.03)


def test_a_predictive_study_keeps_its_target(raw):
    data = _with(raw, {"mode": "predictive", "abandon_target": 0.02})
    validate_study_mapping(data)
    rules = CallRules.from_definition(data)
    assert (rules.dialing_mode, rules.abandon_target) == ("predictive", 0.02)


@pytest.mark.parametrize("dialing, says", [
    ({"abandon_target": 0.04}, "above the 3% ceiling"),
    ({"abandon_target": 0.05, "abandon_ceiling": 0.04}, "above the 4% ceiling"),
    ({"mode": "robocall"}, "calling_rules.dialing.mode"),
    ({"abandon_ceiling": 0.5}, "calling_rules.dialing.abandon_ceiling"),
])
def test_bad_dialing_rules_are_refused_with_their_path(raw, dialing, says):
    with pytest.raises(StudyError) as err:
        validate_study_mapping(_with(raw, dialing))
    assert says in str(err.value)
