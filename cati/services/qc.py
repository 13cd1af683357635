"""Quality control of completed interviews: flags (speeders, straight-lining, don't-knows, out of hours),
verify / reject with the quota consequences, and the call-back verification list.

A rejected complete stops counting: its enterprise's ``completes`` goes down by one, the cases that were
closed as 4.80 (quota filled) for that enterprise become callable again while the quota is open, and the
case itself follows the study's ``qc.rejected`` rule: by default a verification call by another interviewer than
the one whose interview was rejected, 24 h later (an appointment for anyone else; appointments may exceed the
attempt cap, so the respondent can be re-contacted even after six dials), or closed with a final code. Every step
is audited.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import (
    Answer,
    Appointment,
    AppointmentStatus,
    CallAttempt,
    Case,
    CasePhone,
    CaseStatus,
    Enterprise,
    Interview,
    InterviewStatus,
    QCStatus,
    Study,
    User,
    WebResponse,
)

from . import audit
from .calling import in_window, next_callable_time
from .dispositions import catalogue
from .phones import mask_phone
from .quotas import in_filled_cell_clause, unfill_cells
from .runtime import runtime_for
from .scheduling import rules_for


class QCError(KeyedError):
    """A refused QC action: a catalogue ``key`` and ``params``; ``message(lang)`` renders it."""


@dataclass(frozen=True)
class QCRules:
    """Thresholds of the QC flags.

    speeder_share: a complete shorter than this share of the median length is a speeder (0.5 = half).
    min_for_median: below this many completes there is no median to compare with (no speeder flags).
    straightline_min_items: at least this many substantive (1–5) rating answers, all the same value.
    dont_know_share: this share or more of the rating items asked answered "don't know" (code 9).
    min_seconds_per_answer: a complete faster than this per answer given is a speeder whatever the median (a
        median made of speeders must not make a 9-second, 31-answer "complete" look normal).
    """

    speeder_share: float = 0.5
    min_seconds_per_answer: float = 2.0
    min_for_median: int = 5
    straightline_min_items: int = 8
    dont_know_share: float = 0.3
    dont_know_code: int = 9


@dataclass
class QCRow:
    interview_id: int
    case_id: int
    case_ref: str
    enterprise_id: int
    enterprise: str
    interviewer_id: int | None
    interviewer: str
    started_at: datetime
    ended_at: datetime | None
    length_s: float
    qc_status: str
    qc_note: str
    phone_masked: str
    recording_uri: str | None
    flags: list[str] = field(default_factory=list)


# -------------------------------------------------------------------------------------------- pure flag rules


def is_speeder(length_s: float, median_s: float | None, share: float, *, answers: int = 0,
               min_seconds_per_answer: float = 0.0) -> bool:
    """Shorter than ``share`` × the median length (no median → that test never fires), or shorter than
    ``min_seconds_per_answer`` × the answers given (an absolute floor that holds whatever the median).

    >>> is_speeder(200, 480, 0.5), is_speeder(240, 480, 0.5), is_speeder(10, None, 0.5)
    (True, False, False)
    >>> is_speeder(9, 8, 0.5, answers=31, min_seconds_per_answer=2.0)  # the median is as fast: still a speeder
    True
    """
    if answers and length_s < min_seconds_per_answer * answers:
        return True
    return median_s is not None and median_s > 0 and length_s < share * median_s


def is_straightlined(codes: Sequence[int | None], min_items: int, missing: Iterable[int] = (8, 9)) -> bool:
    """Every substantive rating answer the same, over at least ``min_items`` of them.

    >>> is_straightlined([4] * 10 + [9], 8), is_straightlined([4] * 9 + [5], 8), is_straightlined([5] * 5, 8)
    (True, False, False)
    """
    miss = set(missing)
    subst = [c for c in codes if c is not None and c not in miss]
    return len(subst) >= min_items and len(set(subst)) == 1


def dont_know_share(codes: Sequence[int | None], dk: int = 9) -> float:
    """Share of the rating items asked that were answered "don't know".

    >>> dont_know_share([9, 9, 5, 4, None])
    0.5
    """
    asked = [c for c in codes if c is not None]
    return sum(1 for c in asked if c == dk) / len(asked) if asked else 0.0


def callback_pick(interview_ids: Sequence[int], share: float) -> list[int]:
    """The ``ceil(share × n)`` interviews of one interviewer to call back, chosen by a stable hash of their id.

    Stable: the same interviews on every look, and a larger share picks a superset of a smaller one (so a
    supervisor raising the share never loses calls already made). share ∈ [0, 1].
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"call-back share {share} must be between 0 and 1")
    k = math.ceil(share * len(interview_ids) - 1e-9)
    ranked = sorted(interview_ids, key=lambda i: hashlib.sha1(f"cb:{i}".encode()).hexdigest())
    return sorted(ranked[:k])


# ----------------------------------------------------------------------------------------------- queries


def study_rules(study: Study) -> QCRules:
    """The QC thresholds with the study file's ``qc.speeder_share`` and ``qc.straightline_min_items``."""
    qc = runtime_for(study).spec.qc
    return QCRules(speeder_share=qc.speeder_share, straightline_min_items=qc.straightline_min_items)


def _missing_codes(study: Study) -> set[int]:
    """Codes that are not a rating (the scales' don't-know / not-applicable, prefer-not-to-say)."""
    spec = runtime_for(study).spec
    out = {c for q in spec.questions if q.type == "rating" and q.scale for c in spec.scales[q.scale].missing}
    if spec.prefer_not_to_say is not None:
        out.add(spec.prefer_not_to_say.code)
    return out


def _rating_codes(study: Study) -> list[str]:
    from .studies import study_spec

    return [q.code for q in study_spec(study).questions if q.type == "rating"]


def median_length(session: Session, study: Study, *, min_n: int = 1) -> float | None:
    """Median length in seconds of the study's completes (None with fewer than ``min_n``)."""
    lengths = [(e - s).total_seconds() for s, e in session.connection().execute(
        select(Interview.started_at, Interview.ended_at).where(
            Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE,
            Interview.ended_at.is_not(None)))]
    return statistics.median(lengths) if lengths and len(lengths) >= min_n else None


def qc_rows(session: Session, study: Study, *, rules: QCRules | None = None, since: datetime | None = None,
            status: str | None = None, interviewer_id: int | None = None, enterprise_id: int | None = None,
            flagged_only: bool = False, limit: int = 2000, ids: Sequence[int] | None = None) -> list[QCRow]:
    """Completed interviews with their QC flags, newest first (only ``ids`` when given). The speeder median is
    over every complete of the study (not just the ones listed)."""
    rules = rules or study_rules(study)
    call_rules = rules_for(study)
    median = median_length(session, study, min_n=rules.min_for_median)
    from .cawi import web_median_seconds

    web_median = web_median_seconds(session, study)
    missing = _missing_codes(study)
    q = (select(Interview, Case.case_ref, Case.timezone, Case.enterprise_id, Enterprise.name, User.display_name,
                CallAttempt.recording_uri)
         .join(Case, Case.id == Interview.case_id)
         .join(Enterprise, Enterprise.id == Case.enterprise_id)
         .outerjoin(User, User.id == Interview.interviewer_id)
         .outerjoin(CallAttempt, CallAttempt.id == Interview.attempt_id)
         .where(Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE)
         .order_by(Interview.ended_at.desc(), Interview.id.desc()).limit(limit))
    if since is not None:
        q = q.where(Interview.ended_at >= since)
    if status:
        q = q.where(Interview.qc_status == QCStatus(status))
    if interviewer_id is not None:
        q = q.where(Interview.interviewer_id == interviewer_id)
    if enterprise_id is not None:
        q = q.where(Case.enterprise_id == enterprise_id)
    if ids is not None:
        q = q.where(Interview.id.in_(list(ids)))
    found = session.execute(q).all()
    ids = [r[0].id for r in found]
    rating = _rating_codes(study)
    codes: dict[int, list[int | None]] = defaultdict(list)
    for chunk in range(0, len(ids), 2000):
        for iid, code in session.execute(
            select(Answer.interview_id, Answer.value_code)
            .where(Answer.interview_id.in_(ids[chunk:chunk + 2000]), Answer.question_code.in_(rating))
        ):
            codes[iid].append(code)
    answered: dict[int, int] = {}
    for chunk in range(0, len(ids), 2000):
        answered.update(session.execute(
            select(Answer.interview_id, func.count(Answer.id))
            .where(Answer.interview_id.in_(ids[chunk:chunk + 2000])).group_by(Answer.interview_id)).all())
    phones = _first_phones(session, [r[0].case_id for r in found])
    # A web response's length is the time on its questions (a respondent may pause for a day between pages).
    web_length: dict[int, float] = {}
    for chunk in range(0, len(ids), 2000):
        web_length.update(session.execute(select(WebResponse.interview_id, WebResponse.total_seconds)
                                          .where(WebResponse.interview_id.in_(ids[chunk:chunk + 2000]))).all())
    out = []
    for iv, ref, tz, eid, ename, who, rec in found:
        length = (iv.ended_at - iv.started_at).total_seconds() if iv.ended_at else 0.0
        web = iv.id in web_length
        if web:
            length = web_length[iv.id]
        flags = []
        if is_speeder(length, web_median if web else median, rules.speeder_share, answers=answered.get(iv.id, 0),
                      min_seconds_per_answer=rules.min_seconds_per_answer):
            flags.append("speeder")
        if is_straightlined(codes[iv.id], rules.straightline_min_items, missing):
            flags.append("straightline")
        if dont_know_share(codes[iv.id], rules.dont_know_code) >= rules.dont_know_share:
            flags.append("dont_know")
        if not web and not in_window(iv.started_at, tz, call_rules):
            flags.append("out_of_hours")  # web respondents answer when they like
        if flagged_only and not flags:
            continue
        out.append(QCRow(iv.id, iv.case_id, ref, eid, ename, iv.interviewer_id, who or "—", iv.started_at,
                         iv.ended_at, length, iv.qc_status.value, iv.qc_note or "",
                         mask_phone(phones.get(iv.case_id, "")), rec, flags))
    return out


def _first_phones(session: Session, case_ids: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in range(0, len(case_ids), 2000):
        for cid, e164 in session.execute(
            select(CasePhone.case_id, CasePhone.e164).where(CasePhone.case_id.in_(case_ids[chunk:chunk + 2000]))
            .order_by(CasePhone.case_id, CasePhone.position)
        ):
            out.setdefault(cid, e164)
    return out


def callback_list(session: Session, study: Study, share: float = 0.1) -> list[QCRow]:
    """The call-back verification list: ``share`` of each interviewer's valid completes (at least one when
    the interviewer has any), chosen stably (:func:`callback_pick`)."""
    by: dict[int | None, list[int]] = defaultdict(list)
    for iid, who in session.execute(
        select(Interview.id, Interview.interviewer_id).where(
            Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE,
            Interview.qc_status != QCStatus.REJECTED)
    ):
        by[who].append(iid)
    chosen = sorted(i for ids in by.values() for i in callback_pick(ids, share))
    rows: list[QCRow] = []
    for k in range(0, len(chosen), 2000):
        rows += qc_rows(session, study, ids=chosen[k:k + 2000], limit=len(chosen))
    return sorted(rows, key=lambda r: (r.interviewer, r.interview_id))


# ------------------------------------------------------------------------------------------------ decisions


def _complete(session: Session, interview_id: int) -> Interview:
    iv = session.get(Interview, interview_id)
    if iv is None:
        raise QCError("interview_not_found", id=interview_id)
    if iv.status != InterviewStatus.COMPLETE:
        raise QCError("qc_only_complete")
    return iv


def verify(session: Session, interview_id: int, *, user_id: int | None, note: str | None = None) -> Interview:
    """Mark a complete as verified. A rejected one cannot be verified (it no longer counts)."""
    iv = _complete(session, interview_id)
    if iv.qc_status == QCStatus.REJECTED:
        raise QCError("qc_rejected_cannot_verify")
    before = iv.qc_status.value
    iv.qc_status, iv.qc_note = QCStatus.VERIFIED, note or iv.qc_note
    audit.record(session, user_id=user_id, action="qc.verify", entity="interview", entity_id=iv.id,
                 before={"qc_status": before}, after={"qc_status": "verified"}, note=note)
    session.flush()
    return iv


def reject(session: Session, interview_id: int, now: datetime, *, user_id: int | None,
           note: str | None = None) -> dict[str, int]:
    """Reject a complete: it stops counting toward the quota, its case is reopened for re-contact, and the
    enterprise's cases closed as quota-filled (4.80) are callable again. Returns what changed
    (``reopened_quota_cases``)."""
    if not (note or "").strip():
        raise QCError("qc_reason_needed")
    iv = _complete(session, interview_id)
    if iv.qc_status == QCStatus.REJECTED:
        raise QCError("qc_already_rejected")
    before = iv.qc_status.value
    iv.qc_status, iv.qc_note = QCStatus.REJECTED, note
    audit.record(session, user_id=user_id, action="qc.reject", entity="interview", entity_id=iv.id,
                 before={"qc_status": before}, after={"qc_status": "rejected"}, note=note)
    case = session.get(Case, iv.case_id)
    session.execute(update(Enterprise).where(Enterprise.id == case.enterprise_id, Enterprise.completes > 0)
                    .values(completes=Enterprise.completes - 1).execution_options(synchronize_session=False))
    ent = session.get(Enterprise, case.enterprise_id)
    session.refresh(ent)
    if case.status == CaseStatus.FINAL and case.final_disposition == catalogue().code_for("complete"):
        _after_rejection(session, case, iv, now, user_id=user_id, note=note)
    reopened = 0
    if ent.quota_open:
        reopened = reopen_quota_filled(session, ent.id, now, user_id=user_id)
    # Industry / sample-variable quota cells of the case: the complete stops counting there too.
    cell_reopened = unfill_cells(session, case.id, now)
    if cell_reopened:
        audit.record(session, user_id=user_id, action="quota.reopen", entity="case", entity_id=case.id,
                     before={"final_disposition": catalogue().code_for("quota_full"), "cases": len(cell_reopened)},
                     after={"status": "ready", "case_ids": cell_reopened[:200]}, note="quota cells")
        reopened += len(cell_reopened)
    session.flush()
    return {"reopened_quota_cases": reopened, "completes": ent.completes}


def rejected_policy(study: Study) -> dict:
    """The study's rule for the case of a rejected complete (``qc.rejected``, defaults of the study schema)."""
    return runtime_for(study).qc.rejected.model_dump()


def _after_rejection(session: Session, case: Case, interview: Interview, now: datetime, *, user_id: int | None,
                     note: str) -> None:
    """The case of a rejected complete (final 1.1): closed, or — by default — called again for verification by
    another interviewer after the study's delay. A suspect interview must not be "repaired" by the same
    interviewer redialling a minute later; the appointment is for anyone else (front of the queue when due, and
    allowed past the attempt cap), and the case never goes back to that interviewer."""
    policy = rejected_policy(session.get(Study, case.study_id))
    if policy["action"] == "close":
        code = policy["close_with"]
        audit.record(session, user_id=user_id, action="disposition.change", entity="case", entity_id=case.id,
                     before={"final_disposition": catalogue().code_for("complete"), "status": "final"},
                     after={"final_disposition": code, "status": "final"}, note=f"QC: {note}")
        case.final_disposition, case.finalized_at = code, now
        return
    due = next_callable_time(now + timedelta(hours=policy["delay_hours"]), case.timezone, rules_for(
        session.get(Study, case.study_id)))
    audit.record(session, user_id=user_id, action="disposition.change", entity="case", entity_id=case.id,
                 before={"final_disposition": catalogue().code_for("complete"), "status": "final"},
                 after={"final_disposition": None, "status": "ready", "verify_at": due.isoformat(),
                        "excluded_interviewer_id": interview.interviewer_id}, note=f"QC: {note}")
    case.status, case.final_disposition, case.finalized_at = CaseStatus.READY, None, None
    case.next_call_at = due
    case.excluded_interviewer_id = interview.interviewer_id
    session.add(Appointment(study_id=case.study_id, case_id=case.id, interviewer_id=None, due_at=due,
                            status=AppointmentStatus.PENDING, note="QC 核实回访 / QC verification call",
                            created_by_id=user_id, created_at=now))


def reopen_quota_filled(session: Session, enterprise_id: int, now: datetime, *, user_id: int | None) -> int:
    """Cases of an enterprise closed as 4.80 (quota filled) become callable again; audited as one entry."""
    ids = list(session.scalars(select(Case.id).where(Case.enterprise_id == enterprise_id,
                                                     Case.status == CaseStatus.FINAL,
                                                     Case.final_disposition == catalogue().code_for("quota_full"),
                                                     # closed by a full industry / sample-variable cell: stays
                                                     ~in_filled_cell_clause())))
    if not ids:
        return 0
    for chunk in range(0, len(ids), 1000):
        session.execute(update(Case).where(Case.id.in_(ids[chunk:chunk + 1000]))
                        .values(status=CaseStatus.READY, final_disposition=None, finalized_at=None, next_call_at=now)
                        .execution_options(synchronize_session=False))
    audit.record(session, user_id=user_id, action="quota.reopen", entity="enterprise", entity_id=enterprise_id,
                 before={"final_disposition": catalogue().code_for("quota_full"), "cases": len(ids)},
                 after={"status": "ready", "case_ids": ids[:200]})
    session.expire_all()
    return len(ids)
