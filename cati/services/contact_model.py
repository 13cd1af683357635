"""Who is likely to answer now: a contact model learned from the study's own dials.

Every dial stores the respondent-local weekday, the part of the day, the case's *tried-parts mask* (the parts of
the day already dialed for it) and the case's previous outcome. Among dials that probe availability (first
dials, and dials after a non-contact), the share that reached a person estimates

    P(contact | weekend or weekday, part of the day, tried-parts mask).

The mask is what the scheduler knows about a person: someone who rang out in the morning and the afternoon is
most likely at work in the daytime and a good bet in the evening; someone who rang out in the evening is more
likely at home in the daytime. How strong these effects are differs from list to list, so the rates are learned,
with shrinkage for cells that have few dials:

    base    = (H + r0·k) / (N + k) / w̄                             r0 = 0.30, k = 20 pseudo-dials
    slot    = (h_slot + min(0.95, base·w_slot)·k) / (n_slot + k)   slot = (weekend?, part)
    cell    = (h_cell + slot·u·k) / (n_cell + k)                   u = 1 if the part is untried in the mask, else 0.85

``w_slot`` is the study's prior weight of the slot (``calling_rules.contact_prior``; by default the published
finding that weekday evenings and weekends reach people more often than weekday daytime, see
``calling.DEFAULT_CONTACT_PRIOR``) and ``w̄`` the dial-weighted mean weight, so ``base`` is the rate of a
weight-1 slot. Before any data, the order is the docs/domain.md rule (parts of the day not yet tried first) with the
prior's preference for evenings; after ~20 dials in a slot, the study's own data dominate.

The scheduler uses the model twice (``scheduling.next_case``): to rank callable cases (highest chance of reaching
someone now first), and — when the study sets ``calling_rules.best_time_ratio`` — to defer a case whose chance
now is below that ratio of the best chance in a coming part of the day (within 24 hours): it is dialed after
every other callable case, so interviewer time goes where people answer without ever idling an interviewer.

Counting is incremental: each refresh (at most every 10 minutes of the caller's clock) adds the dials settled
since the last one: coded and at least 10 minutes old. Counting stops below the first dial that is not settled
yet (an interview still running holds back the dials after it until it is coded, so no dial is counted twice
or missed); a dial still uncoded after an hour is skipped. On a study's first morning the scheduler thus learns
within about half an hour how the morning compares with the evening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from cati.models import CallAttempt, Case, CaseStatus, Study

from .calling import CallRules, day_part_index, local, segments
from .dispositions import catalogue

PRIOR_RATE = 0.30
PRIOR_WEIGHT = 20.0
TRIED_PART_PRIOR = 0.85
REFRESH = timedelta(minutes=10)
SETTLE = timedelta(minutes=10)  # a dial is counted once it is this old and coded …
GIVE_UP = timedelta(hours=1)  # … or, uncoded, once it is this old (an attempt nobody ever coded is skipped)
MIN_EVIDENCE = 20  # settled dials in the current slot before anything is deferred in it

Slot = tuple[int, int]  # (weekend 0/1, part index)


def contact_codes() -> tuple[str, ...]:
    """Outcomes that mean a person was reached (catalogue flag ``contacted``)."""
    return tuple(sorted(code for code, d in catalogue().items() if d.contacted))


@dataclass
class ContactModel:
    """Dial and contact counts by (weekend, part, mask); rates with hierarchical shrinkage (module docstring)."""

    n_parts: int
    weights: dict[Slot, float] = field(default_factory=dict)  # prior weight by slot (missing: 1.0)
    cells: dict[tuple[int, int, int], list[int]] = field(default_factory=dict)
    watermark: int = 0  # highest attempt id counted
    present: frozenset[int] | None = None  # masks of the study's open cases at the last refresh (None: unknown)
    refreshed_at: datetime | None = None
    # Rates by slot, computed once per change of the counts: every claim asks for several slots' rates.
    _rates: dict[Slot, list[float]] = field(default_factory=dict, repr=False, compare=False)

    def add(self, weekend: int, part: int, mask: int, dials: int, contacts: int) -> None:
        cell = self.cells.setdefault((weekend, part, mask), [0, 0])
        cell[0] += dials
        cell[1] += contacts
        self._rates.clear()

    @property
    def dials(self) -> int:
        return sum(n for n, _h in self.cells.values())

    def _base(self) -> float:
        n = sum(c[0] for c in self.cells.values())
        h = sum(c[1] for c in self.cells.values())
        if n:
            wbar = sum(c[0] * self.weights.get((w, p), 1.0) for (w, p, _m), c in self.cells.items()) / n
        else:
            wbar = 1.0
        return (h + PRIOR_RATE * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT) / wbar

    def _slot(self, weekend: int, part: int, base: float) -> float:
        n = h = 0
        for (w, p, _m), (cn, ch) in self.cells.items():
            if w == weekend and p == part:
                n += cn
                h += ch
        prior = min(0.95, base * self.weights.get((weekend, part), 1.0))
        return (h + prior * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT)

    def slot_dials(self, weekend: int, part: int) -> int:
        return sum(n for (w, p, _m), (n, _h) in self.cells.items() if w == weekend and p == part)

    def rates(self, weekend: int, part: int) -> list[float]:
        """Estimated P(contact) in this slot for every tried-parts mask (index = mask; do not modify the list)."""
        cached = self._rates.get((weekend, part))
        if cached is None:
            cached = self._rates[(weekend, part)] = self._compute_rates(weekend, part)
        return cached

    def _compute_rates(self, weekend: int, part: int) -> list[float]:
        slot = self._slot(weekend, part, self._base())
        out = []
        for mask in range(1 << self.n_parts):
            prior = slot * (TRIED_PART_PRIOR if (mask >> part) & 1 else 1.0)
            n, h = self.cells.get((weekend, part, mask), (0, 0))
            out.append((h + prior * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT))
        return out

    def table(self, part_names: list[str]) -> list[dict]:
        """Every slot × mask with its dials, contacts and estimated rate (for supervisors and reports)."""
        rows = []
        for weekend in (0, 1):
            for part, name in enumerate(part_names):
                rates = self.rates(weekend, part)
                for mask in range(1 << self.n_parts):
                    n, h = self.cells.get((weekend, part, mask), (0, 0))
                    tried = [part_names[i] for i in range(self.n_parts) if (mask >> i) & 1]
                    rows.append({"weekend": bool(weekend), "part": name, "tried": tried, "dials": n,
                                 "contacts": h, "rate": round(rates[mask], 4)})
        return rows


_models: dict[tuple, ContactModel] = {}


def contact_model(session: Session, study: Study, rules: CallRules, now: datetime) -> ContactModel:
    """The study's contact model, counting the dials settled by ``now`` (refreshed at most every 10 minutes of
    ``now``; module docstring).

    A refresh also notes which tried-parts masks the study's open cases have, so a case is deferred only for
    chances that cases still waiting can have.
    """
    key = (str(session.get_bind().url), study.id, study.created_at, study.version)
    model = _models.get(key)
    if model is None or (model.refreshed_at is not None and now < model.refreshed_at):
        # New model, or the clock went back: recount.
        weights = {(w, p): rules.prior_weight(w, p) for w in (0, 1) for p in range(len(rules.day_parts))}
        model = _models[key] = ContactModel(len(rules.day_parts), weights)
    if model.refreshed_at is not None and now < model.refreshed_at + REFRESH:
        return model
    # Claim the refresh before querying: concurrent claimers keep using the current counts meanwhile instead of
    # all refreshing at once.
    since, model.refreshed_at = model.refreshed_at, now
    try:
        _refresh(session, study, rules, now, model)
    except Exception:
        model.refreshed_at = since
        raise
    return model


def _refresh(session: Session, study: Study, rules: CallRules, now: datetime, model: ContactModel) -> None:
    names = {name: i for i, (name, _a, _b) in enumerate(rules.day_parts)}
    codes = contact_codes()
    hit = case((CallAttempt.outcome.in_(codes), 1), else_=0)
    weekend = case((CallAttempt.local_weekday >= 5, 1), else_=0)
    # The first dial after the watermark that is not settled: recent, or uncoded and not yet given up on.
    barrier = session.scalar(
        select(func.min(CallAttempt.id)).join(Case, Case.id == CallAttempt.case_id)
        .where(Case.study_id == study.id, CallAttempt.id > model.watermark,
               or_(CallAttempt.requested_at > now - SETTLE,
                   and_(CallAttempt.outcome.is_(None), CallAttempt.requested_at > now - GIVE_UP))))
    # Below the barrier every dial is at least SETTLE old (and coded, or given up on): no time filter needed.
    settled = [CallAttempt.id < barrier] if barrier is not None else []
    rows = session.execute(
        select(weekend, CallAttempt.day_part, CallAttempt.tried_parts_before, func.count(), func.sum(hit),
               func.max(CallAttempt.id))
        .join(Case, Case.id == CallAttempt.case_id)
        .where(Case.study_id == study.id, CallAttempt.id > model.watermark, *settled,
               CallAttempt.outcome.is_not(None), CallAttempt.day_part.is_not(None),
               CallAttempt.tried_parts_before.is_not(None), CallAttempt.local_weekday.is_not(None),
               or_(CallAttempt.prior_outcome.is_(None), CallAttempt.prior_outcome.not_in(codes)))
        .group_by(weekend, CallAttempt.day_part, CallAttempt.tried_parts_before)
    ).all()
    # Counted only once every query has succeeded: a failed refresh is retried from the same watermark.
    counted = [(int(w), names[part], int(mask), int(n), int(h or 0)) for w, part, mask, n, h, _last in rows
               if part in names and 0 <= mask < (1 << model.n_parts)]
    # Everything below the barrier has been looked at (counted, or not a probing dial); nothing at or above it.
    top = int(barrier) - 1 if barrier is not None else max([model.watermark, *(int(last) for *_r, last in rows)])
    # One index probe per mask (ix_cases_study_mask), not a scan of the study's cases.
    present = set()
    for mask in range(1 << model.n_parts):
        if session.scalar(select(Case.id).where(Case.study_id == study.id, Case.status == CaseStatus.READY,
                                                Case.tried_day_parts == mask).limit(1)) is not None:
            present.add(mask)
    for cell in counted:
        model.add(*cell)
    model.watermark = top
    model.present = frozenset(present)


def reset_contact_models() -> None:
    _models.clear()


def current_slot(now: datetime, tz: str, rules: CallRules) -> Slot | None:
    part = day_part_index(now, tz, rules)
    if part is None:
        return None
    return (1 if local(now, tz).weekday() >= 5 else 0, part)


def coming_slots(now: datetime, tz: str, rules: CallRules, hours: int = 24) -> list[tuple[datetime, Slot]]:
    """The parts of the day that start within ``hours`` after ``now`` inside the calling window (start, slot),
    excluding the one running now."""
    out: list[tuple[datetime, Slot]] = []
    end = now + timedelta(hours=hours)
    day = local(now, tz).date()
    for offset in range(0, 3):
        d = day + timedelta(days=offset)
        for start, _stop, part in segments(d, tz, rules):
            if part is None or start <= now or start > end:
                continue
            slot = (1 if d.weekday() >= 5 else 0, part)
            if not out or out[-1][1] != slot:
                out.append((start, slot))
    return out


def allowed_masks(model: ContactModel, now: datetime, tz: str, rules: CallRules, ratio: float
                  ) -> tuple[list[float], list[int], datetime | None]:
    """Rates now by mask, the masks worth dialing now, and when the deferred ones are next worth dialing.

    A mask is deferred (dialed only when nothing better is callable) when its rate now is below ``ratio`` × the
    best rate of any case still waiting (masks in ``model.present``) in a coming part of the day of another kind
    (within 24 hours): interviewer time spent now on people who rarely answer is time not spent later on people
    who do, as long as the interviewer has someone better to call. Nothing is deferred until the current
    slot has ``MIN_EVIDENCE`` settled dials of its own (the study first learns what now is like), nor with
    ``ratio`` 0.
    """
    slot = current_slot(now, tz, rules)
    masks = list(range(1 << model.n_parts))
    if slot is None:  # inside the calling window but outside every part of the day: nothing to compare
        return [0.0] * len(masks), masks, None
    now_rates = model.rates(*slot)
    if ratio <= 0 or model.slot_dials(*slot) < MIN_EVIDENCE:
        return now_rates, masks, None
    present = [m for m in masks if model.present is None or m in model.present]
    if not present:
        return now_rates, masks, None
    # Only other kinds of slot count: tomorrow's same slot offers this case nothing it does not have now, and
    # better cases callable now are already dialed first (deferred for them, the rest would wait a day for
    # the same chance while interviewers idle through the best hours).
    coming = [(start, max(model.rates(*s)[m] for m in present)) for start, s in coming_slots(now, tz, rules)
              if s != slot]
    allowed, later = [], []
    for m in masks:
        better = [start for start, best in coming if now_rates[m] < ratio * best]
        if better:
            later.append(min(better))
        else:
            allowed.append(m)
    return now_rates, allowed, (min(later) if later else None)
