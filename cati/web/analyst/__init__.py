"""The analyst's workspace (``/analyst``), one module a screen: overall scores (:mod:`.overall`), the industry
ranking and one industry (:mod:`.industries`), the enterprise table and one enterprise (:mod:`.enterprises`),
drivers (:mod:`.drivers`), releases (:mod:`.releases`) and report/export jobs with their downloads
(:mod:`.jobs`). All share the blueprint ``bp`` (endpoints ``analyst.*``) and the helpers of :mod:`.common`.

Analysts, supervisors and admins see every page; anyone else gets 403. Pages show either the live scores of the
study's completes or a frozen release (``?release=<id>``); the scores come from :mod:`cati.services.releases`
and the rows from :mod:`cati.services.analysis`: the views only parse and render.
"""

from __future__ import annotations

from . import drivers, enterprises, industries, jobs, overall, releases
from .common import bp

__all__ = ["bp", "drivers", "enterprises", "industries", "jobs", "overall", "releases"]
