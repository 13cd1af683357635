"""Sign-in, sign-out and language choice."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from cati.db import db
from cati.models import Role
from cati.services import agents, logins
from cati.services.users import authenticate

from .i18n import LANGUAGES, t
from .security import (
    clear_login_failures,
    client_address,
    current_user,
    home_for,
    login_blocked,
    record_login_failure,
    sign_in,
    sign_out,
)

bp = Blueprint("auth", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/console")


def _now() -> datetime:
    return datetime.now(UTC)


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: an open redirect after sign-in would be a phishing aid.
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        user = current_user()
        db.session.rollback()
        if user is not None:
            return redirect(home_for(user))
        if request.args.get("signed_out") == "1":  # the console was signed out by a supervisor
            flash(t("signed_out_by_supervisor"), "info")
        return render_template("auth/login.html", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    address = client_address()
    now = _now()
    if login_blocked(username, address, now):
        return render_template("auth/login.html", error=t("login_blocked"), username=username,
                               next=request.form.get("next", "")), 429
    user = authenticate(db.session, username, password)
    if user is None:
        db.session.rollback()
        record_login_failure(username, address, now)
        return render_template("auth/login.html", error=t("login_failed"), username=username,
                               next=request.form.get("next", "")), 401
    if user.role == Role.INTERVIEWER:
        agents.begin_shift(db.session, user.id, now)
        logins.opened(db.session, user.id, now, address)
    sign_in(user)
    target = _safe_next(request.form.get("next")) or home_for(user)
    db.session.commit()
    clear_login_failures(username, address)
    return redirect(target)


@bp.post("/logout")
def logout():
    user = current_user()
    if user is not None and user.role == Role.INTERVIEWER:
        agents.end_shift(db.session, user.id, _now())
    db.session.commit()
    sign_out()
    flash(t("signed_out"), "info")
    return redirect(url_for("auth.login"))


@bp.post("/lang")
def set_language():
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
        user = current_user()
        if user is not None:
            user.language = lang
        db.session.commit()
    return redirect(_safe_next(request.form.get("next")) or request.referrer or url_for("auth.login"))
