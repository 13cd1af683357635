"""The contact model (who is likely to answer now) and how next_case uses it: ranking and best time to call."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from cati.db import transaction
from cati.models import AuditLog, CallAttempt, Case, Enterprise, Study
from cati.services.calling import CallRules
from cati.services.contact_model import (
    PRIOR_RATE,
    ContactModel,
    allowed_masks,
    coming_slots,
    contact_model,
    reset_contact_models,
)
from cati.services.scheduling import (
    Claim,
    best_time_deferral,
    next_case,
    release_best_time_deferral,
    rules_for,
)
from tests import factories as f

NOW = f.MONDAY_10AM  # 10:00 Asia/Shanghai, morning
RULES = CallRules()
MORNING, AFTERNOON, EVENING = 0, 1, 2
EVENING_TRIED = 1 << EVENING


def test_rates_shrink_towards_the_slot_and_the_overall_rate():
    m = ContactModel(3)
    # Worked example: weekday mornings, 40 fresh dials with 4 contacts and 10 evening-tried dials with 6.
    m.add(0, MORNING, 0, 40, 4)
    m.add(0, MORNING, EVENING_TRIED, 10, 6)
    overall = (10 + PRIOR_RATE * 20) / (50 + 20)  # 16 / 70
    slot = (10 + overall * 20) / (50 + 20)
    rates = m.rates(0, MORNING)
    assert rates[0] == pytest.approx((4 + slot * 20) / (40 + 20))
    assert rates[EVENING_TRIED] == pytest.approx((6 + slot * 20) / (10 + 20))
    # A mask never dialed in this slot takes the slot's rate, lowered when the slot's own part was tried.
    assert rates[1 << AFTERNOON] == pytest.approx(slot)
    assert rates[1 << MORNING] == pytest.approx(slot * 0.85)
    # With no data at all: untried parts first (docs/domain.md), everything else equal.
    cold = ContactModel(3).rates(0, EVENING)
    assert cold[0] == cold[1] == pytest.approx(PRIOR_RATE) and cold[EVENING_TRIED] < cold[0]


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 7), st.integers(0, 50)), max_size=30),
       st.integers(0, 1), st.integers(0, 2))
def test_rates_are_probabilities(cells, weekend, part):
    m = ContactModel(3)
    for w, p, mask, n in cells:
        m.add(w, p, mask, n, n // 3)
    assert all(0.0 <= r <= 1.0 for r in m.rates(weekend, part))


def test_coming_slots_follow_the_calling_windows():
    # Monday 10:00 → the afternoon at 13:30 (lunch is not callable), the evening at 17:30, Tuesday morning 09:00.
    starts = coming_slots(NOW, "Asia/Shanghai", RULES)
    assert [(s.astimezone(f.SHANGHAI).strftime("%a %H:%M"), slot) for s, slot in starts] == [
        ("Mon 13:30", (0, AFTERNOON)), ("Mon 17:30", (0, EVENING)), ("Tue 09:00", (0, MORNING))]


def test_allowed_masks_hold_back_cases_that_answer_better_later():
    m = ContactModel(3)
    m.add(0, MORNING, 0, 200, 20)  # fresh cases: 10 % in the morning and the afternoon …
    m.add(0, AFTERNOON, 0, 200, 20)
    m.add(0, EVENING, 0, 200, 100)  # … 50 % in the evening
    m.add(0, MORNING, EVENING_TRIED, 200, 120)  # rang out in the evening: 60 % in the morning
    rates, allowed, later = allowed_masks(m, NOW, "Asia/Shanghai", RULES, 0.75)
    assert 0 not in allowed and EVENING_TRIED in allowed
    assert later.astimezone(f.SHANGHAI).strftime("%a %H:%M") == "Mon 17:30"
    assert rates[EVENING_TRIED] > rates[0]
    # Ratio 0: whatever is due is dialed.
    assert allowed_masks(m, NOW, "Asia/Shanghai", RULES, 0.0)[1] == list(range(8))


def _seed_dials(s, case_ids, *, part, mask, n, contacts, weekday=4):
    """``n`` settled dials (``contacts`` of them reaching someone) of the given slot and mask, last Friday."""
    seq = count()
    for i in range(n):
        cid = case_ids[i % len(case_ids)]
        s.add(CallAttempt(call_id=f"seed-{part}-{mask}-{i}-{next(seq)}", case_id=cid, backend="simulated",
                          requested_at=NOW - timedelta(days=3), outcome="2.113" if i < contacts else "3.13",
                          day_part=part, tried_parts_before=mask, local_weekday=weekday))


@pytest.fixture
def learned(session_factory, study):
    """One enterprise: 3 fresh cases and 3 that rang out in the evening (with more attempts); last week's dials
    say fresh cases answer 10 % in the daytime and 50 % in the evening, evening-tried ones 60 % in the morning."""
    reset_contact_models()
    with transaction(session_factory) as s:
        st_ = s.get(Study, study.id)
        e = f.enterprise(s, st_)
        fresh = f.cases(s, st_, e, 3)
        tried = f.cases(s, st_, e, 3)
        for cid in tried:
            c = s.get(Case, cid)
            c.tried_day_parts, c.attempts, c.last_outcome = EVENING_TRIED, 2, "3.13"
        iv = f.user(s, username="iv-cm")
        _seed_dials(s, fresh, part="morning", mask=0, n=200, contacts=20)
        _seed_dials(s, fresh, part="afternoon", mask=0, n=200, contacts=20)
        _seed_dials(s, fresh, part="evening", mask=0, n=200, contacts=100)
        _seed_dials(s, tried, part="morning", mask=EVENING_TRIED, n=200, contacts=120)
    yield dict(study_id=study.id, fresh=fresh, tried=tried, iv=iv.id)
    reset_contact_models()


def _claim(session_factory, study_id, iv, now=NOW):
    with transaction(session_factory) as s:
        return next_case(s, s.get(Study, study_id), iv, now)


def test_next_case_calls_the_likeliest_to_answer_first(session_factory, learned):
    got = _claim(session_factory, learned["study_id"], learned["iv"])
    # The evening-tried case wins over fresh sample despite its two attempts: 60 % against 10 % this morning.
    assert isinstance(got, Claim) and got.case_id in learned["tried"]
    with transaction(session_factory) as s:
        model = contact_model(s, s.get(Study, learned["study_id"]), rules_for(s.get(Study, learned["study_id"])), NOW)
        assert model.dials == 800


def test_best_time_to_call_holds_fresh_sample_for_the_evening(session_factory, learned):
    with transaction(session_factory) as s:
        st_ = s.get(Study, learned["study_id"])
        definition = dict(st_.definition)
        definition["calling_rules"] = {**definition["calling_rules"], "best_time_ratio": 0.75}
        st_.definition, st_.version = definition, st_.version + 1
        others = [f.user(s, username=f"iv-cm{k}").id for k in range(3)]
    with transaction(session_factory) as s:
        deferral = best_time_deferral(s, s.get(Study, learned["study_id"]), NOW)
    # The fresh cases are better called in the evening: the board says how many and until when.
    assert deferral.cases == 3 and deferral.until.astimezone(f.SHANGHAI).strftime("%a %H:%M") == "Mon 17:30"
    claimed = [_claim(session_factory, learned["study_id"], iv) for iv in [learned["iv"], *others]]
    # The three evening-tried cases are worth calling now and go first; then, rather than idle the fourth
    # interviewer until 17:30, a fresh case is handed out (a preference, never a reason to wait).
    assert sorted(c.case_id for c in claimed[:3]) == sorted(learned["tried"])
    assert isinstance(claimed[3], Claim) and claimed[3].case_id in learned["fresh"]


def test_a_supervisor_releases_the_deferred_cases_until_their_better_time(session_factory, learned):
    """Deferred cases are dialed last; released, the neediest enterprise's cases come first again."""
    with transaction(session_factory) as s:
        st_ = s.get(Study, learned["study_id"])
        definition = dict(st_.definition)
        definition["calling_rules"] = {**definition["calling_rules"], "best_time_ratio": 0.75}
        st_.definition, st_.version = definition, st_.version + 1
        # A second enterprise with nothing done and only fresh sample: the neediest, but best called tonight.
        needy = f.cases(s, st_, f.enterprise(s, st_, name="乙银行"), 2)
        s.execute(update(Enterprise).where(Enterprise.id != s.get(Case, needy[0]).enterprise_id)
                  .values(completes=10))
        sup = f.user(s, role="supervisor").id
    first = _claim(session_factory, learned["study_id"], learned["iv"])
    assert first.case_id in learned["tried"]  # preferred: reachable now, though its enterprise is less needy
    with transaction(session_factory) as s:
        released = release_best_time_deferral(s, s.get(Study, learned["study_id"]), NOW, user_id=sup)
        assert released.cases == 5 and released.until.astimezone(f.SHANGHAI).strftime("%H:%M") == "17:30"
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "best_time.release")).one()
        assert entry.user_id == sup and entry.before == {"deferred_cases": 5}
    with transaction(session_factory) as s:
        now_board = best_time_deferral(s, s.get(Study, learned["study_id"]), NOW)
        assert now_board.cases == 0 and now_board.released_until == released.until
    with transaction(session_factory) as s:
        iv2 = f.user(s).id
    assert _claim(session_factory, learned["study_id"], iv2).case_id in needy
    # The release ends when the better part of the day begins; then the preference decides again.
    with transaction(session_factory) as s:
        assert best_time_deferral(s, s.get(Study, learned["study_id"]), released.until).released_until is None


def test_nothing_is_held_back_before_the_slot_has_evidence_then_the_prior_favours_evenings():
    weights = {(w, p): RULES.prior_weight(w, p) for w in (0, 1) for p in range(3)}
    m = ContactModel(3, weights)
    # A new study on Monday morning: the prior prefers the evening, but nobody is sent away on a prior alone.
    assert allowed_masks(m, NOW, "Asia/Shanghai", RULES, 0.75)[1] == list(range(8))
    rates = m.rates(0, EVENING)
    assert rates[0] > m.rates(0, MORNING)[0]  # evenings first in the ranking from the start
    # Twenty mornings dialed (a quarter reached someone): evidence that now is worse than the evening's prior.
    m.add(0, MORNING, 0, 20, 5)
    _rates, allowed, later = allowed_masks(m, NOW, "Asia/Shanghai", RULES, 0.75)
    assert 0 not in allowed
    assert later.astimezone(f.SHANGHAI).strftime("%a %H:%M") == "Mon 17:30"


def test_cases_are_only_held_for_chances_that_waiting_cases_have():
    m = ContactModel(3)
    m.add(0, MORNING, EVENING_TRIED, 200, 50)  # evening-tried cases: 25 % in the morning
    m.add(0, EVENING, 0, 200, 100)  # fresh cases: 50 % in the evening
    m.add(0, EVENING, EVENING_TRIED, 200, 50)  # evening-tried cases: 25 % in the evening again
    m.present = frozenset({0, EVENING_TRIED})
    assert EVENING_TRIED not in allowed_masks(m, NOW, "Asia/Shanghai", RULES, 0.75)[1]  # evening goes to fresh
    # No fresh sample left: the morning is as good a time as any for the evening-tried cases (no endless wait).
    m.present = frozenset({EVENING_TRIED})
    assert EVENING_TRIED in allowed_masks(m, NOW, "Asia/Shanghai", RULES, 0.75)[1]


def test_the_best_part_of_the_day_is_never_held_back_for_its_own_return_tomorrow():
    # Found in the simulator: on a Tuesday evening, fresh cases (22 %) were held "until tomorrow 17:30" because
    # cases whose morning had been tried reach 32 % in the evening. Those are callable now and dialed first;
    # waiting a day gives the fresh cases the same 22 %, and the interviewers idled through the best hours.
    m = ContactModel(3)
    m.add(0, MORNING, 0, 400, 56)  # weekday mornings: 14 %
    m.add(0, AFTERNOON, 0, 400, 44)  # weekday afternoons: 11 %
    m.add(0, EVENING, 0, 400, 88)  # fresh cases in the evening: 22 %
    m.add(0, EVENING, 1 << MORNING, 300, 96)  # morning-tried cases in the evening: 32 %
    m.present = frozenset({0, 1 << MORNING})
    evening = NOW.replace(hour=9, minute=30) + timedelta(days=1)  # Tuesday 17:30 in Shanghai
    assert evening.astimezone(f.SHANGHAI).strftime("%a %H:%M") == "Tue 17:30"
    rates, allowed, later = allowed_masks(m, evening, "Asia/Shanghai", RULES, 0.75)
    assert 0 in allowed and 1 << MORNING in allowed and later is None
    assert rates[1 << MORNING] > rates[0]  # the better ones first
    # The next morning the same fresh cases are held until the evening (14 % < 0.75 × 32 %).
    _rates, allowed, later = allowed_masks(m, evening + timedelta(hours=16, minutes=30), "Asia/Shanghai", RULES, 0.75)
    assert 0 not in allowed
    assert later.astimezone(f.SHANGHAI).strftime("%a %H:%M") == "Wed 17:30"


def test_dials_count_once_coded_and_a_running_interview_holds_back_later_ones(session_factory, study):
    reset_contact_models()
    with transaction(session_factory) as s:
        st_ = s.get(Study, study.id)
        cids = f.cases(s, st_, f.enterprise(s, st_), 4)

    def dial(cid, minutes_ago, outcome):
        with transaction(session_factory) as s:
            a = CallAttempt(call_id=f"settle-{cid}-{minutes_ago}", case_id=cid, backend="simulated",
                            requested_at=NOW - timedelta(minutes=minutes_ago), outcome=outcome, day_part="morning",
                            tried_parts_before=0, local_weekday=0)
            s.add(a)
            s.flush()
            return a.id

    def counted(now):
        with transaction(session_factory) as s:
            st_ = s.get(Study, study.id)
            return contact_model(s, st_, rules_for(st_), now).dials

    dial(cids[0], 95, None)  # never coded and older than an hour: skipped, it blocks nothing
    running = dial(cids[1], 30, None)  # an interview still running
    dial(cids[2], 25, "3.13")
    dial(cids[3], 5, "3.13")  # too recent
    assert counted(NOW) == 0  # the running interview holds back the dial after it
    with transaction(session_factory) as s:
        s.get(CallAttempt, running).outcome = "1.1"
    assert counted(NOW + timedelta(minutes=10)) == 3  # coded: it and the one after it; the recent one now too
    assert counted(NOW + timedelta(minutes=40)) == 3  # nothing counted twice
    reset_contact_models()
