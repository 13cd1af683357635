"""Staffing advice: completes per paid hour by part of the day from the study's own contact model, and a shift
plan that buys the remaining completes with the fewest paid hours."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert

from cati.db import transaction
from cati.models import CallAttempt, Study
from cati.services.calling import in_window
from cati.services.contact_model import reset_contact_models
from cati.services.scheduling import rules_for
from cati.services.staffing import Timing, completes_per_paid_hour, staffing_advice
from tests import factories as f

NOW = f.MONDAY_10AM
T = Timing(q=0.35, t_interview=900, t_contact=180, t_dial=50, own=False)


@given(st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_a_likelier_contact_gives_more_completes_per_paid_hour(a, b):
    lo, hi = sorted((a, b))
    assert completes_per_paid_hour(lo, T) <= completes_per_paid_hour(hi, T) + 1e-12


def _dials(s, study, ent, *, weekend: bool, part: str, n: int, contacts: int):
    """``n`` first dials in one slot, ``contacts`` of them reaching a person (coded, an hour old)."""
    ids = f.cases(s, study, ent, n)
    s.execute(insert(CallAttempt), [
        dict(call_id=f"c-{cid}", case_id=cid, backend="simulated", mode="simulated", status="ENDED",
             requested_at=NOW - timedelta(days=3), ended_at=NOW - timedelta(days=3), day_part=part,
             tried_parts_before=0, local_weekday=5 if weekend else 1,
             outcome="2.21" if i < contacts else "3.13", outcome_source="auto")
        for i, cid in enumerate(ids)])


def test_advice_ranks_the_slots_by_the_studys_own_evidence_and_plans_the_remaining_work(session_factory, study):
    reset_contact_models()
    with transaction(session_factory) as s:
        st_row = s.get(Study, study.id)
        ent = f.enterprise(s, st_row, quota=40)
        # this list answers in weekday mornings (a B2B-like list), against the prior's evening preference
        _dials(s, st_row, ent, weekend=False, part="morning", n=200, contacts=120)
        _dials(s, st_row, ent, weekend=False, part="evening", n=200, contacts=20)
        advice = staffing_advice(s, st_row, NOW, max_team=6)
    best = advice.slots[0]
    assert (best.weekend, best.part) == (False, "morning")
    by = {(x.weekend, x.part): x for x in advice.slots}
    assert by[(False, "morning")].completes_per_paid_hour > 1.5 * by[(False, "evening")].completes_per_paid_hour
    assert advice.remaining == 40
    # The plan covers what remains, every shift inside the calling windows, at most the team size, and its
    # weekday-morning shifts come before any weekday evening (best yield first).
    assert advice.planned_completes >= advice.remaining
    rules = rules_for(st_row)
    for sh in advice.plan:
        assert 1 <= sh.interviewers <= 6
        assert in_window(sh.start, rules.timezone_default, rules)
    parts = [sh.part for sh in advice.plan if not sh.weekend]
    assert "morning" in parts and ("evening" not in parts or parts.count("morning") >= parts.count("evening"))
    # The same completes would cost more paid hours on the worst slot alone.
    worst = advice.slots[-1].completes_per_paid_hour
    assert advice.planned_hours < advice.remaining / worst
