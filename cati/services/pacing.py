"""Pacing against the fieldwork end date: when will the quotas be full, with what uncertainty, and is the date at
risk?

Projections run on **calling hours**, not wall-clock hours: completes only come in while calls may be placed, so
"6 more completes at 2 an hour" at 20:00 means tomorrow morning, never 02:15 at night. The recent rate is
completes per calling hour over the last few calling hours; its uncertainty is the Poisson interval of that count
(exact, from the chi-square distribution), so a projection from 3 completes is honestly wide and one from 300 is
narrow. Windows are the study's weekday/weekend calling windows in its default time zone (the centre's clock; the
respondent-local windows of other zones shift the day by at most an hour or two).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cati.models import Enterprise, Interview, InterviewStatus, QCStatus, Study

from .calling import CallRules, local, segments, zone
from .runtime import runtime_for


def _stretches(start: datetime, end: datetime, tz: str, rules: CallRules):
    """Callable stretches (UTC) overlapping [start, end], clipped to it."""
    day = local(start, tz).date() - timedelta(days=1)
    last = local(end, tz).date() + timedelta(days=1)
    while day <= last:
        for a, b, _part in segments(day, tz, rules):
            a, b = max(a, start), min(b, end)
            if a < b:
                yield a, b
        day += timedelta(days=1)


def calling_hours_between(start: datetime, end: datetime, tz: str, rules: CallRules) -> float:
    """Hours inside the calling windows between two UTC instants.

    >>> r = CallRules()  # weekdays 09:00-12:00 and 13:30-21:00 Shanghai
    >>> calling_hours_between(datetime(2026, 11, 23, 0, tzinfo=UTC), datetime(2026, 11, 24, 0, tzinfo=UTC),
    ...                       "Asia/Shanghai", r)   # Monday 08:00 to Tuesday 08:00 local
    10.5
    """
    if end <= start:
        return 0.0
    return sum((b - a).total_seconds() for a, b in _stretches(start, end, tz, rules)) / 3600


def advance_calling_hours(start: datetime, hours: float, tz: str, rules: CallRules, *,
                          horizon_days: int = 400) -> datetime | None:
    """The instant when ``hours`` calling hours have passed after ``start`` (None beyond the horizon).

    >>> r = CallRules()
    >>> advance_calling_hours(datetime(2026, 11, 23, 12, tzinfo=UTC), 3, "Asia/Shanghai", r)  # Mon 20:00 local
    datetime.datetime(2026, 11, 24, 3, 0, tzinfo=datetime.timezone.utc)
    """
    if hours <= 0:
        return start
    left = hours * 3600
    day = local(start, tz).date()
    for _ in range(horizon_days):
        for a, b, _part in segments(day, tz, rules):
            a = max(a, start)
            if a >= b:
                continue
            span = (b - a).total_seconds()
            if span >= left:
                return a + timedelta(seconds=left)
            left -= span
        day += timedelta(days=1)
    return None


def rewind_calling_hours(end: datetime, hours: float, tz: str, rules: CallRules, *, horizon_days: int = 60) -> datetime:
    """The instant ``hours`` calling hours before ``end`` (the start of the "recent" window)."""
    left = hours * 3600
    day = local(end, tz).date()
    for _ in range(horizon_days):
        for a, b, _part in reversed(list(segments(day, tz, rules))):
            b = min(b, end)
            if a >= b:
                continue
            span = (b - a).total_seconds()
            if span >= left:
                return b - timedelta(seconds=left)
            left -= span
        day -= timedelta(days=1)
    return end - timedelta(days=horizon_days)


def rate_interval(n: int, hours: float, confidence: float = 0.8) -> tuple[float, float, float]:
    """Completes per calling hour: (low, estimate, high), the exact Poisson interval of ``n`` in ``hours``.

    ``low = χ²((1-c)/2; 2n) / 2h``, ``high = χ²((1+c)/2; 2n+2) / 2h``, estimate ``n / h``.

    >>> [round(x, 3) for x in rate_interval(12, 6.0)]
    [1.305, 2.0, 2.964]
    """
    from scipy.stats import chi2

    if hours <= 0:
        return 0.0, 0.0, float("inf")
    a = (1 - confidence) / 2
    low = chi2.ppf(a, 2 * n) / (2 * hours) if n > 0 else 0.0
    high = chi2.ppf(1 - a, 2 * n + 2) / (2 * hours)
    return float(low), n / hours, float(high)


@dataclass(frozen=True)
class FinishProjection:
    eta: datetime | None     # at the estimated rate (None: nothing comes in yet)
    early: datetime | None   # at the interval's high rate
    late: datetime | None    # at the interval's low rate (None: the low rate is 0 — no bound yet)


def project_finish(now: datetime, remaining: float, n_recent: int, recent_hours: float, tz: str, rules: CallRules,
                   confidence: float = 0.8) -> FinishProjection:
    """When ``remaining`` completes will be in, from ``n_recent`` completes in the last ``recent_hours`` calling
    hours, in calling time (never in the night)."""
    if remaining <= 0:
        return FinishProjection(now, now, now)
    low, mid, high = rate_interval(n_recent, recent_hours, confidence)

    def at(rate: float) -> datetime | None:
        return advance_calling_hours(now, remaining / rate, tz, rules) if rate > 0 else None

    return FinishProjection(at(mid), at(high), at(low))


@dataclass(frozen=True)
class StudyPace:
    """The study's pace against its end date (see :func:`study_pace`)."""

    remaining: int
    recent_completes: int
    recent_calling_hours: float
    rate: float
    rate_low: float
    rate_high: float
    projection: FinishProjection
    end_date: date | None
    deadline: datetime | None           # the end of the last calling window of the end date
    calling_hours_left: float | None
    required_rate: float | None         # completes per calling hour needed from now on to finish by the deadline
    status: str                         # done | no_data | on_track | at_risk | late | no_end_date
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        def iso(x):
            return x.isoformat() if x else None

        return {"remaining": self.remaining, "recent_completes": self.recent_completes,
                "rate": round(self.rate, 3), "rate_low": round(self.rate_low, 3),
                "rate_high": round(self.rate_high, 3) if self.rate_high != float("inf") else None,
                "eta": iso(self.projection.eta), "early": iso(self.projection.early), "late": iso(self.projection.late),
                "end_date": iso(self.end_date), "deadline": iso(self.deadline),
                "calling_hours_left": self.calling_hours_left,
                "required_rate": round(self.required_rate, 3) if self.required_rate is not None else None,
                "status": self.status}


def deadline_of(end_date: date, tz: str, rules: CallRules) -> datetime:
    """The end of the last calling window on ``end_date`` (local), UTC; midnight if it has no window."""
    ends = [b for _a, b, _p in segments(end_date, tz, rules)]
    return max(ends) if ends else datetime.combine(end_date + timedelta(days=1), time(0), zone(tz)).astimezone(UTC)


def classify(remaining: int, projection: FinishProjection, deadline: datetime | None, n_recent: int) -> str:
    """done | no_end_date | no_data | on_track | at_risk | late.

    ``at_risk`` warns early: the estimate still makes the date, but the pessimistic end of the interval does not.

    >>> d = datetime(2026, 12, 20, 13, tzinfo=UTC)
    >>> classify(5, FinishProjection(d - timedelta(days=3), d - timedelta(days=4), d - timedelta(days=1)), d, 9)
    'on_track'
    >>> classify(5, FinishProjection(d - timedelta(days=1), d - timedelta(days=2), d + timedelta(days=2)), d, 9)
    'at_risk'
    >>> classify(5, FinishProjection(d + timedelta(days=1), d, d + timedelta(days=3)), d, 9)
    'late'
    """
    if remaining <= 0:
        return "done"
    if deadline is None:
        return "no_end_date"
    if n_recent == 0 or projection.eta is None:
        return "no_data"
    if projection.eta > deadline:
        return "late"
    if projection.late is None or projection.late > deadline:
        return "at_risk"
    return "on_track"


def remaining_completes(session: Session, study: Study) -> int:
    """Completes still needed: the open places of every enterprise (target − completes − in progress)."""
    return int(session.scalar(
        select(func.coalesce(func.sum(Enterprise.quota_target - Enterprise.completes - Enterprise.in_progress), 0))
        .where(Enterprise.study_id == study.id, Enterprise.quota_open)) or 0)


def study_pace(session: Session, study: Study, now: datetime, *, recent_calling_hours: float = 6.0,
               rules: CallRules | None = None) -> StudyPace:
    """Remaining completes, the recent rate with its interval, the projected finish and the verdict against the
    study's ``fieldwork.end_date``."""
    from .scheduling import rules_for

    rules = rules or rules_for(study)
    tz = rules.timezone_default
    fieldwork = runtime_for(study).fieldwork
    confidence = fieldwork.confidence
    end_date = fieldwork.end_date
    remaining = remaining_completes(session, study)
    since = rewind_calling_hours(now, recent_calling_hours, tz, rules)
    n_recent = int(session.scalar(
        select(func.count()).select_from(Interview)
        .where(Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE,
               Interview.qc_status != QCStatus.REJECTED, Interview.ended_at >= since)) or 0)
    low, mid, high = rate_interval(n_recent, recent_calling_hours, confidence)
    projection = project_finish(now, remaining, n_recent, recent_calling_hours, tz, rules, confidence)
    deadline = deadline_of(end_date, tz, rules) if end_date else None
    hours_left = round(calling_hours_between(now, deadline, tz, rules), 2) if deadline else None
    required = (remaining / hours_left if hours_left else (float("inf") if remaining else 0.0)) \
        if deadline is not None else None
    return StudyPace(remaining=remaining, recent_completes=n_recent, recent_calling_hours=recent_calling_hours,
                     rate=mid, rate_low=low, rate_high=high, projection=projection, end_date=end_date,
                     deadline=deadline, calling_hours_left=hours_left, required_rate=required,
                     status=classify(remaining, projection, deadline, n_recent), confidence=confidence)
