"""Calling rules as time arithmetic: respondent-local calling windows, parts of the day, retry times.

Pure functions (no database): the scheduler and the simulator both use them, and property tests pin them down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from cati.config import DEFAULT_CENTRE_TIMEZONE

from .dispositions import Catalogue, catalogue

Window = tuple[time, time]


def _t(value: Any) -> time:
    if isinstance(value, time):
        return value
    hh, mm = str(value).split(":")
    return time(int(hh), int(mm))


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Contact rates by time of call reported for telephone surveys (Weeks, Kulka & Pierson 1987; Groves & Couper
# 1998, ch. 4; AAPOR "best time to call" practice): weekday evenings and weekends reach people markedly more
# often than weekday daytime. Relative weights, weekday morning = 1; a study can override them.
DEFAULT_CONTACT_PRIOR: Mapping[str, Mapping[str, float]] = {
    "weekday": {"morning": 1.0, "afternoon": 1.0, "evening": 1.6},
    "weekend": {"morning": 1.3, "afternoon": 1.4, "evening": 1.3},
}


@dataclass(frozen=True)
class SampleReleaseRules:
    """calling_rules.sample_release (study/schema.py ``SampleRelease``): when replicates are released
    automatically."""

    mode: str = "need"  # need | projected | manual
    callable_per_interviewer: float = 2.0
    min_open_per_needed: float = 1.0
    prior_yield: float = 0.08  # the ``projected`` mode's yield prior


@dataclass(frozen=True)
class CallRules:
    """The study's calling rules, compiled once (docs/domain.md §5)."""

    timezone_default: str = DEFAULT_CENTRE_TIMEZONE
    weekday_windows: tuple[Window, ...] = ((time(9), time(12)), (time(13, 30), time(21)))
    weekend_windows: tuple[Window, ...] = ((time(10), time(18)),)
    day_parts: tuple[tuple[str, time, time], ...] = (
        ("morning", time(9), time(12)),
        ("afternoon", time(12), time(17, 30)),
        ("evening", time(17, 30), time(21)),
    )
    max_attempts: int = 6
    claim_timeout_minutes: int = 20
    appointment_window_minutes: int = 15
    appointment_grace_minutes: int = 60
    retry_minutes: Mapping[str, int] = field(default_factory=dict)  # study overrides of the catalogue
    # Outcome → n: the case stops once its last n outcomes were all that code (a number that rejects our calls
    # twice will reject the next four too; each such dial costs interviewer time for nothing).
    stop_after_consecutive: Mapping[str, int] = field(default_factory=dict)
    # At most this many concurrent claims per still-needed complete of an enterprise: keeps 50 interviewers
    # from all dialing the one enterprise that needs a single interview more.
    claims_per_open_slot: float = 3.0
    # Best time to call: defer a case (dial it after every other callable case) while its estimated chance of
    # reaching someone now is below this share of the best chance in a coming part of the day
    # (contact_model.allowed_masks); 0 dials whatever is due in need and chance order.
    best_time_ratio: float = 0.0
    # Prior contact weights by weekday/weekend and part-of-day name, relative to a weekday morning, used by the
    # contact model until the study's own dials say otherwise (contact_model docstring gives the source).
    contact_prior: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_CONTACT_PRIOR)
    sample_release: SampleReleaseRules = field(default_factory=SampleReleaseRules)
    # Dialing mode (preview | progressive | predictive) and the abandoned-call target and hard ceiling (shares of
    # calls answered by a person; the study schema keeps the target under the ceiling).
    dialing_mode: str = "preview"
    abandon_target: float = 0.03
    abandon_ceiling: float = 0.03
    # The enterprise quota is not a calling rule: it is each Enterprise.quota_target (services.quotas).

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> CallRules:
        """Build from a study definition (the mapping stored in ``Study.definition``)."""
        raw = definition.get("calling_rules") or {}
        kw: dict[str, Any] = {}
        if "timezone_default" in raw:
            kw["timezone_default"] = raw["timezone_default"]
        elif definition.get("timezone"):  # a web study: no calling rules, its respondents' time zone
            kw["timezone_default"] = definition["timezone"]
        windows = raw.get("windows") or {}
        if "weekday" in windows:
            kw["weekday_windows"] = tuple((_t(a), _t(b)) for a, b in windows["weekday"])
        if "weekend" in windows:
            kw["weekend_windows"] = tuple((_t(a), _t(b)) for a, b in windows["weekend"])
        if raw.get("day_parts"):
            kw["day_parts"] = tuple((name, _t(a), _t(b)) for name, (a, b) in raw["day_parts"].items())
        for key in ("max_attempts", "claim_timeout_minutes", "appointment_window_minutes",
                    "appointment_grace_minutes", "claims_per_open_slot", "best_time_ratio"):
            if key in raw:
                kw[key] = raw[key]
        if raw.get("contact_prior"):
            kw["contact_prior"] = {str(k): {str(p): float(w) for p, w in v.items()}
                                   for k, v in raw["contact_prior"].items()}
        if raw.get("retry_minutes"):
            kw["retry_minutes"] = {str(k): int(v) for k, v in raw["retry_minutes"].items()}
        if raw.get("stop_after_consecutive"):
            kw["stop_after_consecutive"] = {str(k): int(v) for k, v in raw["stop_after_consecutive"].items()}
        if raw.get("sample_release"):
            sr = raw["sample_release"]
            kw["sample_release"] = SampleReleaseRules(
                mode=str(sr.get("mode", "need")),
                **{k: float(sr[k]) for k in ("callable_per_interviewer", "min_open_per_needed", "prior_yield") if k in sr})
        dialing = raw.get("dialing") or {}
        if "mode" in dialing:
            kw["dialing_mode"] = str(dialing["mode"])
        for key in ("abandon_target", "abandon_ceiling"):
            if key in dialing:
                kw[key] = float(dialing[key])
        return cls(**kw)

    def prior_weight(self, weekend: int, part: int) -> float:
        """The contact prior's weight of a slot (1.0 where the study's part names are not in it)."""
        table = self.contact_prior.get("weekend" if weekend else "weekday") or {}
        return float(table.get(self.day_parts[part][0], 1.0))

    def windows_on(self, day: date) -> tuple[Window, ...]:
        return self.weekend_windows if day.weekday() >= 5 else self.weekday_windows

    def retry_delay(self, outcome: str, cat: Catalogue | None = None) -> timedelta:
        if outcome in self.retry_minutes:
            return timedelta(minutes=self.retry_minutes[outcome])
        disp = (cat or catalogue()).get_code(outcome)
        return timedelta(minutes=disp.retry_minutes or 0)


def local(now: datetime, tz: str) -> datetime:
    return now.astimezone(zone(tz))


def in_window(now: datetime, tz: str, rules: CallRules) -> bool:
    """Is ``now`` (UTC) inside the respondent-local calling window?"""
    lt = local(now, tz)
    t = lt.time()
    return any(a <= t < b for a, b in rules.windows_on(lt.date()))


def day_part_index(now: datetime, tz: str, rules: CallRules) -> int | None:
    """Index of the respondent-local part of the day (into ``rules.day_parts``), or None outside them."""
    t = local(now, tz).time()
    for i, (_name, a, b) in enumerate(rules.day_parts):
        if a <= t < b:
            return i
    return None


def segments(day: date, tz: str, rules: CallRules):
    """Callable stretches of one local day, split by part of the day: (start UTC, end UTC, part index)."""
    zi = zone(tz)
    for a, b in rules.windows_on(day):
        cuts = sorted({a, b, *(p for _n, s, e in rules.day_parts for p in (s, e) if a < p < b)})
        for s, e in zip(cuts, cuts[1:], strict=False):
            part = next((i for i, (_n, ps, pe) in enumerate(rules.day_parts) if ps <= s < pe), None)
            yield (datetime.combine(day, s, zi).astimezone(UTC), datetime.combine(day, e, zi).astimezone(UTC), part)


def next_callable_time(
    earliest: datetime,
    tz: str,
    rules: CallRules,
    *,
    avoid_parts: int = 0,
    horizon_days: int = 14,
) -> datetime:
    """The first instant ≥ ``earliest`` inside the calling window, preferring parts of the day whose bit is
    not set in ``avoid_parts`` (falls back to any part when every part within the horizon is avoided)."""
    start_day = local(earliest, tz).date()
    fallback: datetime | None = None
    for offset in range(horizon_days + 1):
        for s, e, part in segments(start_day + timedelta(days=offset), tz, rules):
            if e <= earliest:
                continue
            candidate = max(s, earliest)
            if fallback is None:
                fallback = candidate
            if part is None or not (avoid_parts >> part) & 1:
                return candidate
        if fallback is not None and not avoid_parts:
            return fallback
    if fallback is None:
        raise ValueError("the calling rules have no calling window at all")
    return fallback


def retry_time(
    outcome: str,
    now: datetime,
    tz: str,
    rules: CallRules,
    *,
    tried_parts: int = 0,
    cat: Catalogue | None = None,
) -> datetime:
    """When a case may be dialed again after a temporary ``outcome`` (docs/domain.md §5 call rules).

    The wait is the outcome's retry delay (catalogue, overridden by the study); outcomes flagged
    ``different_day_part`` (no answer, answering machine) then move to a part of the day not yet tried.
    The result always lies inside the calling window, so "waiting" times shown to people are real.
    """
    cat = cat or catalogue()
    earliest = now + rules.retry_delay(outcome, cat)
    avoid = tried_parts if cat.get_code(outcome).different_day_part else 0
    return next_callable_time(earliest, tz, rules, avoid_parts=avoid)
