"""One case (``/supervisor/case/<id>``): its numbers, dials, interviews and answers with their revisions, and the
audit trail; stopping / resuming it, reassigning it, putting its numbers on the do-not-call list and changing an
answer after the fact."""

from __future__ import annotations

from functools import partial

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from cati.db import db
from cati.models import AnswerRevision, AuditLog, CallAttempt, Case, Interview, Role, Study, User
from cati.services import audit, qc_review
from cati.services import sample_admin as sa
from cati.services.interviews import answers_of, questionnaire_for, save_answer
from cati.services.phones import mask_phone

from ..i18n import current_language
from ..security import current_user
from ..uow import commit, error_text
from .common import (
    actor,
    bp,
    get_or_404,
    interviewer_choices,
    now_utc,
    reading,
    release_request_tx,
    study_reading,
    tr,
    viewer,
    who,
)


@bp.get("/case")
@viewer
def find_case():
    ref = (request.args.get("ref") or "").strip()
    with study_reading() as (s, study):
        cid = s.scalar(select(Case.id).where(Case.study_id == study.id, Case.case_ref == ref))
        if cid is None and ref.isdigit():
            cid = s.scalar(select(Case.id).where(Case.id == int(ref)))
    release_request_tx()
    if cid is None:
        flash(tr("case_not_found"), "error")
        return redirect(url_for("supervisor.sample"))
    return redirect(url_for("supervisor.case", case_id=cid))


@bp.get("/case/<int:case_id>")
@viewer
def case(case_id: int):
    """One case. Supervisors see its numbers in full here (opening a case is audited); analysts masked."""
    user = current_user()
    full = user.role in (Role.SUPERVISOR, Role.ADMIN)
    c = db.session.get(Case, case_id)
    if c is None:
        db.session.rollback()
        abort(404)
    if full:
        commit(lambda: audit.record(db.session, user_id=user.id, action="case.open", entity="case", entity_id=case_id))
    else:
        release_request_tx()
    with reading() as s:
        c = s.get(Case, case_id)
        phones = [(p.e164 if full else mask_phone(p.e164), p.status.value, p.kind) for p in c.phones]
        attempts = s.execute(select(CallAttempt, User.display_name)
                             .outerjoin(User, User.id == CallAttempt.interviewer_id)
                             .where(CallAttempt.case_id == case_id).order_by(CallAttempt.requested_at)).all()
        interviews = s.scalars(select(Interview).where(Interview.case_id == case_id).order_by(Interview.id)).all()
        q = questionnaire_for(s.get(Study, c.study_id))
        answers = {iv.id: answers_of(s, iv, q) for iv in interviews}
        iv_ids = [iv.id for iv in interviews]
        revisions = s.execute(select(AnswerRevision, User.display_name)
                              .outerjoin(User, User.id == AnswerRevision.changed_by_id)
                              .where(AnswerRevision.interview_id.in_(iv_ids))
                              .order_by(AnswerRevision.changed_at, AnswerRevision.id)).all() if iv_ids else []
        trail = s.execute(select(AuditLog, User.display_name).outerjoin(User, User.id == AuditLog.user_id).where(
            ((AuditLog.entity == "case") & (AuditLog.entity_id == str(case_id)))
            | ((AuditLog.entity == "interview") & (AuditLog.entity_id.in_([str(i) for i in iv_ids])))
        ).order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(200)).all()
        people = interviewer_choices(s)
        reviews = qc_review.reviews_of(s, iv_ids)
        assigned = s.get(User, c.assigned_to_id).display_name if c.assigned_to_id else ""
        codes = [code for code in q.codes if q.study.question(code).type != "info"]
        labels = _answer_labels(q.study, current_language())
        full_texts = {qn.code: " ".join((qn.text.get(current_language()) or qn.text.get("zh-CN") or "").split())
                      for qn in q.study.questions}
        texts = {code: _short(text) for code, text in full_texts.items()}
        # Rendered inside the read session: the rows are live ORM objects.
        return render_template("supervisor/case.html", c=c, ent=c.enterprise, phones=phones, full=full,
                               attempts=attempts, interviews=interviews, answers=answers, revisions=revisions,
                               trail=trail, people=people, assigned=assigned, codes=codes, labels=labels,
                               texts=texts, full_texts=full_texts, reviews=reviews, criteria=qc_review.CRITERIA,
                               backchecks=qc_review.BACKCHECKS, tab="sample")


def _short(text: str, limit: int = 60) -> str:
    """A question's text for the answers table: one line, piping placeholders left as they are."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _answer_labels(spec, lang: str) -> dict[str, dict[int, str]]:
    """{question: {code: label}} for coded questions (answers are shown as "4 满意")."""
    out: dict[str, dict[int, str]] = {}
    for question in spec.questions:
        scale = spec.scales.get(question.scale) if getattr(question, "scale", None) else None
        if scale is not None:
            out[question.code] = {k: v.get(lang) or v.get("zh-CN") or "" for k, v in
                                  {**scale.labels, **scale.missing}.items()}
    return out


def _to_case(case_id: int):
    return redirect(url_for("supervisor.case", case_id=case_id))


@bp.post("/case/<int:case_id>/<any(stop, resume):action>")
@actor
def case_status(case_id: int, action: str):
    user, note = current_user(), request.form.get("note") or None
    change = partial(sa.stop_case, db.session, case_id) if action == "stop" else \
        partial(sa.resume_case, db.session, case_id, now_utc())
    commit(lambda: change(user_id=user.id, note=note), sa.SampleAdminError, ok=tr("done_ok"))
    return _to_case(case_id)


@bp.post("/case/<int:case_id>/reassign")
@actor
def case_reassign(case_id: int):
    user = current_user()
    commit(lambda: sa.reassign_case(db.session, case_id, who(request.form.get("to")), user_id=user.id,
                                    note=request.form.get("note") or None),
           sa.SampleAdminError, ValueError, ok=tr("done_ok"))
    return _to_case(case_id)


@bp.post("/case/<int:case_id>/dnc")
@actor
def case_dnc(case_id: int):
    user = current_user()
    numbers = [p.e164 for p in get_or_404(Case, case_id).phones]
    commit(lambda: sa.add_do_not_call(db.session, numbers, now_utc(), user_id=user.id,
                                      reason=request.form.get("reason") or "supervisor"),
           sa.SampleAdminError, ok=tr("done_ok"))
    return _to_case(case_id)


@bp.post("/interview/<int:interview_id>/answer")
@actor
def edit_answer(interview_id: int):
    """Change an answer after the fact (a reason is required); ``save_answer`` keeps the revision and audits."""
    user = current_user()
    iv = get_or_404(Interview, interview_id)
    code = request.form.get("question", "")
    raw = request.form.get("value", "")
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        db.session.rollback()
        flash(tr("reason_required"), "error")
    else:
        commit(lambda: save_answer(db.session, iv, code, raw, user_id=user.id, now=now_utc(), reason=reason),
               KeyError, ValueError, show=lambda err: flash(f"{code}: {error_text(err)}", "error"),
               ok=tr("answer_changed"))
    return _to_case(iv.case_id)


@bp.post("/interview/<int:interview_id>/review")
@actor
def qc_review_interview(interview_id: int):
    """A QC review of one interview: criterion scores from listening, a back-check result, a note (audited)."""
    user = current_user()
    iv = get_or_404(Interview, interview_id)
    case_id = iv.case_id
    scores = {k: request.form.get(f"score_{k}") for k in qc_review.CRITERIA}
    commit(lambda: qc_review.record(db.session, interview_id, scores, request.form.get("backcheck"),
                                    request.form.get("note"), now_utc(), user_id=user.id),
           qc_review.ReviewError, ok=tr("qc_review_saved"))
    return _to_case(case_id)
