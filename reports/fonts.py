"""The CJK font used by charts (matplotlib) and PDFs (WeasyPrint).

Debian's ``fonts-noto-cjk`` ships ``NotoSansCJK-Regular.ttc``, a collection whose faces (JP, KR, SC, TC, HK) all
map the same code points; the SC face is chosen so Chinese glyph variants are the simplified-Chinese ones.
Without a CJK font every Chinese character would be drawn as an empty box ("tofu"), so a missing font is an
error with a clear remedy rather than a silent fallback.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CJKFont", "FontNotFoundError", "cjk_font", "configure_matplotlib", "missing_glyphs"]

_PREFERRED_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                       "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Noto Sans CJK JP")
_PROBE = "客户满意度呼叫便利程度"


class FontNotFoundError(RuntimeError):
    """No font able to draw Chinese text is installed."""


@dataclass(frozen=True)
class CJKFont:
    """A font file, the face index inside it (for .ttc collections) and the family name to ask for."""

    path: Path
    index: int
    family: str


def _covers(path: Path, index: int, text: str) -> bool:
    return not _missing(str(path), index, text)


@functools.lru_cache(maxsize=8)
def _cmap(path: str, index: int) -> frozenset[int]:
    from fontTools.ttLib import TTCollection, TTFont

    if path.lower().endswith((".ttc", ".otc")):
        coll = TTCollection(path, lazy=True)
        font = coll.fonts[index]
    else:
        font = TTFont(path, lazy=True)
    return frozenset(font.getBestCmap() or {})


def _missing(path: str, index: int, text: str) -> set[str]:
    cmap = _cmap(path, index)
    return {ch for ch in text if not ch.isspace() and ord(ch) not in cmap}


@functools.lru_cache(maxsize=1)
def cjk_font() -> CJKFont:
    """Find the CJK font: matplotlib's font list first (it knows each face of a .ttc), then ``fc-match``.

    Raises
    ------
    FontNotFoundError
        When no installed font covers common Chinese characters, with the Debian package to install.
    """
    from matplotlib import font_manager

    entries = font_manager.fontManager.ttflist
    for family in _PREFERRED_FAMILIES:
        for entry in entries:
            weight = entry.weight if isinstance(entry.weight, int) else 400
            if entry.name == family and entry.style == "normal" and weight in (400, 500):
                index = int(getattr(entry, "index", 0) or 0)
                if _covers(Path(entry.fname), index, _PROBE):
                    return CJKFont(Path(entry.fname), index, entry.name)
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}|%{index}|%{family[0]}", ":lang=zh-cn"],
                                 capture_output=True, text=True, timeout=10, check=False).stdout
            path_s, index_s, family = out.split("|", 2)
            path, index = Path(path_s), int(index_s or 0)
            if path.exists() and _covers(path, index, _PROBE):
                font_manager.fontManager.addfont(str(path))
                return CJKFont(path, index, family)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    raise FontNotFoundError(
        "No CJK (Chinese) font found for charts and PDFs. Install Debian's fonts-noto-cjk "
        "(apt-get install fonts-noto-cjk, which provides /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc) "
        "and clear matplotlib's font cache (rm -rf ~/.cache/matplotlib)."
    )


def configure_matplotlib() -> CJKFont:
    """Select the Agg backend and make the CJK font the only font family charts use.

    Only one family is configured (no fallback list), so every character drawn comes from the font whose
    coverage :func:`missing_glyphs` checks. ASCII hyphen replaces the Unicode minus sign for the same reason.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    font = cjk_font()
    matplotlib.rcParams["font.family"] = [font.family]
    matplotlib.rcParams["axes.unicode_minus"] = False
    matplotlib.rcParams["svg.fonttype"] = "none"
    # hinting the 65k-glyph CJK font dominates chart time (~⅓ of it); unhinted text at 110 dpi reads the same
    matplotlib.rcParams["text.hinting"] = "none"
    return font


def missing_glyphs(texts: list[str] | tuple[str, ...] | set[str] | str, font: CJKFont | None = None) -> set[str]:
    """Characters in ``texts`` that the font's character map does not cover (would be drawn as tofu)."""
    font = font or cjk_font()
    joined = texts if isinstance(texts, str) else "".join(texts)
    return _missing(str(font.path), font.index, joined)
