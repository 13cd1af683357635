"""The discrete-event fieldwork simulator: virtual interviewers and respondents on a virtual clock, driving the
real scheduler, dialer event path, interview services and database.

Over 600 lines on purpose: one discrete-event simulator whose event handlers share the clock, the paid-shift
accounting and the report; it drives the real services and is read as one piece.

One event queue (``heapq``) holds interviewer log-ins, "ready for the next case", call ends and an hourly
supervisor tick (automatic replicate release, end-of-sample check). Each event is one committed transaction:

* ready → the strategy claims a case (for ``ours``: ``scheduling.next_case``, first in a fresh transaction) and
  the interviewer dials it: ``dialer.start_attempt`` and the simulated call events folded in by
  ``dialer.apply_event`` (the same path the AMI and Twilio backends use: busy, no answer, machine, invalid
  numbers are coded automatically); the attempt's row is written at the next flush, not once per event;
* a person answers → the interviewer codes the contact (callback with an appointment, soft/hard refusal,
  do-not-call) with ``record_outcome``, or starts the interview (``start_interview`` reserves a quota slot),
  stores the answers in bulk (``save_answers``) and completes, breaks off or terminates it when the call ends.

Interviewers work the world's shift plan and are paid for every planned hour: an interviewer told "nothing to
call before T" waits (paid, counted as idle) and asks again when T comes or, looking every 15 minutes, as soon as
something was dialed, coded or released in the meantime; at the end of the shift they go home. Sending idle
interviewers home unpaid is the ``flexible`` team variant, whose report gives the planned hours cut.

The simulated telephony is the event stream built here (``cati/telephony/simulated.py`` did not exist when this
was written); the events carry realistic timings, Q.850 causes and machine-detection verdicts.
"""

from __future__ import annotations

import heapq
import random
import tempfile
import time as wall
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload, sessionmaker

from cati.db import transaction
from cati.models import (
    CallAttempt,
    Case,
    CaseStatus,
    Enterprise,
    Interview,
    PhoneStatus,
    Role,
    Study,
    User,
)
from cati.services import frames, scheduling
from cati.services.dispositions import catalogue
from cati.services.interviews import (
    break_off,
    complete_interview,
    questionnaire_for,
    save_answer,
    save_answers,
    start_interview,
    terminate_interview,
)
from cati.services.scheduling import Claim, NoCaseReason, QuotaFull, record_outcome, rules_for
from cati.telephony.base import CallEvent
from cati.telephony.dialer import apply_event, code_attempt, start_attempt
from scoring.cells import write_csv_rows

from .answers import AnswerBank, partial, refusal_answers, screen_out_answers
from .report import FieldworkReport
from .strategies import Strategy, baseline_finish, baseline_start, make_strategy
from .world import PARTS, Population, Respondent, World, part_of_day, uniform

SIM_PASSWORD = "sim-interviewer-1"
# A dialed case is loaded with its numbers in the same query (it is dialed, and coded, at once).
_WITH_PHONES = (joinedload(Case.phones),)


# ------------------------------------------------------------------------------------------------------- setup


def write_study_files(directory: Path, n_enterprises: int, per_enterprise: int, quota: int, seed: int
                      ) -> tuple[Path, Path]:
    """Enterprise and sample CSV files (UTF-8) of invented enterprises in the 15 industries."""
    from cati.services.imports import synthetic_enterprises, write_synthetic_sample

    directory.mkdir(parents=True, exist_ok=True)
    ents = synthetic_enterprises(n_enterprises, seed=seed)
    for e in ents:
        e["quota"] = str(quota)
    ep = directory / "enterprises.csv"
    with ep.open("w", encoding="utf-8", newline="") as fh:
        write_csv_rows(fh, [list(ents[0]), *([e[k] for k in ents[0]] for e in ents)])
    sp = directory / "sample.csv"
    write_synthetic_sample(sp, [e["enterprise_id"] for e in ents], per_enterprise, seed=seed)
    return ep, sp


def setup_study(factory: sessionmaker, world: World, *, n_enterprises: int | None = None, seed: int = 1,
                release: str = "first", workdir: Path | None = None) -> int:
    """Install the default study (if needed) and import enterprises and sample through the real import
    services, unless the study already has enterprises. Returns the study id."""
    from cati.services.imports import import_enterprises, import_sample
    from cati.services.studies import default_study_file, install_study

    sample = world["sample"]
    n = n_enterprises or sample["enterprises"]
    with transaction(factory) as s:
        study = install_study(s, default_study_file())
        study_id = study.id
        has = s.scalar(select(func.count()).select_from(Enterprise).where(Enterprise.study_id == study_id))
    if has:
        return study_id
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="cati-sim-")
        workdir = Path(tmp.name)
    try:
        ep, sp = write_study_files(Path(workdir), n, sample["per_enterprise"], sample["quota"], seed)
        with transaction(factory) as s:
            study = s.get(Study, study_id)
            rep = import_enterprises(s, study, ep)
            if rep.rejected:
                raise ValueError(f"simulated enterprises rejected: {rep.summary()}")
        with transaction(factory) as s:
            study = s.get(Study, study_id)
            rep = import_sample(s, study, sp, release=release, replicate_size=sample["replicate_size"])
            if rep.rejected:
                raise ValueError(f"simulated sample rejected: {rep.summary()}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    with transaction(factory) as s:
        # import_sample makes released cases due at the import's wall-clock time; the simulation runs on its own
        # virtual clock (which may start before today), so released, never-dialed cases become due at its start.
        s.execute(update(Case).where(Case.study_id == study_id, Case.status == CaseStatus.READY,
                                     Case.attempts == 0)
                  .values(next_call_at=world.start().astimezone(UTC)).execution_options(synchronize_session=False))
    scheduling.invalidate_timezone_cache()
    return study_id


def ensure_interviewers(factory: sessionmaker, count: int, converters: int, *, prefix: str = "sim",
                        password: str = SIM_PASSWORD) -> list[tuple[int, str, bool]]:
    """``count`` interviewer users (``sim01`` …, the first ``converters`` of them refusal converters), created if
    missing. Returns (id, username, converter).

    They all share one published password, so it is hashed once (argon2 takes about half a second a hash): the
    first missing user is made by ``create_user``, the others copy its hash.
    """
    from cati.services.users import create_user

    out = []
    first: User | None = None
    with transaction(factory) as s:
        for k in range(1, count + 1):
            name = f"{prefix}{k:02d}"
            u = s.scalar(select(User).where(User.username == name))
            if u is None:
                if first is None:
                    u = first = create_user(s, name, password, Role.INTERVIEWER, display_name=f"模拟访员{k:02d}",
                                            extension=f"8{k:03d}")
                else:
                    u = User(username=name, display_name=f"模拟访员{k:02d}", password_hash=first.password_hash,
                             role=Role.INTERVIEWER, extension=f"8{k:03d}", language=first.language)
                    s.add(u)
                    s.flush()
            u.refusal_converter = k <= converters
            out.append((u.id, u.username, u.refusal_converter))
    return out


# ------------------------------------------------------------------------------------------------- simulation


# A paid interviewer told to wait asks for work again at least this often (a due appointment or a case whose
# retry time passed may turn up before the time the "nothing now" answer named).
RECHECK = timedelta(minutes=15)


@dataclass
class VInterviewer:
    id: int
    name: str
    converter: bool
    group: int  # index into the world's shift plan (World.shift_groups)
    login_at: datetime | None = None
    shift_end: datetime | None = None
    idle_since: datetime | None = None
    token: int = 0
    seconds: float = 0.0  # paid (logged-in) seconds
    overtime: float = 0.0  # seconds logged in after the planned end (an interview running past the shift's end)
    idle: float = 0.0  # paid seconds spent waiting for work
    # The last "nothing to call" answer: (the simulator's change counter then, when work is due by the answer).
    nothing_until: tuple[int, datetime] | None = None


@dataclass
class _Call:
    """A call whose interview is running (between its answer and its end)."""

    case_id: int
    attempt_id: int
    call_id: str
    interview_id: int
    answers: dict
    result: str  # complete | break_off
    respondent: Respondent
    answered_at: datetime
    enterprise_id: int


@dataclass
class _State:
    soft_refused: bool = False
    broke_off: bool = False
    answers: dict | None = None  # the whole answer set of a broken-off interview, for its resumption


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    iv: int = field(compare=False, default=-1)
    payload: object = field(compare=False, default=None)


class Simulator:
    """Run one simulated fieldwork on a database.

    Parameters
    ----------
    factory : sessionmaker of the database (migrated). The default study is installed if missing; enterprises
        and sample are imported unless the study already has some (then the hidden respondents are attached to
        the existing cases, in case order).
    world : the world's parameters.
    strategy : ``ours`` (default), ``call_list``, ``quexs_style`` or ``oracle``.
    seed : everything random (world, answers, tie-breaks) follows from it.
    n_enterprises, n_interviewers : override the world's sample.enterprises / interviewers.count.
    progress : called with the number of new quota completes after each complete.
    team : ``fixed`` (default: every interviewer works and is paid for every planned shift hour, waiting
        included) or ``flexible`` (an interviewer with nothing to do for ``idle_leave_minutes`` is sent home
        unpaid until work is due; the report gives the hours cut). Default: the world's ``interviewers.team``.
    deadline_days : the study must finish by the end of this calendar day (day 1 = ``start_date``); the
        fieldwork stops there and the report gives the shortfall. Default: run up to the world's ``max_days``.

    Paid hours are the planned shift hours from the start of the fieldwork to its end (plus overtime when an
    interview runs past a shift's end), whatever the interviewers did in them.
    """

    def __init__(self, factory: sessionmaker, world: World, *, strategy: str = "ours", seed: int = 1,
                 n_enterprises: int | None = None, n_interviewers: int | None = None,
                 progress: Callable[[int], None] | None = None, workdir: Path | None = None,
                 team: str | None = None, deadline_days: int | None = None):
        self.factory = factory
        self.world = world
        self.team = team or world["interviewers"]["team"]
        if self.team not in ("fixed", "flexible"):
            raise ValueError(f"team must be fixed or flexible, got {self.team!r}")
        if deadline_days is not None and deadline_days < 1:
            raise ValueError(f"deadline_days must be at least 1, got {deadline_days}")
        self.deadline_days = deadline_days
        self.seed = seed
        self.rng = random.Random(seed)
        self.progress = progress
        self.n_interviewers = n_interviewers or world["interviewers"]["count"]
        self.strategy: Strategy = make_strategy(strategy, self.reachable)
        self.strategy.in_shift = self.in_planned_shift
        self.study_id = setup_study(factory, world, n_enterprises=n_enterprises, seed=seed,
                                    release=self.strategy.release, workdir=workdir)
        with factory() as s:
            self.study = s.get(Study, self.study_id)
            s.expunge(self.study)
            self.rules = rules_for(self.study)
            ents = s.execute(select(Enterprise.id, Enterprise.quota_target).where(Enterprise.study_id == self.study_id)
                             .order_by(Enterprise.id)).all()
            rows = s.execute(select(Case.id, Case.enterprise_id).where(Case.study_id == self.study_id)
                             .order_by(Case.enterprise_id, Case.id)).all()
        self.enterprise_index = {eid: i for i, (eid, _q) in enumerate(ents)}
        self.quota = {eid: q for eid, q in ents}
        sizes = [0] * len(ents)
        for _cid, eid in rows:
            sizes[self.enterprise_index[eid]] += 1
        self.population = Population(world, sizes, seed)
        self.respondent_of: dict[int, Respondent] = {}
        pos = 0
        for cid, _eid in rows:
            self.respondent_of[cid] = self.population.respondents[pos]
            pos += 1
        quota = max(self.quota.values()) if self.quota else world["sample"]["quota"]
        self.answers = AnswerBank(len(ents), quota, seed)
        users = ensure_interviewers(factory, self.n_interviewers, min(world["interviewers"]["refusal_converters"],
                                                                      self.n_interviewers))
        self.shift_groups = world.shift_groups()
        groups = world.assign_shift_groups(len(users))
        self.interviewers = [VInterviewer(uid, name, conv, group=groups[k])
                             for k, (uid, name, conv) in enumerate(users)]
        self.questionnaire = questionnaire_for(self.study)
        self.state: dict[int, _State] = {}
        self.appointments: dict[int, tuple[datetime, bool]] = {}
        self.calls: dict[int, _Call] = {}
        self.start = world.start().astimezone(UTC)
        self.deadline = self.start + timedelta(days=deadline_days or world["max_days"])
        self.queue: list[_Event] = []
        self._seq = 0
        self.closing = False
        self.end_reason = "running"
        self.end_at: datetime | None = None
        self.last_activity = self.start
        self.quota_collisions = 0
        self.changes = 0  # counts events that change what is callable (dials, interview ends, hourly releases)
        self.overquota = 0
        self.completes = 0
        self.quota_total = sum(self.quota.values())
        self.time_use: Counter[str] = Counter()
        self.part_dials: Counter[str] = Counter()
        self.part_contacts: Counter[str] = Counter()
        self.useful = Counter()  # enterprise id → completes so far (quota counting)

    # -------------------------------------------------------------------------------------------- world view
    def reachable(self, case_id: int, when: datetime) -> bool:
        """Would a person answer this case's number at ``when``? (The oracle's knowledge; pickup noise and
        busy lines aside.)"""
        r = self.respondent_of[case_id]
        if r.invalid or r.blocks:
            return False
        appt = self.appointments.get(case_id)
        if appt is not None and appt[0] - timedelta(minutes=15) <= when <= appt[0] + timedelta(minutes=60):
            return appt[1]
        return self.population.available(r, when)

    # ------------------------------------------------------------------------------------------------ events
    def _push(self, at: datetime, kind: str, iv: int = -1, payload: object = None) -> None:
        self._seq += 1
        heapq.heappush(self.queue, _Event(at, self._seq, kind, iv, payload))

    def _group_shifts(self, group: int, day) -> Iterator[tuple[datetime, datetime]]:
        """A shift group's planned shifts on a (local) day, in UTC."""
        zone = self.world.zone
        for a, b in self.shift_groups[group]["days"][day.weekday()]:
            yield datetime.combine(day, a, zone).astimezone(UTC), datetime.combine(day, b, zone).astimezone(UTC)

    def _shifts(self, iv: VInterviewer, day) -> Iterator[tuple[datetime, datetime]]:
        return self._group_shifts(iv.group, day)

    def _next_shift(self, iv: VInterviewer, after: datetime) -> tuple[datetime, datetime] | None:
        day = after.astimezone(self.world.zone).date()
        for offset in range(0, 8):
            for start, end in self._shifts(iv, day + timedelta(days=offset)):
                if end > after:
                    return max(start, after), end
        return None

    def in_planned_shift(self, when: datetime) -> bool:
        """Is any interviewer's planned shift running at ``when``? (queXS's work-shift restriction.)"""
        day = when.astimezone(self.world.zone).date()
        return any(a <= when < b for g in {iv.group for iv in self.interviewers} for a, b in self._group_shifts(g, day))

    def planned_seconds(self, iv: VInterviewer, until: datetime) -> float:
        """Planned shift seconds of an interviewer from the start of the fieldwork to ``until``."""
        zone = self.world.zone
        day, last = self.start.astimezone(zone).date(), until.astimezone(zone).date()
        total = 0.0
        while day <= last:
            for a, b in self._shifts(iv, day):
                lo, hi = max(a, self.start), min(b, until)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def _schedule_login(self, k: int, after: datetime) -> None:
        nxt = self._next_shift(self.interviewers[k], after)
        if nxt is not None and nxt[0] < self.deadline:
            self._push(nxt[0], "login", k, nxt[1])

    def _logout(self, k: int, at: datetime, back_at: datetime | None = None) -> None:
        """Log off at ``at``; log in again at ``back_at`` if that is inside the same shift, else next shift."""
        iv = self.interviewers[k]
        if iv.login_at is None:
            return
        iv.seconds += max(0.0, (at - iv.login_at).total_seconds())
        planned_end = min(iv.shift_end, self.end_at) if self.end_at is not None else iv.shift_end
        if planned_end is not None and at > planned_end:
            iv.overtime += (at - max(planned_end, iv.login_at)).total_seconds()
        if iv.idle_since is not None:
            self._idle(iv, at - iv.idle_since)
        end = iv.shift_end
        iv.login_at = iv.shift_end = iv.idle_since = None
        iv.token += 1
        if self.closing:
            return
        if back_at is not None and end is not None and back_at < end:
            self._push(back_at, "login", k, end)
        else:
            self._schedule_login(k, max(end or at, at, back_at or at))

    def _ready(self, k: int, at: datetime) -> None:
        iv = self.interviewers[k]
        if self.closing or iv.shift_end is None:
            self._logout(k, at)
            return
        # At or after the shift's end the event logs the interviewer off at its own time (not before the clock
        # gets there: the study may close in between, and then the team goes home at the close).
        self._push(at, "ready", k, iv.token)

    # -------------------------------------------------------------------------------------------------- run
    def run(self) -> FieldworkReport:
        t0 = wall.perf_counter()
        for k in range(len(self.interviewers)):
            self._schedule_login(k, self.start)
        self._push(self.start, "tick")
        while self.queue:
            ev = heapq.heappop(self.queue)
            if ev.at >= self.deadline and not self.closing:
                self._close(self.deadline, "deadline" if self.deadline_days else "max_days")
            if ev.kind == "login":
                if self.closing:
                    continue
                iv = self.interviewers[ev.iv]
                iv.login_at, iv.shift_end, iv.idle_since = ev.at, ev.payload, None
                self._push(ev.at, "ready", ev.iv, iv.token)
            elif ev.kind == "ready":
                iv = self.interviewers[ev.iv]
                if ev.payload != iv.token or iv.login_at is None:
                    continue
                if self.closing or ev.at >= iv.shift_end:
                    self._logout(ev.iv, ev.at)
                    continue
                if iv.nothing_until is not None:
                    changes, due = iv.nothing_until
                    if changes == self.changes and ev.at < due:
                        # Nothing was dialed, coded or released since the answer "nothing before <due>": asking
                        # again now would get the same answer, so the (paid) interviewer keeps waiting.
                        self._ready(ev.iv, min(due, ev.at + RECHECK, iv.shift_end))
                        continue
                self._claim_and_dial(ev.iv, ev.at)
            elif ev.kind == "call_end":
                self._end_interview(ev.iv, ev.at, ev.payload)
            elif ev.kind == "tick":
                self._tick(ev.at)
        end = self.end_at or self.last_activity
        for k in range(len(self.interviewers)):
            self._logout(k, end)
        return self._report(end, wall.perf_counter() - t0)

    def _close(self, at: datetime, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.end_reason = reason
        self.end_at = at
        for k, iv in enumerate(self.interviewers):
            if iv.login_at is not None and k not in self.calls:
                self._logout(k, at)

    def _tick(self, at: datetime) -> None:
        if self.closing:
            return
        self.changes += 1
        with self._tx() as s:
            if self.strategy.auto_release:
                study = s.get(Study, self.study_id)
                scheduling.auto_release(s, study, at)
            # Whether any case is left to call (EXISTS stops at the first one; a count read them all every hour).
            open_cases = s.scalar(select(
                select(Case.id).join(Enterprise, Enterprise.id == Case.enterprise_id)
                .where(Case.study_id == self.study_id,
                       Case.status.in_([CaseStatus.READY, CaseStatus.CLAIMED, CaseStatus.UNRELEASED]),
                       Enterprise.completes < Enterprise.quota_target)
                .exists()))
        if not open_cases and not self.calls:
            self._close(at, "sample_exhausted")
            return
        self._push(at + timedelta(hours=1), "tick")

    # ------------------------------------------------------------------------------------------------ claims
    def _claim_and_dial(self, k: int, at: datetime) -> None:
        iv = self.interviewers[k]
        end = None
        # One event, one transaction: the claim opens it (next_case takes the write lock on a fresh transaction,
        # so the study is put into the session only afterwards) and the dial of the claimed case follows.
        with self._tx(study=False) as s:
            got = self.strategy.select(s, self.study, iv.id, at, converter=iv.converter, rng=self.rng)
            if isinstance(got, Claim):
                self.changes += 1
                iv.nothing_until = None
                if iv.idle_since is not None:
                    self._idle(iv, at - iv.idle_since)
                    iv.idle_since = None
                self.last_activity = at
                self._hold_study(s)
                end = self._dial(s, k, got, at)
        if not isinstance(got, Claim):
            if got.reason == NoCaseReason.QUOTAS_FULL and not self.calls:
                self._close(at, "quotas_filled")
                return
            # "All quotas full" while interviews are still running only means every open slot is reserved; a
            # break-off or screen-out would free one, so keep the interviewer around until they end.
            if iv.idle_since is None:
                iv.idle_since = at
            idle_limit = timedelta(minutes=self.world["interviewers"]["idle_leave_minutes"])
            hint = got.next_callable_at
            if hint is None or hint <= at + timedelta(seconds=30):
                # "Callable now" yet nothing was handed out (e.g. an appointment in its grace period that is
                # already being served): look again in a few minutes.
                hint = at + timedelta(minutes=5)
            if self.team == "flexible" and (hint - at > idle_limit or at - iv.idle_since >= idle_limit):
                # The flexible-team variant: nothing to do for a while, so the interviewer is sent home (unpaid)
                # and comes back when work is due; the report counts the planned hours cut.
                self._logout(k, at, back_at=hint if hint - at > idle_limit else at + idle_limit)
                return
            # A paid team waits (paid, counted as idle) and asks again when work is due, at the latest after
            # RECHECK, or goes home at the end of the shift.
            iv.nothing_until = (self.changes, hint) if got.next_callable_at is not None else None
            self._ready(k, min(hint, at + RECHECK, iv.shift_end))
            return
        if end is not None:
            self._ready(k, end)

    @contextmanager
    def _tx(self, *, study: bool = True) -> Iterator[Session]:
        """One committed transaction per event, with the study in the session (see :meth:`_hold_study`) unless
        ``study`` is false."""
        with transaction(self.factory) as s:
            if study:
                self._hold_study(s)
            yield s

    def _hold_study(self, s: Session) -> None:
        """Put the study row (its definition is a large JSON document) into the session's identity map unloaded,
        so the services' ``session.get(Study, …)`` on every dial doesn't fetch and parse it again. The copy is
        kept in ``session.info`` for the session's life: the identity map holds unmodified objects weakly, and
        a dropped copy would be loaded again on the next get."""
        if "cati_sim_study" not in s.info:
            key = s.identity_key(Study, self.study_id)
            s.info["cati_sim_study"] = s.identity_map.get(key) or s.merge(self.study, load=False)

    def _idle(self, iv: VInterviewer, span: timedelta) -> None:
        # Idle time, split by whether the fieldwork is in its last tenth (the tail, where few enterprises are open).
        seconds = max(0.0, span.total_seconds())
        key = "idle_tail" if self.completes >= 0.9 * self.quota_total else "idle"
        self.time_use[key] += seconds
        iv.idle += seconds

    def _event(self, s: Session, attempt: CallAttempt, kind: str, at: datetime, **facts) -> None:
        """One simulated call event through the dialer's event path. The attempt is this session's own (no lookup
        by call id), and the row is written once per transaction instead of once per event (no flush here; the
        automatic coding, the services and the commit flush)."""
        apply_event(s, CallEvent(attempt.call_id, kind, at, backend_call_id=None, **facts), now=at, attempt=attempt,
                    flush=False)

    def _dial(self, s: Session, k: int, claim: Claim, at: datetime) -> datetime | None:
        """Dial a claimed case in the claim's transaction. Returns when the interviewer is ready again (None: an
        interview is running)."""
        iv = self.interviewers[k]
        p = self.world.params
        timing = p["timing"]
        rng = self.rng
        t = at + timedelta(seconds=p["interviewers"]["preview_seconds"])
        wrap = timedelta(seconds=p["interviewers"]["wrap_up_seconds"])
        case = s.get(Case, claim.case_id, options=_WITH_PHONES)
        if claim.appointment_id:
            scheduling.serve_appointment(s, claim.appointment_id)
        phone = next((ph for ph in sorted(case.phones, key=lambda ph: (ph.attempts, ph.position))
                      if ph.status == PhoneStatus.OK), None)
        if phone is None:  # nothing dialable (cannot happen with imported sample): release the claim
            record_outcome(s, case, catalogue().code_for("other_unknown"), t, interviewer_id=iv.id, rules=self.rules)
            return t + wrap
        r = self.respondent_of[case.id]
        attempt = start_attempt(s, case, phone, iv.id, "simulated", "simulated", now=t,
                                call_id=str(uuid.UUID(int=rng.getrandbits(128))), flush=False)
        n = case.attempts
        self._event(s, attempt, "placed", t)
        part = part_of_day(t.astimezone(self.world.zone).time())
        part_name = PARTS[part] if part is not None else "night"
        self.part_dials[part_name] += 1
        kind = self._network(r, case.id, t, n)
        if kind == "invalid":
            end = t + timedelta(seconds=timing["invalid_seconds"])
            self._event(s, attempt, "ended", end, hangup_cause=1, cause_text="Unallocated (unassigned) number")
            self.time_use["invalid"] += (end - at).total_seconds()
            return end + wrap
        ring = t + timedelta(seconds=2)
        if kind in ("busy", "blocked"):
            end = t + timedelta(seconds=timing["busy_seconds"])
            cause = 17 if kind == "busy" else 21
            self._event(s, attempt, "ended", end, hangup_cause=cause)
            self.time_use[kind] += (end - at).total_seconds()
            return end + wrap
        self._event(s, attempt, "ringing", ring)
        if kind == "no_answer":
            end = ring + timedelta(seconds=timing["no_answer_timeout_seconds"])
            self._event(s, attempt, "ended", end, hangup_cause=19, originate_reason=3, dial_status="NOANSWER")
            self.time_use["no_answer"] += (end - at).total_seconds()
            return end + wrap
        lo, hi = timing["ring_before_answer_seconds"]
        answered = ring + timedelta(seconds=rng.uniform(lo, hi))
        if kind == "machine":
            self._event(s, attempt, "answered_machine", answered, amd_status="MACHINE")
            end = answered + timedelta(seconds=timing["machine_seconds"])
            self._event(s, attempt, "ended", end, hangup_cause=16)
            self.time_use["machine"] += (end - at).total_seconds()
            return end + wrap
        # A person answered: the interviewer takes over.
        self._event(s, attempt, "answered_human", answered, amd_status="HUMAN")
        self.part_contacts[part_name] += 1
        return self._contact(s, k, case, attempt, r, at, answered)

    def _network(self, r: Respondent, case_id: int, t: datetime, n: int) -> str:
        resp = self.world["respondents"]
        if r.invalid:
            return "invalid"
        if r.blocks:
            return "blocked"
        if uniform(self.seed, 11, r.index, n) < resp["busy"]:
            return "busy"
        if self.reachable(case_id, t) and uniform(self.seed, 13, r.index, n) < resp["pickup"]:
            return "human"
        return "machine" if r.voicemail else "no_answer"

    def _decide(self, r: Respondent, iv: VInterviewer, case_id: int, n: int) -> str:
        con = self.world["contact"]
        st = self.state.setdefault(r.index, _State())
        if st.broke_off:
            return "resume"
        if uniform(self.seed, 17, r.index, n) < con["callback"]:
            return "callback"
        if r.refuser:
            if st.soft_refused:
                if not r.converts:
                    return "hard_refusal"
            elif r.hard_refuser:
                return "dnc" if r.do_not_call else "hard_refusal"
            else:
                return "soft_refusal"
        if not r.eligible:
            return "screen_out"
        if uniform(self.seed, 19, r.index, n) < con["break_off"]:
            return "break_off"
        return "complete"

    def _seconds(self, key: str) -> timedelta:
        lo, hi = self.world["timing"][key]
        return timedelta(seconds=self.rng.uniform(lo, hi))

    def _appointment(self, r: Respondent, case_id: int, at: datetime) -> datetime | None:
        if not self.strategy.uses_appointments:
            return None
        due = self.population.best_time_after(r, at, self.rules.windows_on)
        kept = uniform(self.seed, 23, r.index, int(due.timestamp())) < self.world["contact"]["appointment_kept"]
        self.appointments[case_id] = (due, kept)
        return due

    def _contact(self, s: Session, k: int, case: Case, attempt: CallAttempt, r: Respondent, at: datetime,
                 answered: datetime) -> datetime | None:
        iv = self.interviewers[k]
        wrap = timedelta(seconds=self.world["interviewers"]["wrap_up_seconds"])
        decision = self._decide(r, iv, case.id, case.attempts)
        st = self.state[r.index]
        if decision in ("callback", "soft_refusal", "dnc"):
            key = {"callback": "callback_seconds", "soft_refusal": "refusal_seconds", "dnc": "refusal_seconds"}
            end = answered + self._seconds(key[decision])
            code = catalogue().code_for({"callback": "callback", "soft_refusal": "soft_refusal",
                                 "dnc": "do_not_call_request"}[decision])
            code_attempt(s, attempt, code)
            appt = self._appointment(r, case.id, end) if decision == "callback" else None
            record_outcome(s, case, code, end, interviewer_id=iv.id, appointment_at=appt, rules=self.rules)
            self._event(s, attempt, "ended", end, hangup_cause=16)
            if decision == "soft_refusal":
                st.soft_refused = True
            self.time_use["contact_no_interview"] += (end - at).total_seconds()
            return end + wrap
        # Everything else goes through the questionnaire: consent, screening, the interview.
        try:
            interview = self._start(s, case, iv, answered, attempt)
        except QuotaFull:
            self.quota_collisions += 1
            end = answered + timedelta(seconds=20)
            code_attempt(s, attempt, catalogue().code_for("callback"))
            record_outcome(s, case, catalogue().code_for("callback"), end, interviewer_id=iv.id, rules=self.rules)
            self._event(s, attempt, "ended", end, hangup_cause=16)
            self.time_use["contact_no_interview"] += (end - at).total_seconds()
            return end + wrap
        if decision in ("hard_refusal", "screen_out"):
            answers = refusal_answers() if decision == "hard_refusal" else screen_out_answers(self.rng)
            end = answered + self._seconds("refusal_seconds" if decision == "hard_refusal" else "screen_out_seconds")
            step = save_answers(s, interview, answers, user_id=iv.id, now=end)
            code = step.termination if step is not None and step.termination else (
                catalogue().code_for("hard_refusal" if decision == "hard_refusal" else "screened_out"))
            self._finish(s, interview, code, end, iv)
            self._event(s, attempt, "ended", end, hangup_cause=16)
            self.time_use["contact_no_interview"] += (end - at).total_seconds()
            return end + wrap
        # A real interview: it runs for minutes; the quota slot stays reserved until it ends.
        timing = self.world["timing"]
        minutes = max(timing["interview_minutes_min"],
                      self.rng.gauss(timing["interview_minutes_mean"], timing["interview_minutes_sd"]))
        full = self.answers.draw(self.enterprise_index[case.enterprise_id])
        result = "complete"
        if decision == "break_off":
            st.answers = full
            share = self.rng.uniform(0.3, 0.8)
            minutes *= share
            full = partial(full, share)
            result = "break_off"
            st.broke_off = True
        elif decision == "resume":
            minutes *= 0.5
            full = st.answers or full
            st.broke_off = False
        end = answered + timedelta(minutes=minutes)
        self.calls[k] = _Call(case.id, attempt.id, attempt.call_id, interview.id, full, result, r, answered,
                              case.enterprise_id)
        self._push(end, "call_end", k, None)
        return None

    def _start(self, s: Session, case: Case, iv: VInterviewer, at: datetime, attempt: CallAttempt) -> Interview:
        if attempt.id is None:  # the attempt row is still pending (see _dial): the interview refers to it
            s.flush()
        if self.strategy.reserves_quota:
            return start_interview(s, case, iv.id, at, attempt_id=attempt.id)
        return baseline_start(s, case, iv.id, at, attempt.id, self.questionnaire.first())

    def _finish(self, s: Session, interview: Interview, code: str, at: datetime, iv: VInterviewer,
                appointment_at: datetime | None = None, enterprise_id: int | None = None) -> None:
        if not self.strategy.reserves_quota:
            over = baseline_finish(s, interview, code, at, interviewer_id=iv.id, appointment_at=appointment_at)
            if code == catalogue().code_for("complete"):
                self._count_complete(s, interview, over, enterprise_id)
            return
        if code == catalogue().code_for("complete"):
            complete_interview(s, interview, at, user_id=iv.id)
            self._count_complete(s, interview, False, enterprise_id)
        elif code == catalogue().code_for("break_off"):
            break_off(s, interview, at, user_id=iv.id, appointment_at=appointment_at)
        else:
            terminate_interview(s, interview, code, at, user_id=iv.id)

    def _count_complete(self, s: Session, interview: Interview, over: bool, enterprise_id: int | None = None) -> None:
        eid = enterprise_id if enterprise_id is not None else s.get(Case, interview.case_id).enterprise_id
        if over or self.useful[eid] >= self.quota[eid]:
            self.overquota += 1
            return
        self.useful[eid] += 1
        self.completes += 1
        if self.progress:
            self.progress(1)

    def _end_interview(self, k: int, at: datetime, _payload) -> None:
        self.changes += 1
        call = self.calls.pop(k)
        iv = self.interviewers[k]
        with self._tx() as s:
            interview = s.get(Interview, call.interview_id)
            # Held for the whole transaction: the services code it by id (from the identity map) and the ended
            # event folds into it.
            attempt = s.get(CallAttempt, call.attempt_id)
            self._store_answers(s, interview, call.answers, iv, at)
            if call.result == "complete":
                self._finish(s, interview, catalogue().code_for("complete"), at, iv, enterprise_id=call.enterprise_id)
            else:
                appt = self._appointment(call.respondent, call.case_id, at)
                self._finish(s, interview, catalogue().code_for("break_off"), at, iv, appointment_at=appt)
            self._event(s, attempt, "ended", at, hangup_cause=16)
        self.time_use["interview"] += (at - call.answered_at).total_seconds()
        self.last_activity = at
        if self.completes >= self.quota_total and not self.closing:
            self._close(at, "quotas_filled")
        wrap = timedelta(seconds=self.world["interviewers"]["interview_wrap_up_seconds"])
        if self.closing:
            self._logout(k, at + wrap)
            return
        self._ready(k, at + wrap)

    def _store_answers(self, s: Session, interview: Interview, answers: dict, iv: VInterviewer,
                       at: datetime) -> None:
        q = self.questionnaire
        from cati.services.interviews import answers_of

        if not answers_of(s, interview, q):
            save_answers(s, interview, answers, user_id=iv.id, now=at)
            return
        # A resumed break-off: continue from where it stopped, one answer at a time.
        code = interview.current_question
        while code is not None and code in answers:
            saved = save_answer(s, interview, code, answers[code], user_id=iv.id, now=at)
            if saved.step.termination:
                break
            code = saved.step.next_code

    # ------------------------------------------------------------------------------------------------ report
    def _report(self, end: datetime, seconds: float) -> FieldworkReport:
        with self.factory() as s:
            sid = self.study_id
            dials = s.scalar(select(func.count()).select_from(CallAttempt).join(Case, Case.id == CallAttempt.case_id)
                             .where(Case.study_id == sid)) or 0
            by_outcome = dict(s.execute(
                select(CallAttempt.outcome, func.count()).join(Case, Case.id == CallAttempt.case_id)
                .where(Case.study_id == sid).group_by(CallAttempt.outcome)).all())
            cat = catalogue()
            contacts = sum(v for o, v in by_outcome.items() if o in cat and cat[o].contacted)
            ent_rows = s.execute(select(Enterprise.id, Enterprise.quota_target, Enterprise.completes)
                                 .where(Enterprise.study_id == sid)).all()
            open_by_ent = dict(s.execute(
                select(Case.enterprise_id, func.count()).where(
                    Case.study_id == sid,
                    Case.status.in_([CaseStatus.READY, CaseStatus.CLAIMED, CaseStatus.UNRELEASED]),
                    Case.attempts < self.rules.max_attempts)
                .group_by(Case.enterprise_id)).all())
            released = s.scalar(select(func.count()).select_from(Case).where(
                Case.study_id == sid, Case.status != CaseStatus.UNRELEASED)) or 0
            used = s.scalar(select(func.count()).select_from(Case).where(Case.study_id == sid, Case.attempts > 0)) or 0
            dispositions = frames.dispositions_frame(s, sid, tz=self.world.zone.key)
        completes = sum(min(done, target) for _e, target, done in ent_rows)
        overquota = sum(max(0, done - target) for _e, target, done in ent_rows)
        short = sum(1 for e, target, done in ent_rows if done < target and open_by_ent.get(e, 0) > 0)
        short_dry = sum(1 for e, target, done in ent_rows if done < target and open_by_ent.get(e, 0) == 0)
        rates = {}
        if len(dispositions):
            row = frames.rates(dispositions).iloc[0]
            rates = {k: float(row[k]) for k in ("RR1", "RR2", "RR3", "RR4", "COOP1", "COOP3", "REF1", "CON1", "e")}
        zone = self.world.zone
        # The day the fieldwork ended on (a close at midnight belongs to the day before).
        days = ((end - timedelta(microseconds=1)).astimezone(zone).date() - self.start.astimezone(zone).date()).days + 1
        hours = sum(iv.seconds for iv in self.interviewers) / 3600
        planned = sum(self.planned_seconds(iv, end) for iv in self.interviewers) / 3600
        overtime = sum(iv.overtime for iv in self.interviewers) / 3600
        idle = sum(iv.idle for iv in self.interviewers) / 3600
        use = {k: v / 3600 for k, v in sorted(self.time_use.items())}
        return FieldworkReport(
            strategy=self.strategy.name, world=self.world.name, seed=self.seed, enterprises=len(ent_rows),
            interviewers=len(self.interviewers), quota_total=self.quota_total, completes=completes,
            overquota=overquota, interviewer_hours=round(hours, 2), calendar_days=days, end_reason=self.end_reason,
            dials=dials, contacts=contacts, sample_released=released, sample_used=used, short_enterprises=short,
            short_without_sample=short_dry, quota_collisions=self.quota_collisions, wall_seconds=round(seconds, 2),
            rates=rates, dials_by_outcome={str(k): v for k, v in sorted(by_outcome.items(), key=lambda kv: str(kv[0]))},
            contact_rate_by_part={p: self.part_contacts[p] / n for p, n in self.part_dials.items() if n},
            time_use_hours=use, team=self.team, planned_hours=round(planned, 2), overtime_hours=round(overtime, 2),
            hours_cut=round(max(0.0, planned - (hours - overtime)), 2), idle_hours=round(idle, 2),
            deadline_days=self.deadline_days, shortfall=self.quota_total - completes,
        )



def simulate(factory: sessionmaker, world: World, **kw) -> FieldworkReport:
    """Set up (if needed) and run one simulated fieldwork; see :class:`Simulator`."""
    return Simulator(factory, world, **kw).run()
