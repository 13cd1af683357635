"""The study's dialing mode and abandoned-call target (supervisor controls, issue 18), and what the live board
shows of predictive dialing: the dial level, today's and the last hour's abandon rate, and the 80 % alert.

The settings live in the study's calling rules (``calling_rules.dialing``, validated by the study schema), so
changing them is a new study version like any rules change, and every process sees it at once. A supervisor sets
the mode and the target up to the ceiling (3 %, Ofcom/FTC); raising the ceiling, or a target above it, needs an
admin. Every change is audited, and so is a refused attempt to pass the ceiling.

An abandon rate is a share of calls *answered by a person* (the regulators' definition): a predictive call
answered by a person is either connected to an interviewer (the attempt got its interviewer) or abandoned (coded
with the catalogue's ``abandoned`` code by the dialer).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import AgentState, AgentStatus, CallAttempt, Case, Role, Study, User
from cati.models.calls import AttemptStatus

from . import audit
from .calling import local
from .contact_model import contact_model, current_slot
from .dispositions import catalogue
from .pacer import BRAKE_AT, PacerDecision, PacerInput, decide

MODES = ("preview", "progressive", "predictive")
DIALING_CHANGE = "study.dialing"
DIALING_REFUSED = "study.dialing_refused"


@dataclass(frozen=True)
class DialingSettings:
    mode: str
    target: float
    ceiling: float


def settings_of(study: Study) -> DialingSettings:
    from .scheduling import rules_for

    r = rules_for(study)
    return DialingSettings(r.dialing_mode, r.abandon_target, r.abandon_ceiling)


def set_dialing(session: Session, study: Study, user: User, *, mode: str, target_pct: float,
                ceiling_pct: float | None = None, now: datetime) -> DialingSettings:
    """Change the study's dialing mode and abandon target (percent), and — admins only — the ceiling.

    Raises KeyedError: an unknown mode, a target outside (0, ceiling], a supervisor raising the ceiling or
    passing it (that refusal is audited too, so the attempt is on record). Flush only.
    """
    if mode not in MODES:
        raise KeyedError("dialing_mode_unknown", mode=mode, modes=", ".join(MODES))
    old = settings_of(study)
    ceiling = old.ceiling if ceiling_pct is None else ceiling_pct / 100
    target = target_pct / 100
    is_admin = user.role == Role.ADMIN
    if not is_admin and (ceiling > old.ceiling + 1e-12 or target > old.ceiling + 1e-12):
        raise CeilingRefused(old, DialingSettings(mode, target, ceiling))
    if not 0 < target <= ceiling + 1e-12:
        raise KeyedError("dialing_target_above_ceiling", target=_pct(target), ceiling=_pct(ceiling))
    if not 0 < ceiling <= 0.10:
        raise KeyedError("dialing_ceiling_range", ceiling=_pct(ceiling))
    from cati.study.loader import validate_study_mapping

    new = copy.deepcopy(study.definition)
    new.setdefault("calling_rules", {})["dialing"] = {"mode": mode, "abandon_target": round(target, 6),
                                                      "abandon_ceiling": round(ceiling, 6)}
    validate_study_mapping(new, source=f"study {study.code}")
    study.version += 1
    new["version"] = study.version
    study.definition = new
    after = DialingSettings(mode, target, ceiling)
    audit.record(session, user_id=user.id, action=DIALING_CHANGE, entity="study", entity_id=study.id,
                 before=_as_dict(old), after=_as_dict(after))
    session.flush()
    return after


class CeilingRefused(KeyedError):
    """A supervisor tried to pass the abandon ceiling. The caller rolls the change back and records the attempt
    with :func:`record_refusal` (audited after the rollback, so the refusal is kept)."""

    def __init__(self, before: DialingSettings, wanted: DialingSettings):
        super().__init__("dialing_ceiling_admin_only", ceiling=_pct(before.ceiling),
                         target=_pct(max(wanted.target, wanted.ceiling)))
        self.before, self.wanted = before, wanted


def record_refusal(session: Session, study: Study, user: User, err: CeilingRefused) -> None:
    audit.record(session, user_id=user.id, action=DIALING_REFUSED, entity="study", entity_id=study.id,
                 before=_as_dict(err.before), after=_as_dict(err.wanted),
                 note="only an admin may raise the abandon ceiling / 只有管理员可以提高放弃率上限")
    session.flush()


def _pct(x: float) -> str:
    return f"{100 * x:g}"


def _as_dict(s: DialingSettings) -> dict:
    return {"mode": s.mode, "abandon_target": s.target, "abandon_ceiling": s.ceiling}


# ------------------------------------------------------------------------------------------------- live status

@dataclass(frozen=True)
class AbandonCount:
    abandoned: int
    persons: int

    @property
    def rate(self) -> float | None:
        return self.abandoned / self.persons if self.persons else None


@dataclass(frozen=True)
class DialingStatus:
    settings: DialingSettings
    ready: int                 # interviewers ready now
    in_flight: int             # predictive calls placed, not yet connected or ended
    dial_level: float | None   # calls in flight per ready interviewer (None: nobody ready)
    decision: PacerDecision    # what the pacer would place now
    today: AbandonCount        # since local midnight (study time zone)
    hour: AbandonCount         # the last 60 minutes
    alert: bool                # today's rate has passed BRAKE_AT × the target

    @property
    def planned_level(self) -> float | None:
        """Calls in flight per ready interviewer once the pacer's dials are placed."""
        return (self.in_flight + self.decision.dials) / self.ready if self.ready else None


def abandon_count(session: Session, study_id: int, since: datetime) -> AbandonCount:
    """Abandoned calls and calls answered by a person (connected or abandoned) among the study's predictive
    dials since ``since``."""
    code = catalogue().code_for("abandoned")
    abandoned = CallAttempt.outcome == code
    person = or_(abandoned, CallAttempt.interviewer_id.is_not(None))
    row = session.execute(
        select(func.count().filter(abandoned), func.count().filter(person))
        .select_from(CallAttempt).join(Case, Case.id == CallAttempt.case_id)
        .where(Case.study_id == study_id, CallAttempt.mode == "predictive", CallAttempt.requested_at >= since)
    ).one()
    return AbandonCount(int(row[0] or 0), int(row[1] or 0))


def ready_interviewers(session: Session) -> int:
    return int(session.scalar(
        select(func.count()).select_from(AgentState).join(User, User.id == AgentState.user_id)
        .where(AgentState.status == AgentStatus.READY, User.is_active.is_(True),
               User.role == Role.INTERVIEWER)) or 0)


def calls_in_flight(session: Session, study_id: int, since: datetime) -> int:
    """Predictive dials placed (since ``since``: an older attempt still open is a lost event, not a call) that
    are neither connected to an interviewer nor ended."""
    return int(session.scalar(
        select(func.count()).select_from(CallAttempt).join(Case, Case.id == CallAttempt.case_id)
        .where(Case.study_id == study_id, CallAttempt.mode == "predictive", CallAttempt.requested_at >= since,
               CallAttempt.status != AttemptStatus.ENDED, CallAttempt.interviewer_id.is_(None),
               and_(CallAttempt.outcome.is_(None)))) or 0)


def pacer_input(session: Session, study: Study, now: datetime, *, ready: int | None = None,
                in_flight: int | None = None) -> PacerInput:
    """The pacer's facts for the study now: the team, the calls in flight, P(a person answers) in this part of the
    day from the study's own dials (contact model) with its evidence, and the abandon counts so far."""
    from .scheduling import rules_for

    rules = rules_for(study)
    tz = rules.timezone_default
    midnight = local(now, tz).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    today = abandon_count(session, study.id, midnight)
    hour = abandon_count(session, study.id, now - timedelta(hours=1))
    slot = current_slot(now, tz, rules)
    p, evidence = 0.0, 0
    if slot is not None:
        model = contact_model(session, study, rules, now)
        p, evidence = model.rates(*slot)[0], model.slot_dials(*slot)
    return PacerInput(
        ready=ready_interviewers(session) if ready is None else ready,
        in_flight=calls_in_flight(session, study.id, now - timedelta(minutes=5)) if in_flight is None else in_flight,
        p_person=p, evidence_dials=evidence, abandoned_today=today.abandoned, persons_today=today.persons,
        abandoned_hour=hour.abandoned, persons_hour=hour.persons, target=rules.abandon_target,
        ceiling=rules.abandon_ceiling)


def dialing_status(session: Session, study: Study, now: datetime) -> DialingStatus:
    settings = settings_of(study)
    inp = pacer_input(session, study, now)
    today = AbandonCount(inp.abandoned_today, inp.persons_today)
    hour = AbandonCount(inp.abandoned_hour, inp.persons_hour)
    decision = decide(inp) if settings.mode == "predictive" else PacerDecision(0, settings.mode, "", 0.0)
    alert = today.rate is not None and today.rate > BRAKE_AT * settings.target
    return DialingStatus(settings, inp.ready, inp.in_flight, inp.in_flight / inp.ready if inp.ready else None,
                         decision, today, hour, alert)
