"""What supervisors watch: the quota board, interviewer productivity, outcome tables and rates, completes per day.

Over 600 lines on purpose: the board, productivity and per-day tables share one set of row types and
reading helpers; split, each screen's service would re-declare them.

Read-only services (they never write): each takes a session and returns plain rows / DataFrames. The pure
arithmetic (projection, rollups, per-interviewer figures) lives in small functions that tests work by hand.

The board is read many times a second by live screens while interviewers write, so it is built from a few
grouped queries over indexed columns (no per-enterprise query) — 360 enterprises render in milliseconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cati.config import DEFAULT_CENTRE_TIMEZONE
from cati.i18n import KeyedError
from cati.models import (
    Appointment,
    AppointmentStatus,
    CallAttempt,
    Case,
    CaseStatus,
    Enterprise,
    Industry,
    Interview,
    InterviewStatus,
    QCStatus,
    Study,
    User,
)

from .calling import zone
from .dispositions import catalogue
from .scheduling import rules_for

#: Pseudo-cases of prior behind a yield estimate (same shrinkage as ``scheduling.projected_shortfalls``).
PRIOR_WEIGHT = 20.0
PRIOR_YIELD = 0.08
#: An enterprise is flagged short only on its own evidence: at least this many finalised cases. Before that its
#: yield is the prior's, the same for every enterprise, and flagging on it lit every row at the start of fieldwork.
MIN_FINAL_FOR_FLAG = 20


# ------------------------------------------------------------------------------------------------ quota board


@dataclass
class BoardRow:
    """One enterprise on the quota board."""

    enterprise_id: int
    external_id: str
    name: str
    industry: str
    region: str
    province: str
    status: str  # active | stopped
    quota_target: int
    completes: int
    in_progress: int
    callable_left: int  # released, not final, under the attempt cap, not claimed
    claimed: int  # being dialed now
    unreleased: int  # imported, replicate not released
    final_cases: int
    appointments: int  # pending appointments
    recent_completes: int  # completes in the recent window
    yield_per_case: float  # completes per finalised case, shrunk towards the prior
    projected: float  # completes expected from the sample already released
    shortfall: float  # target − projected when > 0, else 0
    short: bool  # flagged: the released sample will not reach the quota
    rate_per_hour: float  # recent completes per hour
    eta: datetime | None  # projected finish at the recent rate; None when nothing comes in (or done)
    done: bool = False

    @property
    def remaining(self) -> int:
        return max(self.quota_target - self.completes, 0)

    @property
    def pct(self) -> float:
        return 100.0 * self.completes / self.quota_target if self.quota_target else 100.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["eta"] = self.eta.isoformat() if self.eta else None
        out["remaining"] = self.remaining
        out["pct"] = round(self.pct, 1)
        out["yield_per_case"] = round(self.yield_per_case, 4)
        out["projected"] = round(self.projected, 1)
        out["shortfall"] = round(self.shortfall, 1)
        out["rate_per_hour"] = round(self.rate_per_hour, 2)
        return out


def project_enterprise(target: int, completes: int, in_progress: int, open_cases: int, final_cases: int, *,
                       prior_yield: float = PRIOR_YIELD, prior_weight: float = PRIOR_WEIGHT) -> tuple[float, float, float]:
    """Projected completes of an enterprise from the sample it already has.

    Parameters
    ----------
    target, completes, in_progress : int
        Quota target and live counters.
    open_cases : int
        Released cases that are not final (ready or claimed).
    final_cases : int
        Cases with a final disposition so far.
    prior_yield, prior_weight : float
        The yield per case is ``(completes + prior_yield·prior_weight) / (final_cases + prior_weight)``: few
        finalised cases say little, so the estimate starts at the prior and moves to the enterprise's own yield.

    Returns
    -------
    (yield_per_case, projected, shortfall)
        ``projected = completes + in_progress + open_cases × yield``; ``shortfall = max(target − projected, 0)``
        (0 once completes + in progress reach the target).

    Examples
    --------
    >>> project_enterprise(20, 10, 0, 30, 80)   # yield (10 + 1.6) / 100 = 0.116
    (0.116, 13.48, 6.52)
    """
    y = (completes + prior_yield * prior_weight) / (final_cases + prior_weight)
    if completes + in_progress >= target:
        return round(y, 6), float(completes + in_progress), 0.0
    projected = completes + in_progress + open_cases * y
    return round(y, 6), round(projected, 6), round(max(target - projected, 0.0), 6)


def projected_finish(now: datetime, remaining: int, rate_per_hour: float, *, tz: str | None = None,
                     rules: Any = None) -> datetime | None:
    """When the remaining completes arrive at the recent rate (None if nothing is coming in).

    With ``tz`` and ``rules`` the rate is per *calling* hour and the time runs only inside the calling windows
    (completes do not come in at night); without them, wall-clock hours.

    >>> projected_finish(datetime(2026, 11, 23, 2, tzinfo=UTC), 6, 2.0)
    datetime.datetime(2026, 11, 23, 5, 0, tzinfo=datetime.timezone.utc)
    >>> from cati.services.calling import CallRules   # Monday 20:00 Shanghai, 3 calling hours to go
    >>> projected_finish(datetime(2026, 11, 23, 12, tzinfo=UTC), 6, 2.0, tz="Asia/Shanghai", rules=CallRules())
    datetime.datetime(2026, 11, 24, 3, 0, tzinfo=datetime.timezone.utc)
    """
    if remaining <= 0:
        if tz is not None and rules is not None:  # only running interviews left: done at the next calling moment
            from .calling import next_callable_time

            return next_callable_time(now, tz, rules)
        return now
    if rate_per_hour <= 0:
        return None
    if tz is not None and rules is not None:
        from .pacing import advance_calling_hours

        return advance_calling_hours(now, remaining / rate_per_hour, tz, rules)
    return now + timedelta(hours=remaining / rate_per_hour)


def quota_board(session: Session, study: Study, now: datetime, *, recent_hours: float = 2.0) -> list[BoardRow]:
    """Every enterprise of the study with its quota position, sample left and projection.

    ``recent_hours`` is the window of the "recent yield", in *calling* hours: completes in the last
    ``recent_hours`` calling hours per calling hour give the projected finish, which runs in calling time too (it
    never lands in the night). ``shortfall`` compares what the released sample can still yield with the target
    (``scheduling.auto_release`` releases more when the team runs short of callable cases or the open cases are
    fewer than still needed, by the study's ``calling_rules.sample_release``); ``short`` flags a real risk: on the
    enterprise's own evidence (``MIN_FINAL_FOR_FLAG`` finalised cases), even its unreleased sample will not reach
    the target.
    """
    from .pacing import rewind_calling_hours

    rules = rules_for(study)
    tz = rules.timezone_default
    max_attempts = rules.max_attempts
    ents = session.execute(
        select(Enterprise.id, Enterprise.external_id, Enterprise.name, Industry.name, Enterprise.region,
               Enterprise.province, Enterprise.status, Enterprise.quota_target, Enterprise.completes,
               Enterprise.in_progress)
        .join(Industry, Industry.id == Enterprise.industry_id)
        .where(Enterprise.study_id == study.id)
        .order_by(Enterprise.external_id)
    ).all()
    # Case counts by enterprise and status, read from the (enterprise_id, status) index alone: filtering on the
    # enterprise ids (not on cases.study_id) lets SQLite answer from that covering index, 5x faster than a scan.
    by_status: dict[int, dict[str, int]] = defaultdict(dict)
    for eid, status, n in session.execute(
        select(Case.enterprise_id, Case.status, func.count())
        .where(Case.enterprise_id.in_(select(Enterprise.id).where(Enterprise.study_id == study.id).scalar_subquery()))
        .group_by(Case.enterprise_id, Case.status)
    ):
        by_status[eid][str(getattr(status, "value", status))] = n
    # Ready cases past the attempt cap are not callable (only an appointment brings them back); they are few.
    at_cap = dict(session.execute(
        select(Case.enterprise_id, func.count())
        .where(Case.study_id == study.id, Case.status == CaseStatus.READY, Case.attempts >= max_attempts)
        .group_by(Case.enterprise_id)
    ).all())
    counts: dict[int, tuple[int, int, int, int, int]] = {}
    for eid, st in by_status.items():
        ready_all = st.get("ready", 0)
        counts[eid] = (ready_all - at_cap.get(eid, 0), ready_all, st.get("claimed", 0), st.get("unreleased", 0),
                       st.get("final", 0))
    appts = dict(session.execute(
        select(Case.enterprise_id, func.count())
        .select_from(Appointment).join(Case, Case.id == Appointment.case_id)
        .where(Appointment.study_id == study.id, Appointment.status == AppointmentStatus.PENDING)
        .group_by(Case.enterprise_id)
    ).all())
    since = rewind_calling_hours(now, recent_hours, tz, rules)
    recent = dict(session.execute(
        select(Case.enterprise_id, func.count())
        .select_from(Interview).join(Case, Case.id == Interview.case_id)
        .where(Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE,
               Interview.qc_status != QCStatus.REJECTED, Interview.ended_at >= since)
        .group_by(Case.enterprise_id)
    ).all())
    rows = []
    for eid, ext, name, industry, region, province, status, target, done, running in ents:
        callable_, ready_all, claimed, unreleased, final = counts.get(eid, (0, 0, 0, 0, 0))
        y, projected, short = project_enterprise(target, done, running, ready_all + claimed, final)
        whole_sample = projected + unreleased * y if short > 0 else projected
        at_risk = short > 0 and final >= MIN_FINAL_FOR_FLAG and whole_sample < target
        n_recent = recent.get(eid, 0)
        rate = n_recent / recent_hours if recent_hours > 0 else 0.0
        rows.append(BoardRow(
            enterprise_id=eid, external_id=ext, name=name, industry=industry, region=region or "",
            province=province or "", status=str(status.value if hasattr(status, "value") else status),
            quota_target=target, completes=done, in_progress=running, callable_left=callable_, claimed=claimed,
            unreleased=unreleased, final_cases=final, appointments=appts.get(eid, 0), recent_completes=n_recent,
            yield_per_case=y, projected=projected, shortfall=short,
            short=at_risk and str(getattr(status, "value", status)) == "active",
            rate_per_hour=rate,
            eta=projected_finish(now, target - done - running, rate, tz=tz, rules=rules) if done < target else None,
            done=done >= target,
        ))
    return rows


def rollup(rows: Iterable[BoardRow], by: str = "industry") -> list[dict[str, Any]]:
    """Board rows summed per industry or region (``by`` is a BoardRow attribute).

    Each group: enterprises, target, completes, in progress, callable left, appointments, enterprises done,
    enterprises flagged short, and percent of target completed (completes capped at each target, so an
    enterprise over its quota does not hide another one under it).
    """
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = getattr(r, by) or "—"
        g = groups.setdefault(key, {"key": key, "enterprises": 0, "target": 0, "completes": 0, "in_progress": 0,
                                    "callable_left": 0, "appointments": 0, "done": 0, "short": 0, "_capped": 0,
                                    "rate_per_hour": 0.0})
        g["enterprises"] += 1
        g["target"] += r.quota_target
        g["completes"] += r.completes
        g["_capped"] += min(r.completes, r.quota_target)
        g["in_progress"] += r.in_progress
        g["callable_left"] += r.callable_left
        g["appointments"] += r.appointments
        g["done"] += int(r.done)
        g["short"] += int(r.short)
        g["rate_per_hour"] += r.rate_per_hour
    out = []
    for g in sorted(groups.values(), key=lambda g: g["key"]):
        g["pct"] = round(100.0 * g.pop("_capped") / g["target"], 1) if g["target"] else 100.0
        g["rate_per_hour"] = round(g["rate_per_hour"], 2)
        out.append(g)
    return out


BOARD_SORT_KEYS = ("external_id", "name", "industry", "region", "completes", "pct", "in_progress", "callable_left",
                   "appointments", "shortfall", "eta", "rate_per_hour")


def filter_board(rows: Sequence[BoardRow], *, q: str = "", industry: str = "", region: str = "",
                 only: str = "", sort: str = "external_id", desc: bool = False) -> list[BoardRow]:
    """Search (name or id, case-insensitive), filter (industry, region, ``only`` = short | open | done |
    stopped) and sort the board. Unknown sort keys raise ValueError."""
    if sort not in BOARD_SORT_KEYS:
        raise KeyedError("board_sort_unknown", sort=sort, keys=", ".join(BOARD_SORT_KEYS))
    needle = q.strip().lower()
    out = []
    for r in rows:
        if needle and needle not in r.name.lower() and needle not in r.external_id.lower():
            continue
        if industry and r.industry != industry:
            continue
        if region and r.region != region:
            continue
        if only == "short" and not r.short:
            continue
        if only == "open" and r.done:
            continue
        if only == "done" and not r.done:
            continue
        if only == "stopped" and r.status != "stopped":
            continue
        out.append(r)

    def key(r: BoardRow):
        v = r.pct if sort == "pct" else getattr(r, sort)
        if sort == "eta":  # no projection sorts last
            return (v is None, v or datetime.max.replace(tzinfo=UTC))
        return (False, v)

    return sorted(out, key=key, reverse=desc)


def board_fingerprint(rows: Iterable[BoardRow]) -> dict[int, tuple]:
    """What a live screen compares between polls: changed tuples mean a row to resend."""
    return {r.enterprise_id: (r.completes, r.in_progress, r.callable_left, r.claimed, r.unreleased, r.appointments,
                              r.status, r.short, r.recent_completes, r.final_cases) for r in rows}


# ------------------------------------------------------------------------------------------ interviewers


@dataclass
class InterviewerStats:
    """One interviewer's shift figures (times in seconds)."""

    interviewer_id: int
    username: str
    display_name: str
    dials: int = 0
    contacts: int = 0
    completes: int = 0
    refusals: int = 0
    talk_s: float = 0.0
    interview_s: list[float] = field(default_factory=list)
    wait_s: float | None = None
    wrap_s: float | None = None
    paused_s: float | None = None
    hours: float = 0.0  # signed-in (or active) hours in the shift

    @property
    def completes_per_hour(self) -> float | None:
        return self.completes / self.hours if self.hours > 0 else None

    @property
    def avg_interview_s(self) -> float | None:
        return sum(self.interview_s) / len(self.interview_s) if self.interview_s else None

    @property
    def refusal_rate(self) -> float | None:
        return self.refusals / self.contacts if self.contacts else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("interview_s")
        d["completes_per_hour"] = self.completes_per_hour
        d["avg_interview_s"] = self.avg_interview_s
        d["refusal_rate"] = self.refusal_rate
        return d


def shift_bounds(now: datetime, tz: str = DEFAULT_CENTRE_TIMEZONE) -> tuple[datetime, datetime]:
    """Today's shift in the call centre's time zone: local midnight to now (UTC)."""
    local = now.astimezone(zone(tz))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    return start, now


def _seconds(a: datetime | None, b: datetime | None) -> float:
    if a is None or b is None:
        return 0.0
    return max((b - a).total_seconds(), 0.0)


def interviewer_stats(session: Session, study: Study, start: datetime, end: datetime, *,
                      agent_times: Mapping[int, Mapping[str, float]] | None = None,
                      interviewer_ids: Iterable[int] | None = None,
                      starts: Mapping[int, datetime] | None = None) -> list[InterviewerStats]:
    """Per interviewer, over [start, end) — or from ``starts[interviewer]`` (their shift start) when given:
    dials, contacts, completes, completes per hour, average interview length, talk time, refusal rate — and
    wait / wrap / pause times when ``agent_times`` (seconds per state, from the interviewer-state log) is given.

    Contacts are dials whose outcome reached a person (the catalogue's ``contacted``); refusals are 2.11x
    outcomes (break-offs 2.12 are not counted as refusals here). Talk time is the time in the "talking"
    state when the state log is given, else the dials' answer-to-hang-up time.
    Hours are the signed-in hours from ``agent_times["signed_in"]`` when known, else the span from the first
    to the last dial or interview of the shift.
    """
    cat = catalogue()
    contacted = {c for c, d in cat.items() if d.contacted}
    refusals = cat.codes_where(refusal=True)
    agent_times = agent_times or {}
    ids = set(interviewer_ids or ())
    attempts = session.execute(
        select(CallAttempt.interviewer_id, CallAttempt.requested_at, CallAttempt.answered_at, CallAttempt.ended_at,
               CallAttempt.outcome)
        .join(Case, Case.id == CallAttempt.case_id)
        .where(Case.study_id == study.id, CallAttempt.requested_at >= start, CallAttempt.requested_at < end,
               CallAttempt.interviewer_id.is_not(None))
    ).all()
    interviews = session.execute(
        select(Interview.interviewer_id, Interview.started_at, Interview.ended_at)
        .where(Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE,
               Interview.ended_at >= start, Interview.ended_at < end, Interview.interviewer_id.is_not(None))
    ).all()
    by: dict[int, dict[str, Any]] = defaultdict(lambda: {"att": [], "iv": []})
    starts = starts or {}
    for row in attempts:
        if row[1] >= starts.get(row[0], start):
            by[row[0]]["att"].append(row)
    for row in interviews:
        if row[2] >= starts.get(row[0], start):
            by[row[0]]["iv"].append(row)
    ids |= set(by) | set(agent_times)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    out = []
    for uid in sorted(ids):
        u = users.get(uid)
        if u is None:
            continue
        s = InterviewerStats(uid, u.username, u.display_name)
        times: list[datetime] = []
        for _i, req, ans, ended, outcome in by[uid]["att"]:
            s.dials += 1
            if outcome in contacted:
                s.contacts += 1
            if outcome in refusals:
                s.refusals += 1
            if ans is not None:
                s.talk_s += _seconds(ans, ended or end)
            times += [t for t in (req, ended) if t is not None]
        for _i, started, ended in by[uid]["iv"]:
            s.completes += 1
            s.interview_s.append(_seconds(started, ended))
            times += [t for t in (started, ended) if t is not None]
        at = agent_times.get(uid) or {}
        if "talking" in at:  # the state log knows talk time even for calls the dialer did not record
            s.talk_s = at["talking"]
        s.wait_s = at.get("ready")
        s.wrap_s = at.get("wrap_up")
        s.paused_s = at.get("paused")
        if at.get("signed_in"):
            s.hours = at["signed_in"] / 3600.0
        elif times:
            s.hours = _seconds(min(times), max(times)) / 3600.0
        out.append(s)
    return out


# ------------------------------------------------------------------------------------------------ outcomes


def disposition_table(frame: pd.DataFrame, lang: str = "zh-CN") -> pd.DataFrame:
    """Counts per AAPOR code with its symbol and label, in code order, and the share of all cases."""
    cat = catalogue()
    n = len(frame)
    counts = frame["disposition"].value_counts() if n else pd.Series(dtype=int)
    rows = []
    for code in sorted(counts.index, key=lambda c: [int(x) for x in c.split(".")]):
        d = cat.get(code)
        rows.append({"code": code, "symbol": d.symbol.value if d else "?", "label": d.text(lang) if d else code,
                     "final": bool(d.final) if d else True, "n": int(counts[code]),
                     "share": counts[code] / n if n else 0.0})
    return pd.DataFrame(rows, columns=["code", "symbol", "label", "final", "n", "share"])


def completes_per_day(session: Session, study: Study, *, plan_start: date | None = None, plan_days: int = 14,
                      tz: str = DEFAULT_CENTRE_TIMEZONE, until: date | None = None) -> pd.DataFrame:
    """Valid completes per local day (rejected ones excluded) with their running total, against a linear plan
    that reaches the total quota target on the last of ``plan_days`` days from ``plan_start`` (default: the day
    of the first complete, else today).

    Columns: day, completes, cumulative, plan_cumulative, plan_daily.
    """
    zi = zone(tz)
    ends = session.scalars(
        select(Interview.ended_at).where(Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE,
                                         Interview.qc_status != QCStatus.REJECTED, Interview.ended_at.is_not(None))
    ).all()
    target = session.scalar(select(func.coalesce(func.sum(Enterprise.quota_target), 0))
                            .where(Enterprise.study_id == study.id)) or 0
    days = pd.Series([e.astimezone(zi).date() for e in ends], dtype=object)
    counts = days.value_counts().to_dict() if len(days) else {}
    today = until or datetime.now(UTC).astimezone(zi).date()
    first = min(counts) if counts else today
    start = plan_start or first
    last = max([today, start + timedelta(days=max(plan_days, 1) - 1), *counts.keys()])
    begin = min(start, first)
    rows = []
    cum = 0
    daily = target / max(plan_days, 1)
    d = begin
    while d <= last:
        cum += counts.get(d, 0)
        k = (d - start).days + 1
        plan = 0.0 if k <= 0 else min(target, daily * k)
        rows.append({"day": d.isoformat(), "completes": int(counts.get(d, 0)), "cumulative": cum,
                     "plan_cumulative": round(plan, 1), "plan_daily": round(daily if 0 < k <= plan_days else 0.0, 1)})
        d += timedelta(days=1)
    return pd.DataFrame(rows, columns=["day", "completes", "cumulative", "plan_cumulative", "plan_daily"])


def fmt_duration(seconds: float | None) -> str:
    """``1:05:03`` / ``5:03`` / ``—``."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


# ---------------------------------------------------------------------------------------- interviewer states

#: Agent statuses summed into "signed in" time.
_ON_SHIFT = ("ready", "paused", "dialing", "talking", "wrapup")


def state_durations(events: Sequence[tuple[str, datetime]], start: datetime, end: datetime,
                    initial: str | None = None) -> dict[str, float]:
    """Seconds spent in each state inside [start, end) from a time-ordered list of (status, at) changes.

    ``initial`` is the state at ``start`` (the last change before it). The result maps each status to its
    seconds, plus ``signed_in`` (every status but offline) and ``wrap_up`` (alias of wrapup, as the stats call
    it).

    >>> t = lambda m: datetime(2026, 11, 23, 2, m, tzinfo=UTC)
    >>> d = state_durations([("ready", t(0)), ("talking", t(5)), ("wrapup", t(15)), ("offline", t(17))], t(0), t(30))
    >>> d["ready"], d["talking"], d["wrapup"], d["signed_in"]
    (300.0, 600.0, 120.0, 1020.0)
    """
    out: dict[str, float] = defaultdict(float)
    current, since = initial, start
    for status, at in events:
        if at < start:
            current = status
            continue
        if at >= end:
            break
        if current is not None:
            out[current] += _seconds(since, at)
        current, since = status, at
    if current is not None:
        out[current] += _seconds(since, end)
    result = dict(out)
    result["signed_in"] = sum(v for k, v in out.items() if k in _ON_SHIFT)
    result["wrap_up"] = out.get("wrapup", 0.0)
    return result


def agent_times(session: Session, start: datetime, end: datetime, *,
                starts: Mapping[int, datetime] | None = None) -> dict[int, dict[str, float]]:
    """Per interviewer, seconds in each state over [start, end) (or from ``starts[interviewer]``), from the
    interviewer-state log. The state at the window's opening is the last change in the 24 hours before it."""
    from cati.models.agents import AgentEvent

    starts = starts or {}
    first = min([start, *starts.values()])
    events: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for uid, status, at in session.execute(
        select(AgentEvent.user_id, AgentEvent.status, AgentEvent.at)
        .where(AgentEvent.at >= first - timedelta(hours=24), AgentEvent.at < end)
        .order_by(AgentEvent.at, AgentEvent.id)
    ):
        events[uid].append((str(getattr(status, "value", status)), at))
    return {uid: state_durations(evs, starts.get(uid, start), end) for uid, evs in events.items()}


@dataclass
class LiveInterviewer:
    """One interviewer on the live screen: state now, for how long, current case's enterprise, shift stats."""

    user_id: int
    username: str
    display_name: str
    status: str
    pause_reason: str | None
    since_at: datetime
    seconds_in_state: float
    case_id: int | None
    enterprise: str | None
    call_id: str | None
    stats: InterviewerStats | None
    seconds_since_seen: float | None = None  # since the console's last heartbeat (None: no heartbeat yet)
    question: str | None = None  # the question of the interview in progress
    interview_seconds: float | None = None  # since that interview started

    def alert(self, *, idle_minutes: float, wrapup_minutes: float, call_minutes: float,
              silent_seconds: float) -> tuple[str, dict] | None:
        """What a supervisor should look at now, as an i18n key and its fields, or None: a console gone silent
        (a closed browser), ready too long without a case, wrap-up too long, a call too long.

        >>> x = LiveInterviewer(1, "ann", "王芳", "wrapup", None, datetime(2026, 1, 1, tzinfo=UTC), 200.0, None,
        ...                     None, None, None, seconds_since_seen=4.0)
        >>> x.alert(idle_minutes=10, wrapup_minutes=3, call_minutes=30, silent_seconds=15)
        ('alert_wrapup', {})
        """
        if self.seconds_since_seen is not None and self.seconds_since_seen >= silent_seconds:
            return "alert_absent", {"s": int(self.seconds_since_seen)}
        limit = {"ready": idle_minutes, "wrapup": wrapup_minutes, "talking": call_minutes}.get(self.status)
        if limit is not None and self.seconds_in_state >= limit * 60:
            return {"ready": "alert_idle", "wrapup": "alert_wrapup", "talking": "alert_call"}[self.status], {}
        return None

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("user_id", "username", "display_name", "status", "pause_reason",
                                           "seconds_in_state", "case_id", "enterprise", "call_id",
                                           "seconds_since_seen", "question", "interview_seconds")}
        d["since_at"] = self.since_at.isoformat()
        d["stats"] = self.stats.as_dict() if self.stats else None
        return d


def interviewers_live(session: Session, study: Study, now: datetime, *, tz: str = DEFAULT_CENTRE_TIMEZONE,
                      include_offline: bool = False) -> list[LiveInterviewer]:
    """Every interviewer with a state row (signed in unless ``include_offline``) and their shift's figures
    (since ``AgentState.shift_started_at``, the same start as the interviewer's own counters)."""
    from cati.models.agents import AgentState, AgentStatus

    q = (select(AgentState, User.username, User.display_name, Enterprise.name)
         .join(User, User.id == AgentState.user_id)
         .outerjoin(Case, Case.id == AgentState.case_id)
         .outerjoin(Enterprise, Enterprise.id == Case.enterprise_id)
         .order_by(User.username))
    if not include_offline:
        q = q.where(AgentState.status != AgentStatus.OFFLINE)
    rows = session.execute(q).all()
    # Each interviewer's figures run from their own shift start (as on their console), at most a day back.
    day_ago = now - timedelta(hours=24)
    starts = {st.user_id: max(st.shift_started_at, day_ago) for st, *_ in rows}
    start, end = (min(starts.values()) if starts else now), now
    times = agent_times(session, start, end, starts=starts)
    stats = {s.interviewer_id: s for s in interviewer_stats(
        session, study, start, end, agent_times=times, interviewer_ids=list(starts), starts=starts)}
    # The interview each one is conducting now: its current question and how long it has run.
    held = {st.case_id: st.user_id for st, *_ in rows if st.case_id is not None}
    running: dict[int, tuple[str | None, datetime]] = {}
    if held:
        for case_id, uid, question, started in session.execute(
                select(Interview.case_id, Interview.interviewer_id, Interview.current_question, Interview.started_at)
                .where(Interview.case_id.in_(list(held)), Interview.status == InterviewStatus.IN_PROGRESS)):
            if held.get(case_id) == uid:
                running[uid] = (question, started)
    out = []
    for st, username, name, ename in rows:
        question, started = running.get(st.user_id, (None, None))
        out.append(LiveInterviewer(st.user_id, username, name, st.status.value, st.pause_reason, st.since_at,
                                   _seconds(st.since_at, now), st.case_id, ename, st.call_id, stats.get(st.user_id),
                                   _seconds(st.last_seen_at, now) if st.last_seen_at else None,
                                   question, _seconds(started, now) if started else None))
    return out
