"""Wrap-up rules without the web: which codes fit the call, what a code requires, appointment times in the
respondent's local time."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from cati.models import InterviewStatus
from cati.models.calls import AttemptStatus
from cati.services import wrapup
from cati.services.scheduling import rules_for


def attempt(status=AttemptStatus.ENDED, answered=False, amd=None, requested=False):
    return SimpleNamespace(status=status, answered_at=datetime.now(UTC) if answered else None,
                           machine_detection=amd, amd_requested=requested)


def test_call_state_and_offered_codes_follow_the_call():
    assert wrapup.call_state(None) == "none"
    assert wrapup.call_state(attempt(AttemptStatus.ANSWERED, True, requested=True)) == "detecting"
    assert wrapup.call_state(attempt(AttemptStatus.ANSWERED, True, amd="fax")) == "machine"
    assert wrapup.offered_codes(None, None) is None
    assert wrapup.offered_codes(attempt(AttemptStatus.RINGING), None) is None
    assert wrapup.offered_codes(attempt(), None)[0] == "3.13"
    assert wrapup.offered_codes(attempt(answered=True, amd="MACHINE"), None)[0] == "3.14"
    running = SimpleNamespace(status=InterviewStatus.IN_PROGRESS)
    assert wrapup.offered_codes(attempt(answered=True), running)[0] == "2.12"


def test_appointments_are_respondent_local_inside_the_calling_window(study):
    rules = rules_for(study)
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
    assert wrapup.parse_appointment("2026-03-02", "14:00", "Asia/Shanghai", now, rules) == \
        datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    for day, hour, key in (("2026-03-01", "14:00", "appointment_past"), ("2026-03-03", "23:30", "appointment_outside"),
                           ("someday", "14:00", "appointment_bad")):
        with pytest.raises(ValueError, match=key):
            wrapup.parse_appointment(day, hour, "Asia/Shanghai", now, rules)
    choices = wrapup.appointment_choices(SimpleNamespace(timezone="Asia/Shanghai"), rules, now)
    assert choices["tz"] == "Asia/Shanghai" and choices["slots"] and choices["quick"][0]["key"] == "quick_1h"


def test_a_code_that_does_not_fit_says_every_reason_as_keys(study):
    entry = wrapup.Wrapup(code="2.21")  # a contact code after an unanswered call, and without its appointment
    with pytest.raises(wrapup.WrapupError) as err:
        wrapup.code_call(None, SimpleNamespace(timezone="Asia/Shanghai"), 1, entry, datetime.now(UTC),
                         rules=rules_for(study), attempt=attempt(), interview=None)
    assert err.value.keys == ["outcome_invalid", "appointment_required"]
