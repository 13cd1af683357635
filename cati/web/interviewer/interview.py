"""The interview, one question at a time (or a grid of rating rows): starting it once the call is answered,
answering (one request per key press: the hot path), going back, and confirming the end the questionnaire's
rules reached."""

from __future__ import annotations

from flask import abort, flash, jsonify, make_response, redirect, render_template, request, session, url_for

from cati.db import db
from cati.models import Case, Interview, InterviewStatus, Study, User
from cati.models.agents import AgentStatus
from cati.services import agents, wrapup
from cati.services.dispositions import catalogue
from cati.services.interviews import (
    InterviewError,
    answers_of,
    complete_interview,
    questionnaire_for,
    revision_token,
    save_answer,
    start_interview,
    terminate_interview,
)
from cati.services.scheduling import QuotaFull
from cati.study.engine import AnswerError, Questionnaire

from ..i18n import t
from ..security import current_user, wants_json
from ..uow import commit
from .backend import hangup_quietly
from .common import (
    bp,
    cached_study,
    context,
    current_attempt,
    interviewer_only,
    json_or_redirect,
    lang,
    my_case,
    my_interview,
    now_utc,
    refuse,
)


def step_view(interview: Interview, case: Case, user: User, study: Study, language: str, *,
              show_termination: bool = True, error: str | None = None, answers: dict | None = None) -> dict:
    """What the question area shows now: the current question (or grid), progress, termination panel."""
    q = questionnaire_for(study)
    if answers is None:
        answers = answers_of(db.session, interview, q)
    code = interview.current_question or q.first()
    ctx = context(case, user)
    stopped = q.terminated(answers)
    view = {"interview_id": interview.id, "code": code, "error": error, "termination": None}
    if show_termination and stopped is not None and stopped[0] == code:
        view["termination"] = {"code": stopped[1], "label": catalogue().get_code(stopped[1]).text(language),
                               "needs_detail": wrapup.needs_detail(stopped[1])}
    pos, total = q.progress(answers, code)
    view["progress"] = {"pos": pos, "total": total, "pct": int(100 * (pos - 1) / max(total, 1))}
    rendered = q.render(code, language, ctx)
    view["question"] = rendered
    view["section"] = _section_names(study, language).get(rendered["section"] or "")
    view["current"] = answers.get(code)
    view["is_end"] = rendered["type"] == "info" and q.next_code(answers, code) is None
    view["grid"] = None
    if session.get("grid") and rendered["type"] == "rating":
        start = code
        while True:
            prev = q.previous_code(answers, start)
            if prev is None:
                break
            pq = q.render(prev, language, ctx)
            if pq["type"] != "rating" or pq["section"] != rendered["section"]:
                break
            start = prev
        codes = q.grid_codes(answers, start)
        if len(codes) > 1:
            view["grid"] = [{"code": c, "text": q.render(c, language, ctx)["text"], "value": answers.get(c),
                             "current": c == code} for c in codes]
    return view


def _section_names(study: Study, language: str) -> dict[str, str]:
    """Indicator names by section code (A → 呼叫便利程度), shown above the rating items."""
    names = {}
    for ind in (study.definition.get("indicators") or []):
        name = ind.get("name") or {}
        names[ind.get("code")] = name.get(language) or name.get("zh-CN") or ""
    return names


def render_step(interview, case, user, study, language, **kw) -> str:
    return render_template("interviewer/_question.html", step=step_view(interview, case, user, study, language, **kw),
                           rev=revision_token(db.session, interview))


def _stale(interview, case, user, study, language):
    """The page's answer was keyed on an older state of the interview (another tab, or a retry of an answer the
    server already took): nothing is stored; the reply carries the current question and says so."""
    db.session.rollback()
    message = t("answer_conflict")
    html = render_step(interview, case, user, study, language, error=message)
    return json_or_redirect({"ok": False, "conflict": True, "error": message, "html": html}, 409)


@bp.post("/case/<int:case_id>/start")
@interviewer_only
def start(case_id: int):
    user = current_user()
    case = my_case(case_id, user)
    attempt = current_attempt(case, user)
    now = now_utc()
    if attempt is not None and wrapup.call_state(attempt) == "detecting":
        if not wants_json():
            flash(t("amd_pending"), "error")
        return refuse({"ok": False, "error": t("amd_pending")}, 409)

    def work() -> None:
        start_interview(db.session, case, user.id, now, attempt_id=attempt.id if attempt else None, language=lang())
        st = agents.state_of(db.session, user.id, now)
        paused = st.status == AgentStatus.PAUSED  # a supervisor's pause waits for the call in hand to end
        agents.set_state(db.session, user.id, AgentStatus.PAUSED if paused else AgentStatus.TALKING, now,
                         reason=st.pause_reason if paused else None, case_id=case.id,
                         call_id=attempt.call_id if attempt else None)

    done = commit(work, QuotaFull, InterviewError, show=None)
    if isinstance(done.error, QuotaFull):
        return json_or_redirect({"ok": False, "error": t("quota_full")}, 409)
    if done.error is not None:
        abort(403)
    return json_or_redirect({"ok": True})


def _in_progress(interview_id: int, **reply) -> tuple[User, Interview, Case, Study, Questionnaire]:
    """The interviewer, their running interview, its case, study and questionnaire. When the interview has ended
    (a stale page), the request ends here with ``reply`` (409)."""
    user = current_user()
    interview, case = my_interview(interview_id, user)
    if interview.status != InterviewStatus.IN_PROGRESS:
        abort(make_response(refuse({"ok": False, **reply}, 409)))
    study = cached_study(interview.study_id)
    return user, interview, case, study, questionnaire_for(study)


class _NotAnswerable(Exception):
    """Skipping ahead, or a stale page (another tab moved on): nothing is stored, the page reloads."""


@bp.post("/interview/<int:interview_id>/answer")
@interviewer_only
def answer(interview_id: int):
    """Store one answer at once; reply with the next question's HTML (fetch) or redirect (plain form)."""
    user, interview, case, study, q = _in_progress(interview_id, error=t("interview_ended"), reload=True)
    language = lang()
    code = request.form.get("code") or ""
    if code not in q.codes:
        abort(400)
    rev = request.form.get("rev")
    if rev is not None and rev != revision_token(db.session, interview):
        return _stale(interview, case, user, study, language)
    current = interview.current_question or q.first()
    qtype = q.study.question(code).type
    raw = None if qtype == "info" else request.form.get("value", "")
    if qtype == "multi":
        raw = request.form.getlist("value")
    now = now_utc()

    def work() -> tuple[str | None, str | None]:
        """(the next question's HTML, None), or (None, the call to hang up) once the interview is complete."""
        step = save_answer(db.session, interview, code, raw, user_id=user.id, now=now).step
        if not _answerable(q, step.answers, code, current):
            raise _NotAnswerable
        if step.complete and step.next_code is None and step.termination is None:
            complete_interview(db.session, interview, now, user_id=user.id)
            return None, wrapup.finish_call(db.session, user.id, now)
        return render_step(interview, case, user, study, language, answers=step.answers), None

    done = commit(work, AnswerError, _NotAnswerable, show=None)
    if isinstance(done.error, AnswerError):
        message = done.error.message(language)
        interview, case = my_interview(interview_id, user)
        html = render_step(interview, case, user, study, language, error=message)
        if wants_json():
            return jsonify(ok=False, error=message, html=html), 422
        flash(message, "error")
        return redirect(url_for("interviewer.console"))
    if done.error is not None:
        return json_or_redirect({"ok": False, "error": t("interview_ended"), "reload": True}, 409)
    html, call_id = done.value
    if html is None:
        hangup_quietly(call_id)
        session["last_call"] = t("interview_complete")
        return json_or_redirect({"ok": True, "done": "complete", "redirect": url_for("interviewer.console")})
    return json_or_redirect({"ok": True, "html": html, "code": interview.current_question})


def _answerable(q, answers: dict, code: str, current: str) -> bool:
    """Only the current question, one before it on the route (changing an earlier answer), or a row of the
    current rating grid may be answered: skipping ahead is not possible, even with a hand-made request.

    ``answers`` may be those after the answer was applied: routing up to ``code`` depends only on earlier
    answers, so whether ``code`` is on the route is the same before and after."""
    if code not in q.path(answers):
        return False
    order = {c: i for i, c in enumerate(q.codes)}
    if order[code] <= order[current]:
        return True
    return code in q.grid_codes(answers, current)


@bp.post("/interview/<int:interview_id>/back")
@interviewer_only
def back(interview_id: int):
    """One question back on the route (on the "interview ends here" panel: the terminating question again)."""
    user, interview, case, study, q = _in_progress(interview_id, reload=True)
    language = lang()
    answers = answers_of(db.session, interview, q)
    code = interview.current_question or q.first()
    stopped = q.terminated(answers)
    if stopped is not None and stopped[0] == code:
        # Backspace on the "interview ends here" panel: show the terminating question again to correct it.
        html = render_step(interview, case, user, study, language, show_termination=False)
        return refuse({"ok": True, "html": html, "code": code}, 200)
    prev = q.previous_code(answers, code)
    if prev is not None:
        interview.current_question = prev
    html = render_step(interview, case, user, study, language)
    db.session.commit()
    return json_or_redirect({"ok": True, "html": html, "code": interview.current_question})


@bp.post("/interview/<int:interview_id>/terminate")
@interviewer_only
def terminate(interview_id: int):
    """Confirm the end the questionnaire's rules reached (screened out, refused consent)."""
    user = current_user()
    interview, _case = my_interview(interview_id, user)
    study = db.session.get(Study, interview.study_id)
    q = questionnaire_for(study)
    stopped = q.terminated(answers_of(db.session, interview, q))
    if stopped is None or interview.status != InterviewStatus.IN_PROGRESS:
        return refuse({"ok": False, "reload": True}, 409)
    if wrapup.needs_detail(stopped[1]):
        # One rule for both ways a refusal is coded: a termination that needs a refusal reason or a note is
        # coded in the outcome panel, which asks for them (the console opens it with the code chosen).
        return refuse({"ok": False, "outcome_panel": stopped[1], "error": t("termination_needs_detail")}, 422)
    now = now_utc()
    terminate_interview(db.session, interview, stopped[1], now, user_id=user.id)
    call_id = wrapup.finish_call(db.session, user.id, now)
    db.session.commit()
    hangup_quietly(call_id)
    session["last_call"] = t("outcome_saved", label=f"{stopped[1]} {catalogue()[stopped[1]].text(lang())}")
    return json_or_redirect({"ok": True, "done": "terminated", "redirect": url_for("interviewer.console")})
