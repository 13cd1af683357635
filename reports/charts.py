"""Charts as PNG bytes (matplotlib, Agg, the CJK font from :mod:`reports.fonts`).

Every function returns a :class:`Chart`: the PNG, the strings drawn on it and the font files matplotlib used for
them, so a test (and :func:`Chart.check_fonts`) can prove that no character is drawn as a tofu box. Figures are
built with ``matplotlib.figure.Figure`` directly, not pyplot, so hundreds of charts in one process (or worker) do
not pile up in pyplot's global registry.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.fonts import configure_matplotlib, missing_glyphs

__all__ = ["Chart", "BarTemplate", "bar_template", "dot_intervals", "heatmap", "quadrant", "grouped_bars",
           "stacked_bars", "histogram", "value_floor"]

_PALETTE = ("#1f5aa6", "#e07b28", "#4c9a5f", "#9a9a9a", "#b03a48", "#7a5195", "#2a9d8f", "#c9a227")
_TIER_COLOURS = {"above": "#2e7d32", "not_different": "#607d8b", "below": "#c62828"}
_QUADRANT_COLOURS = {"重点关注领域": "#c62828", "必备条件": "#1f5aa6", "卓越企业需关注": "#e07b28",
                     "行业基本达标": "#7d8b8f"}
DPI = 110


@dataclass(frozen=True)
class Chart:
    """A rendered chart."""

    png: bytes
    texts: tuple[str, ...]
    font_files: frozenset[tuple[str, int]]  # (font file, face index in a .ttc) matplotlib drew the texts with
    title: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    def missing_glyphs(self) -> set[str]:
        return missing_glyphs(list(self.texts))

    def check_fonts(self) -> None:
        """Warn when a character drawn is not in the font (it would show as a box)."""
        missing = self.missing_glyphs()
        if missing:
            warnings.warn(f"chart {self.title!r}: characters not in the CJK font: {''.join(sorted(missing))}",
                          stacklevel=2)


def _figure(width: float, height: float, layout: str | None = "constrained", dpi: float | None = None):
    configure_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _text_inches(text: str, size_pt: float) -> float:
    """Approximate drawn width of ``text``: CJK characters are one em wide, others about half an em."""
    ems = sum(1.0 if ord(ch) > 0x2E7F else 0.58 for ch in text)
    return ems * size_pt / 72.0


def _finish(fig, title: str = "", dpi: int = DPI) -> Chart:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    texts, files = _finish_texts(fig)
    return Chart(buf.getvalue(), texts, files, title)


def _fmt(v: float) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.2f}"


def dot_intervals(labels: Sequence[str], values: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                  *, title: str = "", xlabel: str = "", ref: float | None = None, ref_label: str = "",
                  colours: Sequence[str] | None = None, annotate: bool = True) -> Chart:
    """Horizontal dots with interval whiskers, first label on top (used for indicators and rankings)."""
    n = len(labels)
    fig = _figure(7.2, max(2.0, 0.32 * n + 1.0))
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    vals = np.asarray(values, dtype=float)
    lo = np.asarray(lows, dtype=float)
    hi = np.asarray(highs, dtype=float)
    cols = list(colours) if colours is not None else [_PALETTE[0]] * n
    # An interval can collapse onto its estimate (one enterprise in an industry): whiskers never go negative.
    err = np.vstack([np.where(np.isfinite(lo), vals - lo, 0), np.where(np.isfinite(hi), hi - vals, 0)])
    err = np.clip(np.nan_to_num(err, nan=0.0), 0.0, None)
    for i in range(n):
        ax.errorbar(vals[i], y[i], xerr=err[:, i:i + 1], fmt="o", color=cols[i], ecolor=cols[i], capsize=3,
                    markersize=5, lw=1.2)
        if annotate and math.isfinite(vals[i]):
            x_text = hi[i] if math.isfinite(hi[i]) else vals[i]
            ax.text(x_text + 0.3, y[i], _fmt(vals[i]), va="center", fontsize=8, color="#333333")
    if ref is not None and math.isfinite(ref):
        ax.axvline(ref, color="#888888", ls="--", lw=1)
        if ref_label:
            ax.text(ref, n - 0.4, f" {ref_label} {ref:.2f}", fontsize=8, color="#555555", va="bottom")
    ax.set_yticks(y, labels=list(labels), fontsize=9)
    finite = np.concatenate([vals[np.isfinite(vals)], lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
    if finite.size:
        ax.set_xlim(max(0.0, finite.min() - 3), min(105.0, finite.max() + 5))
    ax.set_ylim(-0.7, n - 0.2 + (0.6 if ref_label else 0))
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#e5e5e5", lw=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return _finish(fig, title)


def heatmap(frame: pd.DataFrame, *, title: str = "", col_labels: Sequence[str] | None = None,
            reference: Sequence[float] | None = None, colorbar_label: str = "") -> Chart:
    """Rows × columns of scores, each cell annotated with its score (two decimals).

    With ``reference`` (one value per column, e.g. the all-enterprise mean of each indicator) the colour shows
    the difference from it, so a row's relative strengths stand out even though indicators sit at different
    levels (F ≈ 93 vs A ≈ 77 would otherwise colour whole columns).
    """
    data = frame.to_numpy(dtype=float)
    nr, nc = data.shape
    fig = _figure(max(5.0, 0.9 * nc + 2.4), max(2.2, 0.34 * nr + 1.2))
    ax = fig.add_subplot()
    if reference is not None:
        colour = data - np.asarray(reference, dtype=float)[None, :]
        finite = np.abs(colour[np.isfinite(colour)])
        span = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        vmin, vmax = -span, span
    else:
        colour = data
        finite = data[np.isfinite(data)]
        vmin, vmax = (finite.min(), finite.max()) if finite.size else (0, 100)
    im = ax.imshow(colour, aspect="auto", cmap="RdYlGn", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1)
    for i in range(nr):
        for j in range(nc):
            v = data[i, j]
            if math.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7.5, color="#111111")
    ax.set_xticks(range(nc), labels=list(col_labels or frame.columns), fontsize=8)
    ax.set_yticks(range(nr), labels=[str(i) for i in frame.index], fontsize=8)
    ax.tick_params(length=0)
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.ax.tick_params(labelsize=7)
    if colorbar_label:
        cb.set_label(colorbar_label, fontsize=8)
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return _finish(fig, title)


def _cut(values: np.ndarray, high: np.ndarray) -> float:
    """A cut line consistent with scoring's high/low flags: midway between the highest low and lowest high."""
    lows, highs = values[~high & np.isfinite(values)], values[high & np.isfinite(values)]
    if lows.size and highs.size:
        return float((lows.max() + highs.min()) / 2)
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else 0.0


def quadrant(drivers: pd.DataFrame, *, title: str = "", xlabel: str = "", ylabel: str = "",
             quadrant_text: Mapping[str, str] | None = None, prob_col: bool = True) -> Chart:
    """Importance (relative weight) × volatility (τ) with the quadrant of each point and its probability.

    ``drivers`` needs ``code``, ``relative_weight``, ``tau``, ``importance_high``, ``volatility_high``,
    ``quadrant`` and optionally ``p_<quadrant>`` columns (as produced by scoring).
    """
    fig = _figure(7.0, 4.3)
    ax = fig.add_subplot()
    x = drivers["relative_weight"].to_numpy(dtype=float)
    y = drivers["tau"].to_numpy(dtype=float)
    xc = _cut(x, drivers["importance_high"].fillna(False).to_numpy(dtype=bool))
    yc = _cut(y, drivers["volatility_high"].fillna(False).to_numpy(dtype=bool))
    quads = drivers["quadrant"].astype(str).to_numpy()
    for q, colour in _QUADRANT_COLOURS.items():
        m = quads == q
        label = (quadrant_text or {}).get(q, q)
        ax.scatter(x[m], y[m], s=42, color=colour, label=f"{label} ({int(m.sum())})", zorder=3)
    ax.autoscale_view()
    fig.canvas.draw()  # fixes limits and layout so label positions can be computed in points
    to_pts = ax.transData + fig.dpi_scale_trans.inverted()
    placed: list[tuple[float, float, float, float]] = []
    for i, code in enumerate(drivers["code"].astype(str)):
        if not (math.isfinite(x[i]) and math.isfinite(y[i])):
            continue
        p = drivers.get(f"p_{quads[i]}")
        tag = code if p is None or not prob_col or not math.isfinite(float(p.iloc[i])) else \
            f"{code} {float(p.iloc[i]):.0%}"
        px, py = (v * 72 for v in to_pts.transform((x[i], y[i])))
        w, h = _text_inches(tag, 7.5) * 72, 9.0
        # first offset whose box does not overlap an earlier label (simple repel: points share quadrants)
        for dx, dy in ((4, 2), (4, -10), (-w - 4, 2), (-w - 4, -10), (4, 12), (4, -20), (-w - 4, 12)):
            box = (px + dx, py + dy, px + dx + w, py + dy + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        ax.annotate(tag, (x[i], y[i]), xytext=(dx, dy), textcoords="offset points", fontsize=7.5)
    ax.axvline(xc, color="#999999", ls="--", lw=0.9)
    ax.axhline(yc, color="#999999", ls="--", lw=0.9)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return _finish(fig, title)


class BarTemplate:
    """Horizontal grouped bars (本企业 / 本行业 / 全行业 … per indicator) drawn by blitting.

    Everything that is the same for every enterprise — category labels, axis, grid, legend, title — is drawn
    once and kept as a pixel background; each enterprise then only draws its bars and value labels onto a copy
    of it. Text layout with the 65k-glyph CJK font is what makes charts slow, so 360 reports reuse the same few
    templates instead of laying out the same labels 360 times. The axis range is fixed per template (``lo`` …
    104), which also makes the charts of different enterprises directly comparable.
    """

    def __init__(self, categories: Sequence[str], names: Sequence[str], *, title: str = "", xlabel: str = "",
                 lo: float = 0.0, annotate_first: bool = True, dpi: int = DPI):
        from matplotlib.patches import Patch

        self.n, self.k = len(categories), max(1, len(names))
        self.title, self.annotate_first, self.dpi = title, annotate_first, dpi
        n, k = self.n, self.k
        per_cat = min(0.5, 0.09 * k + 0.1)
        width, height = 7.2, max(2.4, n * per_cat + 1.3)
        label_w = max((_text_inches(str(c), 8) for c in categories), default=0.5) + 0.15
        fig = _figure(width, height, layout=None, dpi=dpi)
        fig.subplots_adjust(left=min(0.6, label_w / width), right=0.97, top=1 - 0.42 / height,
                            bottom=0.72 / height)
        ax = fig.add_subplot()
        pos = np.arange(n)
        bar_h = 0.82 / k
        self.bars = []
        for j in range(k):
            offs = pos[::-1] - (j - (k - 1) / 2) * bar_h
            bars = ax.barh(offs, np.zeros(n), height=bar_h, color=_PALETTE[j % len(_PALETTE)])
            for b in bars:
                b.set_animated(True)
            self.bars.append(list(bars))
        self.labels = []
        if annotate_first:
            for b in self.bars[0]:
                txt = ax.text(0, b.get_y() + b.get_height() / 2, "", va="center", fontsize=6.5, animated=True)
                self.labels.append(txt)
        ax.set_yticks(pos[::-1], labels=list(categories), fontsize=8)
        ax.set_xlim(lo, 104)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.grid(axis="x", color="#e5e5e5", lw=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(axis="both", labelsize=8)
        handles = [Patch(color=_PALETTE[j % len(_PALETTE)], label=str(name)) for j, name in enumerate(names)]
        fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=k, frameon=False, bbox_to_anchor=(0.5, 0.0))
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if title:
            ax.set_title(title, fontsize=11, loc="left")
        self.fig, self.ax = fig, ax
        fig.canvas.draw()
        self._background = fig.canvas.copy_from_bbox(fig.bbox)
        static = _finish_texts(fig)
        self._texts, self._files = static

    def render(self, values: Sequence[Sequence[float]]) -> Chart:
        """Draw one set of series (same order as ``names``) and return the PNG."""
        from PIL import Image

        if len(values) != self.k:
            raise ValueError(f"BarTemplate: {len(values)} series given, the template has {self.k}")
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        drawn: list[str] = []
        for bars, vals in zip(self.bars, values, strict=True):
            v = np.asarray(vals, dtype=float)
            if len(v) != self.n:
                raise ValueError(f"BarTemplate: {len(v)} values given for {self.n} categories")
            for b, x in zip(bars, np.nan_to_num(v), strict=True):
                b.set_width(x)
                self.ax.draw_artist(b)
        if self.annotate_first:
            for txt, val in zip(self.labels, np.asarray(values[0], dtype=float), strict=True):
                if math.isfinite(val):
                    txt.set_text(f"{val:.1f}")
                    txt.set_x(val + 0.3)
                    self.ax.draw_artist(txt)
                    drawn.append(txt.get_text())
        buf = io.BytesIO()
        w, h = canvas.get_width_height(physical=True)
        # opaque RGB: the figure is white anyway, and WeasyPrint embeds RGB PNGs faster (no alpha mask)
        Image.frombuffer("RGBA", (w, h), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB").save(buf, "PNG")
        chart = Chart(buf.getvalue(), (*self._texts, *drawn), self._files, self.title)
        return chart


def _finish_texts(fig) -> tuple[tuple[str, ...], frozenset[tuple[str, int]]]:
    from matplotlib import font_manager
    from matplotlib.text import Text

    texts, files = [], set()
    for obj in fig.findobj(Text):
        s = obj.get_text()
        if obj.get_visible() and s:
            texts.append(s)
            fp = font_manager.findfont(obj.get_fontproperties())
            files.add((str(getattr(fp, "path", fp)), int(getattr(fp, "face_index", 0) or 0)))
    missing = missing_glyphs(texts)
    if missing:
        warnings.warn(f"chart texts not in the CJK font: {''.join(sorted(missing))}", stacklevel=3)
    return tuple(texts), frozenset(files)


_TEMPLATES: dict[tuple, BarTemplate] = {}


def bar_template(categories: Sequence[str], names: Sequence[str], **kwargs) -> BarTemplate:
    """A cached :class:`BarTemplate` (per process; a worker renders hundreds of charts from a handful)."""
    key = (tuple(categories), tuple(names), tuple(sorted(kwargs.items())))
    tpl = _TEMPLATES.get(key)
    if tpl is None:
        if len(_TEMPLATES) > 32:
            _TEMPLATES.clear()
        tpl = _TEMPLATES[key] = BarTemplate(categories, names, **kwargs)
    return tpl


def value_floor(values: Sequence[float] | np.ndarray) -> float:
    """Lower end of a score axis: 10 below the lowest value, rounded down to a multiple of 10."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return max(0.0, math.floor((v.min() if v.size else 0) / 10) * 10 - 10)


def grouped_bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str = "",
                 xlabel: str = "", annotate_first: bool = True, lo: float | None = None, dpi: int = DPI) -> Chart:
    """Horizontal bars per category for several series; the first series is annotated with its values."""
    values = [list(v) for v in series.values()]
    if lo is None:
        lo = value_floor(np.concatenate([np.asarray(v, dtype=float) for v in values]) if values else [])
    tpl = BarTemplate(categories, list(series), title=title, xlabel=xlabel, lo=lo, annotate_first=annotate_first,
                      dpi=dpi)
    return tpl.render(values)


def stacked_bars(frame: pd.DataFrame, *, title: str = "", xlabel: str = "", ylabel: str = "") -> Chart:
    """Columns of ``frame`` stacked over its index (e.g. hour × outcome counts)."""
    fig = _figure(7.2, 3.8)
    ax = fig.add_subplot()
    bottom = np.zeros(len(frame))
    x = np.arange(len(frame))
    for j, col in enumerate(frame.columns):
        v = frame[col].to_numpy(dtype=float)
        ax.bar(x, v, bottom=bottom, color=_PALETTE[j % len(_PALETTE)], label=str(col), width=0.8)
        bottom += v
    ax.set_xticks(x, labels=[str(i) for i in frame.index], fontsize=8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    fig.legend(fontsize=7.5, ncol=min(4, max(1, len(frame.columns))), frameon=False, loc="outside lower center")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return _finish(fig, title)


def histogram(values: Sequence[float], *, bins: Sequence[float] | int = 20, title: str = "", xlabel: str = "",
              ylabel: str = "", marker: float | None = None) -> Chart:
    """A histogram with an optional vertical marker (e.g. the quota target)."""
    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    v = np.asarray(values, dtype=float)
    from matplotlib.ticker import MaxNLocator

    ax.hist(v[np.isfinite(v)], bins=bins, color=_PALETTE[0], edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if marker is not None:
        ax.axvline(marker, color=_PALETTE[4], ls="--", lw=1.2)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return _finish(fig, title)


def tier_colours(tiers: Sequence[str]) -> list[str]:
    return [_TIER_COLOURS.get(str(t), _PALETTE[0]) for t in tiers]
