"""The outcomes screen's chart: completes per day with the cumulative plan, as inline SVG (no chart library)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape

from .common import local_text, tr


def _nice(x: float) -> float:
    """The smallest "round" top (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8 × 10^k) at or above ``x``: quarters read well."""
    exp = 10 ** math.floor(math.log10(x))
    return next(m * exp for m in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10) if m * exp >= x)


def per_day_svg(df, width: int = 900, height: int = 260) -> str:
    """Completes per day (bars, left axis) with cumulative completes and the cumulative plan (lines, right
    axis), as inline SVG."""
    if df.empty:
        return ""
    n = len(df)
    pad_l, pad_r, pad_t, pad_b = 44, 54, 14, 40
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    bar_max = _nice(max(int(df["completes"].max()), 4))
    cum_max = _nice(max(float(df["plan_cumulative"].max()), float(df["cumulative"].max()), 4.0))
    step = w / n
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(tr("per_day"))}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for k in range(5):  # grid + axes labels
        y = pad_t + h - h * k / 4
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" class="ax" text-anchor="end">{bar_max * k / 4:.0f}</text>')
        parts.append(f'<text x="{pad_l + w + 6}" y="{y + 4:.1f}" class="ax">{cum_max * k / 4:.0f}</text>')
    every = max(1, n // 12)
    cum_pts, plan_pts = [], []
    today = local_text(datetime.now(UTC), "%Y-%m-%d")
    for i, r in enumerate(df.itertuples()):
        x = pad_l + i * step
        bh = h * r.completes / bar_max
        parts.append(f'<rect x="{x + step * .15:.1f}" y="{pad_t + h - bh:.1f}" width="{step * .7:.1f}" '
                     f'height="{bh:.1f}" class="bar"><title>{r.day}: {r.completes}</title></rect>')
        cx = x + step / 2
        if r.day <= today or r.completes:  # the achieved line stops today; the plan runs on
            cum_pts.append(f"{cx:.1f},{pad_t + h - h * r.cumulative / cum_max:.1f}")
        plan_pts.append(f"{cx:.1f},{pad_t + h - h * r.plan_cumulative / cum_max:.1f}")
        if i % every == 0:
            parts.append(f'<text x="{cx:.1f}" y="{pad_t + h + 16}" class="ax" text-anchor="middle">{r.day[5:]}</text>')
    parts.append(f'<polyline points="{" ".join(plan_pts)}" class="plan"/>')
    parts.append(f'<polyline points="{" ".join(cum_pts)}" class="cum"/>')
    ly = height - 8
    parts.append(f'<rect x="{pad_l}" y="{ly - 9}" width="12" height="9" class="bar"/>'
                 f'<text x="{pad_l + 16}" y="{ly}" class="ax">{escape(tr("completes"))}</text>'
                 f'<line x1="{pad_l + 110}" x2="{pad_l + 130}" y1="{ly - 4}" y2="{ly - 4}" class="cum"/>'
                 f'<text x="{pad_l + 134}" y="{ly}" class="ax">{escape(tr("cumulative"))}</text>'
                 f'<line x1="{pad_l + 220}" x2="{pad_l + 240}" y1="{ly - 4}" y2="{ly - 4}" class="plan"/>'
                 f'<text x="{pad_l + 244}" y="{ly}" class="ax">{escape(tr("plan"))}</text>')
    parts.append("</svg>")
    return "".join(parts)
