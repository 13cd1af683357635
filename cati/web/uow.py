"""One unit of work per action (as indico's ``RH.process()``): the view calls a service, this helper commits the
request's transaction, or rolls it back and shows the error. Services only flush."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import flash

from cati.db import db


@dataclass(frozen=True)
class Done:
    """What the work returned (``value``), or the expected error it raised (``error``)."""

    value: Any = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def error_text(err: Exception) -> str:
    """An error's text in the visitor's language (service errors carry both languages)."""
    from .i18n import message

    return message(err)


def flash_error(err: Exception) -> None:
    flash(error_text(err), "error")


def commit(work: Callable[[], Any], *errors: type[Exception],
           show: Callable[[Exception], None] | None = flash_error,
           ok: str | Callable[[Any], str] | None = None) -> Done:
    """Run ``work`` and commit; then flash ``ok`` (a text, or made from what ``work`` returned), if given.

    When ``work`` raises one of ``errors``: roll back, show the error (default: flash it; ``show=None`` leaves that
    to the view, e.g. a JSON reply) and return it in :class:`Done`. Anything else rolls back and propagates (the
    error pages handle it)."""
    try:
        value = work()
        db.session.commit()
    except errors as err:
        db.session.rollback()
        if show is not None:
            show(err)
        return Done(error=err)
    except BaseException:
        db.session.rollback()
        raise
    if ok is not None:
        flash(ok(value) if callable(ok) else ok, "info")
    return Done(value)
