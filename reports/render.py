"""Writers shared by all reports: self-contained HTML (Jinja2), PDF (WeasyPrint), XLSX (openpyxl).

A report is built as a :class:`Document` — sections holding paragraphs, tables and charts — rendered by a
template in ``reports/templates``. Tables carry display strings for HTML/PDF (two decimals) while the XLSX
writer receives the unrounded DataFrames and shows two decimals through number formats, so a spreadsheet user
can still compute with full precision.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.charts import Chart
from reports.fonts import cjk_font
from scoring.cells import append_row

__all__ = ["Table", "Section", "Document", "Sheet", "fmt", "pct", "render_html", "write_html", "write_pdf",
           "write_xlsx", "check_formats", "FORMATS", "fixed_time", "written_at", "pin_sav_time"]

FORMATS = ("html", "pdf", "xlsx")
_TEMPLATES = Path(__file__).with_name("templates")

#: While set (:func:`fixed_time`), every file says it was written at this moment instead of now: the "generated"
#: line of the reports, the XLSX document properties and zip entries, the .sav header. A release's products are
#: then the same bytes whoever writes them, the CLI or a web job.
_FIXED_TIME: dt.datetime | None = None
_FIXED_LOCK = threading.RLock()


@contextmanager
def fixed_time(moment: dt.datetime | None) -> Iterator[None]:
    """Write files as of ``moment`` (UTC) inside the block (None: now, as usual). One block at a time per process:
    the moment is process-wide, so forked report workers inherit it."""
    global _FIXED_TIME
    if moment is None:
        yield
        return
    with _FIXED_LOCK:
        before = _FIXED_TIME
        _FIXED_TIME = moment.astimezone(dt.UTC).replace(microsecond=0)
        try:
            yield
        finally:
            _FIXED_TIME = before


def written_at() -> dt.datetime:
    """The moment files say they were written: the fixed one, else now (UTC)."""
    return _FIXED_TIME or dt.datetime.now(dt.UTC)


def _pin_xlsx_time(path: Path) -> None:
    """Rewrite an XLSX (a zip) so its entries and document properties carry the fixed moment."""
    if _FIXED_TIME is None:
        return
    stamp = _FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as out:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb'(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)',
                              lambda m: m.group(1) + stamp.encode() + m.group(2), data)
            pinned = zipfile.ZipInfo(info.filename, date_time=_FIXED_TIME.timetuple()[:6])
            pinned.compress_type = info.compress_type
            pinned.external_attr = info.external_attr
            out.writestr(pinned, data)


def pin_sav_time(path: Path) -> None:
    """Set the creation date and time in a .sav header (bytes 92–108: ``dd Mon yy`` and ``hh:mm:ss``) to the
    fixed moment."""
    if _FIXED_TIME is None:
        return
    with open(path, "r+b") as f:
        head = f.read(4)
        if head not in (b"$FL2", b"$FL3"):
            return
        f.seek(92)
        f.write(_FIXED_TIME.strftime("%d %b %y").encode("ascii") + _FIXED_TIME.strftime("%H:%M:%S").encode("ascii"))


def check_formats(formats: Iterable[str], allowed: Sequence[str] = FORMATS) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(str(f).lower() for f in formats))
    bad = [f for f in out if f not in allowed]
    if bad or not out:
        raise ValueError(f"formats: {bad or 'none given'} not supported; choose from {', '.join(allowed)}")
    return out


def fmt(value: Any, digits: int = 2) -> str:
    """Two-decimal display; missing values become an em dash."""
    if value is None:
        return "—"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(f):
        return "—"
    return f"{f:.{digits}f}"


def pct(value: Any, digits: int = 1) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(f) else f"{100 * f:.{digits}f}%"


def interval(low: Any, high: Any, digits: int = 2) -> str:
    if fmt(low) == "—" or fmt(high) == "—":
        return "—"
    return f"{fmt(low, digits)}–{fmt(high, digits)}"


def rank_interval(low: Any, high: Any) -> str:
    try:
        lo, hi = int(round(float(low))), int(round(float(high)))
    except (TypeError, ValueError):
        return "—"
    return f"{lo}–{hi}"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: list[bool] | None = None
    row_classes: list[str] | None = None
    small: bool = False
    widths: list[str] | None = None  # CSS widths per column → fixed table layout (much faster in WeasyPrint)

    def __post_init__(self) -> None:
        if self.numeric is None:
            self.numeric = [False] + [True] * (len(self.headers) - 1)


@dataclass
class Section:
    id: str
    title: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def p(self, text: str, cls: str = "") -> Section:
        self.blocks.append({"kind": "p", "text": text, "cls": cls})
        return self

    def ul(self, items: Sequence[str]) -> Section:
        self.blocks.append({"kind": "ul", "items": list(items)})
        return self

    def table(self, table: Table) -> Section:
        self.blocks.append({"kind": "table", "table": table})
        return self

    def chart(self, chart: Chart, caption: str = "") -> Section:
        self.blocks.append({"kind": "chart", "src": chart.data_uri, "caption": caption or chart.title})
        return self

    def h3(self, text: str) -> Section:
        self.blocks.append({"kind": "h3", "text": text})
        return self


@dataclass
class Document:
    title: str
    subtitle: str
    lang: str
    sections: list[Section] = field(default_factory=list)
    kpis: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    generated_at: str = field(default_factory=lambda: written_at().strftime("%Y-%m-%d %H:%M UTC"))


@dataclass
class Sheet:
    """One XLSX sheet: a DataFrame with display headers; ``percent`` columns get a percentage format."""

    name: str
    frame: pd.DataFrame
    percent: Sequence[str] = ()
    integer: Sequence[str] = ()
    note: str = ""


_ENV = None
_FONT_CONFIG = None


def _env():
    global _ENV
    if _ENV is None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        _ENV = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=select_autoescape(["html"]),
                           trim_blocks=True, lstrip_blocks=True)
    return _ENV


def render_html(template: str, doc: Document) -> str:
    """Render ``doc`` with ``reports/templates/<template>``; the CJK family leads the CSS font stack."""
    font_family = cjk_font().family
    return _env().get_template(template).render(doc=doc, font_family=font_family)


def write_html(html: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def write_document(template: str, doc: Document, sheets: Sequence[Sheet], out: Path, stem: str, lang: str,
                   formats: Sequence[str]) -> dict[str, Path]:
    """Write ``doc`` as ``<stem>.<lang>.html`` / ``.pdf`` (rendered once with ``template``) and ``sheets`` as
    ``.xlsx``, for each of ``formats`` asked; returns format → path."""
    paths: dict[str, Path] = {}
    html = render_html(template, doc) if {"html", "pdf"} & set(formats) else ""
    if "html" in formats:
        paths["html"] = write_html(html, out / f"{stem}.{lang}.html")
    if "pdf" in formats:
        paths["pdf"] = write_pdf(html, out / f"{stem}.{lang}.pdf")
    if "xlsx" in formats:
        paths["xlsx"] = write_xlsx(sheets, out / f"{stem}.{lang}.xlsx", title=doc.title)
    return paths


def write_pdf(html: str, path: Path) -> Path:
    """HTML → PDF with WeasyPrint. Fails with :class:`reports.fonts.FontNotFoundError` when no CJK font exists."""
    cjk_font()  # raises with the remedy when the font is absent, instead of a PDF full of boxes
    from weasyprint import HTML

    global _FONT_CONFIG
    if _FONT_CONFIG is None:
        from weasyprint.text.fonts import FontConfiguration

        # one per process: fontconfig setup is ~10 % of a small PDF, and a worker writes hundreds
        _FONT_CONFIG = FontConfiguration()
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    path.parent.mkdir(parents=True, exist_ok=True)
    HTML(string=html, base_url=str(_TEMPLATES)).write_pdf(str(path), font_config=_FONT_CONFIG)
    return path


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(name: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", name).strip("'")[:31] or "Sheet"
    out, i = base, 2
    while out.lower() in used:
        suffix = f" ({i})"
        out = base[: 31 - len(suffix)] + suffix
        i += 1
    used.add(out.lower())
    return out


def _display_width(value: Any) -> int:
    s = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        if pd.isna(value):
            return None
        ts = pd.Timestamp(value)
        return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return value.item()
    return value


def write_xlsx(sheets: Sequence[Sheet], path: Path, *, title: str = "") -> Path:
    """Write formatted sheets: styled, frozen header row, auto-filter, 2-decimal numbers, sensible widths."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    if title:
        wb.properties.title = title
    head_font = Font(bold=True, color="FFFFFF")
    head_fill = PatternFill("solid", fgColor="1F5AA6")
    used: set[str] = set()
    for sheet in sheets:
        ws = wb.create_sheet(_sheet_name(sheet.name, used))
        frame = sheet.frame
        cols = [str(c) for c in frame.columns]
        append_row(ws, cols)
        for cell in ws[1]:
            cell.font = head_font
            cell.fill = head_fill
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        kinds = []
        for c in frame.columns:
            s = frame[c]
            if str(c) in sheet.percent:
                kinds.append("0.0%")
            elif str(c) in sheet.integer or pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
                kinds.append("0")
            elif pd.api.types.is_float_dtype(s):
                kinds.append("0.00")
            elif pd.api.types.is_datetime64_any_dtype(s):
                kinds.append("yyyy-mm-dd hh:mm:ss")
            else:
                kinds.append(None)
        for row in frame.itertuples(index=False, name=None):
            append_row(ws, [_cell(v) for v in row])
        for j, kind in enumerate(kinds, start=1):
            letter = get_column_letter(j)
            if kind:
                for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    cell.number_format = kind
            sample = [cols[j - 1]] + [frame.iloc[i, j - 1] for i in range(min(len(frame), 200))]
            width = max(_display_width(v if kind is None else f"{v:.2f}" if isinstance(v, float) else v)
                        for v in sample)
            ws.column_dimensions[letter].width = min(60, max(8, width + 2))
        ws.freeze_panes = "A2"
        if len(frame):
            ws.auto_filter.ref = ws.dimensions
        if sheet.note:
            ws.cell(row=len(frame) + 3, column=1, value=sheet.note).font = Font(italic=True, color="555555")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(str(path))
    _pin_xlsx_time(path)
    return path


def renamed(frame: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Columns renamed to display labels (unknown columns keep their code)."""
    return frame.rename(columns={c: labels.get(c, c) for c in frame.columns})
