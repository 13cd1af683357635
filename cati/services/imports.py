"""Imports that lose nothing: enterprises and sample (cases with phone numbers) from CSV or XLSX.

Over 600 lines on purpose: enterprises and sample share the row reader, the rejects writer and the
normalisers; the invariant "imported + rejected == read" is easier to keep in one place.

Every data row read ends either imported or rejected — one by one, with its file line number and a reason
(zh-CN / en) — so ``imported + rejected == read`` always holds. Rejected rows are written, with their original
columns plus ``line`` and ``reason``, to a rejects file (UTF-8 with BOM so Excel opens it correctly).

Re-running the same file imports nothing twice: each row is then rejected as "already imported" (its
``case_ref`` / ``enterprise_id`` exists in the study). Those rows are counted in ``rejected`` and also in
``ImportReport.already_present``, so the invariant keeps holding and a user still sees why nothing happened.

Blank lines (every cell empty) are not data rows: they are neither read nor rejected.

Speed: a sample import streams the file once, keeps the study's existing case refs, phone numbers and the
do-not-call list in sets, assigns primary keys itself (so phone rows can point to their case without a round
trip) and writes with Core ``executemany`` in chunks. The service only flushes; the caller commits.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import logging
import random
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring  # the C string encoder json.dumps uses
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.orm import Session

from cati.models import (
    Case,
    CasePhone,
    CaseStatus,
    DoNotCall,
    Enterprise,
    Industry,
    PhoneStatus,
    Replicate,
    Study,
)
from scoring.cells import safe_cell, write_csv_rows

from .phones import PhoneError, mask_phone, normalize_phone
from .quotas import link_quota_cells
from .runtime import runtime_for
from .scheduling import invalidate_timezone_cache

log = logging.getLogger(__name__)

__all__ = [
    "ImportFileError", "ImportReport", "Reject", "import_enterprises", "import_sample", "load_industries",
    "read_table", "seed_industries", "write_example_files",
]

CHUNK = 10_000
PREFIX_BYTES = 65536  # what encoding detection looks at
INDUSTRIES_FILE = Path(__file__).resolve().parents[2] / "config" / "industries.yaml"

ENTERPRISE_COLUMNS = ("enterprise_id", "name", "industry", "province")
ENTERPRISE_OPTIONAL = ("region", "quota")
SAMPLE_COLUMNS = ("case_ref", "enterprise_id", "phone")
SAMPLE_OPTIONAL = ("phone2", "phone3", "replicate", "timezone")
PHONE_COLUMNS = ("phone", "phone2", "phone3")

# Headers Chinese clients commonly use, accepted without a mapping (our name → accepted headers).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "enterprise_id": ("企业编号", "企业代码", "企业id"),
    "name": ("企业名称", "名称"),
    "industry": ("行业", "行业标签"),
    "province": ("省份", "省"),
    "region": ("地区", "区域"),
    "quota": ("配额", "样本配额"),
    "case_ref": ("样本编号", "样本id", "编号"),
    "phone": ("电话", "手机", "手机号", "电话号码", "phone1"),
    "phone2": ("电话2", "备用电话"),
    "phone3": ("电话3",),
    "replicate": ("批次",),
    "timezone": ("时区",),
}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, missing required columns, bad mapping)."""


class Reject(NamedTuple):
    """A rejected row: its line in the file (header = line 1) and why. Unpacks as ``(line, reason)``."""

    line: int
    reason: str


@dataclass
class ImportReport:
    """Outcome of one import. Invariant: ``imported + rejected == read``."""

    kind: str  # 'enterprises' | 'sample'
    path: str
    encoding: str | None = None  # None for xlsx
    read: int = 0
    imported: int = 0
    rejected: int = 0
    already_present: int = 0  # rejected because the same case_ref / enterprise_id is already in the study
    rejects: list[Reject] = field(default_factory=list)
    rejects_path: str | None = None
    replicates_released: int = 0
    quota_links: int = 0  # case → industry / sample-variable quota cell links made
    seconds: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.imported + self.rejected == self.read

    def summary(self) -> str:
        return f"imported={self.imported} rejected={self.rejected} read={self.read}"

    def _reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        self.rejects.append(Reject(line, reason))


# --------------------------------------------------------------------------------------------------- reading


_UTF8_BOM = codecs.BOM_UTF8
_GB_FAMILY = {"gb2312", "gbk", "cp936", "gb18030", "hz", "hz_gb_2312", "gb_2312_80", "ms936", "euc_cn"}


def _decodes(prefix: bytes, encoding: str, truncated: bool) -> str | None:
    """The prefix decoded, or None; a multi-byte character cut by the end of a truncated read is allowed."""
    try:
        return prefix.decode(encoding)
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(prefix) - 3:
            try:
                return prefix[: exc.start].decode(encoding)
            except UnicodeDecodeError:
                return None
        return None


_OTHER_CJK = {"big5", "cp950", "big5hkscs", "shift_jis", "cp932", "euc_jp", "euc_kr", "cp949", "iso2022_jp"}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _latin_or_cjk_only(text: str) -> bool:
    """Every non-ASCII character is a Latin letter or a CJK / full-width / circled form: text a GBK file holds."""
    import unicodedata

    for ch in text:
        if ord(ch) < 128:
            continue
        name = unicodedata.name(ch, "")
        if not name.startswith(("LATIN", "CJK", "FULLWIDTH", "CIRCLED", "IDEOGRAPHIC", "NO-BREAK SPACE")):
            return False
    return True


def detect_encoding(prefix: bytes, *, truncated: bool = False) -> str:
    """Pick the encoding of a CSV from its first bytes.

    UTF-8 BOM → ``utf-8-sig``; UTF-16 BOM → ``utf-16``; bytes that decode as UTF-8 → ``utf-8``; bytes that
    decode as GB18030 into Chinese characters → ``gb18030`` (a strict superset of GB2312 and GBK, so rare
    characters in names still decode; on short files charset-normalizer tends to guess Big5 or CP949 for
    GBK text, and in this field a non-UTF-8 Chinese file is GBK); otherwise charset-normalizer's guess, with
    any member of the GB family mapped to ``gb18030``. ``--encoding`` overrides all of this.
    ``truncated``: the prefix is the start of a longer file (its last character may be cut).
    """
    if prefix.startswith(_UTF8_BOM):
        return "utf-8-sig"
    if prefix.startswith(codecs.BOM_UTF16_LE) or prefix.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    if _decodes(prefix, "utf-8", truncated) is not None:
        return "utf-8"
    text = _decodes(prefix, "gb18030", truncated)
    if text is not None and (_CJK.search(text) or _latin_or_cjk_only(text)):
        # Valid GB18030 that reads as Chinese, or as Latin text with accents (Café): in this field that is a
        # GBK file. charset-normalizer's guess for such short files changes between releases (3.5 says CP949
        # for "Café" in GBK), so it is not asked.
        return "gb18030"
    from charset_normalizer import from_bytes

    best = from_bytes(prefix).best()
    if best is None:
        return "gb18030" if text is not None else "latin-1"
    enc = best.encoding.lower().replace("-", "_")
    if enc in _GB_FAMILY or enc.startswith("gb"):
        return "gb18030"
    if text is not None and enc not in _OTHER_CJK:
        return "gb18030"  # valid GB18030 without Chinese characters yet (é, ①…): still the likeliest
    return best.encoding


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers and ids typed into number cells
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


@dataclass
class _Table:
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]  # (line number in the file, values)
    encoding: str | None


def read_table(path: str | Path, *, encoding: str | None = None) -> _Table:
    """Open a CSV/TSV (any of the encodings above) or an XLSX; stream ``(line, values)`` after the header.

    Raises
    ------
    ImportFileError
        If the file does not exist, is empty, is an old ``.xls`` or cannot be opened.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: 文件不存在 / file not found")
    with path.open("rb") as fh:
        prefix = fh.read(PREFIX_BYTES)
    if not prefix.strip():
        raise ImportFileError(f"{path}: 文件为空 / the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".xls" or prefix.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(f"{path}: 不支持旧版 .xls，请另存为 .xlsx 或 CSV / old .xls is not supported: "
                              "save it as .xlsx or CSV")
    if suffix in (".xlsx", ".xlsm") or prefix.startswith(b"PK\x03\x04"):
        return _read_xlsx(path)
    return _read_csv(path, prefix, encoding)


def _read_csv(path: Path, prefix: bytes, encoding: str | None) -> _Table:
    enc = encoding or detect_encoding(prefix, truncated=len(prefix) == PREFIX_BYTES)
    try:
        codecs.lookup(enc)
    except LookupError:
        raise ImportFileError(f"{path}: 未知编码 {enc} / unknown encoding {enc}") from None
    if enc.lower().replace("_", "-") in ("utf-8", "utf8") and prefix.startswith(_UTF8_BOM):
        enc = "utf-8-sig"  # a forced utf-8 must still drop the BOM from the first header
    # errors="replace": an undecodable byte spoils its row only (rejected), not the whole import.
    fh = open(path, encoding=enc, errors="replace", newline="")  # noqa: SIM115 - closed by the generator
    first = fh.readline()
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    delimiter = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    fh.seek(0)
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        fh.close()
        raise ImportFileError(f"{path}: 文件为空 / the file is empty") from None
    except csv.Error as exc:
        fh.close()
        raise ImportFileError(f"{path}: 无法读取表头 / cannot read the header: {exc}") from None
    header = [h.strip() for h in header]

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        try:
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # e.g. NUL byte, field larger than the limit
                    yield start, [f"\x00csv-error: {exc}"]
                    start = reader.line_num + 1
                    continue
                line, start = start, reader.line_num + 1
                if not values or not "".join(values).strip():
                    continue
                yield line, values
        finally:
            fh.close()

    return _Table(header, rows(), enc)


def _read_xlsx(path: Path) -> _Table:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException, …
        raise ImportFileError(f"{path}: 无法打开 XLSX / cannot open as XLSX: {exc}") from None
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    header_line = 0
    header: list[str] = []
    for header_line, raw in enumerate(it, start=1):  # noqa: B007 - header_line is used after the loop
        header = [_cell(v) for v in raw]
        if any(header):
            break
    while header and not header[-1]:
        header.pop()
    if not header:
        wb.close()
        raise ImportFileError(f"{path}: 工作表为空 / the first sheet is empty")

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for line, raw in enumerate(it, start=header_line + 1):
                values = [_cell(v) for v in raw]
                while values and not values[-1]:
                    values.pop()  # spreadsheets pad rows with empty cells; trailing blanks are not columns
                if not values:
                    continue
                if len(values) < len(header):
                    values += [""] * (len(header) - len(values))
                yield line, values
        finally:
            wb.close()

    return _Table(header, rows(), None)


def _resolve_columns(
    header: list[str], wanted: tuple[str, ...], optional: tuple[str, ...], mapping: Mapping[str, str] | None,
    path: Path,
) -> dict[str, int]:
    """Map our column names to positions in the file's header (mapping first, then exact name, then aliases)."""
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in seen:
            raise ImportFileError(f"{path}: 表头重复列 {h!r} / duplicate column {h!r} in the header")
        seen[h] = i
    lower = {h.lower(): i for i, h in enumerate(header)}
    out: dict[str, int] = {}
    mapping = dict(mapping or {})
    known = set(wanted) | set(optional)
    for ours, theirs in mapping.items():
        if ours not in known:
            raise ImportFileError(f"{path}: 映射中的未知列名 {ours!r} / unknown column {ours!r} in the mapping "
                                  f"(known: {', '.join(sorted(known))})")
        if theirs not in seen:
            raise ImportFileError(f"{path}: 映射的列 {theirs!r} 不在表头中 / mapped column {theirs!r} is not in "
                                  f"the header (columns: {', '.join(header)})")
        out[ours] = seen[theirs]
    for ours in (*wanted, *optional):
        if ours in out:
            continue
        if ours.lower() in lower:
            out[ours] = lower[ours.lower()]
            continue
        for alias in HEADER_ALIASES.get(ours, ()):
            if alias.lower() in lower:
                out[ours] = lower[alias.lower()]
                break
    missing = [c for c in wanted if c not in out]
    if missing:
        raise ImportFileError(f"{path}: 缺少必需列 {', '.join(missing)} / missing required column(s) "
                              f"{', '.join(missing)} (header: {', '.join(header)}; use a mapping our=theirs)")
    return out


class _RejectWriter:
    """Streams rejected rows to CSV (UTF-8 with BOM): original columns, then ``line`` and ``reason``."""

    def __init__(self, path: str | Path | None, header: list[str]):
        self.path = Path(path) if path else None
        self.header = header
        self._fh: io.TextIOBase | None = None
        self._w = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        self._w = csv.writer(self._fh)
        self._w.writerow([safe_cell(h) for h in [*self.header, "line", "reason"]])

    def write(self, line: int, values: list[str], reason: str) -> None:
        if self.path is None:
            return
        if self._w is None:
            self._open()
        n = len(self.header)
        if values and values[0].startswith("\x00csv-error"):
            values = []
        own = (values + [""] * n)[:n]
        # A row with too many values keeps its extra cells after the reason: nothing of it is lost.
        self._w.writerow([safe_cell(v) for v in [*own, line, reason, *values[n:]]])

    def close(self) -> str | None:
        """Close the file; with no reject at all it still holds the header, so a rejects file left from an
        earlier run never passes for this one's."""
        if self.path is None:
            return None
        if self._w is None:
            self._open()
        self._fh.close()
        return str(self.path)


# ------------------------------------------------------------------------------------------------ industries


def load_industries(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The industry list of ``config/industries.yaml``: dicts with name (zh), name_en and aliases."""
    p = Path(path) if path else INDUSTRIES_FILE
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportFileError(f"{p}: cannot read the industries file: {exc}") from None
    items = data.get("industries") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ImportFileError(f"{p}: industries: expected a non-empty list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("name"):
            raise ImportFileError(f"{p}: industries[{i}]: each industry needs a name")
    return items


def seed_industries(session: Session, path: str | Path | None = None) -> dict[str, Industry]:
    """Make sure every industry of the config file exists; return a lookup by zh name, en name and alias
    (case-insensitive keys)."""
    items = load_industries(path)
    existing = {ind.name: ind for ind in session.scalars(select(Industry))}
    lookup: dict[str, Industry] = {}
    for item in items:
        ind = existing.get(item["name"])
        if ind is None:
            ind = Industry(name=item["name"], name_en=item.get("name_en"))
            session.add(ind)
        elif item.get("name_en") and ind.name_en != item["name_en"]:
            ind.name_en = item["name_en"]
        for key in (item["name"], item.get("name_en"), *(item.get("aliases") or [])):
            if key:
                lookup[str(key).strip().casefold()] = ind
    session.flush()
    return lookup


# ------------------------------------------------------------------------------------------------ enterprises


def _study_quota(study: Study) -> int:
    return runtime_for(study).quota.per_enterprise


def import_enterprises(
    session: Session,
    study: Study,
    path: str | Path,
    *,
    encoding: str | None = None,
    mapping: Mapping[str, str] | None = None,
    rejects_path: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    industries_file: str | Path | None = None,
) -> ImportReport:
    """Import the study's enterprises from CSV/XLSX.

    Columns ``enterprise_id, name, industry, province`` (optional ``region``, ``quota``; other columns go to
    ``Enterprise.attributes``). ``industry`` is a name of ``config/industries.yaml`` (zh, en or alias).
    Rejects: malformed row, missing value, unknown industry, bad quota, duplicate id in the file, id already in
    the study. Only flushes.
    """
    t0 = datetime.now(UTC)
    path = Path(path)
    table = read_table(path, encoding=encoding)
    cols = _resolve_columns(table.header, ENTERPRISE_COLUMNS, ENTERPRISE_OPTIONAL, mapping, path)
    report = ImportReport("enterprises", str(path), table.encoding)
    industries = seed_industries(session, industries_file)
    valid_names = "、".join(dict.fromkeys(ind.name for ind in industries.values()))
    existing = set(session.scalars(select(Enterprise.external_id).where(Enterprise.study_id == study.id)))
    default_quota = _study_quota(study)
    extra = [(i, h) for i, h in enumerate(table.header) if i not in cols.values() and h]
    ncols = len(table.header)
    seen: dict[str, int] = {}
    rejects = _RejectWriter(rejects_path, table.header)
    new: list[Enterprise] = []
    pending = 0

    for line, values in table.rows:
        report.read += 1
        pending += 1
        if progress and pending >= 1000:
            progress(pending)
            pending = 0
        reason = _row_shape_error(values, ncols)
        if reason is None:
            ext = values[cols["enterprise_id"]].strip()
            name = values[cols["name"]].strip()
            ind_raw = values[cols["industry"]].strip()
            province = values[cols["province"]].strip()
            reason = _missing(("enterprise_id", ext), ("name", name), ("industry", ind_raw),
                              ("province", province))
        if reason is None:
            if ext in existing:
                reason = f"已导入：企业编号 {ext} 已在本调查中 / already imported: enterprise {ext} is in this study"
                report.already_present += 1
            elif ext in seen:
                reason = f"企业编号重复（与第 {seen[ext]} 行相同）/ duplicate enterprise_id (same as line {seen[ext]})"
            elif ind_raw.casefold() not in industries:
                reason = (f"未知行业 {ind_raw!r}（应为：{valid_names}）/ unknown industry {ind_raw!r}, "
                          "see config/industries.yaml")
        quota = default_quota
        if reason is None and "quota" in cols and values[cols["quota"]].strip():
            q = values[cols["quota"]].strip()
            if q.isdigit() and int(q) > 0:
                quota = int(q)
            else:
                reason = f"配额不是正整数：{q!r} / quota is not a positive integer: {q!r}"
        if reason is not None:
            report._reject(line, reason)
            rejects.write(line, values, reason)
            continue
        seen[ext] = line
        region = values[cols["region"]].strip() or None if "region" in cols else None
        new.append(Enterprise(
            study_id=study.id, external_id=ext, name=name, industry=industries[ind_raw.casefold()],
            province=province, region=region, quota_target=quota,
            attributes={h: values[i] for i, h in extra},
        ))
        report.imported += 1
    if progress and pending:
        progress(pending)
    session.add_all(new)
    session.flush()
    report.rejects_path = rejects.close()
    report.seconds = (datetime.now(UTC) - t0).total_seconds()
    assert report.balanced, report
    log.info("import enterprises %s: %s", path.name, report.summary())
    return report


def _row_shape_error(values: list[str], ncols: int) -> str | None:
    if values and values[0].startswith("\x00csv-error"):
        return f"CSV 格式错误 / malformed CSV row: {values[0].split(': ', 1)[-1]}"
    if len(values) != ncols:
        return f"列数不符：应为 {ncols} 列，实为 {len(values)} 列 / wrong column count: expected {ncols}, got {len(values)}"
    for v in values:
        if "\ufffd" in v:
            return "含无法解码的字节（编码错误）/ undecodable bytes in this row (wrong encoding?)"
    return None


def _missing(*pairs: tuple[str, str]) -> str | None:
    for name, value in pairs:
        if not value:
            return f"缺少必填值 {name} / missing required value: {name}"
    return None


# ----------------------------------------------------------------------------------------------------- sample


class _Ids:
    """Primary keys assigned by us, so phone rows can reference their case inside one executemany.

    SQLite: max(id)+1, +2, … (the import holds the write lock, taken before reading the maximum).
    PostgreSQL: values drawn from the table's own sequence in blocks, so concurrent writers never collide
    (ids of a block left unused at the end are a gap in the sequence, as after any rolled-back insert).
    """

    def __init__(self, session: Session, table: Table, block: int = CHUNK):
        self.session, self.table, self.block_size = session, table, block
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.block: list[int] = []
        self.pos = 0
        if self.pg:
            self.seq = session.execute(
                text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar_one()
            self.next = 0
        else:
            self.next = (session.execute(select(func.max(table.c.id))).scalar() or 0) + 1

    def __call__(self) -> int:
        if not self.pg:
            n = self.next
            self.next = n + 1
            return n
        if self.pos >= len(self.block):
            rows = self.session.execute(
                text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                {"s": self.seq, "n": self.block_size})
            self.block, self.pos = [r[0] for r in rows], 0
        self.pos += 1
        return self.block[self.pos - 1]


CASE_COLS = ("id", "study_id", "enterprise_id", "case_ref", "replicate", "status", "timezone", "attempts",
             "tried_day_parts", "needs_converter", "attributes", "imported_at", "next_call_at")
PHONE_COLS = ("id", "study_id", "case_id", "position", "e164", "kind", "timezone", "status", "attempts")


def _bulk_sql(conn, table: Table, columns: tuple[str, ...]) -> tuple[str, dict[str, Callable[[Any], Any]]]:
    """An INSERT for the DBAPI's executemany, and each column's bind processor for this dialect.

    Going around SQLAlchemy's per-row parameter processing (~7 µs a row) matters at a million rows; values
    are processed with the very functions SQLAlchemy would use, so what is stored is identical.
    """
    dialect = conn.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    if dialect.name == "postgresql":  # the writer streams these rows with COPY: same columns, same values
        sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    procs = {}
    for c in columns:
        proc = table.c[c].type.dialect_impl(dialect).bind_processor(dialect)
        procs[c] = proc or (lambda v: v)
    return sql, procs


class _Writer:
    """Writes chunks while the next one is being parsed.

    On SQLite the DBAPI's ``executemany`` runs in one background thread (sqlite3 releases the GIL while
    SQLite works), so parsing and writing overlap on two cores; at most one chunk is in flight, and the main
    thread makes no database call meanwhile (ids are counted locally on SQLite). An error in a write is
    raised at the next submit or at close, so the import fails (and the transaction rolls back) rather than
    losing a chunk. On PostgreSQL (ids come from the sequence on the same connection) writes are synchronous,
    with COPY.
    """

    def __init__(self, conn):
        self.conn = conn
        self.background = conn.dialect.name == "sqlite"
        self.pool = None
        self.pending = None
        if self.background:
            from concurrent.futures import ThreadPoolExecutor

            self.dbapi = conn.connection.dbapi_connection
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cati-import-writer")

    def _write(self, batches) -> None:
        cur = self.dbapi.cursor()
        try:
            for sql, rows in batches:
                cur.executemany(sql, rows)
        finally:
            cur.close()

    def submit(self, batches) -> None:
        if self.conn.dialect.name == "postgresql":
            # COPY is ~20× faster than executemany there; psycopg adapts the values (Json, datetime) itself.
            with self.conn.connection.dbapi_connection.cursor() as cur:
                for sql, rows in batches:
                    with cur.copy(sql) as copy:
                        for row in rows:
                            copy.write_row(row)
            return
        if not self.background:
            for sql, rows in batches:
                self.conn.exec_driver_sql(sql, rows)
            return
        self.wait()
        self.pending = self.pool.submit(self._write, batches)

    def wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.pool = None

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # already failing: make sure no write is still running on the connection, keep the first error
            self.close()
        except Exception:  # noqa: BLE001
            log.debug("import writer error after an earlier failure", exc_info=True)


@contextmanager
def _big_cache(conn) -> Iterator[None]:
    """Settings for a large import, restored afterwards.

    The cyclic garbage collector is paused: the loop allocates millions of short-lived lists and tuples
    (none of them cyclic) and every collection would walk the big lookup sets again (~15 % of the time).
    On SQLite the connection gets a bigger page cache, so the unique indexes' B-trees stay in memory
    (random-order keys thrash the default 2 MB cache).
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    old = None
    try:
        if conn.dialect.name == "sqlite":
            old = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            conn.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MB
        yield
    finally:
        if old is not None:
            conn.exec_driver_sql(f"PRAGMA cache_size = {int(old)}")
        if gc_was_enabled:
            gc.enable()


def _valid_tz(name: str, cache: dict[str, bool]) -> bool:
    ok = cache.get(name)
    if ok is None:
        try:
            ZoneInfo(name)
            ok = True
        except (ZoneInfoNotFoundError, ValueError):
            ok = False
        cache[name] = ok
    return ok


def import_sample(
    session: Session,
    study: Study,
    path: str | Path,
    *,
    encoding: str | None = None,
    mapping: Mapping[str, str] | None = None,
    rejects_path: str | Path | None = None,
    release: str = "first",
    replicate_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import sample cases (one sampled person of an enterprise, with up to three numbers) from CSV/XLSX.

    Parameters
    ----------
    session, study
        An open session and the ORM study row. Only flushes; the caller commits.
    path
        CSV (UTF-8, UTF-8 with BOM, GBK/GB18030 detected) or XLSX.
    encoding
        Force a CSV encoding instead of detecting it.
    mapping
        ``{our_name: their_header}`` for columns named differently in the file.
    rejects_path
        Where to write the rejected rows (CSV, UTF-8 with BOM); None writes nothing.
    release
        ``"first"``: release replicate 1 of each enterprise (its cases become READY); ``"all"``: release every
        replicate touched; ``"none"``: release nothing (cases joining an already released replicate are READY).
    replicate_size
        Cases per replicate when the file has no ``replicate`` column; default 3 × the enterprise's quota
        target. New cases start a new replicate after the enterprise's highest existing one, so a later import
        never adds cases to a batch that was already released.

    Returns
    -------
    ImportReport
        ``imported + rejected == read``; every reject has its line and reason.

    Notes
    -----
    Columns: ``case_ref, enterprise_id, phone`` required; ``phone2``, ``phone3``, ``replicate``, ``timezone``
    optional; every other column is kept in ``Case.attributes``. ``Case.timezone`` is the ``timezone`` column
    or the first number's time zone. Reject reasons: malformed row, missing value, case_ref already in the
    study ("already imported"), duplicate case_ref in the file, unknown enterprise, bad phone (with its reason),
    number on the do-not-call list, number already in the study, duplicate number in the file (naming the
    earlier line), bad replicate, unknown time zone.
    """
    if release not in ("first", "all", "none"):
        raise ValueError(f"release must be 'first', 'all' or 'none', not {release!r}")
    if replicate_size is not None and replicate_size < 1:
        raise ValueError(f"replicate_size must be a positive integer, not {replicate_size!r}")
    t0 = datetime.now(UTC)
    now = t0
    path = Path(path)
    table = read_table(path, encoding=encoding)
    cols = _resolve_columns(table.header, SAMPLE_COLUMNS, SAMPLE_OPTIONAL, mapping, path)
    report = ImportReport("sample", str(path), table.encoding)
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        # Take SQLite's write lock before reading max(id), so no other writer can slip in between. (A driver-level
        # no-op UPDATE: through Core it would also bump studies.updated_at.)
        session.connection().exec_driver_sql("UPDATE studies SET id = id WHERE id = ?", (study.id,))

    sid = study.id
    enterprises = {
        ext: (eid, quota) for ext, eid, quota in session.execute(
            select(Enterprise.external_id, Enterprise.id, Enterprise.quota_target).where(Enterprise.study_id == sid))
    }
    existing_refs = set(session.scalars(select(Case.case_ref).where(Case.study_id == sid)))
    existing_phones = {int(e[1:]) for e in session.scalars(select(CasePhone.e164).where(CasePhone.study_id == sid))}
    dnc = {int(e[1:]) for e in session.scalars(select(DoNotCall.e164)) if e[1:].isdigit()}
    # Replicates: highest existing number per enterprise, and which (enterprise, number) are released.
    rep_rows = session.execute(
        select(Replicate.enterprise_id, Replicate.number, Replicate.released_at, Replicate.id, Replicate.size)
        .where(Replicate.study_id == sid)).all()
    max_rep: dict[int, int] = {}
    for eid, number, *_ in rep_rows:
        max_rep[eid] = max(max_rep.get(eid, 0), number)
    for eid, number in session.execute(
            select(Case.enterprise_id, func.max(Case.replicate)).where(Case.study_id == sid)
            .group_by(Case.enterprise_id)):
        max_rep[eid] = max(max_rep.get(eid, 0), number or 0)
    released = {(eid, number) for eid, number, rel, *_ in rep_rows if rel is not None}
    rep_existing = {(eid, number): (rid, size) for eid, number, _rel, rid, size in rep_rows}
    to_release: set[tuple[int, int]] = set()
    rep_counts: dict[tuple[int, int], int] = {}
    new_per_ent: dict[int, int] = {}

    phone_cols = [(c, cols[c]) for c in PHONE_COLUMNS if c in cols]
    rep_col = cols.get("replicate")
    tz_col = cols.get("timezone")
    i_ref, i_ent, i_phone = cols["case_ref"], cols["enterprise_id"], cols["phone"]
    read = imported = 0
    reserved = set(cols.values())
    extra = [(i, h) for i, h in enumerate(table.header) if i not in reserved and h]
    ncols = len(table.header)
    seen_refs: dict[str, int] = {}
    seen_phones: dict[int, int] = {}
    tz_cache: dict[str, bool] = {}
    rejects = _RejectWriter(rejects_path, table.header)
    next_case_id = _Ids(session, Case.__table__)
    next_phone_id = _Ids(session, CasePhone.__table__)
    case_buf: list[tuple] = []  # rows in CASE_COLS order
    phone_buf: list[tuple] = []  # rows in PHONE_COLS order
    conn = session.connection()
    case_sql, case_proc = _bulk_sql(conn, Case.__table__, CASE_COLS)
    phone_sql, phone_proc = _bulk_sql(conn, CasePhone.__table__, PHONE_COLS)
    # Values that are the same for every row go through SQLAlchemy's bind processors once, here.
    sid_v = sid
    ready_v = case_proc["status"](CaseStatus.READY)
    unreleased_v = case_proc["status"](CaseStatus.UNRELEASED)
    false_v = case_proc["needs_converter"](False)
    now_v = case_proc["imported_at"](now)
    # Released cases are callable from the moment they are imported (the scheduler only offers due cases).
    due_v = case_proc["next_call_at"](now)
    json_v = case_proc["attributes"]
    extra_keys = [(i, encode_basestring(h) + ":") for i, h in extra]
    sqlite_json = conn.dialect.name == "sqlite"  # SQLAlchemy's JSON type stores JSON text there: build it here
    ok_v = phone_proc["status"](PhoneStatus.OK)
    pending = 0

    writer = _Writer(conn)

    def flush() -> None:
        if case_buf:
            writer.submit([(case_sql, case_buf.copy()), (phone_sql, phone_buf.copy())])
            case_buf.clear()
            phone_buf.clear()

    with _big_cache(conn), writer:
        for line, values in table.rows:
            read += 1
            pending += 1
            if pending >= 10_000:
                if progress:
                    progress(pending)
                pending = 0
            reason = None
            if len(values) != ncols or "\ufffd" in "\x1f".join(values) or values[0][:1] == "\x00":
                reason = _row_shape_error(values, ncols)
            else:
                ref = values[i_ref].strip()
                ext = values[i_ent].strip()
                if not ref or not ext or not values[i_phone].strip():
                    reason = _missing(("case_ref", ref), ("enterprise_id", ext), ("phone", values[i_phone].strip()))
            if reason is None:
                if ref in existing_refs:
                    reason = f"已导入：样本编号 {ref} 已在本调查中 / already imported: case_ref {ref} is in this study"
                    report.already_present += 1
                elif ref in seen_refs:
                    reason = f"样本编号重复（与第 {seen_refs[ref]} 行相同）/ duplicate case_ref (same as line {seen_refs[ref]})"
                elif ext not in enterprises:
                    reason = f"未知企业 {ext}（请先导入企业）/ unknown enterprise {ext} (import enterprises first)"
            numbers: list[tuple[int, str, str, str]] = []  # (digits, e164, kind, tz)
            if reason is None:
                for cname, ci in phone_cols:
                    raw = values[ci]
                    if not raw.strip():
                        continue
                    try:
                        ph = normalize_phone(raw, with_area=False)
                    except PhoneError as exc:
                        reason = f"{cname}: {exc.reason} ({mask_phone(raw)})"
                        break
                    key = int(ph.e164[1:])
                    if numbers and any(key == n[0] for n in numbers):
                        continue  # the same number twice on one row: keep it once
                    if key in dnc:
                        reason = f"{cname}: 号码在谢绝来电名单中 / number on the do-not-call list ({mask_phone(ph.e164)})"
                    elif key in existing_phones:
                        reason = (f"{cname}: 号码已在本调查的其他样本中 / number already in this study "
                                  f"({mask_phone(ph.e164)})")
                    elif key in seen_phones:
                        first = seen_phones[key]
                        reason = (f"{cname}: 号码重复（与第 {first} 行相同）/ duplicate phone (same as line {first}) "
                                  f"({mask_phone(ph.e164)})")
                    if reason is not None:
                        break
                    numbers.append((key, ph.e164, ph.kind, ph.timezone))
            eid = 0
            rep = 0
            tz = ""
            if reason is None:
                eid, quota = enterprises[ext]
                if rep_col is not None and values[rep_col].strip():
                    r = values[rep_col].strip()
                    if r.isdigit() and int(r) > 0:
                        rep = int(r)
                    else:
                        reason = f"批次不是正整数：{r!r} / replicate is not a positive integer: {r!r}"
                tz = values[tz_col].strip() if tz_col is not None else ""
                if reason is None and tz and not _valid_tz(tz, tz_cache):
                    reason = f"未知时区 {tz!r} / unknown time zone {tz!r}"
            if reason is not None:
                report._reject(line, reason)
                rejects.write(line, values, reason)
                continue

            if not rep:
                nth = new_per_ent.get(eid, 0)  # this enterprise's nth new case in this file
                new_per_ent[eid] = nth + 1
                rep = max_rep.get(eid, 0) + 1 + nth // (replicate_size or 3 * quota)
            rkey = (eid, rep)
            rep_counts[rkey] = rep_counts.get(rkey, 0) + 1
            if rkey not in released and (release == "all" or (release == "first" and rep == 1)):
                to_release.add(rkey)
            ready = rkey in released or rkey in to_release
            seen_refs[ref] = line
            cid = next_case_id()
            case_buf.append((
                cid, sid_v, eid, ref, rep, ready_v if ready else unreleased_v, tz or numbers[0][3], 0, 0, false_v,
                ("{" + ",".join([k + encode_basestring(values[i]) for i, k in extra_keys]) + "}") if sqlite_json
                else json_v({h: values[i] for i, h in extra}), now_v, due_v if ready else None,
            ))
            for pos, (key, e164, kind, ptz) in enumerate(numbers, start=1):
                seen_phones[key] = line
                phone_buf.append((next_phone_id(), sid_v, cid, pos, e164, kind, ptz, ok_v, 0))
            imported += 1
            if len(case_buf) >= CHUNK:
                flush()
        flush()
        writer.close()  # the last chunk is written before the replicate rows and the flush below
        if progress and pending:
            progress(pending)
    report.read, report.imported = read, imported

    # Replicate rows: grow existing ones, create the new ones, stamp the released ones.
    new_reps = []
    for (eid, number), n in rep_counts.items():
        rel_at = now if (eid, number) in to_release else None
        if (eid, number) in rep_existing:
            rid, size = rep_existing[(eid, number)]
            values_ = {"size": (size or 0) + n}
            if rel_at is not None:
                values_["released_at"] = rel_at
            session.execute(update(Replicate).where(Replicate.id == rid).values(**values_))
        else:
            new_reps.append({"study_id": sid, "enterprise_id": eid, "number": number, "size": n,
                             "released_at": rel_at, "automatic": False})
    if new_reps:
        session.execute(insert(Replicate.__table__), new_reps)
    report.replicates_released = len(to_release)
    session.flush()
    # New cases may bring new time zones: the scheduler's short cache of them must not hide these cases.
    invalidate_timezone_cache()
    # Industry / sample-variable quotas: the new cases join the cells their values fall in.
    report.quota_links = link_quota_cells(session, study, now)
    report.rejects_path = rejects.close()
    report.seconds = (datetime.now(UTC) - t0).total_seconds()
    assert report.balanced, report
    log.info("import sample %s: %s (%d replicates released)", path.name, report.summary(),
             report.replicates_released)
    return report


# ------------------------------------------------------------------------------------------- example files

_PROVINCES = [
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江", "安徽", "福建",
    "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆", "四川", "贵州", "云南", "西藏",
    "陕西", "甘肃", "青海", "宁夏", "新疆",
]
_REGIONS = {
    "华北": {"北京", "天津", "河北", "山西", "内蒙古"}, "东北": {"辽宁", "吉林", "黑龙江"},
    "华东": {"上海", "江苏", "浙江", "安徽", "福建", "江西", "山东"}, "华中": {"河南", "湖北", "湖南"},
    "华南": {"广东", "广西", "海南"}, "西南": {"重庆", "四川", "贵州", "云南", "西藏"},
    "西北": {"陕西", "甘肃", "青海", "宁夏", "新疆"},
}
# Fictional brand stems and the suffix each industry's names take (names are invented, not real companies).
_STEMS = [
    "华信", "中联", "东方", "鼎丰", "恒通", "瑞达", "嘉禾", "宏远", "博润", "安泰", "景明", "汇丰源", "天和",
    "融创", "弘毅", "泰康源", "新元", "百川", "金桥", "长城云", "海川", "星河", "润泽", "同创", "永安达", "国信",
    "德美", "聚源", "明珠", "远航", "中科", "兴业达", "晨光", "盛世", "万象", "华夏通", "启航", "和美", "腾跃",
    "致远",
]
_SUFFIX = {
    "通信": "通信", "银行": "银行", "公共服务": "公用事业服务中心", "互联网": "网络科技", "互联网金融": "数字金融",
    "零售": "商贸连锁", "互联网旅游": "旅行网", "基金": "基金管理", "汽车": "汽车", "保险": "保险",
    "制造业": "电器制造", "物流快递": "速运", "地产": "置业", "证券": "证券", "其他": "生活服务",
}
_MOBILE_PREFIXES = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182", "183", "184",
    "185", "186", "187", "188", "189", "191", "193", "195", "198", "199",
]


def synthetic_enterprises(n: int = 360, *, seed: int = 20261122) -> list[dict[str, str]]:
    """Invented enterprises spread evenly over the 15 industries (names are fictional)."""
    rng = random.Random(seed)
    industries = [item["name"] for item in load_industries()]
    rows: list[dict[str, str]] = []
    used: set[str] = set()
    for i in range(n):
        ind = industries[i % len(industries)]
        province = rng.choice(_PROVINCES)
        while True:
            name = f"{rng.choice(_STEMS)}{_SUFFIX.get(ind, '服务')}"
            if name in used:
                name = f"{province}{name}"
            if name not in used:
                break
        used.add(name)
        region = next(r for r, ps in _REGIONS.items() if province in ps)
        rows.append({"enterprise_id": f"E{i + 1:04d}", "name": name, "industry": ind, "province": province,
                     "region": region, "quota": "20"})
    return rows


def synthetic_mobiles(rng: random.Random, n: int) -> Iterator[str]:
    """``n`` distinct valid CN mobile numbers: a mobile prefix from ``_MOBILE_PREFIXES`` (every suffix of each is
    valid in phonenumbers' metadata — checked by the tests) and 8 random digits, never a sequential block."""
    seen: set[str] = set()
    while len(seen) < n:
        num = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
        if num in seen:
            continue
        seen.add(num)
        yield num


_SERVICES = ["咨询", "投诉", "业务办理", "售后", "查询"]


def write_synthetic_sample(path: str | Path, enterprise_ids: list[str], per_enterprise: int, *,
                           seed: int = 20261122, second_phone_share: float = 0.1) -> int:
    """Write a sample CSV (UTF-8) for the given enterprises; returns the number of rows written."""
    rng = random.Random(seed)
    total = len(enterprise_ids) * per_enterprise
    n_second = int(total * second_phone_share)
    numbers = synthetic_mobiles(rng, total + n_second)
    path = Path(path)
    def rows() -> Iterator[list[str]]:
        nonlocal n_second
        yield ["case_ref", "enterprise_id", "phone", "phone2", "service_type", "last_call_date"]
        k = 0
        for ext in enterprise_ids:
            for _ in range(per_enterprise):
                k += 1
                phone2 = next(numbers) if rng.random() < second_phone_share and n_second > 0 else ""
                if phone2:
                    n_second -= 1
                day = rng.randrange(1, 29)
                yield [f"C{k:07d}", ext, next(numbers), phone2, rng.choice(_SERVICES),
                       f"2026-{rng.randrange(8, 11):02d}-{day:02d}"]

    with path.open("w", encoding="utf-8", newline="") as fh:
        write_csv_rows(fh, rows())
    return total


def write_example_files(directory: str | Path, *, n_enterprises: int = 360, per_enterprise: int = 60,
                        seed: int = 20261122) -> tuple[Path, Path]:
    """Write ``enterprises.csv`` and ``sample.csv`` (UTF-8) into ``directory``; deterministic for a seed."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ents = synthetic_enterprises(n_enterprises, seed=seed)
    ep = d / "enterprises.csv"
    with ep.open("w", encoding="utf-8", newline="") as fh:
        write_csv_rows(fh, [list(ents[0]), *([e[k] for k in ents[0]] for e in ents)])
    sp = d / "sample.csv"
    write_synthetic_sample(sp, [e["enterprise_id"] for e in ents], per_enterprise, seed=seed)
    return ep, sp


_MAP_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$")


def parse_mapping(items: list[str] | tuple[str, ...] = (), file: str | Path | None = None) -> dict[str, str]:
    """Build a column mapping from ``our=theirs`` strings and/or a YAML file ``{our: theirs}``."""
    mapping: dict[str, str] = {}
    if file:
        p = Path(file)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ImportFileError(f"{p}: cannot read the mapping file: {exc}") from None
        if not isinstance(data, dict):
            raise ImportFileError(f"{p}: the mapping file must be a mapping our_name: their_header")
        mapping.update({str(k): str(v) for k, v in data.items()})
    for item in items:
        m = _MAP_RE.match(item)
        if not m:
            raise ImportFileError(f"--map {item!r}: expected our=theirs, e.g. phone=手机号码")
        mapping[m.group(1)] = m.group(2)
    return mapping
