"""AAPOR dispositions: the catalogue (config/dispositions.yaml) and the rule that turns a case's attempt
outcomes into its final disposition."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

CATALOGUE_FILE = Path(__file__).resolve().parents[2] / "config" / "dispositions.yaml"


class Symbol(enum.StrEnum):
    I = "I"  # noqa: E741 - AAPOR's own symbol
    P = "P"
    R = "R"
    NC = "NC"
    O = "O"  # noqa: E741
    UH = "UH"
    UR = "UR"
    UO = "UO"
    NE = "NE"


@dataclass(frozen=True)
class Disposition:
    code: str
    symbol: Symbol
    final: bool
    contacted: bool
    eligible: str  # yes | no | unknown
    label: Mapping[str, str] = field(default_factory=dict)
    retry_minutes: int | None = None
    different_day_part: bool = False
    needs_note: bool = False
    refusal_conversion: bool = False
    do_not_call: bool = False
    max_attempts: bool = False  # the code a case closes with at the attempt cap (max_attempts_disposition)
    offered: Mapping[str, int] = field(default_factory=dict)  # call state → place in the interviewer's list
    refusal: bool = False  # the interviewer records a refusal reason
    appointment: str | None = None  # required | optional
    cap_rank: int | None = None  # at the attempt cap the seen outcome with the lowest rank decides…
    cap_result: str | None = None  # …this informative code
    counts_attempt: bool = True  # false: the dial is not charged against the attempt cap (a dialer abandon)
    predictive_hold_hours: int | None = None  # not dialled predictively again for this long

    def text(self, lang: str = "zh-CN") -> str:
        return self.label.get(lang) or self.label.get("zh-CN") or self.code


#: The call states the catalogue's ``offered`` refers to.
CALL_STATES = ("answered", "interviewing", "machine", "no_answer")


#: The roles the catalogue must name (``roles:`` in config/dispositions.yaml).
ROLES = ("complete", "break_off", "quota_full", "not_attempted", "other_unknown", "busy", "no_answer", "machine",
         "blocked", "technical", "hung_up_in_detection", "fax", "non_working", "disconnected", "abandoned",
         "callback", "soft_refusal", "do_not_call_request", "hard_refusal", "screened_out")


class Catalogue(dict[str, Disposition]):
    roles: Mapping[str, str] = {}

    def code_for(self, role: str) -> str:
        """The code the system sets for ``role`` (e.g. ``"complete"`` → 1.1)."""
        try:
            return self.roles[role]
        except KeyError:
            raise ValueError(f"no disposition role {role!r}; the catalogue names {sorted(self.roles)}") from None

    def get_code(self, code: str) -> Disposition:
        try:
            return self[code]
        except KeyError:
            raise ValueError(f"unknown disposition code {code!r}") from None

    def offered_after(self, state: str) -> list[str]:
        """The codes an interviewer may choose after a call in ``state``, in the catalogue's order for it."""
        if state not in CALL_STATES:
            raise ValueError(f"call state {state!r} is not one of {CALL_STATES}")
        index = {code: i for i, code in enumerate(self)}
        return sorted((c for c, d in self.items() if state in d.offered), key=lambda c: (self[c].offered[state],
                                                                                         index[c]))

    def codes_where(self, **flags) -> frozenset[str]:
        """Codes whose fields equal ``flags`` (e.g. ``refusal=True``, ``appointment="required"``)."""
        return frozenset(c for c, d in self.items() if all(getattr(d, k) == v for k, v in flags.items()))

    def appointment_codes(self) -> frozenset[str]:
        """Codes that take an appointment (required or optional)."""
        return frozenset(c for c, d in self.items() if d.appointment)


def load_catalogue(path: str | Path = CATALOGUE_FILE) -> Catalogue:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    cat = Catalogue()
    for code, spec in data["codes"].items():
        spec = dict(spec)
        cat[str(code)] = Disposition(code=str(code), symbol=Symbol(spec.pop("symbol")), **spec)
    cat.roles = {str(role): str(code) for role, code in (data.get("roles") or {}).items()}
    missing = sorted(set(ROLES) - set(cat.roles))
    unknown = sorted(f"{role} → {code}" for role, code in cat.roles.items() if code not in cat)
    if missing or unknown or set(cat.roles) - set(ROLES):
        raise ValueError(f"{path}: roles: missing {missing}, unknown codes {unknown}, unknown roles "
                         f"{sorted(set(cat.roles) - set(ROLES))}")
    for d in cat.values():
        bad = set(d.offered) - set(CALL_STATES)
        if bad:
            raise ValueError(f"{path}: {d.code}: offered after unknown call state(s) {sorted(bad)}; "
                             f"expected {CALL_STATES}")
        if d.appointment not in (None, "required", "optional"):
            raise ValueError(f"{path}: {d.code}: appointment must be required or optional")
        if (d.cap_rank is None) != (d.cap_result is None) or (d.cap_result and d.cap_result not in cat):
            raise ValueError(f"{path}: {d.code}: cap_rank and cap_result go together, cap_result a known code")
    cap_codes = sorted(d.eligible for d in cat.values() if d.max_attempts)
    if cap_codes != ["unknown", "yes"]:
        raise ValueError(f"{path}: needs exactly one final max_attempts code with eligible 'yes' and one with "
                         f"'unknown' (found eligibility {cap_codes})")
    return cat


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The shipped catalogue (cached: it is read on every outcome)."""
    return load_catalogue()


def final_disposition(
    outcomes: Iterable[str],
    *,
    cap_reached: bool = False,
    quota_full: bool = False,
    cat: Catalogue | None = None,
) -> str | None:
    """The final AAPOR code of a case from its attempt outcomes (oldest first), or None while it stays open.

    Rules: a final outcome wins (the last one, if several); otherwise a filled quota closes the case as 4.80;
    otherwise, once the attempt cap is reached, the most informative temporary outcome decides
    (break-off → 2.12, unconverted soft refusal → 2.112, contact but never available → 2.21, answering
    machines → 2.22x/3.14, all dials busy → 3.12, no answer → 3.13, …); a case never dialed is 3.11.

    >>> final_disposition(["3.13", "1.1"])
    '1.1'
    >>> final_disposition(["3.13", "3.12", "2.21"], cap_reached=True)
    '2.21'
    >>> final_disposition(["3.12", "3.12"], cap_reached=True)
    '3.12'
    >>> final_disposition(["3.13"], quota_full=True)
    '4.80'
    >>> final_disposition(["3.13"]) is None
    True
    """
    cat = cat or catalogue()
    seen = [o for o in outcomes if o]
    for code in seen:
        cat.get_code(code)
    finals = [o for o in seen if cat[o].final]
    if finals:
        return finals[-1]
    if quota_full:
        return cat.code_for("quota_full")
    if not cap_reached:
        return None
    if not seen:
        return cat.code_for("not_attempted")
    present = set(seen)
    # The most informative outcome seen decides (catalogue cap_rank: a contact beats a machine, a machine beats
    # ringing out); "always busy" needs every dial busy.
    ranked = sorted((cat[c].cap_rank, cat[c].cap_result) for c in present if cat[c].cap_rank is not None)
    if ranked:
        return ranked[0][1]
    busy = cat.code_for("busy")
    if present == {busy}:
        return busy
    return cat.code_for("other_unknown")


def max_attempts_disposition(outcomes: Iterable[str], *, cat: Catalogue | None = None) -> str:
    """The final code of a case closed by the attempt cap: a final outcome if it has one; a refusal or break-off
    keeps its R code (it is what the respondent said, not a count of dials); otherwise the catalogue's
    ``max_attempts`` code of the eligibility the outcomes showed (2.29 an eligible respondent who was never
    available, 3.91 nobody confirmed eligible).

    >>> max_attempts_disposition(["3.13", "2.21", "3.13"])
    '2.29'
    >>> max_attempts_disposition(["3.13", "3.14", "3.20"])
    '3.91'
    >>> max_attempts_disposition(["3.13", "2.113"])
    '2.112'
    """
    cat = cat or catalogue()
    outcomes = list(outcomes)
    informative = final_disposition(outcomes, cap_reached=True, cat=cat)
    disp = cat[informative]
    if disp.final or disp.symbol == Symbol.R:
        return informative
    eligible = "yes" if disp.eligible == "yes" else "unknown"
    return next(code for code, d in cat.items() if d.max_attempts and d.eligible == eligible)
