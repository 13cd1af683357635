"""Sign-in, sign-out, language choice, error pages; ``init_web`` wires the console's parts into an app."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError

from cati.db import db
from cati.extensions import csrf
from cati.models import Role
from cati.services import agents
from cati.services.users import authenticate

from .i18n import LANGUAGES, init_i18n, t
from .security import (
    clear_login_failures,
    client_address,
    current_user,
    home_for,
    login_blocked,
    record_login_failure,
    sign_in,
    sign_out,
    wants_json,
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


def _error(status: int, key: str):
    current_user()
    db.session.rollback()
    if wants_json():
        return {"ok": False, "error": t(key)}, status
    return render_template("error.html", status=status, message=t(key)), status


def init_web(app: Flask) -> None:
    """Register CSRF protection, translations, error pages and the auth + interviewer blueprints (idempotent)."""
    if "auth" in app.blueprints:
        return
    from .interviewer import bp as interviewer_bp

    csrf.init_app(app)
    init_i18n(app)
    app.register_blueprint(bp)
    app.register_blueprint(interviewer_bp)
    app.register_error_handler(CSRFError, lambda e: _error(400, "csrf_error"))
    app.register_error_handler(400, lambda e: _error(400, "bad_request"))
    app.register_error_handler(401, lambda e: _error(401, "unauthorized"))
    app.register_error_handler(403, lambda e: _error(403, "forbidden"))
    app.register_error_handler(404, lambda e: _error(404, "not_found"))

    @app.get("/")
    def index():
        user = current_user()
        db.session.rollback()
        return redirect(home_for(user) if user is not None else url_for("auth.login"))


def wsgi_app() -> Flask:
    """``gunicorn 'cati.web.auth:wsgi_app()'``: the app with the console, whether or not
    ``register_blueprints`` already includes it."""
    from cati.app import create_app

    app = create_app()
    init_web(app)
    return app
