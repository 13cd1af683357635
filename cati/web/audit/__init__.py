"""CCSO audits on the web (issue 17), one module per screen: the list and the admin's new-audit form
(:mod:`.manage`), the centre's evidence uploads and the downloads (:mod:`.evidence`), the auditor's checklist per
pass with its offline queue (:mod:`.checklist`), non-conformities (:mod:`.findings`) and the result with the
report (:mod:`.result`). The blueprint is registered by :func:`cati.app.create_app`."""

from __future__ import annotations

from . import checklist, evidence, findings, manage, result  # noqa: F401 - the views register themselves
from .common import bp

__all__ = ["bp"]
