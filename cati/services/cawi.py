"""Web self-completion (CAWI) on the interview engine: invitations, starting and resuming a web response, saving
an answer with the time spent on its question, completing with the QC flags, and limiting duplicates on an open
link. Every function takes a session and only flushes.

A web response is an :class:`Interview` with ``mode = "cawi"`` and no interviewer, of a case made for it (status
STOPPED while it runs, so the dialer never takes it; FINAL with the complete code at the end). Its answers go
through :func:`cati.services.interviews.save_answer`: the same validation, routing, piping and revisions as CATI.
"""

from __future__ import annotations

import secrets
import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from cati.i18n import KeyedError
from cati.models import (
    Case,
    CaseStatus,
    Enterprise,
    Interview,
    InterviewStatus,
    Invitation,
    InvitationKind,
    QuestionTime,
    Study,
    WebResponse,
)

from .dispositions import catalogue
from .interviews import answers_of, questionnaire_for, save_answer
from .qc import _missing_codes, is_speeder, is_straightlined, study_rules
from .runtime import runtime_for

#: One visit of a question counts at most this long (a page left open over lunch is not 40 minutes of answering).
MAX_SECONDS_PER_VISIT = 600.0
#: Below this many web completes there is no median to compare with: nobody is flagged a speeder yet.
MIN_FOR_MEDIAN = 5


class CawiError(KeyedError):
    """A refused web action (a used token, an unknown link …): catalogue ``key`` and ``params``."""


def new_token() -> str:
    """A link secret: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


# --------------------------------------------------------------------------------------------------- invitations


def open_invitation(session: Session, study: Study, enterprise: Enterprise, *, user_id: int | None,
                    now: datetime) -> Invitation:
    """The enterprise's open link (made on first use)."""
    inv = session.scalar(select(Invitation).where(
        Invitation.study_id == study.id, Invitation.enterprise_id == enterprise.id,
        Invitation.kind == InvitationKind.OPEN))
    if inv is None:
        inv = Invitation(study_id=study.id, enterprise_id=enterprise.id, kind=InvitationKind.OPEN,
                         token=new_token(), created_at=now, created_by_id=user_id)
        session.add(inv)
        session.flush()
    return inv


def create_personal(session: Session, study: Study, enterprise: Enterprise, n: int, *, user_id: int | None,
                    now: datetime, label: str | None = None) -> list[Invitation]:
    """``n`` personal tokens (one response each) for the enterprise's staff."""
    if not 1 <= n <= 1000:
        raise CawiError("cawi_token_count", max=1000)
    made = [Invitation(study_id=study.id, enterprise_id=enterprise.id, kind=InvitationKind.PERSONAL,
                       token=new_token(), label=(label or None) and label[:200], created_at=now,
                       created_by_id=user_id) for _ in range(n)]
    session.add_all(made)
    session.flush()
    return made


def regenerate(session: Session, invitation: Invitation) -> Invitation:
    """A new secret for an unused personal token (the old link stops working): to resend it when the first
    message went to the wrong person. A used token keeps its link (its respondent may resume with it)."""
    if invitation.kind != InvitationKind.PERSONAL:
        raise CawiError("cawi_regenerate_open")
    if invitation.used_at is not None:
        raise CawiError("cawi_token_used")
    invitation.token = new_token()
    session.flush()
    return invitation


def invitation(session: Session, token: str) -> Invitation | None:
    if not token or len(token) > 64:
        return None
    return session.scalar(select(Invitation).where(Invitation.token == token))


def invitations_of(session: Session, study: Study, enterprise_id: int | None = None) -> list[Invitation]:
    q = select(Invitation).where(Invitation.study_id == study.id)
    if enterprise_id is not None:
        q = q.where(Invitation.enterprise_id == enterprise_id)
    return list(session.scalars(q.order_by(Invitation.enterprise_id, Invitation.kind, Invitation.id)))


# ------------------------------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Response:
    """A web response: its interview, web record, invitation and case."""

    interview: Interview
    web: WebResponse
    invitation: Invitation
    case: Case

    @property
    def complete(self) -> bool:
        return self.interview.status == InterviewStatus.COMPLETE

    @property
    def running(self) -> bool:
        return self.interview.status == InterviewStatus.IN_PROGRESS


def _response(session: Session, web: WebResponse | None, inv: Invitation) -> Response | None:
    if web is None:
        return None
    interview = session.get(Interview, web.interview_id)
    return Response(interview, web, inv, session.get(Case, interview.case_id))


def response_of(session: Session, inv: Invitation, resume_key: str | None) -> Response | None:
    """The response this visitor continues: a personal token's own response; on an open link the one whose
    resume key the device's cookie holds."""
    if inv.kind == InvitationKind.PERSONAL:
        if inv.interview_id is None:
            return None
        web = session.scalar(select(WebResponse).where(WebResponse.interview_id == inv.interview_id))
        return _response(session, web, inv)
    if not resume_key:
        return None
    web = session.scalar(select(WebResponse).where(WebResponse.resume_key == resume_key,
                                                   WebResponse.invitation_id == inv.id))
    return _response(session, web, inv)


def completed_on_device(session: Session, inv: Invitation, device_key: str | None) -> bool:
    """An open link already answered to the end on this device."""
    if not device_key or inv.kind != InvitationKind.OPEN:
        return False
    return session.scalar(
        select(func.count(WebResponse.id)).join(Interview, Interview.id == WebResponse.interview_id)
        .where(WebResponse.invitation_id == inv.id, WebResponse.device_key == device_key,
               Interview.status == InterviewStatus.COMPLETE)) > 0


def block_duplicate(session: Session, inv: Invitation) -> None:
    """Count a second response refused on an open link (reported on the invitations page)."""
    session.execute(update(Invitation).where(Invitation.id == inv.id)
                    .values(duplicates_blocked=Invitation.duplicates_blocked + 1))


def start_response(session: Session, inv: Invitation, *, device_key: str, language: str,
                   now: datetime) -> Response:
    """Begin a web response on an invitation.

    A personal token starts once: the token is marked used in a conditional update, so two taps at once
    still make one response (the loser gets ``cawi_token_used``). An open link refuses a device that already
    completed it (``cawi_already_answered``; counted as a blocked duplicate by the caller).
    """
    study = session.get(Study, inv.study_id)
    q = questionnaire_for(study)
    if inv.kind == InvitationKind.PERSONAL:
        took = session.execute(update(Invitation).where(Invitation.id == inv.id, Invitation.used_at.is_(None))
                               .values(used_at=now).execution_options(synchronize_session=False)).rowcount
        if took != 1:
            raise CawiError("cawi_token_used")
    elif completed_on_device(session, inv, device_key):
        raise CawiError("cawi_already_answered")
    case = Case(study_id=study.id, enterprise_id=inv.enterprise_id, case_ref=f"web-{secrets.token_hex(8)}",
                status=CaseStatus.STOPPED, timezone=runtime_for(study).timezone, imported_at=now,
                attributes={"source": "cawi"})
    session.add(case)
    session.flush()
    interview = Interview(study_id=study.id, case_id=case.id, interviewer_id=None, mode="cawi",
                          status=InterviewStatus.IN_PROGRESS, language=language, started_at=now,
                          current_question=q.first())
    session.add(interview)
    session.flush()
    web = WebResponse(interview_id=interview.id, invitation_id=inv.id, device_key=device_key[:64],
                      resume_key=secrets.token_urlsafe(24), total_seconds=0.0)
    session.add(web)
    if inv.kind == InvitationKind.PERSONAL:
        session.execute(update(Invitation).where(Invitation.id == inv.id).values(interview_id=interview.id)
                        .execution_options(synchronize_session=False))
        session.expire(inv)
    session.flush()
    return Response(interview, web, inv, case)


def visible_code(session: Session, r: Response, wanted: str | None) -> str:
    """The question a page may show: ``wanted`` when it is on the route at or before the current question (Back,
    the browser's back button, a bookmarked earlier page), else the current question."""
    q = questionnaire_for(session.get(Study, r.interview.study_id))
    current = r.interview.current_question or q.first()
    if wanted and wanted in q.codes and may_answer(q, answers_of(session, r.interview, q), wanted, current):
        return wanted
    return current


def may_answer(q, answers: dict[str, Any], code: str, current: str) -> bool:
    """Only the current question or one before it on the route (skipping ahead is not possible)."""
    if code not in q.path(answers):
        return False
    order = {c: i for i, c in enumerate(q.codes)}
    return order[code] <= order[current]


def shown(session: Session, r: Response, code: str, now: datetime) -> None:
    """The page of ``code`` was shown: its time starts now (a reload of the same page keeps the first time)."""
    if r.web.page_code != code or r.web.page_shown_at is None:
        r.web.page_code, r.web.page_shown_at = code, now
        session.flush()


def _record_time(session: Session, r: Response, code: str, now: datetime) -> float:
    """Add the time since ``code``'s page was shown to its question time and the response's total."""
    web = r.web
    if web.page_code != code or web.page_shown_at is None:
        return 0.0
    seconds = max(0.0, min((now - web.page_shown_at).total_seconds(), MAX_SECONDS_PER_VISIT))
    row = session.scalar(select(QuestionTime).where(QuestionTime.interview_id == r.interview.id,
                                                    QuestionTime.question_code == code))
    if row is None:
        row = QuestionTime(interview_id=r.interview.id, question_code=code, seconds=0.0, visits=0)
        session.add(row)
    row.seconds += seconds
    row.visits += 1
    web.total_seconds += seconds
    web.page_code, web.page_shown_at = None, None
    return seconds


@dataclass(frozen=True)
class Answered:
    next_code: str | None
    complete: bool
    terminated: bool = False


def answer(session: Session, r: Response, code: str, raw: Any, now: datetime) -> Answered:
    """Validate and store one answer (raises the engine's ``AnswerError``; nothing changes then), record the
    time on its question, and complete the response when the route reached its end."""
    if r.interview.status != InterviewStatus.IN_PROGRESS:
        raise CawiError("cawi_response_closed")
    study = session.get(Study, r.interview.study_id)
    q = questionnaire_for(study)
    current = r.interview.current_question or q.first()
    if code not in q.codes or not may_answer(q, answers_of(session, r.interview, q), code, current):
        raise CawiError("cawi_not_this_question")
    step = save_answer(session, r.interview, code, raw, user_id=None, now=now).step
    _record_time(session, r, code, now)
    if step.termination is not None:
        terminate(session, r, step.termination, now)
        return Answered(None, False, terminated=True)
    if step.complete and step.next_code is None:
        complete(session, r, now)
        return Answered(None, True)
    return Answered(step.next_code, False)


def terminate(session: Session, r: Response, disposition: str, now: datetime) -> None:
    """The questionnaire's rules ended the response early (screened out, no consent): final, answers kept."""
    r.interview.status, r.interview.ended_at, r.interview.disposition = InterviewStatus.TERMINATED, now, disposition
    r.case.status, r.case.final_disposition, r.case.finalized_at = CaseStatus.FINAL, disposition, now
    session.flush()


def complete(session: Session, r: Response, now: datetime) -> None:
    """Record the complete: the interview, its case (final), the enterprise's completes (the board counts web
    completes beside CATI's) and the QC flags."""
    study = session.get(Study, r.interview.study_id)
    q = questionnaire_for(study)
    answers = answers_of(session, r.interview, q)
    if not q.is_complete(answers):
        raise CawiError("cawi_not_finished")
    code = catalogue().code_for("complete")
    r.interview.status, r.interview.ended_at, r.interview.disposition = InterviewStatus.COMPLETE, now, code
    r.case.status, r.case.final_disposition, r.case.finalized_at = CaseStatus.FINAL, code, now
    session.execute(update(Enterprise).where(Enterprise.id == r.case.enterprise_id)
                    .values(completes=Enterprise.completes + 1).execution_options(synchronize_session=False))
    loaded = session.identity_map.get(identity_key(Enterprise, r.case.enterprise_id))
    if loaded is not None:
        session.expire(loaded)  # its counter changed in SQL
    rules = study_rules(study)
    spec = runtime_for(study).spec
    rating = [qq.code for qq in spec.questions if qq.type == "rating"]
    codes = [answers.get(c) if isinstance(answers.get(c), int) else None for c in rating]
    missing = _missing_codes(study)
    r.web.straightliner = is_straightlined(codes, rules.straightline_min_items, missing)
    session.flush()
    median = web_median_seconds(session, study)
    n_answers = sum(1 for qq in spec.questions if qq.type != "info" and qq.code in answers)
    r.web.speeder = is_speeder(r.web.total_seconds, median, rules.speeder_share, answers=n_answers,
                               min_seconds_per_answer=rules.min_seconds_per_answer)
    session.flush()


def web_median_seconds(session: Session, study: Study) -> float | None:
    """Median time on the questions of the study's web completes (None below ``MIN_FOR_MEDIAN``)."""
    got = list(session.scalars(
        select(WebResponse.total_seconds).join(Interview, Interview.id == WebResponse.interview_id)
        .where(Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE)))
    return statistics.median(got) if len(got) >= MIN_FOR_MEDIAN else None


def question_seconds(session: Session, interview_id: int) -> dict[str, float]:
    """Seconds spent on each question of a web response."""
    return dict(session.execute(select(QuestionTime.question_code, QuestionTime.seconds)
                                .where(QuestionTime.interview_id == interview_id)).all())


# ------------------------------------------------------------------------------------------------ reporting


@dataclass(frozen=True)
class InvitationRow:
    invitation: Invitation
    enterprise: str
    started: int
    completes: int
    speeders: int
    straightliners: int


def invitation_rows(session: Session, study: Study, enterprise_id: int | None = None, *,
                    kind: InvitationKind | None = None) -> list[InvitationRow]:
    """Each invitation (of one enterprise, of one kind) with its responses started and completed, flagged
    completes, and (open links) the duplicates refused."""
    invs = invitations_of(session, study, enterprise_id)
    if kind is not None:
        invs = [i for i in invs if i.kind == kind]
    done = Interview.status == InterviewStatus.COMPLETE
    q = (select(WebResponse.invitation_id, func.count(WebResponse.id),
                func.sum(case((done, 1), else_=0)),
                func.sum(case((done & WebResponse.speeder, 1), else_=0)),
                func.sum(case((done & WebResponse.straightliner, 1), else_=0)))
         .join(Interview, Interview.id == WebResponse.interview_id)
         .where(Interview.study_id == study.id).group_by(WebResponse.invitation_id))
    if enterprise_id is not None:
        q = q.join(Invitation, Invitation.id == WebResponse.invitation_id).where(
            Invitation.enterprise_id == enterprise_id)
    stats = {row[0]: [int(x or 0) for x in row[1:]] for row in session.execute(q)}
    names = dict(session.execute(select(Enterprise.id, Enterprise.name).where(Enterprise.study_id == study.id)).all())
    return [InvitationRow(i, names.get(i.enterprise_id, "?"), *stats.get(i.id, [0, 0, 0, 0])) for i in invs]


def mode_counts(session: Session, study: Study) -> dict[str, dict[str, int]]:
    """Interviews by mode and status: ``{"cati": {"complete": 120, "in_progress": 3, …}, "cawi": {…}}``."""
    out: dict[str, dict[str, int]] = {"cati": {}, "cawi": {}}
    for mode, status, n in session.execute(
            select(Interview.mode, Interview.status, func.count(Interview.id))
            .where(Interview.study_id == study.id).group_by(Interview.mode, Interview.status)):
        out.setdefault(mode, {})[status.value] = n
    return out

