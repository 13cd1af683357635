"""Overall (``/analyst``): the composite and the first-level scores with n, 95 % interval and item bases."""

from __future__ import annotations

from flask import render_template

from cati.services import analysis

from ..i18n import current_language
from .common import scored_and_releases, screen


@screen("")
def overall():
    scored, listed = scored_and_releases()
    data = analysis.overall(scored, current_language()) if scored is not None else None
    return render_template("analyst/overall.html", scored=scored, releases=listed, data=data, tab="overall")
