"""Web self-completion (CAWI): the public survey pages a respondent opens from a QR code or link (``/s/<token>``,
:mod:`.survey`) and the supervisor's invitations page with the links and their QR codes (:mod:`.invitations`).
Both blueprints are registered by :func:`cati.app.create_app`; :func:`init_app` adds the rate limits of the public
pages."""

from __future__ import annotations

from . import invitations, survey  # noqa: F401 - the views register themselves on the blueprints
from .common import bp, init_app, manage

__all__ = ["bp", "manage", "init_app"]
