"""What the audit screens share: the blueprint, who may open an audit (admin, its auditors, its centre's users;
anyone else gets 403), and the template helpers."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, abort

from cati.db import db
from cati.models import Audit, Role
from cati.services import certification as svc

from ..i18n import current_language, t
from ..security import current_user, roles_required

bp = Blueprint("audit", __name__, url_prefix="/audit")

#: Audit screens: auditors and centre users (admins pass every role check); interviewers, supervisors and
#: analysts get 403.
members_only = roles_required(Role.AUDITOR, Role.CENTRE)


def open_audit(audit_id: int, allowed: Iterable[str] = ("admin", "auditor", "centre")) -> tuple[Audit, str]:
    """The audit and how the signed-in user sees it; 404 when it does not exist, 403 when it is not theirs or the
    screen is not for their role."""
    audit = db.session.get(Audit, audit_id)
    if audit is None:
        abort(404)
    how = svc.membership(db.session, current_user(), audit)
    if how is None or how not in allowed:
        abort(403)
    return audit, how


def name_of(text) -> str:
    """A checklist text in the visitor's language."""
    return text.get(current_language())


@bp.context_processor
def _helpers():
    return {"name_of": name_of, "t": t}
