"""Issue 18's dialing-mode comparison on one world and seed: preview, progressive, and predictive pacing at 1 %, 3 %
and 5 % abandon targets.

    python scripts/bench_dialing.py                                   # default world, seed 1, 60 enterprises
    python scripts/bench_dialing.py --world config/worlds/hard_to_reach.yaml --seed 2 --enterprises 40

What it simulates. One team on the world's paid shift plan (every planned hour is paid until the last quota
fills), calling the world's hidden respondents (``cati.simulation.world.Population``: who is around in which part
of which day, pickup, busy lines, voicemail, call blocking, dead numbers, eligibility, refusals, callbacks) with the
world's ring, talk and wrap-up times. The case order is the same in every mode (the case due longest, fewest
attempts first; retries after the catalogue's delays; 6 attempts), so the modes differ only in how calls are paced:

* ``preview`` — the interviewer reads the case (``preview_seconds``), dials, and waits through the ring;
* ``progressive`` — a call is placed the moment an interviewer is free, who still waits through the ring, busy
  tones and machines;
* ``predictive_N`` — the real pacer (``cati.services.pacer.decide``) places calls for the team with an abandon
  target of N % (the 5 % run has its ceiling raised by an "admin"; the shipped ceiling is 3 %). Machines are
  detected (AMD) and never reach an interviewer; a person answered with nobody free within 2 s hears the
  message: an abandoned call, not charged as an attempt, and that case is not dialled again for 72 hours.

Unlike ``bench_fieldwork.py`` this does not run the scheduler or the database: it measures pacing. The talk-time
figure is what a paid hour buys in conversation with people (interviews, refusals, callbacks).

Prints a table and, per mode, one line:
``dialing=<mode> talk_minutes_per_hour=<x> completes_per_paid_hour=<x> abandon_rate=<x> worst_hour_abandon=<x>``
(the worst clock hour among hours with at least 20 persons answered; fewer make a percentage of noise).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cati.services.pacer import CEILING, PacerInput, decide  # noqa: E402
from cati.simulation.world import Population, World, part_of_day  # noqa: E402

MODES = ("preview", "progressive", "predictive_1", "predictive_3", "predictive_5")
MAX_ATTEMPTS = 6
CONNECT_WITHIN_S = 2.0
AMD_SECONDS = 3.0  # answering-machine detection listens this long before a machine is hung up
#: Retry delays (minutes) after each kind of attempt, as config/dispositions.yaml sets them.
RETRY = {"busy": 15, "no_answer": 180, "machine": 180, "blocked": 180, "callback": 120, "abandoned": 72 * 60}
MIN_PERSONS_FOR_HOUR = 20


@dataclass
class Result:
    mode: str
    paid_hours: float = 0.0
    talk_seconds: float = 0.0
    completes: int = 0
    dials: int = 0
    persons: int = 0
    abandoned: int = 0
    days: int = 0
    short: int = 0  # enterprises left short when the sample ran out
    hours: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # clock hour → [persons, abandoned]

    @property
    def talk_minutes_per_hour(self) -> float:
        return self.talk_seconds / 60 / self.paid_hours if self.paid_hours else 0.0

    @property
    def completes_per_paid_hour(self) -> float:
        return self.completes / self.paid_hours if self.paid_hours else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.persons if self.persons else 0.0

    @property
    def worst_hour(self) -> float:
        rates = [a / p for p, a in self.hours.values() if p >= MIN_PERSONS_FOR_HOUR]
        return max(rates) if rates else 0.0


class Bench:
    def __init__(self, world: World, mode: str, seed: int, enterprises: int, interviewers: int):
        self.world, self.mode, self.seed = world, mode, seed
        p = world.params
        per = int(p["sample"]["per_enterprise"])
        self.quota = int(p["sample"]["quota"])
        self.pop = Population(world, [per] * enterprises, seed)
        self.rng = random.Random(seed * 7919 + MODES.index(mode))
        self.iv, self.timing, self.contact = p["interviewers"], p["timing"], p["contact"]
        self.resp = p["respondents"]
        self.target = {"predictive_1": 0.01, "predictive_3": 0.03, "predictive_5": 0.05}.get(mode)
        self.ceiling = max(CEILING, self.target or 0)  # the 5 % run: an admin raised the ceiling
        n = interviewers
        groups = world.shift_groups()
        self.group_of = world.assign_shift_groups(n)
        self.groups = groups
        self.n = n
        self.done = [0] * enterprises
        self.attempts = [0] * len(self.pop.respondents)
        self.closed = [False] * len(self.pop.respondents)
        self.due: list[tuple[datetime, int, int]] = []  # (next call at, attempts, respondent)
        start = world.start()
        for r in self.pop.respondents:
            heapq.heappush(self.due, (start, 0, r.index))
        self.res = Result(mode)
        self.history: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # part → [dials, persons]

    # -- shifts ------------------------------------------------------------------------------------------------
    def shifts(self, day) -> list[list[tuple[datetime, datetime]]]:
        zone = self.world.zone
        out = []
        for k in range(self.n):
            g = self.groups[self.group_of[k]]
            out.append([(datetime.combine(day, _t(a), zone), datetime.combine(day, _t(b), zone))
                        for a, b in g["days"].get(day.weekday(), [])])
        return out

    # -- cases -------------------------------------------------------------------------------------------------
    def next_case(self, now: datetime) -> int | None:
        while self.due and self.due[0][0] <= now:
            _at, att, i = heapq.heappop(self.due)
            r = self.pop.respondents[i]
            if self.closed[i] or self.done[r.enterprise_index] >= self.quota or att != self.attempts[i]:
                continue
            return i
        return None

    def retry(self, i: int, now: datetime, kind: str, charge: bool = True) -> None:
        if charge:
            self.attempts[i] += 1
        if self.attempts[i] >= MAX_ATTEMPTS:
            self.closed[i] = True
            return
        heapq.heappush(self.due, (now + timedelta(minutes=RETRY[kind]), self.attempts[i], i))

    def close(self, i: int) -> None:
        self.attempts[i] += 1
        self.closed[i] = True

    def uni(self, lo_hi) -> float:
        lo, hi = lo_hi if isinstance(lo_hi, list | tuple) else (lo_hi, lo_hi)
        return self.rng.uniform(float(lo), float(hi))

    # -- one dial: what the network and the respondent do ---------------------------------------------------
    def dial(self, i: int, now: datetime) -> tuple[str, float]:
        """(kind, seconds until the kind is known): invalid, busy, blocked, no_answer, machine, person."""
        r = self.pop.respondents[i]
        self.res.dials += 1
        part = part_of_day(now.astimezone(self.world.zone).time())
        self.history[part if part is not None else -1][0] += 1
        if r.invalid:
            return "invalid", float(self.timing["invalid_seconds"])
        if self.rng.random() < float(self.resp["busy"]):
            return "busy", float(self.timing["busy_seconds"])
        if r.blocks:
            return "blocked", 3.0
        if self.pop.available(r, now) and self.rng.random() < float(self.resp["pickup"]):
            self.history[part if part is not None else -1][1] += 1
            return "person", self.uni(self.timing["ring_before_answer_seconds"])
        if r.voicemail:
            return "machine", float(self.timing["no_answer_timeout_seconds"]) * 0.6
        return "no_answer", float(self.timing["no_answer_timeout_seconds"])

    def conversation(self, i: int, now: datetime) -> tuple[float, bool]:
        """A person on the line with an interviewer: (seconds talking, complete?). Closes or reschedules the case."""
        r = self.pop.respondents[i]
        if not r.eligible:
            self.close(i)
            return self.uni(self.timing["screen_out_seconds"]), False
        if r.refuser:
            self.close(i)
            return self.uni(self.timing["refusal_seconds"]), False
        if self.rng.random() < float(self.contact["callback"]):
            self.retry(i, now, "callback")
            return self.uni(self.timing["callback_seconds"]), False
        minutes = max(float(self.timing["interview_minutes_min"]),
                      self.rng.gauss(float(self.timing["interview_minutes_mean"]),
                                     float(self.timing["interview_minutes_sd"])))
        self.close(i)
        return minutes * 60, True

    def complete(self, i: int) -> None:
        e = self.pop.respondents[i].enterprise_index
        if self.done[e] < self.quota:
            self.done[e] += 1
            self.res.completes += 1

    def filled(self) -> bool:
        return all(d >= self.quota for d in self.done)

    def exhausted(self) -> bool:
        """No case is left to call for any enterprise still short (the fieldwork ends there, as in the engine)."""
        return not any(not self.closed[i] and self.done[self.pop.respondents[i].enterprise_index] < self.quota
                       for _at, att, i in self.due if att == self.attempts[i])

    def short(self) -> int:
        return sum(1 for d in self.done if d < self.quota)

    # -- the day -------------------------------------------------------------------------------------------
    def run(self, max_days: int) -> Result:
        day = self.world.start().date()
        for d in range(max_days):
            self.res.days = d + 1
            self.run_day(day + timedelta(days=d))
            if self.filled() or self.exhausted():
                break
        self.res.short = self.short()
        return self.res

    def run_day(self, day) -> None:
        shifts = self.shifts(day)
        events: list[tuple[datetime, int, str, int]] = []  # (time, seq, kind, interviewer or call)
        seq = 0
        for k, spans in enumerate(shifts):
            for a, b in spans:
                seq += 1
                heapq.heappush(events, (a, seq, "on", k))
                seq += 1
                heapq.heappush(events, (b, seq, "off", k))
        on = [False] * self.n
        busy_until: list[datetime | None] = [None] * self.n
        paid_since: list[datetime | None] = [None] * self.n
        in_flight: dict[int, tuple[int, str]] = {}  # call id → (case, kind)
        in_flight_wait: dict[int, int] = {}  # call id → case: a person waiting (up to 2 s) for an interviewer
        calls = 0
        ended_at = None

        def free(k: int, now: datetime) -> bool:
            return on[k] and (busy_until[k] is None or busy_until[k] <= now)

        def hour_key(now: datetime) -> tuple:
            lt = now.astimezone(self.world.zone)
            return (lt.date(), lt.hour)

        def pay_until(now: datetime) -> None:
            for k in range(self.n):
                if paid_since[k] is not None:
                    self.res.paid_hours += (now - paid_since[k]).total_seconds() / 3600
                    paid_since[k] = now

        def occupy(k: int, now: datetime, seconds: float) -> None:
            nonlocal seq
            busy_until[k] = now + timedelta(seconds=seconds)
            seq += 1
            heapq.heappush(events, (busy_until[k], seq, "free", k))

        def talk(k: int, i: int, now: datetime) -> None:
            seconds, done = self.conversation(i, now)
            self.res.talk_seconds += seconds
            if done:
                self.complete(i)
            wrap = float(self.iv["interview_wrap_up_seconds"] if done else self.iv["wrap_up_seconds"])
            occupy(k, now, seconds + wrap)

        def agent_work(k: int, now: datetime) -> None:
            """Preview / progressive: the free interviewer takes the next case and dials it."""
            i = self.next_case(now)
            if i is None:
                nonlocal seq
                seq += 1
                heapq.heappush(events, (now + timedelta(minutes=1), seq, "free", k))  # look again in a minute
                busy_until[k] = now + timedelta(minutes=1)
                return
            lead = float(self.iv["preview_seconds"]) if self.mode == "preview" else 0.0
            kind, seconds = self.dial(i, now + timedelta(seconds=lead))
            at = now + timedelta(seconds=lead + seconds)
            wrap = float(self.iv["wrap_up_seconds"])
            if kind == "person":
                self.res.persons += 1
                self.res.hours[hour_key(at)][0] += 1
                conv, done = self.conversation(i, at)
                self.res.talk_seconds += conv
                if done:
                    self.complete(i)
                wrap = float(self.iv["interview_wrap_up_seconds"] if done else self.iv["wrap_up_seconds"])
                occupy(k, now, lead + seconds + conv + wrap)
                return
            if kind == "invalid":
                self.close(i)
            else:
                if kind == "machine":
                    seconds += float(self.timing["machine_seconds"]) * 0.25  # hearing the greeting, hanging up
                self.retry(i, at, kind)
            occupy(k, now, lead + seconds + wrap)

        def pace(now: datetime) -> None:
            """Predictive: the pacer decides how many calls to place for the free interviewers."""
            nonlocal seq, calls
            ready = sum(1 for k in range(self.n) if free(k, now))
            soon = sum(1 for k in range(self.n) if on[k] and busy_until[k] is not None
                       and now < busy_until[k] <= now + timedelta(seconds=12))
            part = part_of_day(now.astimezone(self.world.zone).time())
            dials, persons = self.history[part if part is not None else -1]
            hk = hour_key(now)
            hp, ha = self.res.hours[hk]
            dec = decide(PacerInput(ready=ready, soon_free=soon, in_flight=len(in_flight),
                                    p_person=persons / dials if dials else 0.0, evidence_dials=dials,
                                    abandoned_today=self.res.abandoned, persons_today=self.res.persons,
                                    abandoned_hour=ha, persons_hour=hp, target=self.target, ceiling=self.ceiling))
            for _ in range(dec.dials):
                i = self.next_case(now)
                if i is None:
                    return
                kind, seconds = self.dial(i, now)
                calls += 1
                in_flight[calls] = (i, kind)
                seq += 1
                heapq.heappush(events, (now + timedelta(seconds=seconds), seq, "answer", calls))

        while events:
            now, _s, kind, who = heapq.heappop(events)
            if self.filled():
                ended_at = ended_at or now
                break
            if kind == "on":
                on[who] = True
                paid_since[who] = now
                if busy_until[who] is None or busy_until[who] < now:
                    busy_until[who] = None
            elif kind == "off":
                pay_until(now)
                on[who] = False
                paid_since[who] = None
            elif kind == "answer":
                i, what = in_flight.pop(who)
                if what == "person":
                    self.res.persons += 1
                    self.res.hours[hour_key(now)][0] += 1
                    k = next((k for k in range(self.n) if free(k, now)), None)
                    if k is not None:
                        talk(k, i, now)
                    else:
                        seq += 1
                        in_flight_wait[who] = i
                        heapq.heappush(events, (now + timedelta(seconds=CONNECT_WITHIN_S), seq, "give_up", who))
                elif what == "invalid":
                    self.close(i)
                else:
                    self.retry(i, now, what)
            elif kind == "give_up":
                if who in in_flight_wait:
                    i = in_flight_wait.pop(who)
                    self.res.abandoned += 1
                    self.res.hours[hour_key(now)][1] += 1
                    self.retry(i, now, "abandoned", charge=False)
            if self.mode.startswith("predictive"):
                # A person waiting gets the first interviewer who comes free within the 2 s.
                for cid in list(in_flight_wait):
                    k = next((k for k in range(self.n) if free(k, now)), None)
                    if k is None:
                        break
                    talk(k, in_flight_wait.pop(cid), now)
                if kind in ("on", "free", "answer", "give_up"):
                    pace(now)
            elif kind in ("on", "free") and free(who, now):
                agent_work(who, now)
        end = ended_at or datetime.combine(day, time(23, 59), self.world.zone)
        pay_until(end)


def _t(value) -> time:
    if isinstance(value, time):
        return value
    h, m = str(value).split(":")[:2]
    return time(int(h), int(m))


def run(world: World, mode: str, seed: int, enterprises: int, interviewers: int) -> Result:
    return Bench(world, mode, seed, enterprises, interviewers).run(int(world.params.get("max_days", 42)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=str(ROOT / "config" / "worlds" / "default.yaml"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--enterprises", type=int, default=60)
    ap.add_argument("--interviewers", type=int, default=None, help="default: 1 per 10 enterprises, at least 4")
    ap.add_argument("--modes", default=",".join(MODES))
    ns = ap.parse_args(argv)
    world = World.load(ns.world)
    k = ns.interviewers or max(4, ns.enterprises // 10)
    results = [run(world, m, ns.seed, ns.enterprises, k) for m in ns.modes.split(",")]
    print(f"world={world.name} seed={ns.seed} enterprises={ns.enterprises} interviewers={k}")
    print(f"{'mode':<14}{'talk min/paid h':>16}{'completes/paid h':>18}{'abandon':>9}{'worst hour':>11}"
          f"{'days':>6}{'short':>6}{'dials/complete':>16}{'paid h':>9}")
    base = next((r for r in results if r.mode == "progressive"), None)
    for r in results:
        print(f"{r.mode:<14}{r.talk_minutes_per_hour:>16.1f}{r.completes_per_paid_hour:>18.3f}"
              f"{r.abandon_rate:>9.2%}{r.worst_hour:>11.2%}{r.days:>6}{r.short:>6}"
              f"{(r.dials / r.completes if r.completes else math.inf):>16.1f}{r.paid_hours:>9.0f}")
    if base is not None:
        for r in results:
            if r.mode.startswith("predictive") and base.talk_minutes_per_hour:
                print(f"  {r.mode}: {r.talk_minutes_per_hour / base.talk_minutes_per_hour:.2f}× progressive's talk "
                      "minutes per paid hour")
    for r in results:
        print(f"dialing={r.mode} talk_minutes_per_hour={r.talk_minutes_per_hour:.2f} "
              f"completes_per_paid_hour={r.completes_per_paid_hour:.3f} abandon_rate={r.abandon_rate:.4f} "
              f"worst_hour_abandon={r.worst_hour:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
