"""Predictive pacing: how many respondents to dial now for a team, holding abandoned calls under a target.

Several respondents are dialled per free interviewer because most dials reach nobody. A call answered by a person
who gets no interviewer within 2 s is *abandoned* (Ofcom / FTC); regulators cap abandons at 3 % of calls answered
by a person, over a day. The pacer decides, from

* the interviewers free now and those expected free within a ring time,
* the calls already ringing,
* P(a dial reaches a person) in this part of the day (the study's contact model, with its evidence),
* the abandon rate so far today and in the last hour,

how many calls to place so that the *expected* abandon share of the calls in flight stays under the target:

    persons ~ Binomial(in_flight + n, p_person)
    E[abandoned] = E[max(persons − agents, 0)]
    n = the largest n with E[abandoned] ≤ target · E[persons]

It falls back to progressive (one call per free interviewer, nothing ahead of time) when the evidence for this part
of the day is thin, and when today's or the last hour's abandon rate has reached 80 % of the target. The target
can be lowered freely but never raised above the hard ``ceiling`` (3 %; only an admin changes the ceiling).
Machines detected by AMD never wait for an interviewer (they are hung up and coded), so only persons count; a
person misjudged as a machine is an abandon, which the observed rate charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

#: Regulators' cap on abandoned calls as a share of calls answered by a person (Ofcom, FTC).
CEILING = 0.03
#: Fewer dials than this in the part of the day: the answer rate is not known well enough to dial ahead.
MIN_EVIDENCE = 200
#: Today's or the last hour's abandon rate at this share of the target: back to progressive.
BRAKE_AT = 0.8


@dataclass(frozen=True)
class PacerInput:
    ready: int                      # interviewers free now
    soon_free: int = 0              # interviewers expected free within one ring time
    in_flight: int = 0              # calls placed and not yet answered or ended
    p_person: float = 0.0           # P(a dial is answered by a person) now (contact model)
    evidence_dials: int = 0         # the dials behind p_person
    abandoned_today: int = 0
    persons_today: int = 0          # calls answered by a person today
    abandoned_hour: int = 0
    persons_hour: int = 0
    target: float = CEILING
    ceiling: float = CEILING
    max_per_agent: float = 3.0      # never more than this many calls in flight per available interviewer


@dataclass(frozen=True)
class PacerDecision:
    dials: int
    mode: str        # progressive | predictive | none
    reason: str
    expected_abandon_share: float


def expected_abandon_share(calls: int, p: float, agents: int) -> float:
    """E[max(persons − agents, 0)] / E[persons] for ``calls`` dials each answered by a person with chance ``p``.

    >>> expected_abandon_share(2, 0.3, 2)   # never more persons than agents
    0.0
    >>> round(expected_abandon_share(10, 0.3, 2), 3)
    0.393
    """
    if calls <= 0 or p <= 0:
        return 0.0
    expected_persons = calls * p
    over = sum((k - agents) * comb(calls, k) * p ** k * (1 - p) ** (calls - k) for k in range(agents + 1, calls + 1))
    return over / expected_persons


def _rate(abandoned: int, persons: int) -> float:
    return abandoned / persons if persons else 0.0


def decide(inp: PacerInput) -> PacerDecision:
    """How many calls to place now (see the module docstring)."""
    agents = max(inp.ready, 0) + max(inp.soon_free, 0)
    # The target may be lowered freely; above the ceiling it is cut to the ceiling (an admin sets the ceiling).
    target = min(inp.target, inp.ceiling)
    if agents == 0:
        return PacerDecision(0, "none", "nobody free now or within a ring time", 0.0)
    progressive_n = max(inp.ready - inp.in_flight, 0)
    progressive = PacerDecision(progressive_n, "progressive", "", 0.0)
    if inp.evidence_dials < MIN_EVIDENCE or not 0 < inp.p_person < 1:
        return PacerDecision(progressive_n, "progressive", "thin evidence for this part of the day", 0.0)
    if max(_rate(inp.abandoned_today, inp.persons_today), _rate(inp.abandoned_hour, inp.persons_hour)) \
            >= BRAKE_AT * target:
        return PacerDecision(progressive_n, "progressive", "abandon rate near the target", 0.0)
    cap = int(inp.max_per_agent * agents) - inp.in_flight
    best = progressive_n
    share = expected_abandon_share(inp.in_flight + best, inp.p_person, agents)
    n = best + 1
    while n <= cap:
        s = expected_abandon_share(inp.in_flight + n, inp.p_person, agents)
        if s > target:
            break
        best, share = n, s
        n += 1
    if best <= progressive.dials:
        return PacerDecision(progressive_n, "progressive", "dialling ahead would pass the target", share)
    return PacerDecision(best, "predictive", f"{best} dials for {agents} interviewers at p={inp.p_person:.2f}", share)
