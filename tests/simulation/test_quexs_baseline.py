"""Issue 20 item 6: the queXS baseline follows queXS's get_case_id: after priority the oldest last call comes first
(ties rotate), new sample is drawn only when no existing case is callable, per-outcome delays from queXS's
outcome table, refusals only for refusal converters, work shifts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from cati.db import transaction
from cati.models import Case, CaseStatus
from cati.services.scheduling import Claim
from cati.simulation import Simulator, World
from cati.simulation.strategies import QUEXS_DELAYS

# Monday 2026-11-23 10:00 in Shanghai: inside the weekday calling window and the default shift plan.
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
# The team works weekday mornings only, so a weekday afternoon is inside the calling window but outside the shifts.
WORLD = {"name": "q", "sample": {"enterprises": 1, "quota": 5, "per_enterprise": 12, "replicate_size": 12},
         "interviewers": {"count": 3, "refusal_converters": 1,
                          "shift_plan": [{"share": 1.0, "weekday": [["09:00", "12:00"]]}]}}


@pytest.fixture
def sim(session_factory):
    return Simulator(session_factory, World.from_mapping(WORLD, "test"), strategy="quexs_style", seed=1)


def _cases(sim) -> list[int]:
    with sim.factory() as s:
        return list(s.scalars(select(Case.id).where(Case.study_id == sim.study_id).order_by(Case.id)))


def _dialed(sim, case_id: int, minutes_ago: float, outcome: str = "3.13") -> None:
    with transaction(sim.factory) as s:
        s.execute(update(Case).where(Case.id == case_id).values(
            attempts=1, last_called_at=NOW - timedelta(minutes=minutes_ago), last_outcome=outcome,
            status=CaseStatus.READY))


def _select(sim, k: int = 1, now: datetime = NOW):
    iv = sim.interviewers[k]
    with transaction(sim.factory) as s:
        return sim.strategy.select(s, sim.study, iv.id, now, converter=iv.converter, rng=random.Random(0))


def _release(sim, case_id: int, minutes_ago: float = 0.0) -> None:
    """The claimed case is called and released again (its last call is now the newest)."""
    _dialed(sim, case_id, minutes_ago)
    with transaction(sim.factory) as s:
        s.execute(update(Case).where(Case.id == case_id).values(claimed_by_id=None, claimed_at=None,
                                                                claim_expires_at=None))


def test_oldest_last_call_first_so_ties_rotate(sim):
    ids = _cases(sim)
    # Equal priority (one enterprise); the lowest ids were called most recently (still past the 180-minute delay).
    for rank, cid in enumerate(ids[:4]):
        _dialed(sim, cid, minutes_ago=200 + 10 * rank)
    got = _select(sim)
    assert isinstance(got, Claim) and got.case_id == ids[3]  # the oldest last call, not the lowest id
    _release(sim, ids[3], minutes_ago=181)  # called again; now it is the newest of the four
    order = []
    for _ in range(3):
        got = _select(sim)
        order.append(got.case_id)
        _release(sim, got.case_id, minutes_ago=181 - len(order))
    assert order == [ids[2], ids[1], ids[0]]  # every case gets its turn before any is called a third time


def test_new_sample_only_when_no_existing_case_is_callable(sim):
    ids = _cases(sim)
    _dialed(sim, ids[5], minutes_ago=300)  # callable again (no answer, 180 minutes ago and more)
    _dialed(sim, ids[6], minutes_ago=30)  # not yet (delay 180)
    got = _select(sim)
    assert got.case_id == ids[5]  # the existing case, though never-dialed cases with lower ids exist
    got = _select(sim, k=2)
    # Nothing existing is callable now (ids[5] held, ids[6] too recent): a new case is drawn, in sample order.
    assert isinstance(got, Claim) and got.source == "new" and got.case_id == ids[0]
    with sim.factory() as s:
        assert s.get(Case, got.case_id).attempts == 0


@pytest.mark.parametrize(("outcome", "minutes"), [("3.12", 180), ("3.16", 180), ("3.15", 180), ("3.14", 180),
                                                  ("2.113", 7 * 24 * 60)])
def test_outcome_delays_follow_quexs_outcome_table(sim, outcome, minutes):
    assert QUEXS_DELAYS[outcome] == minutes
    ids = _cases(sim)
    with transaction(sim.factory) as s:  # every other case is closed: only the one under test is left
        s.execute(update(Case).where(Case.id.in_(ids[1:])).values(status=CaseStatus.FINAL))
    _dialed(sim, ids[0], minutes_ago=minutes - 5, outcome=outcome)
    converter = 0  # sim01 is the refusal converter
    assert not isinstance(_select(sim, k=converter), Claim)
    _dialed(sim, ids[0], minutes_ago=minutes + 5, outcome=outcome)
    got = _select(sim, k=converter)
    assert isinstance(got, Claim) and got.case_id == ids[0]


def test_soft_refusals_reach_only_refusal_converters(sim):
    ids = _cases(sim)
    with transaction(sim.factory) as s:
        s.execute(update(Case).where(Case.id.in_(ids[1:])).values(status=CaseStatus.FINAL))
    _dialed(sim, ids[0], minutes_ago=8 * 24 * 60, outcome="2.113")
    assert not sim.interviewers[1].converter
    assert not isinstance(_select(sim, k=1), Claim)
    assert sim.interviewers[0].converter
    assert _select(sim, k=0).case_id == ids[0]


def test_no_case_outside_the_work_shifts(sim):
    from cati.services.calling import in_window

    # Monday 14:00 local: inside the calling window, outside every shift (queXS: restrict_work_shifts).
    afternoon = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert in_window(afternoon, "Asia/Shanghai", sim.rules)
    assert not sim.in_planned_shift(afternoon) and sim.in_planned_shift(NOW)
    assert not isinstance(_select(sim, now=afternoon), Claim)
    assert isinstance(_select(sim, now=NOW), Claim)
