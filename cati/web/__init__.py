"""Web layer: thin blueprints (parse → one service call → render), one per area, all registered by
:func:`cati.app.create_app`; :func:`init_app` adds what they share (CSRF, translations, error pages, ``/`` and
``/healthz``)."""

from __future__ import annotations

from flask import Flask, jsonify, redirect, render_template, url_for
from flask_wtf.csrf import CSRFError

from cati.db import db
from cati.extensions import csrf

from .i18n import init_i18n, t
from .security import current_user, home_for, wants_json


def _error(status: int, key: str):
    current_user()
    db.session.rollback()
    if wants_json():
        return {"ok": False, "error": t(key)}, status
    return render_template("error.html", status=status, message=t(key)), status


def init_app(app: Flask) -> None:
    """CSRF protection (Twilio's callbacks are exempt: ``X-Twilio-Signature`` authenticates them), translations,
    error pages, the home redirect and the health check."""
    from .webhooks import webhooks

    csrf.init_app(app)
    csrf.exempt(webhooks)
    init_i18n(app)
    from . import cawi

    cawi.init_app(app)  # the rate limits of the public web-survey pages
    app.register_error_handler(CSRFError, lambda e: _error(400, "csrf_error"))
    for status, key in ((400, "bad_request"), (401, "unauthorized"), (403, "forbidden"), (404, "not_found"),
                        (429, "too_many_requests")):
        app.register_error_handler(status, lambda e, status=status, key=key: _error(status, key))
    token = app.config["CATI_SETTINGS"].telephony.twilio.auth_token
    app.config.setdefault("TWILIO_AUTH_TOKEN", token.get_secret_value() if token else None)

    @app.get("/")
    def index():
        user = current_user()
        db.session.rollback()
        return redirect(home_for(user) if user is not None else url_for("auth.login"))

    @app.get("/favicon.ico")
    def favicon():
        # Browsers ask for /favicon.ico before reading the page's <link rel="icon">: answer instead of a 404.
        return redirect(url_for("auth.static", filename="favicon.svg"), 301)

    @app.get("/healthz")
    def healthz():
        from sqlalchemy import text

        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return jsonify(status="ok")
