"""Web layer: thin blueprints (parse → one service call → render)."""

from __future__ import annotations

from flask import Flask, jsonify


def register_blueprints(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        from sqlalchemy import text

        from cati.db import db

        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return jsonify(status="ok")

    from cati.extensions import csrf

    from .auth import init_web
    from .supervisor import init_supervision
    from .webhooks import webhooks

    # Sign-in, CSRF, translations, error pages and the interviewer console; then supervisor and admin screens.
    init_web(app)
    init_supervision(app)
    # Twilio cannot send a CSRF token: its callbacks are authenticated by X-Twilio-Signature instead.
    app.register_blueprint(webhooks)
    csrf.exempt(webhooks)
    token = app.config["CATI_SETTINGS"].telephony.twilio.auth_token
    app.config.setdefault("TWILIO_AUTH_TOKEN", token.get_secret_value() if token else None)
