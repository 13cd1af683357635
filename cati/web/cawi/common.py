"""What the web-survey pages share: the blueprints, the respondent's cookies (device key, resume key), the
language (``?lang=``, else the browser's Accept-Language, else zh-CN), security headers and the rate limits."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask import Blueprint, Flask, current_app, g, request, session
from flask_limiter import Limiter

from cati.i18n import LANGUAGES
from cati.models import Role

from ..security import client_address, roles_required

#: The public pages (no sign-in): everything under /s/.
bp = Blueprint("cawi", __name__, static_folder="../static", static_url_path="/cawi-static")
#: The supervisor's invitations page.
manage = Blueprint("cawi_admin", __name__, url_prefix="/supervisor/web")

supervisor_only = roles_required(Role.SUPERVISOR)

DEVICE_COOKIE = "cawi_device"
DEVICE_MAX_AGE = 2 * 365 * 24 * 3600
RESUME_MAX_AGE = 60 * 24 * 3600

#: No script, no frames, no third-party anything: the pages are plain server-rendered forms.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")


def now_utc() -> datetime:
    return datetime.now(UTC)


def resume_cookie(invitation_id: int) -> str:
    return f"cawi_r{invitation_id}"


def device_key() -> str:
    """This device's key (its long-lived cookie), made on the first visit and set on the response."""
    key = g.get("cawi_device") or request.cookies.get(DEVICE_COOKIE, "")
    if not (16 <= len(key) <= 64) or not key.replace("-", "").replace("_", "").isalnum():
        key = secrets.token_urlsafe(18)
    g.cawi_device = key
    return key


def set_cookie(resp, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax", path="/s/",
                    secure=current_app.config.get("SESSION_COOKIE_SECURE", False))


@bp.before_request
def _language() -> None:
    """``?lang=en`` switches (and is remembered in the session); a first visit follows the browser's language."""
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        session["lang"] = wanted
    elif session.get("lang") not in LANGUAGES:
        best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
        if best:
            session["lang"] = "en" if best == "en" else "zh-CN"


@bp.after_request
def _headers(resp):
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    # The token is in the URL: never send it to another site.
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "cawi.static":
        # Answers on a shared phone are nobody else's business: no page is kept in the browser's cache.
        resp.headers["Cache-Control"] = "no-store"
    key = g.get("cawi_device")
    if key and request.cookies.get(DEVICE_COOKIE) != key:
        set_cookie(resp, DEVICE_COOKIE, key, DEVICE_MAX_AGE)
    return resp


def _token_key() -> str:
    """Per link; on an open link (shared by a whole call centre) per link and device."""
    token = (request.view_args or {}).get("token", "")
    device = request.cookies.get(DEVICE_COOKIE, "") or client_address()
    return f"{token}:{device}"


def init_app(app: Flask) -> None:
    """Rate limits on the public pages (Flask-Limiter; counters in ``cawi_rate_limit_storage``, memory by
    default): ``cawi_rate_limit_ip`` per client address and ``cawi_rate_limit_token`` per link and device. One
    limiter per app, so two apps in one process (the tests) never share counters."""
    settings = app.config["CATI_SETTINGS"]
    from cati.web.ratelimit_storage import storage_uri

    limiter = Limiter(client_address, app=app, storage_uri=storage_uri(settings.cawi_rate_limit_storage),
                      headers_enabled=True, key_prefix=f"cati{id(app)}")
    limiter.limit(settings.cawi_rate_limit_ip, key_func=client_address, scope="cawi-ip",
                  exempt_when=lambda: request.endpoint == "cawi.static")(bp)
    limiter.limit(settings.cawi_rate_limit_token, key_func=_token_key, scope="cawi-token",
                  exempt_when=lambda: "token" not in (request.view_args or {}))(bp)
    app.extensions["cati.limiter"] = limiter
