"""The predictive pacer's promises (issue 18), as properties over any team and any evidence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cati.services.pacer import CEILING, MIN_EVIDENCE, PacerInput, decide, expected_abandon_share

inputs = st.builds(
    PacerInput,
    ready=st.integers(0, 30), soon_free=st.integers(0, 10), in_flight=st.integers(0, 40),
    p_person=st.floats(0.01, 0.9), evidence_dials=st.integers(0, 5000),
    abandoned_today=st.integers(0, 20), persons_today=st.integers(0, 2000),
    abandoned_hour=st.integers(0, 5), persons_hour=st.integers(0, 300),
    target=st.floats(0.001, 0.2), ceiling=st.just(CEILING),
)


@given(inputs)
def test_never_dials_when_nobody_is_or_will_be_free(inp):
    if inp.ready == 0 and inp.soon_free == 0:
        assert decide(inp).dials == 0


@given(inputs)
def test_never_plans_above_the_ceiling_whatever_the_target(inp):
    d = decide(inp)
    agents = inp.ready + inp.soon_free
    if d.mode == "predictive":
        share = expected_abandon_share(inp.in_flight + d.dials, inp.p_person, agents)
        assert share <= min(inp.target, CEILING) + 1e-12
        assert d.dials <= 3 * agents


@given(inputs)
def test_without_evidence_it_is_progressive(inp):
    if inp.evidence_dials < MIN_EVIDENCE:
        d = decide(inp)
        assert d.mode in ("progressive", "none")
        assert d.dials == (max(inp.ready - inp.in_flight, 0) if inp.ready + inp.soon_free else 0)


@given(inputs)
def test_near_the_target_it_brakes_to_progressive(inp):
    rate_today = inp.abandoned_today / inp.persons_today if inp.persons_today else 0
    if inp.ready + inp.soon_free and rate_today >= 0.8 * min(inp.target, CEILING):
        assert decide(inp).mode == "progressive"


def test_predictive_dials_ahead_when_few_dials_reach_a_person():
    d = decide(PacerInput(ready=6, p_person=0.2, evidence_dials=2000))
    assert d.mode == "predictive" and d.dials > 6 and d.expected_abandon_share <= 0.03
    # a likelier answer needs fewer dials for the same team
    assert decide(PacerInput(ready=6, p_person=0.5, evidence_dials=2000)).dials < d.dials
