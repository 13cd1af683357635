"""The simulated world: its parameters (a YAML file, validated key by key) and its hidden respondents.

A *world* says how reachable and how cooperative the sampled customers are, how the interviewers work and how
long things take. Every key has a default (``config/worlds/default.yaml`` documents them); a world file only
needs the keys it changes. Unknown keys and values of the wrong kind are errors that name the key.

Respondents carry hidden state the scheduler never sees: an availability profile by part of the day and
weekday/weekend, a valid or invalid number, voicemail, call blocking, whether they will refuse or screen out.
Whether a respondent is available during one part of one day is a deterministic draw (a hash of the seed, the
respondent, the date and the part), so the oracle strategy can know it and every strategy meets the same world.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from cati.config import DEFAULT_CENTRE_TIMEZONE

DEFAULT_WORLD_FILE = Path(__file__).resolve().parents[2] / "config" / "worlds" / "default.yaml"
PARTS = ("morning", "afternoon", "evening")

# The built-in defaults: a Chinese customer-list CSAT survey (documented in config/worlds/default.yaml).
DEFAULTS: dict[str, Any] = {
    "name": "default",
    "description": "",
    "timezone": DEFAULT_CENTRE_TIMEZONE,
    "start_date": "2026-11-23",
    "max_days": 42,
    "sample": {
        "enterprises": 360,
        "quota": 20,
        "per_enterprise": 120,
        "replicate_size": 40,
    },
    "interviewers": {
        "count": 24,
        "refusal_converters": 2,
        "weekday_shifts": [["09:00", "12:00"], ["13:30", "21:00"]],
        "weekend_shifts": [["10:00", "18:00"]],
        "weekend_share": 0.4,
        "preview_seconds": 8,
        "wrap_up_seconds": 10,
        "interview_wrap_up_seconds": 40,
        "idle_leave_minutes": 15,
        "team": "fixed",
        "shift_plan": [],
    },
    "respondents": {
        "types": {
            "office_worker": {"share": 0.50, "weekday": [0.18, 0.22, 0.80], "weekend": [0.55, 0.65, 0.60]},
            "home_or_retired": {"share": 0.25, "weekday": [0.75, 0.70, 0.45], "weekend": [0.60, 0.60, 0.40]},
            "shift_worker": {"share": 0.25, "weekday": [0.45, 0.45, 0.45], "weekend": [0.45, 0.45, 0.45]},
        },
        "availability_sd": 0.35,
        "pickup": 0.85,
        "busy": 0.05,
        "voicemail": 0.04,
        "call_blocking": 0.02,
        "invalid_number": 0.08,
    },
    "contact": {
        "callback": 0.12,
        "appointment_kept": 0.80,
        "refusal": 0.40,
        "hard_refusal_share": 0.45,
        "do_not_call_share": 0.05,
        "conversion": 0.25,
        "screen_out": 0.15,
        "break_off": 0.03,
    },
    "timing": {
        "ring_before_answer_seconds": [4, 18],
        "no_answer_timeout_seconds": 30,
        "busy_seconds": 4,
        "invalid_seconds": 7,
        "machine_seconds": 20,
        "refusal_seconds": [20, 60],
        "callback_seconds": [30, 70],
        "screen_out_seconds": [60, 120],
        "interview_minutes_mean": 8.0,
        "interview_minutes_sd": 2.0,
        "interview_minutes_min": 4.0,
    },
    "enterprises": {
        "invalid_spread": 0.05,
        "reach_sd": 0.30,
        "screen_out_spread": 0.06,
        "refusal_spread": 0.08,
    },
}

# Keys whose value is a probability / share.
_PROBABILITIES = {
    "interviewers.weekend_share", "respondents.pickup", "respondents.busy", "respondents.voicemail",
    "respondents.call_blocking", "respondents.invalid_number", "contact.callback", "contact.appointment_kept",
    "contact.refusal", "contact.hard_refusal_share", "contact.do_not_call_share", "contact.conversion",
    "contact.screen_out", "contact.break_off",
}


DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUP_KEYS = {"name", "share", "weekday", "weekend", *DAY_KEYS}
TEAMS = ("fixed", "flexible")


class WorldError(ValueError):
    """A world file is unreadable or a key is unknown / of the wrong kind (the message names the key)."""


def _err(source: str, key: str, msg: str) -> WorldError:
    return WorldError(f"world file {source}: {key}: {msg}")


def _check_clock(source: str, key: str, value: Any) -> time:
    try:
        hh, mm = str(value).split(":")
        return time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise _err(source, key, f"expected a time like '09:00', got {value!r} (quote times in YAML)") from None


def _check_shifts(source: str, key: str, value: Any) -> list[tuple[time, time]]:
    if not isinstance(value, list):
        raise _err(source, key, f"expected a list of [start, end] pairs, got {value!r}")
    out = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            raise _err(source, f"{key}[{i}]", f"expected [start, end], got {pair!r}")
        a, b = (_check_clock(source, f"{key}[{i}]", v) for v in pair)
        if not a < b:
            raise _err(source, f"{key}[{i}]", f"start {pair[0]} must be before end {pair[1]}")
        out.append((a, b))
    return out


def _check_day_shifts(source: str, key: str, value: Any) -> list[tuple[time, time]]:
    """A day's shifts: valid [start, end] pairs that do not overlap."""
    out = sorted(_check_shifts(source, key, value))
    for (_a1, b1), (a2, _b2) in zip(out, out[1:], strict=False):
        if a2 < b1:
            raise _err(source, key, f"shifts overlap ({a2:%H:%M} starts before {b1:%H:%M} ends)")
    return out


def _check_shift_plan(source: str, key: str, value: Any) -> list[dict[str, Any]]:
    """``interviewers.shift_plan``: groups of the team, each a share of the interviewers and its shifts by day.

    A group has ``share`` (of the team; the shares sum to 1), optionally ``name``, and shifts under ``weekday``
    (Monday-Friday), ``weekend`` (Saturday, Sunday) or a single day (``mon`` … ``sun``, which overrides the
    weekday/weekend entry for that day). A day a group has no shifts on is a day off."""
    if not isinstance(value, list):
        raise _err(source, key, f"expected a list of groups (share, weekday, weekend, mon … sun), got {value!r}")
    groups = []
    for i, spec in enumerate(value):
        path = f"{key}[{i}]"
        if not isinstance(spec, dict):
            raise _err(source, path, f"expected a mapping with share and shifts, got {spec!r}")
        extra = set(spec) - _GROUP_KEYS
        if extra:
            raise _err(source, f"{path}.{sorted(extra)[0]}",
                       f"unknown key (known: name, share, weekday, weekend, {', '.join(DAY_KEYS)})")
        if "share" not in spec:
            raise _err(source, f"{path}.share", "missing")
        share = _number(source, f"{path}.share", spec["share"], 0.0, 1.0)
        days: dict[int, list[tuple[time, time]]] = {}
        for d in range(7):
            day_key = DAY_KEYS[d]
            wk_key = "weekend" if d >= 5 else "weekday"
            if day_key in spec:
                days[d] = _check_day_shifts(source, f"{path}.{day_key}", spec[day_key])
            elif wk_key in spec:
                days[d] = _check_day_shifts(source, f"{path}.{wk_key}", spec[wk_key])
            else:
                days[d] = []
        if not any(days.values()):
            raise _err(source, path, "a group without any shift (give weekday, weekend or mon … sun)")
        name = spec.get("name", f"group{i + 1}")
        if not isinstance(name, str):
            raise _err(source, f"{path}.name", f"expected text, got {name!r}")
        groups.append({"name": name, "share": share, "days": days})
    if groups:
        total = sum(g["share"] for g in groups)
        if abs(total - 1.0) > 1e-6:
            raise _err(source, f"{key}[*].share", f"shares must sum to 1, they sum to {total:.4f}")
    return groups


def _merge(source: str, base: dict[str, Any], given: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in given.items():
        path = f"{prefix}{key}"
        if key not in base:
            raise _err(source, path, f"unknown key (known here: {', '.join(sorted(base))})")
        default = base[key]
        if path == "respondents.types":
            if not isinstance(value, dict) or not value:
                raise _err(source, path, "expected a mapping of respondent types")
            out[key] = {}
            for tname, spec in value.items():
                if not isinstance(spec, dict):
                    raise _err(source, f"{path}.{tname}", "expected share, weekday and weekend")
                missing = {"share", "weekday", "weekend"} - set(spec)
                extra = set(spec) - {"share", "weekday", "weekend"}
                if extra:
                    raise _err(source, f"{path}.{tname}.{sorted(extra)[0]}", "unknown key (share, weekday, weekend)")
                if missing:
                    raise _err(source, f"{path}.{tname}.{sorted(missing)[0]}", "missing")
                _number(source, f"{path}.{tname}.share", spec["share"], 0.0, 1.0)
                for part in ("weekday", "weekend"):
                    v = spec[part]
                    if not isinstance(v, list) or len(v) != len(PARTS):
                        raise _err(source, f"{path}.{tname}.{part}",
                                   f"expected {len(PARTS)} probabilities ({', '.join(PARTS)}), got {v!r}")
                    for j, p in enumerate(v):
                        _number(source, f"{path}.{tname}.{part}[{j}]", p, 0.0, 1.0)
                out[key][tname] = copy.deepcopy(spec)
            total = sum(float(s["share"]) for s in out[key].values())
            if abs(total - 1.0) > 1e-6:
                raise _err(source, f"{path}.*.share", f"shares must sum to 1, they sum to {total:.4f}")
            continue
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise _err(source, path, f"expected a mapping, got {type(value).__name__}")
            out[key] = _merge(source, default, value, prefix=f"{path}.")
            continue
        if path == "interviewers.shift_plan":
            _check_shift_plan(source, path, value)
        elif path == "interviewers.team":
            if value not in TEAMS:
                raise _err(source, path, f"expected one of {', '.join(TEAMS)}, got {value!r}")
        elif path.endswith("_shifts"):
            _check_shifts(source, path, value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise _err(source, path, f"expected true or false, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _err(source, path, f"expected a non-negative whole number, got {value!r}")
        elif isinstance(default, float):
            lo, hi = (0.0, 1.0) if path in _PROBABILITIES else (0.0, math.inf)
            _number(source, path, value, lo, hi)
        elif isinstance(default, list):
            if not isinstance(value, list) or len(value) != len(default):
                raise _err(source, path, f"expected a list of {len(default)} numbers, got {value!r}")
            for j, v in enumerate(value):
                _number(source, f"{path}[{j}]", v, 0.0, math.inf)
            if value[0] > value[1]:
                raise _err(source, path, f"expected [low, high] with low <= high, got {value!r}")
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise _err(source, path, f"expected text, got {value!r}")
        out[key] = value
    return out


def _number(source: str, key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        bounds = f"between {lo:g} and {hi:g}" if math.isfinite(hi) else f">= {lo:g}"
        raise _err(source, key, f"expected a number {bounds}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class World:
    """Validated world parameters (the merged mapping is kept in ``params``)."""

    params: dict[str, Any]
    source: str = "<defaults>"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, source: str = "<mapping>") -> World:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise WorldError(f"world file {source}: expected a mapping at the top level")
        params = _merge(source, DEFAULTS, data)
        try:
            date.fromisoformat(str(params["start_date"]))
        except ValueError:
            raise _err(source, "start_date", f"expected YYYY-MM-DD, got {params['start_date']!r}") from None
        try:
            ZoneInfo(params["timezone"])
        except Exception:  # noqa: BLE001 - zoneinfo raises several kinds
            raise _err(source, "timezone", f"unknown time zone {params['timezone']!r}") from None
        if params["sample"]["quota"] < 1:
            raise _err(source, "sample.quota", "must be at least 1")
        if params["sample"]["replicate_size"] < 1:
            raise _err(source, "sample.replicate_size", "must be at least 1")
        if params["interviewers"]["count"] < 1:
            raise _err(source, "interviewers.count", "must be at least 1")
        if params["interviewers"]["refusal_converters"] > params["interviewers"]["count"]:
            raise _err(source, "interviewers.refusal_converters", "cannot exceed interviewers.count")
        return cls(params, source)

    @classmethod
    def load(cls, path: str | Path | None = None) -> World:
        """Read a world file (None: config/worlds/default.yaml)."""
        p = Path(path) if path else DEFAULT_WORLD_FILE
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise WorldError(f"world file {p}: cannot read: {exc}") from None
        except yaml.YAMLError as exc:
            raise WorldError(f"world file {p}: not valid YAML: {exc}") from None
        return cls.from_mapping(data, str(p))

    def with_overrides(self, **sections: Mapping[str, Any]) -> World:
        """A copy with some keys changed, e.g. ``world.with_overrides(sample={"enterprises": 6})``."""
        merged = copy.deepcopy(self.params)
        for key, value in sections.items():
            if isinstance(value, Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return World.from_mapping(merged, self.source + " (+overrides)")

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def name(self) -> str:
        return str(self.params["name"])

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.params["timezone"])

    def start(self) -> datetime:
        """Fieldwork starts at midnight (local) of ``start_date``; the first shift opens the work."""
        d = date.fromisoformat(str(self.params["start_date"]))
        return datetime.combine(d, time(0), self.zone)

    def shifts_on(self, day: date) -> list[tuple[time, time]]:
        """The legacy plan's shifts of a day (``weekday_shifts`` / ``weekend_shifts``)."""
        key = "weekend_shifts" if day.weekday() >= 5 else "weekday_shifts"
        return _check_shifts(self.source, f"interviewers.{key}", self.params["interviewers"][key])

    def shift_groups(self) -> list[dict[str, Any]]:
        """The team's shift plan: groups with ``name``, ``share`` and ``days`` (weekday index 0-6 → shifts).

        Without ``interviewers.shift_plan`` the plan is the legacy one: everybody works ``weekday_shifts`` on
        weekdays, and a ``weekend_share`` of the team also works ``weekend_shifts`` at weekends."""
        iv = self.params["interviewers"]
        if iv["shift_plan"]:
            return _check_shift_plan(self.source, "interviewers.shift_plan", iv["shift_plan"])
        weekday = _check_day_shifts(self.source, "interviewers.weekday_shifts", iv["weekday_shifts"])
        weekend = _check_day_shifts(self.source, "interviewers.weekend_shifts", iv["weekend_shifts"])
        share = float(iv["weekend_share"])
        groups = []
        if share > 0:
            groups.append({"name": "weekdays+weekends", "share": share,
                           "days": {d: (weekday if d < 5 else weekend) for d in range(7)}})
        if share < 1:
            groups.append({"name": "weekdays", "share": 1 - share,
                           "days": {d: (weekday if d < 5 else []) for d in range(7)}})
        return groups

    def assign_shift_groups(self, n: int) -> list[int]:
        """Which shift group each of ``n`` interviewers belongs to: group sizes by largest remainder of the
        shares (each group with a positive share gets at least one interviewer when n allows), interviewers dealt
        out in turn so the first ones (the refusal converters) are spread over the groups."""
        groups = self.shift_groups()
        if n <= 0:
            return []
        raw = [g["share"] * n for g in groups]
        sizes = [int(math.floor(r)) for r in raw]
        for j in sorted(range(len(groups)), key=lambda j: (-(raw[j] - sizes[j]), j))[: n - sum(sizes)]:
            sizes[j] += 1
        for j, g in enumerate(groups):  # a group with a share gets somebody if another group can spare one
            if g["share"] > 0 and sizes[j] == 0:
                donor = max(range(len(groups)), key=lambda x: sizes[x])
                if sizes[donor] > 1:
                    sizes[donor] -= 1
                    sizes[j] += 1
        out: list[int] = []
        left = list(sizes)
        while len(out) < n:
            for j in range(len(groups)):
                if left[j] > 0 and len(out) < n:
                    out.append(j)
                    left[j] -= 1
        return out


# ------------------------------------------------------------------------------------------------ randomness


def _mix(*values: int) -> int:
    """SplitMix64 over a tuple of integers: a stable hash (Python's str hash changes per process)."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x


def uniform(*values: int) -> float:
    """A deterministic U(0, 1) draw keyed by integers."""
    return (_mix(*values) >> 11) / float(1 << 53)


def part_of_day(t: time) -> int | None:
    """0 morning (<12:00), 1 afternoon (12:00–17:30), 2 evening (17:30–21:00), None at night."""
    if time(8) <= t < time(12):
        return 0
    if time(12) <= t < time(17, 30):
        return 1
    if time(17, 30) <= t < time(21, 30):
        return 2
    return None


@dataclass
class Respondent:
    """One sampled customer's hidden state (never stored in the database)."""

    index: int
    enterprise_index: int
    kind: str
    availability: tuple[tuple[float, float, float], tuple[float, float, float]]  # weekday, weekend × part
    invalid: bool
    voicemail: bool
    blocks: bool
    refuser: bool
    hard_refuser: bool
    do_not_call: bool
    eligible: bool
    converts: bool
    answer_row: int = -1  # which synthetic answer row this respondent gives (set on completion)


@dataclass(frozen=True)
class EnterpriseQuality:
    invalid: float
    reach: float
    screen_out: float
    refusal: float


def _beta_around(rng: random.Random, mean: float, spread: float) -> float:
    """A share drawn around ``mean`` with standard deviation ≈ ``spread`` (beta, clipped to [0, 0.97])."""
    if spread <= 0 or mean <= 0 or mean >= 1:
        return min(max(mean, 0.0), 0.97)
    var = min(spread ** 2, mean * (1 - mean) * 0.95)
    k = mean * (1 - mean) / var - 1
    return min(rng.betavariate(mean * k, (1 - mean) * k), 0.97)


_APPOINTMENT_CLOCKS = (time(10, 30), time(15, 30), time(19, 15))


class Population:
    """The hidden respondents of a world: enterprise qualities and one :class:`Respondent` per sampled case."""

    def __init__(self, world: World, sizes: list[int], seed: int):
        self.world = world
        self.seed = seed
        rng = random.Random(_mix(seed, 1))
        p = world.params
        resp, ent = p["respondents"], p["enterprises"]
        con = p["contact"]
        self.enterprises: list[EnterpriseQuality] = []
        for _ in range(len(sizes)):
            self.enterprises.append(EnterpriseQuality(
                invalid=_beta_around(rng, resp["invalid_number"], ent["invalid_spread"]),
                reach=math.exp(rng.gauss(0, ent["reach_sd"])),
                screen_out=_beta_around(rng, con["screen_out"], ent["screen_out_spread"]),
                refusal=_beta_around(rng, con["refusal"], ent["refusal_spread"]),
            ))
        types = list(resp["types"].items())
        shares = [float(t["share"]) for _n, t in types]
        self.respondents: list[Respondent] = []
        for e, q in enumerate(self.enterprises):
            for _ in range(sizes[e]):
                i = len(self.respondents)
                kind, spec = rng.choices(types, weights=shares)[0]
                personal = math.exp(rng.gauss(0, resp["availability_sd"])) * q.reach
                avail = tuple(tuple(min(0.98, float(a) * personal) for a in spec[w]) for w in ("weekday", "weekend"))
                refuser = rng.random() < q.refusal
                hard = refuser and rng.random() < con["hard_refusal_share"]
                self.respondents.append(Respondent(
                    index=i, enterprise_index=e, kind=kind, availability=avail,  # type: ignore[arg-type]
                    invalid=rng.random() < q.invalid,
                    voicemail=rng.random() < resp["voicemail"],
                    blocks=rng.random() < resp["call_blocking"],
                    refuser=refuser, hard_refuser=hard,
                    do_not_call=hard and rng.random() < con["do_not_call_share"],
                    eligible=rng.random() >= q.screen_out,
                    converts=rng.random() < con["conversion"],
                ))

    def available(self, r: Respondent, when: datetime) -> bool:
        """Is the respondent around to take a call at ``when`` (same answer for a whole part of a day)?"""
        lt = when.astimezone(self.world.zone)
        part = part_of_day(lt.time())
        if part is None:
            return False
        weekend = 1 if lt.weekday() >= 5 else 0
        return uniform(self.seed, 7, r.index, lt.date().toordinal(), part) < r.availability[weekend][part]

    def best_time_after(self, r: Respondent, when: datetime, windows_on) -> datetime:
        """When a respondent who says "call me back" asks to be called: the next part of a day (inside the
        calling windows, at least an hour ahead) where they are most likely around, at its middle."""
        zone = self.world.zone
        lt = when.astimezone(zone)
        best: tuple[float, datetime] | None = None
        for offset in range(0, 4):
            day = lt.date() + timedelta(days=offset)
            weekend = 1 if day.weekday() >= 5 else 0
            for clock in _APPOINTMENT_CLOCKS:
                if not any(a <= clock < b for a, b in windows_on(day)):
                    continue
                at = datetime.combine(day, clock, zone)
                if at < when + timedelta(hours=1):
                    continue
                part = part_of_day(clock)
                score = r.availability[weekend][part] - 0.05 * offset
                if best is None or score > best[0]:
                    best = (score, at)
        return (best[1] if best else when + timedelta(days=1)).astimezone(when.tzinfo)
