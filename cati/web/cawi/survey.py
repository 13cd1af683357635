"""The respondent's pages: the welcome page of a link (``/s/<token>``, what the QR code encodes), one question per
page (``/s/<token>/q/<code>``: GET shows it, POST saves its answer and redirects to the next), and the end.

Plain forms, no script: every page works with JavaScript off. The page of a question has its own URL, so the
browser's Back button and the page's Back link both show the previous question with its answer, and an answer
sent again from an older page changes that answer (the engine keeps the revision). An answer is saved in the
request that acknowledges it (the redirect to the next question comes after the commit).
"""

from __future__ import annotations

from typing import Any

from flask import abort, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response as WResponse

from cati.db import db
from cati.models import Enterprise, InterviewStatus, Invitation, InvitationKind, Study
from cati.services import cawi as svc
from cati.services.interviews import answers_of, questionnaire_for
from cati.study.engine import AnswerError

from ..i18n import current_language, message, t
from ..uow import commit
from .common import (
    RESUME_MAX_AGE,
    bp,
    device_key,
    now_utc,
    resume_cookie,
    set_cookie,
)


def _invitation(token: str) -> Invitation:
    inv = svc.invitation(db.session, token)
    if inv is None:
        abort(make_response(_closed("cawi_link_unknown", 404)))
    return inv


def _closed(key: str, status: int, **params):
    db.session.rollback()
    return render_template("cawi/closed.html", message=t(key, **params), title=t("cawi_title")), status


def _response(inv: Invitation) -> svc.Response | None:
    return svc.response_of(db.session, inv, request.cookies.get(resume_cookie(inv.id)))


def _study(inv: Invitation) -> Study:
    return db.session.get(Study, inv.study_id)


def _title(study: Study) -> str:
    title = (study.definition or {}).get("title") or {}
    return title.get(current_language()) or title.get("zh-CN") or study.title


@bp.get("/s/<token>")
def landing(token: str):
    """The link's first page: what the survey is, that the employer sees only aggregates, and Start. A visitor
    with a response running on this link goes straight back to it."""
    inv = _invitation(token)
    r = _response(inv)
    if r is not None and r.running:
        return redirect(url_for("cawi.question", token=token, code=r.interview.current_question), 303)
    if inv.kind == InvitationKind.PERSONAL and inv.used_at is not None:
        return _closed("cawi_token_used", 409)
    if r is not None or svc.completed_on_device(db.session, inv, device_key()):
        svc.block_duplicate(db.session, inv)
        db.session.commit()
        return _closed("cawi_already_answered", 409)
    study = _study(inv)
    scoring = (study.definition or {}).get("scoring") or {}
    ent = db.session.get(Enterprise, inv.enterprise_id)
    db.session.rollback()
    return render_template("cawi/welcome.html", token=token, title=_title(study), enterprise=ent.name,
                           min_cell=scoring.get("min_cell_size") or 5)


@bp.post("/s/<token>/start")
def start(token: str):
    inv = _invitation(token)
    r = _response(inv)
    if r is not None and r.running:
        return redirect(url_for("cawi.question", token=token, code=r.interview.current_question), 303)
    device = device_key()
    done = commit(lambda: svc.start_response(db.session, inv, device_key=device, language=current_language(),
                                             now=now_utc()), svc.CawiError, show=None)
    if done.error is not None:
        if done.error.key == "cawi_already_answered":
            svc.block_duplicate(db.session, inv)
            db.session.commit()
        return _closed(done.error.key, 409)
    r = done.value
    resp = redirect(url_for("cawi.question", token=token, code=r.interview.current_question), 303)
    set_cookie(resp, resume_cookie(inv.id), r.web.resume_key, RESUME_MAX_AGE)
    return resp


def _running(token: str) -> tuple[Invitation, svc.Response] | WResponse:
    """The invitation and this visitor's running response, or where to send them instead."""
    inv = _invitation(token)
    r = _response(inv)
    if r is None:
        db.session.rollback()
        return redirect(url_for("cawi.landing", token=token), 303)
    if r.interview.status != InterviewStatus.IN_PROGRESS:
        db.session.rollback()
        return redirect(url_for("cawi.finished", token=token), 303)
    return inv, r


@bp.get("/s/<token>/q/<code>")
def question(token: str, code: str):
    got = _running(token)
    if isinstance(got, WResponse):
        return got
    _inv, r = got
    shown = svc.visible_code(db.session, r, code)
    if shown != code:
        db.session.rollback()
        return redirect(url_for("cawi.question", token=token, code=shown), 303)
    svc.shown(db.session, r, code, now_utc())
    html = _page(token, r, code, error=t("cawi_page_expired") if request.args.get("expired") else None)
    db.session.commit()
    return html


@bp.errorhandler(CSRFError)
def _expired(_err):
    """A page kept open past its form's lifetime (or from before a new session): nothing was saved; the same
    question again, saying so, instead of an error page."""
    db.session.rollback()
    args = request.view_args or {}
    if request.endpoint == "cawi.save" and "token" in args:
        return redirect(url_for("cawi.question", token=args["token"], code=args["code"], expired=1), 303)
    if "token" in args:
        return redirect(url_for("cawi.landing", token=args["token"]), 303)
    return _closed("csrf_error", 400)


def _page(token: str, r: svc.Response, code: str, *, error: str | None = None, sent: dict | None = None,
          status: int = 200):
    study = _study(r.invitation)
    q = questionnaire_for(study)
    answers = answers_of(db.session, r.interview, q)
    ent = db.session.get(Enterprise, r.case.enterprise_id)
    ctx = {k: str(v) for k, v in (r.case.attributes or {}).items() if k != "source"}
    ctx["enterprise_name"] = ent.name
    lang = current_language()
    rendered = q.render(code, lang, ctx)
    pos, total = q.progress(answers, code)
    if sent is None:  # what the page shows as chosen: the stored answer
        current = answers.get(code)
        chosen = set(current) if isinstance(current, list) else ({current} if isinstance(current, int) else set())
        sent = {"chosen": {str(c) for c in chosen}, "other": answers.get(rendered["other_key"] or "", ""),
                "text": current if isinstance(current, str) else "",
                "prefer": rendered["prefer_not_code"] is not None and current == rendered["prefer_not_code"]
                and rendered["type"] == "open"}
    prev = q.previous_code(answers, code)
    last = rendered["type"] == "info" and q.next_code(answers, code) is None
    body = render_template("cawi/question.html", token=token, q=rendered, title=_title(study), error=error,
                           sent=sent, prev=prev, pos=pos, total=total, pct=int(100 * (pos - 1) / max(total, 1)),
                           last=last)
    return body, status


def _raw(rendered: dict) -> tuple[Any, dict]:
    """The answer the form sent, as the engine takes it, and what the page shows again on an error."""
    form = request.form
    qtype = rendered["type"]
    other = form.get("other", "")
    values = [v for v in form.getlist("value") if v != ""]
    sent = {"chosen": set(values), "other": other, "text": form.get("value", ""), "prefer": False}
    if qtype == "info":
        return None, sent
    if qtype == "open":
        if rendered["prefer_not_code"] is not None and form.get("prefer"):
            sent["prefer"] = True
            return rendered["prefer_not_code"], sent
        return form.get("value", ""), sent
    if qtype == "multi":
        if not values:
            raise svc.CawiError("cawi_pick_some")
        raw: Any = values
    elif qtype in ("single", "rating"):
        if not values:
            raise svc.CawiError("cawi_pick_one")
        raw = values[0]
    else:
        raw = form.get("value", "").strip()
    if rendered["other_key"]:
        raw = {"value": raw, "other": other}
    return raw, sent


@bp.post("/s/<token>/q/<code>")
def save(token: str, code: str):
    """Save the answer of ``code`` (validated by the engine on the server) and go to the next question; an
    invalid answer shows the same page again with the reason in the respondent's language (422)."""
    got = _running(token)
    if isinstance(got, WResponse):
        return got
    _inv, r = got
    study = _study(r.invitation)
    q = questionnaire_for(study)
    if code not in q.codes:
        abort(404)
    rendered = q.render(code, current_language(), {})
    interview_id = r.interview.id
    try:
        raw, sent = _raw(rendered)
    except svc.CawiError as err:
        return _page(token, r, code, error=message(err), sent={"chosen": set(), "other": request.form.get(
            "other", ""), "text": "", "prefer": False}, status=422)
    done = commit(lambda: svc.answer(db.session, r, code, raw, now_utc()), AnswerError, svc.CawiError, show=None)
    if done.error is not None:
        again = _response(r.invitation)
        if again is None or again.interview.id != interview_id:
            return redirect(url_for("cawi.landing", token=token), 303)
        if isinstance(done.error, svc.CawiError) and done.error.key == "cawi_not_this_question":
            return redirect(url_for("cawi.question", token=token, code=svc.visible_code(db.session, again, None)),
                            303)
        return _page(token, again, code, error=message(done.error), sent=sent, status=422)
    answered: svc.Answered = done.value
    if answered.complete or answered.terminated:
        return redirect(url_for("cawi.finished", token=token), 303)
    return redirect(url_for("cawi.question", token=token, code=answered.next_code), 303)


@bp.get("/s/<token>/done")
def finished(token: str):
    inv = _invitation(token)
    r = _response(inv)
    if r is None or r.running:
        db.session.rollback()
        return redirect(url_for("cawi.landing", token=token), 303)
    title = _title(_study(inv))
    text = t("cawi_thank_you") if r.complete else t("cawi_terminated")
    db.session.rollback()
    return render_template("cawi/closed.html", message=text, title=title, done=True)
