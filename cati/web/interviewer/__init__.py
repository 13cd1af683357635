"""The interviewer console (``/interviewer``), one module a part: the console page and the interviewer's status
(:mod:`.console`), dialing and the call's live state (:mod:`.calls`), the interview one question at a time
(:mod:`.interview`) and outcome coding (:mod:`.outcome`; the rules are :mod:`cati.services.wrapup`). All share the
blueprint ``bp`` (endpoints ``interviewer.*``) and the helpers of :mod:`.common`; :mod:`.backend` holds the
process's telephony backend.

Every request ends its database transaction before it waits on anything (SQLite holds one write lock per
transaction): the dialer and the SSE stream use their own short sessions.
"""

from __future__ import annotations

from . import calls, console, interview, outcome
from .backend import get_backend, use_backend
from .common import bp

__all__ = ["bp", "calls", "console", "get_backend", "interview", "outcome", "use_backend"]
