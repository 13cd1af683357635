"""Interviews: start (with a hard quota reservation), answers stored as they are given (with revisions),
complete, break-off, termination. Every function takes a session and only flushes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cati.models import (
    Answer,
    AnswerRevision,
    CallAttempt,
    Case,
    CaseStatus,
    Interview,
    InterviewStatus,
    Study,
)
from cati.study.engine import Questionnaire, Step

from . import audit
from .dispositions import catalogue
from .quotas import has_cells
from .scheduling import record_outcome, release_quota_slot, reserve_quota_slot, rules_for


def questionnaire_for(study: Study) -> Questionnaire:
    """The compiled questionnaire engine of a stored study (its runtime's, see ``services.runtime``)."""
    from .runtime import runtime_for

    return runtime_for(study).questionnaire


class InterviewError(ValueError):
    pass


def _encode(value: Any) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, int):
        return value, None
    if isinstance(value, float):
        return None, repr(value)
    if isinstance(value, list | tuple):
        return None, ",".join(str(v) for v in value)
    return None, str(value)


def _decode(q: Questionnaire, code: str, value_code: int | None, value_text: str | None) -> Any:
    if value_code is not None:
        return value_code
    if value_text is None:
        return None
    if code not in q.study.question_codes:
        return value_text  # an "other, please specify" text (<code>_other)
    qtype = q.study.question(code).type
    if qtype == "multi":
        return [int(v) for v in value_text.split(",") if v]
    if qtype == "numeric":
        return float(value_text)
    return value_text


def answers_of(session: Session, interview: Interview, q: Questionnaire | None = None) -> dict[str, Any]:
    """The stored answers of an interview, decoded, in questionnaire order."""
    q = q or questionnaire_for(session.get(Study, interview.study_id))
    rows = session.execute(
        select(Answer.question_code, Answer.value_code, Answer.value_text).where(Answer.interview_id == interview.id)
    ).all()
    got = {code: _decode(q, code, vc, vt) for code, vc, vt in rows if vc is not None or vt is not None}
    order = {c: i for i, c in enumerate(q.codes)}
    return dict(sorted(got.items(), key=lambda kv: order.get(kv[0], 10**6)))


def open_interview(session: Session, case_id: int) -> Interview | None:
    """The case's interview that can continue (in progress, or broken off with answers)."""
    return session.scalars(
        select(Interview).where(Interview.case_id == case_id,
                                Interview.status.in_([InterviewStatus.IN_PROGRESS, InterviewStatus.PARTIAL]))
        .order_by(Interview.id.desc()).limit(1)
    ).first()


def _cells_of(study: Study, case: Case) -> int | None:
    """The case id when the study has industry / sample-variable quota cells to count it in (else None: most
    studies have none, and the slot functions then skip the lookup)."""
    return case.id if has_cells(study) else None


def start_interview(
    session: Session,
    case: Case,
    interviewer_id: int,
    now: datetime,
    *,
    attempt_id: int | None = None,
    language: str = "zh-CN",
) -> Interview:
    """Begin (or resume) the interview of a case the interviewer holds.

    A new or resumed interview takes a quota slot first (raises ``QuotaFull`` when the enterprise has none
    left: completes plus interviews in progress never exceed the target). A broken-off interview resumes at
    the first unanswered question on its route with every earlier answer.
    """
    if case.status != CaseStatus.CLAIMED or case.claimed_by_id != interviewer_id:
        raise InterviewError("the case is not held by this interviewer")
    study = session.get(Study, case.study_id)
    q = questionnaire_for(study)
    existing = open_interview(session, case.id)
    if existing is not None and existing.status == InterviewStatus.IN_PROGRESS:
        existing.interviewer_id = interviewer_id
        if attempt_id:
            existing.attempt_id = attempt_id
        session.flush()
        return existing
    reserve_quota_slot(session, case.enterprise_id, _cells_of(study, case))
    if existing is not None:  # resume a break-off
        existing.status = InterviewStatus.IN_PROGRESS
        existing.interviewer_id = interviewer_id
        existing.attempt_id = attempt_id or existing.attempt_id
        existing.ended_at = None
        answers = answers_of(session, existing, q)
        existing.current_question = resume_point(q, answers)
        session.flush()
        return existing
    interview = Interview(study_id=study.id, case_id=case.id, interviewer_id=interviewer_id, attempt_id=attempt_id,
                          status=InterviewStatus.IN_PROGRESS, language=language, started_at=now,
                          current_question=q.first())
    session.add(interview)
    session.flush()
    return interview


def resume_point(q: Questionnaire, answers: dict[str, Any]) -> str:
    """The first question on the route without an answer (info screens count as seen once passed)."""
    code: str | None = q.first()
    last = code
    while code is not None:
        qtype = q.study.question(code).type
        if qtype != "info" and code not in answers:
            return code
        last = code
        code = q.next_code(answers, code)
    return last or q.first()


@dataclass(frozen=True)
class Saved:
    step: Step
    interview: Interview


def save_answer(
    session: Session,
    interview: Interview,
    code: str,
    raw: Any,
    *,
    user_id: int | None,
    now: datetime,
    reason: str | None = None,
) -> Saved:
    """Validate and store one answer at once, then move the interview to the next question.

    Changing an earlier answer keeps the old value as a revision; answers that fall off the route because of
    the change are removed and kept as revisions too (nothing is lost silently). Changes after the interview
    ended are also written to the audit log.
    Raises ``AnswerError`` (with zh-CN/en messages) for an invalid answer; nothing changes then.
    """
    q = questionnaire_for(session.get(Study, interview.study_id))
    answers = answers_of(session, interview, q)
    step = q.advance(answers, code, raw)
    after_the_fact = interview.status != InterviewStatus.IN_PROGRESS
    if q.study.question(code).type != "info":
        _store(session, interview, code, step.value, user_id=user_id, now=now, reason=reason,
               audit_it=after_the_fact)
        if step.other is not None:  # the "other, please specify" text, stored beside the answer
            _store(session, interview, f"{code}_other", step.other, user_id=user_id, now=now, reason=reason,
                   audit_it=after_the_fact)
    for dropped in step.dropped:
        _drop(session, interview, dropped, user_id=user_id, now=now, audit_it=after_the_fact)
    if not after_the_fact:
        interview.current_question = step.next_code or code
    session.flush()
    return Saved(step, interview)


def _store(session, interview, code, value, *, user_id, now, reason, audit_it) -> None:
    value_code, value_text = _encode(value)
    row = session.scalar(select(Answer).where(Answer.interview_id == interview.id, Answer.question_code == code))
    if row is None:
        session.add(Answer(interview_id=interview.id, question_code=code, value_code=value_code,
                           value_text=value_text, answered_at=now, answered_by_id=user_id))
        return
    if (row.value_code, row.value_text) == (value_code, value_text):
        return
    session.add(AnswerRevision(answer_id=row.id, interview_id=interview.id, question_code=code,
                               revision=row.revision, old_code=row.value_code, old_text=row.value_text,
                               new_code=value_code, new_text=value_text, changed_by_id=user_id, changed_at=now,
                               reason=reason))
    if audit_it:
        audit.record(session, user_id=user_id, action="answer.change", entity="interview", entity_id=interview.id,
                     before={"question": code, "code": row.value_code, "text": row.value_text},
                     after={"question": code, "code": value_code, "text": value_text}, note=reason)
    row.value_code, row.value_text = value_code, value_text
    row.revision += 1
    row.answered_at, row.answered_by_id = now, user_id


def _drop(session, interview, code, *, user_id, now, audit_it) -> None:
    row = session.scalar(select(Answer).where(Answer.interview_id == interview.id, Answer.question_code == code))
    if row is None:
        return
    session.add(AnswerRevision(answer_id=row.id, interview_id=interview.id, question_code=code,
                               revision=row.revision, old_code=row.value_code, old_text=row.value_text,
                               new_code=None, new_text=None, changed_by_id=user_id, changed_at=now,
                               reason="off route after an earlier answer changed"))
    if audit_it:
        audit.record(session, user_id=user_id, action="answer.drop", entity="interview", entity_id=interview.id,
                     before={"question": code, "code": row.value_code, "text": row.value_text}, after=None)
    # The row stays (its revisions point at it) but empty: exports and routing see the question as not asked.
    row.value_code, row.value_text = None, None
    row.revision += 1
    row.answered_at, row.answered_by_id = now, user_id


def _code_attempt(session: Session, interview: Interview, outcome: str) -> None:
    if interview.attempt_id:
        attempt = session.get(CallAttempt, interview.attempt_id)
        if attempt is not None:
            attempt.outcome, attempt.outcome_source = outcome, "interviewer"


def complete_interview(session: Session, interview: Interview, now: datetime, *, user_id: int | None) -> None:
    """Record a complete — only when the route really reached its end with every question answered."""
    study = session.get(Study, interview.study_id)
    q = questionnaire_for(study)
    if interview.status != InterviewStatus.IN_PROGRESS:
        raise InterviewError(f"interview {interview.id} is {interview.status.value}, not in progress")
    if not q.is_complete(answers_of(session, interview, q)):
        raise InterviewError("the questionnaire is not finished; a complete is recorded only at its end")
    interview.status = InterviewStatus.COMPLETE
    interview.ended_at = now
    complete = catalogue().code_for("complete")
    interview.disposition = complete
    case = session.get(Case, interview.case_id)
    _code_attempt(session, interview, complete)
    record_outcome(session, case, complete, now, interviewer_id=user_id, rules=rules_for(study))
    release_quota_slot(session, case.enterprise_id, completed=True, now=now, case_id=_cells_of(study, case))


def break_off(session: Session, interview: Interview, now: datetime, *, user_id: int | None,
              appointment_at: datetime | None = None) -> str | None:
    """The respondent stopped mid-interview: answers stay, the slot frees up, the case is retried (the
    catalogue's break-off, 2.12)."""
    if interview.status != InterviewStatus.IN_PROGRESS:
        raise InterviewError(f"interview {interview.id} is {interview.status.value}, not in progress")
    interview.status = InterviewStatus.PARTIAL
    interview.ended_at = now
    code = catalogue().code_for("break_off")
    interview.disposition = code
    study = session.get(Study, interview.study_id)
    case = session.get(Case, interview.case_id)
    _code_attempt(session, interview, code)
    release_quota_slot(session, case.enterprise_id, completed=False, now=now, case_id=_cells_of(study, case))
    return record_outcome(session, case, code, now, interviewer_id=user_id, appointment_at=appointment_at,
                          rules=rules_for(study))


def terminate_interview(session: Session, interview: Interview, disposition: str, now: datetime, *,
                        user_id: int | None) -> str | None:
    """The route ended early (screened out 4.70, refusal at consent 2.112…): final for the case."""
    if interview.status != InterviewStatus.IN_PROGRESS:
        raise InterviewError(f"interview {interview.id} is {interview.status.value}, not in progress")
    interview.status = InterviewStatus.TERMINATED
    interview.ended_at = now
    interview.disposition = disposition
    study = session.get(Study, interview.study_id)
    case = session.get(Case, interview.case_id)
    _code_attempt(session, interview, disposition)
    release_quota_slot(session, case.enterprise_id, completed=False, now=now, case_id=_cells_of(study, case))
    return record_outcome(session, case, disposition, now, interviewer_id=user_id, rules=rules_for(study))


def save_answers(
    session: Session,
    interview: Interview,
    answers: dict[str, Any],
    *,
    user_id: int | None,
    now: datetime,
) -> Step | None:
    """Store a whole sequence of fresh answers in question order, through the same engine as
    :func:`save_answer` (validation, routing, termination), with one bulk insert.

    For machine-made interviews (the fieldwork simulator, imports of paper questionnaires): it stops at a
    termination or at the first answer the route does not need, and returns the last step.
    """
    q = questionnaire_for(session.get(Study, interview.study_id))
    current = answers_of(session, interview, q)
    if current:
        raise InterviewError("save_answers is for fresh interviews; use save_answer to change answers")
    answered, step = q.advance_through(answers, interview.current_question or q.first())
    rows = []
    for code, value in answered:
        if q.study.question(code).type != "info":
            value_code, value_text = _encode(value)
            rows.append({"interview_id": interview.id, "question_code": code, "value_code": value_code,
                         "value_text": value_text, "answered_at": now, "answered_by_id": user_id, "revision": 1})
    if step is not None:
        interview.current_question = step.next_code or step.code
    if rows:
        session.execute(insert(Answer), rows)
    session.flush()
    return step


def revision_token(session: Session, interview: Interview) -> str:
    """A token that changes whenever an answer of the interview is saved, changed or removed, or the interview
    moves to another question. A page carries the token it was built with; an answer sent from a page whose
    token is no longer current (a stale second tab, a page left open while the interview went on elsewhere) is
    refused instead of silently overwriting what was saved since."""
    n, revisions = session.execute(
        select(func.count(Answer.id), func.coalesce(func.sum(Answer.revision), 0))
        .where(Answer.interview_id == interview.id)).one()
    return f"{interview.current_question or '-'}.{n}.{revisions}"
