"""Shared plumbing for CLI commands: one app per command, one committed transaction at the edge."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click


def get_app():
    ctx = click.get_current_context()
    root = ctx.find_root()
    root.ensure_object(dict)
    if "app" not in root.obj:
        from cati.app import create_app
        from cati.config import SettingsError

        try:
            root.obj["app"] = create_app()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
    return root.obj["app"]


def with_session(func: Callable) -> Callable:
    """Run the command inside ``session_scope``: commit when it returns, roll back when it raises."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from cati.db import session_scope

        app = get_app()
        with app.app_context(), session_scope(app) as session:
            return func(session, *args, **kwargs)

    return wrapper


def progress_bar(**kw):
    """A tqdm progress bar that suits where the output goes: live on a terminal; in a log (not a terminal) one
    line at most every 30 seconds instead of a carriage-return update several times a second."""
    import sys

    from tqdm import tqdm

    if not sys.stderr.isatty():
        kw.setdefault("mininterval", 30.0)
        kw.setdefault("ncols", 100)
    return tqdm(**kw)
