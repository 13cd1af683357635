"""Messages from supervisors to interviewers: to one interviewer or to all (a broadcast), delivered to the open
console by its heartbeat (no extra connection), with receipts: when the console first showed a message and when
the interviewer marked it read. Sending is audited (``message.send``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import MessageReceipt, Role, SupervisorMessage, User

from . import audit

MAX_LENGTH = 1000
#: How far back a console looks for messages it has not shown yet (a message older than a shift is stale).
WINDOW = timedelta(hours=12)


class MessageError(KeyedError):
    """A message that cannot be sent."""


def send(session: Session, sender_id: int, recipient_id: int | None, body: str, now: datetime) -> SupervisorMessage:
    body = (body or "").strip()
    if not body:
        raise MessageError("message_empty")
    if len(body) > MAX_LENGTH:
        raise MessageError("message_too_long", n=MAX_LENGTH)
    if recipient_id is not None:
        u = session.get(User, recipient_id)
        if u is None or u.role != Role.INTERVIEWER or not u.is_active:
            raise MessageError("not_active_interviewer", id=recipient_id)
    msg = SupervisorMessage(sender_id=sender_id, recipient_id=recipient_id, body=body, sent_at=now)
    session.add(msg)
    session.flush()
    audit.record(session, user_id=sender_id, action="message.send", entity="message", entity_id=msg.id,
                 after={"to": recipient_id or "all", "length": len(body)})
    return msg


@dataclass(frozen=True)
class Inbox:
    id: int
    sender: str
    body: str
    sent_at: datetime
    broadcast: bool


def unread(session: Session, user_id: int, now: datetime, *, mark_shown: bool = True) -> list[Inbox]:
    """Messages to this interviewer (or to all) of the last :data:`WINDOW` not read yet, oldest first; the first
    time they are returned they get a receipt with ``shown_at``."""
    read = select(MessageReceipt.message_id).where(MessageReceipt.user_id == user_id,
                                                   MessageReceipt.read_at.is_not(None))
    rows = session.execute(
        select(SupervisorMessage, User.display_name).join(User, User.id == SupervisorMessage.sender_id)
        .where(or_(SupervisorMessage.recipient_id == user_id, SupervisorMessage.recipient_id.is_(None)),
               SupervisorMessage.sent_at >= now - WINDOW, SupervisorMessage.id.not_in(read))
        .order_by(SupervisorMessage.sent_at, SupervisorMessage.id)).all()
    if mark_shown and rows:
        seen = set(session.scalars(select(MessageReceipt.message_id).where(
            MessageReceipt.user_id == user_id, MessageReceipt.message_id.in_([m.id for m, _ in rows]))))
        for m, _ in rows:
            if m.id not in seen:
                session.add(MessageReceipt(message_id=m.id, user_id=user_id, shown_at=now))
        session.flush()
    return [Inbox(m.id, who, m.body, m.sent_at, m.recipient_id is None) for m, who in rows]


def mark_read(session: Session, user_id: int, message_id: int, now: datetime) -> bool:
    """The interviewer read a message addressed to them (or to all); False if it is not theirs."""
    msg = session.get(SupervisorMessage, message_id)
    if msg is None or msg.recipient_id not in (None, user_id):
        return False
    rec = session.get(MessageReceipt, (message_id, user_id))
    if rec is None:
        rec = MessageReceipt(message_id=message_id, user_id=user_id, shown_at=now)
        session.add(rec)
    if rec.read_at is None:
        rec.read_at = now
    session.flush()
    return True


@dataclass(frozen=True)
class Sent:
    id: int
    sender: str
    recipient: str  # "" for a broadcast
    body: str
    sent_at: datetime
    audience: int  # interviewers it is for
    shown: int
    read: int
    readers: list[tuple[str, datetime]]  # (name, read at)
    unread_names: list[str]


def sent(session: Session, now: datetime, *, limit: int = 30) -> list[Sent]:
    """The latest messages with their receipts (read by whom and when; who has not read them yet). A broadcast's
    audience is the interviewers active now (an account added since counts as not having read it)."""
    sender = User.__table__.alias("sender")
    recipient = User.__table__.alias("recipient")
    msgs = session.execute(
        select(SupervisorMessage, sender.c.display_name, recipient.c.display_name)
        .join(sender, sender.c.id == SupervisorMessage.sender_id)
        .outerjoin(recipient, recipient.c.id == SupervisorMessage.recipient_id)
        .order_by(SupervisorMessage.sent_at.desc(), SupervisorMessage.id.desc()).limit(limit)).all()
    if not msgs:
        return []
    interviewers = dict(session.execute(select(User.id, User.display_name).where(
        User.role == Role.INTERVIEWER, User.is_active.is_(True))).all())
    receipts: dict[int, list[tuple[int, datetime, datetime | None]]] = {}
    for mid, uid, shown_at, read_at in session.execute(
            select(MessageReceipt.message_id, MessageReceipt.user_id, MessageReceipt.shown_at, MessageReceipt.read_at)
            .where(MessageReceipt.message_id.in_([m.id for m, _, _ in msgs]))):
        receipts.setdefault(mid, []).append((uid, shown_at, read_at))
    out = []
    for m, who, to in msgs:
        audience = [m.recipient_id] if m.recipient_id is not None else list(interviewers)
        recs = receipts.get(m.id, [])
        readers = sorted(((interviewers.get(uid, str(uid)), r) for uid, _s, r in recs if r is not None),
                         key=lambda x: x[1])
        read_ids = {uid for uid, _s, r in recs if r is not None}
        out.append(Sent(m.id, who, to or "", m.body, m.sent_at, len(audience), len(recs), len(read_ids), readers,
                        sorted(interviewers.get(uid, to or "") for uid in audience if uid not in read_ids)))
    return out

