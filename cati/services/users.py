"""Users, roles and password hashing (argon2id)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import Role, User, utcnow

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


class UserError(KeyedError):
    """A refused user change: a catalogue ``key`` and its ``params``; ``str()`` is the English text."""


def parse_role(value: Role | str) -> Role:
    """``value`` as a :class:`Role`, or :class:`UserError` ``role_unknown`` naming the choices."""
    try:
        return Role(value)
    except ValueError as exc:
        raise UserError("role_unknown", role=value, roles=", ".join(r.value for r in Role)) from exc


def check_password(password: str) -> None:
    """Raise :class:`UserError` ``password_too_short`` unless ``password`` is long enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("password_too_short", n=MIN_PASSWORD_LENGTH)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    *,
    display_name: str | None = None,
    extension: str | None = None,
    language: str = "zh-CN",
) -> User:
    username = username.strip()
    if not username:
        raise UserError("username_empty")
    check_password(password)
    role = parse_role(role)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError("user_exists", username=username)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        extension=extension,
        language=language,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None. Rehashes when argon2 parameters changed."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        # Spend the same time as a real check so usernames can't be probed by timing.
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


_DUMMY_HASH = _hasher.hash("not-a-real-password")
