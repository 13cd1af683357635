"""Administration (``/admin``): users and roles, study upload (validated by the study loader), the calling-hours
and rules editor (validated the same way), and the searchable audit log. Admins only.

Texts come from the one table in :mod:`cati.web.i18n` (``tr``).
"""

from __future__ import annotations

import copy
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import yaml
from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import String, cast, func, or_, select

from cati.db import db
from cati.i18n import KeyedText
from cati.models import AuditLog, Role, Study, User
from cati.services import audit
from cati.services.calling import zone
from cati.services.quotas import apply_enterprise_quota
from cati.services.studies import get_study, install_study
from cati.services.users import UserError, check_password, create_user, hash_password, parse_role
from cati.study.loader import Problem, StudyError, validate_study_mapping

from .i18n import message
from .security import current_user, roles_required
from .supervisor import common as sup
from .uow import commit

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")
admin_only = roles_required(Role.ADMIN)



@bp.context_processor
def _inject() -> dict:
    return {**sup.template_helpers(), "tab": "admin"}


def _now() -> datetime:
    return datetime.now(UTC)


@bp.get("/")
@admin_only
def index():
    return redirect(url_for("admin.users"))


# -------------------------------------------------------------------------------------------------- users


@bp.get("/users")
@admin_only
def users():
    rows = db.session.scalars(select(User).order_by(User.role, User.username)).all()
    page = render_template("admin/users.html", users=rows, roles=[r.value for r in Role], atab="users")
    db.session.commit()
    return page


@bp.post("/users")
@admin_only
def create():
    me = current_user()
    f = request.form

    def work() -> User:
        u = create_user(db.session, f.get("username", ""), f.get("password", ""), f.get("role", ""),
                        display_name=f.get("display_name") or None, extension=f.get("extension") or None)
        u.refusal_converter = f.get("refusal_converter") == "1"
        audit.record(db.session, user_id=me.id, action="user.create", entity="user", entity_id=u.id,
                     after={"username": u.username, "role": u.role.value, "refusal_converter": u.refusal_converter})
        return u

    commit(work, UserError, ok=lambda u: sup.tr("user_created", u=u.username))
    return redirect(url_for("admin.users"))


def _refuse(text: str):
    """Back to the users page with ``text``, nothing changed."""
    db.session.rollback()
    flash(text, "error")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:uid>")
@admin_only
def update(uid: int):
    me = current_user()
    u = db.session.get(User, uid)
    if u is None:
        return _refuse(sup.tr("user_not_found", uid=uid))
    f = request.form
    try:
        role = parse_role(f.get("role", u.role.value))
    except UserError as err:
        return _refuse(message(err))
    active = f.get("is_active") == "1"
    if u.id == me.id and (role != Role.ADMIN or not active):
        return _refuse(sup.tr("cannot_demote_self"))
    before = {"role": u.role.value, "is_active": u.is_active, "refusal_converter": u.refusal_converter,
              "extension": u.extension, "display_name": u.display_name}
    u.role, u.is_active = role, active
    u.refusal_converter = f.get("refusal_converter") == "1"
    u.extension = f.get("extension") or None
    u.display_name = (f.get("display_name") or u.display_name).strip() or u.display_name
    after = {"role": u.role.value, "is_active": u.is_active, "refusal_converter": u.refusal_converter,
             "extension": u.extension, "display_name": u.display_name}
    if after != before:
        audit.record(db.session, user_id=me.id, action="user.update", entity="user", entity_id=u.id,
                     before=before, after=after)
    db.session.commit()
    flash(sup.tr("user_saved", u=u.username), "info")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:uid>/password")
@admin_only
def set_password(uid: int):
    pw = request.form.get("password") or ""
    u = db.session.get(User, uid)
    me = current_user()
    if u is None:
        return _refuse(sup.tr("user_not_found", uid=uid))
    try:
        check_password(pw)
    except UserError as err:
        return _refuse(message(err))
    u.password_hash = hash_password(pw)  # also ends the user's other sessions (security ties them to the hash)
    audit.record(db.session, user_id=me.id, action="user.password", entity="user", entity_id=u.id)
    db.session.commit()
    flash(sup.tr("password_set", u=u.username), "info")
    return redirect(url_for("admin.users"))


# ------------------------------------------------------------------------------------------------- study


def _problems(err: StudyError) -> list[Problem]:
    return list(err.problems)


def _install_upload(saved: Path, name: str, user_id: int) -> tuple[Study, list[Problem]]:
    """Validate the uploaded study file (errors named after the uploaded file, not our temp name), then install it
    under its id and version; the study row and the loader's warnings."""
    from cati.study.loader import load_study

    try:
        spec = load_study(saved)
    except StudyError as err:
        raise StudyError([Problem(name, p.path, p.message, p.line, p.column) for p in err.problems],
                         err.warnings) from None
    warnings = [Problem(name, p.path, p.message, p.line, p.column, "warning") for p in getattr(spec, "warnings", [])]
    final = saved.parent / f"{spec.id}-v{spec.version}.yaml"
    saved.replace(final)
    row = install_study(db.session, final)
    audit.record(db.session, user_id=user_id, action="study.upload", entity="study", entity_id=row.id,
                 after={"code": row.code, "version": row.version, "file": name})
    return row, warnings


@bp.route("/study", methods=["GET", "POST"])
@admin_only
def study():
    me = current_user()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if request.method == "POST":
        up = request.files.get("file")
        if up is None or not up.filename:
            problems = [Problem("—", "", KeyedText("study_no_file"))]
        else:
            name = Path(up.filename).name
            from flask import current_app

            folder = Path(current_app.instance_path) / "uploads"
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=folder, prefix="study-", suffix=".yaml", delete=False) as fh:
                fh.write(up.read())
                saved = Path(fh.name)
            done = commit(lambda: _install_upload(saved, name, me.id), StudyError, show=None,
                          ok=lambda out: sup.tr("study_installed", code=out[0].code, v=out[0].version))
            if done.ok:
                warnings = done.value[1]
            else:
                saved.unlink(missing_ok=True)
                problems = _problems(done.error)
                flash(sup.tr("study_invalid", n=len(problems)), "error")
    studies = db.session.scalars(select(Study).order_by(Study.id)).all()
    page = render_template("admin/study.html", problems=problems, warnings=warnings, studies=studies, atab="study")
    db.session.commit()
    return page, (422 if problems else 200)


# ------------------------------------------------------------------------------------------------- rules


def _yaml_text(data) -> str:
    def conv(x):
        if isinstance(x, time):
            return x.strftime("%H:%M")
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [conv(v) for v in x]
        return x

    return yaml.safe_dump(conv(data), allow_unicode=True, sort_keys=False, default_flow_style=None)


def apply_rules(definition: dict, rules_text: str, quota: int | None, source: str) -> dict:
    """A new study definition with ``calling_rules`` replaced by the YAML text (and the per-enterprise quota,
    when given), validated as a whole study. Raises StudyError naming the path (``calling_rules.windows…``)."""
    try:
        rules = yaml.safe_load(rules_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise StudyError([Problem(source, "calling_rules",
                                  KeyedText("sv_yaml_syntax", what=str(getattr(exc, "problem", exc))),
                                  line=mark.line + 1 if mark else None)]) from None
    if not isinstance(rules, dict):
        raise StudyError([Problem(source, "calling_rules", KeyedText("rules_not_mapping"))])
    new = copy.deepcopy(definition)
    new["calling_rules"] = rules
    if quota is not None:
        new.setdefault("quota", {})["per_enterprise"] = quota
    validate_study_mapping(new, source=source)
    return new


def _save_rules(st: Study, text: str, quota: int | None, user_id: int):
    """Replace the study's calling rules (and its per-enterprise quota) with the validated YAML text, a new study
    version; the new definition and the quota change applied to the enterprises. Raises StudyError."""
    new = apply_rules(st.definition, text, quota, f"study {st.code}")
    before = {"calling_rules": st.definition.get("calling_rules"), "quota": st.definition.get("quota")}
    old_quota = int((st.definition.get("quota") or {}).get("per_enterprise") or 0)
    st.version += 1
    new["version"] = st.version
    st.definition = new
    # The quota enforced is each enterprise's target: the study default changing moves them too.
    change = apply_enterprise_quota(db.session, st, old_quota, int(new["quota"]["per_enterprise"]),
                                    datetime.now(UTC)) if old_quota else None
    audit.record(db.session, user_id=user_id, action="study.rules", entity="study", entity_id=st.id,
                 before=before, after={"calling_rules": new["calling_rules"], "quota": new.get("quota"),
                                       "quota_change": change.__dict__ if change else None})
    return new, change


@bp.route("/rules", methods=["GET", "POST"])
@admin_only
def rules():
    me = current_user()
    st = get_study(db.session)
    problems: list[Problem] = []
    text = _yaml_text(st.definition.get("calling_rules") or {})
    quota = (st.definition.get("quota") or {}).get("per_enterprise")
    if request.method == "POST":
        text = request.form.get("rules", "")
        raw_quota = request.form.get("quota", "").strip()
        try:
            quota_val = int(raw_quota) if raw_quota else None
        except ValueError:
            quota_val = None
            problems = [Problem(f"study {st.code}", "quota.per_enterprise",
                                KeyedText("quota_not_integer", value=raw_quota))]
        if not problems:
            done = commit(lambda: _save_rules(st, text, quota_val, me.id), StudyError, show=None,
                          ok=lambda _: sup.tr("rules_saved", v=st.version))
            if done.ok:
                new, change = done.value
                if change and change.enterprises:
                    flash(sup.tr("quota_applied", n=change.enterprises, q=new["quota"]["per_enterprise"],
                                 closed=change.closed, reopened=change.reopened, kept=change.kept), "info")
                return redirect(url_for("admin.rules"))
            problems = _problems(done.error)
        db.session.rollback()
        flash(sup.tr("rules_invalid"), "error")
        quota = raw_quota
    page = render_template("admin/rules.html", study=st, text=text, quota=quota, problems=problems, atab="rules")
    db.session.commit()
    return page, (422 if problems else 200)


# ------------------------------------------------------------------------------------------------- audit


PAGE = 100


@bp.get("/audit")
@admin_only
def audit_log():
    a = request.args
    q = (select(AuditLog, User.display_name, User.username).outerjoin(User, User.id == AuditLog.user_id))
    if a.get("action"):
        q = q.where(AuditLog.action.like(f"{a['action']}%"))
    if a.get("entity"):
        q = q.where(AuditLog.entity == a["entity"])
    if a.get("entity_id"):
        q = q.where(AuditLog.entity_id == a["entity_id"].strip())
    if a.get("user"):
        q = q.where(or_(User.username == a["user"].strip(), User.display_name == a["user"].strip()))
    for key, op in (("date_from", "ge"), ("date_to", "lt")):
        if a.get(key):
            try:
                day = datetime.fromisoformat(a[key]).replace(tzinfo=zone(sup.centre_tz()))
            except ValueError:
                flash(sup.tr("date_invalid", field=key, value=a[key]), "error")
                continue
            if op == "lt":
                day += timedelta(days=1)
            q = q.where(AuditLog.at >= day.astimezone(UTC) if op == "ge" else AuditLog.at < day.astimezone(UTC))
    if a.get("q"):
        like = f"%{a['q'].strip()}%"
        q = q.where(or_(AuditLog.action.like(like), AuditLog.entity_id.like(like), AuditLog.note.like(like),
                        cast(AuditLog.before, String).like(like), cast(AuditLog.after, String).like(like)))
    try:
        before_id = int(a.get("before_id") or 0)
    except ValueError:
        before_id = 0
    if before_id:
        q = q.where(AuditLog.id < before_id)
    rows = db.session.execute(q.order_by(AuditLog.id.desc()).limit(PAGE + 1)).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    actions = db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)).all()
    total = db.session.scalar(select(func.count(AuditLog.id)))
    older_url = None
    if rows and more:
        keep = {k: v for k, v in a.items() if k != "before_id"}
        older_url = url_for("admin.audit_log", before_id=rows[-1][0].id, **keep)
    page = render_template("admin/audit.html", rows=rows, args=a, actions=actions, total=total,
                           older_url=older_url, atab="audit")
    db.session.commit()
    return page
