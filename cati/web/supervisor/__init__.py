"""The supervisor dashboard (``/supervisor``), one module a screen: the quota board (:mod:`.board`, its xlsx
export :mod:`.xlsx`), the live event stream (:mod:`.live`), interviewers live (:mod:`.interviewers`), outcomes and
AAPOR rates (:mod:`.outcomes`, chart :mod:`.charts`), sample and appointments (:mod:`.sample`), one case
(:mod:`.case`), the case browser (:mod:`.cases`), the do-not-call list (:mod:`.dnc`), overdue appointments and
the day's calendar (:mod:`.appointments`),
quota targets (:mod:`.quotas`), quality control (:mod:`.qc`) and staffing (:mod:`.staffing`). All share the blueprint ``bp``
(endpoints ``supervisor.*``) and the helpers of :mod:`.common`.

Views are thin: parse → one service call → render. Reading views end the request's transaction as soon as the
user is known and read through a short *deferred* session (on SQLite a deferred read does not take the single
write lock, so a supervisor's screen never makes 100 interviewers wait). Actions commit at once through
:func:`cati.web.uow.commit`.
"""

from __future__ import annotations

from . import (
    appointments,
    board,
    case,
    cases,
    dialing,
    dnc,
    interviewers,
    live,
    outcomes,
    qc,
    quotas,
    sample,
    staffing,
)
from .common import bp

__all__ = ["bp", "appointments", "board", "case", "cases", "dialing", "dnc", "interviewers", "live", "outcomes", "qc",
           "quotas", "sample", "staffing"]
