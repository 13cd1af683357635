"""Audit study type (CCSO, YD/T 2823-2015 and checklists shaped like it): the pydantic model of an audit file, its
loader with errors that name the file, the path inside it and the line, an XLSX import of a client's own
checklist, and a writer back to YAML.

An audit file (``config/studies/ccso_audit.yaml``)::

    type: audit
    id: ccso_audit
    version: 1
    title: {zh-CN: …, en: …}
    pass_rules: {category_threshold: 0.90, all_categories_must_pass: true}
    categories:
      - code: "1"
        name: {zh-CN: 规划及发展方向, en: Planning and development direction}
        core_items:
          - code: "1.1"
            name: {zh-CN: …, en: …}
            requirements:
              - {code: "1.1.1", evidence: [A], allow_na: false, text: {zh-CN: …, en: …}}

Evidence types: ``A`` 文档 documents, ``B`` 数据 data (12 consecutive months of real records), ``C`` 现场 on-site.
Codes are strings and unique at their level (requirement codes across the whole file). Both languages are
required for every name and text.

>>> study = load_audit_study("config/studies/ccso_audit.yaml")  # doctest: +SKIP
>>> study.counts()                                               # doctest: +SKIP
(9, 46, 145)

A broken file raises :class:`AuditStudyError` (a :class:`~cati.study.loader.StudyError`); ``str(err)`` lists one
problem per line, e.g.
``ccso_audit.yaml: categories[0].core_items[1].requirements[2].evidence: 'D' is not an evidence type … (line 40)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from cati.i18n import KeyedError, KeyedText
from cati.study.loader import Problem, StudyError, _Collector, _loc_to_path, _parse_yaml, _pydantic_message

_k = KeyedText

__all__ = [
    "EVIDENCE_TYPES",
    "AuditStudy",
    "AuditStudyError",
    "Category",
    "CoreItem",
    "Requirement",
    "load_audit_study",
    "read_audit_xlsx",
    "validate_audit_mapping",
    "write_audit_xlsx",
    "write_audit_yaml",
]

#: Evidence types: A documents (文档), B data (数据), C on-site (现场); the messages name them from the catalogue.
EVIDENCE_TYPES = ("A", "B", "C")
LANGUAGES = ("zh-CN", "en")
_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")


class AuditStudyError(StudyError):
    """An audit checklist that cannot be used; ``problems`` names every error with its path (or XLSX row)."""


# --------------------------------------------------------------------------------------------------------------
# Field types


def _code(value: Any) -> Any:
    if isinstance(value, bool):
        raise KeyedError("au_code_bool", value=value)
    if isinstance(value, float):
        raise KeyedError("au_code_number", value=value)
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = value.strip()
        if not _CODE.match(value):
            raise KeyedError("au_code_form", value=value)
    return value


def _evidence(value: Any) -> Any:
    """``[A, B]``, ``"A,B"``, ``"AB"``, ``"A、B"`` → ``["A", "B"]``; refuse anything but A, B, C."""
    if isinstance(value, str):
        value = [x for x in re.split(r"[\s,，、;/+]+", value.strip()) if x]
        if len(value) == 1 and len(value[0]) > 1 and value[0].isalpha() and value[0].isascii():
            value = list(value[0])
    if not isinstance(value, list):
        raise KeyedError("au_evidence_list", value=value)
    out: list[str] = []
    for item in value:
        letter = str(item).strip().upper()
        if letter not in EVIDENCE_TYPES:
            raise KeyedError("au_evidence_type", item=item)
        if letter in out:
            raise KeyedError("au_evidence_twice", letter=letter)
        out.append(letter)
    if not out:
        raise KeyedError("au_evidence_none")
    return out


def _threshold(value: float) -> float:
    if not 0 < value <= 1:
        if 1 < value <= 100:
            raise KeyedError("au_threshold_percent", value=value, share=f"{value / 100:g}", percent=f"{value:g}")
        raise KeyedError("au_threshold", value=value)
    return value


Code = Annotated[str, BeforeValidator(_code)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True, populate_by_name=True)


class LocalText(_Model):
    """A text in both languages."""

    zh_CN: str = Field(alias="zh-CN", min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh_CN


class Requirement(_Model):
    """One yes/no judgement of the checklist."""

    code: Code
    text: LocalText
    evidence: Annotated[list[Literal["A", "B", "C"]], BeforeValidator(_evidence)]
    allow_na: bool = False


class CoreItem(_Model):
    code: Code
    name: LocalText
    requirements: list[Requirement] = Field(min_length=1)


class Category(_Model):
    code: Code
    name: LocalText
    core_items: list[CoreItem] = Field(min_length=1)


class PassRules(_Model):
    category_threshold: Annotated[float, AfterValidator(_threshold)] = 0.90
    all_categories_must_pass: bool = True


class AuditStudy(_Model):
    """A validated audit checklist. Load it with :func:`load_audit_study`."""

    type: Literal["audit"]
    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    version: Annotated[int, Field(ge=1)] = 1
    title: LocalText
    standard: str | None = None
    example: bool = False
    description: LocalText | None = None
    pass_rules: PassRules = PassRules()
    categories: list[Category] = Field(min_length=1)

    def iter_requirements(self) -> Iterator[tuple[Category, CoreItem, Requirement]]:
        """Every requirement with its category and core item, in checklist order."""
        for cat in self.categories:
            for item in cat.core_items:
                for req in item.requirements:
                    yield cat, item, req

    def requirement_categories(self) -> dict[str, str]:
        """Requirement code → category code (the input :func:`scoring.audit.score_audit` expects)."""
        return {req.code: cat.code for cat, _, req in self.iter_requirements()}

    def requirement(self, code: str) -> tuple[Category, CoreItem, Requirement] | None:
        return next((t for t in self.iter_requirements() if t[2].code == code), None)

    def counts(self) -> tuple[int, int, int]:
        """(categories, core items, requirements)."""
        return (len(self.categories), sum(len(c.core_items) for c in self.categories),
                sum(1 for _ in self.iter_requirements()))

    def to_mapping(self) -> dict[str, Any]:
        """The file form (aliases, no empty optional keys), ready for YAML."""
        return self.model_dump(by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------------------------------------------
# Validation

_AUDIT_KEYS = ("type", "id", "version", "title", "standard", "example", "description", "pass_rules", "categories",
               "code", "name", "core_items", "requirements", "text", "evidence", "allow_na", "zh-CN", "en",
               "category_threshold", "all_categories_must_pass")


def _message(err: Mapping[str, Any]) -> str:
    kind, loc = err["type"], err["loc"]
    last = str(loc[-1]) if loc else ""
    if kind == "missing" and last in LANGUAGES:
        return _k("au_text_missing", lang=last)
    if kind == "missing":
        return _k("au_required", key=last)
    if kind == "extra_forbidden":
        import difflib

        close = difflib.get_close_matches(last, _AUDIT_KEYS, n=1, cutoff=0.7)
        return _k("sv_unknown_key_hint", key=last, hint=close[0]) if close else _k("sv_unknown_key", key=last)
    if kind == "too_short" and last in ("requirements", "core_items", "categories"):
        return _k(f"au_no_{last}")
    if kind == "string_too_short" and len(loc) >= 2 and str(loc[-1]) in ("zh-CN", "en", "zh_CN"):
        return _k("au_text_empty", lang=loc[-1])
    if kind == "literal_error" and last == "type":
        return _k("au_type")
    return _pydantic_message(err)


def _check_unique(data: Mapping[str, Any], out: _Collector) -> None:
    """Codes unique per level; requirement codes across the whole file. Walks the raw data defensively so it
    reports duplicates even when other parts of the file are malformed."""
    seen: dict[str, dict[str, str]] = {"category": {}, "core item": {}, "requirement": {}}

    def note(kind: str, code: Any, path: str) -> None:
        if not isinstance(code, str | int) or isinstance(code, bool):
            return
        key = str(code).strip()
        if key in seen[kind]:
            out.error(f"{path}.code", _k(f"au_duplicate_{kind.replace(' ', '_')}", code=key, where=seen[kind][key]))
        else:
            seen[kind][key] = path

    cats = data.get("categories")
    for i, cat in enumerate(cats if isinstance(cats, list) else []):
        if not isinstance(cat, Mapping):
            continue
        cpath = f"categories[{i}]"
        note("category", cat.get("code"), cpath)
        items = cat.get("core_items")
        for j, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, Mapping):
                continue
            ipath = f"{cpath}.core_items[{j}]"
            note("core item", item.get("code"), ipath)
            reqs = item.get("requirements")
            for k, req in enumerate(reqs if isinstance(reqs, list) else []):
                if isinstance(req, Mapping):
                    note("requirement", req.get("code"), f"{ipath}.requirements[{k}]")


def _validate(data: Any, source: str, lines: dict[str, tuple[int, int]], early: list[Problem]) -> AuditStudy:
    out = _Collector(source, lines)
    out.errors.extend(early)
    if not isinstance(data, Mapping):
        out.error("", _k("au_empty") if data is None else _k("au_not_mapping", type=type(data).__name__))
        raise AuditStudyError(out.errors)
    study: AuditStudy | None = None
    try:
        study = AuditStudy.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            out.error(_loc_to_path(err["loc"], data), _message(err))
    _check_unique(data, out)
    if out.errors:
        out.errors.sort(key=lambda p: (p.line is None, p.line or 0))
        raise AuditStudyError(out.errors)
    assert study is not None
    return study


def validate_audit_mapping(data: Any, source: str = "<mapping>") -> AuditStudy:
    """Validate an already-parsed audit mapping.

    Raises
    ------
    AuditStudyError
        With every problem found (paths, no line numbers).
    """
    return _validate(data, source, {}, [])


def load_audit_study(path: str | Path) -> AuditStudy:
    """Read and validate an audit checklist: a YAML file, or an XLSX sheet (see :func:`read_audit_xlsx`).

    Raises
    ------
    AuditStudyError
        With every problem, each naming the file, the path inside it and its line (or the XLSX row).
    """
    source = str(path)
    if Path(path).suffix.lower() in (".xlsx", ".xlsm"):
        return read_audit_xlsx(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AuditStudyError([Problem(source, "", _k("sv_file_not_found"))]) from None
    except UnicodeDecodeError as exc:
        raise AuditStudyError([Problem(source, "", _k("sv_not_utf8", offset=exc.start))]) from None
    except OSError as exc:
        raise AuditStudyError([Problem(source, "", _k("sv_cannot_read", detail=str(exc.strerror or exc)))]) from None
    try:
        data, lines, early = _parse_yaml(text, source)
    except StudyError as exc:
        raise AuditStudyError(exc.problems) from None
    return _validate(data, source, lines, early)


# --------------------------------------------------------------------------------------------------------------
# YAML writer

_HEADER = """\
# Audit checklist {id} v{version}: {title}
# Written by `cati audit import`{source}. Load it with `cati audit … --study <this file>`.
# Evidence: A 文档 documents, B 数据 data (12 consecutive months of records), C 现场 on-site.
"""


def write_audit_yaml(study: AuditStudy, path: str | Path, *, source: str | None = None) -> Path:
    """Write a checklist as an audit YAML file that :func:`load_audit_study` reads back unchanged."""
    path = Path(path)
    header = _HEADER.format(id=study.id, version=study.version, title=study.title.zh_CN,
                            source=f" from {Path(source).name}" if source else "")
    body = yaml.safe_dump(study.to_mapping(), allow_unicode=True, sort_keys=False, width=120,
                          default_flow_style=False)
    path.write_text(header + body, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------------------
# XLSX import

XLSX_COLUMNS = ("category", "core_item", "requirement_code", "requirement_zh", "requirement_en", "evidence",
                "allow_na")
_OPTIONAL_COLUMNS = ("category_en", "core_item_en")
_TRUE = {"yes", "y", "true", "1", "是", "允许", "x", "✓"}
_FALSE = {"", "no", "n", "false", "0", "否", "不允许"}
_NUMERALS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]
_LABEL = re.compile(r"^\s*([0-9A-Za-z][0-9A-Za-z._-]*)[\s.、:：]+(.+?)\s*$")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _split_label(text: str, en_column: str) -> tuple[str, str, str] | str:
    """``"1 规划及发展方向 / Planning and direction"`` → (code, zh, en); a message when malformed."""
    numeral = re.match(r"^\s*([一二三四五六七八九十]{1,2})[\s、.．:：]+", text)
    if numeral and numeral.group(1) in _NUMERALS:  # 一、规划及发展方向 → code 1
        text = f"{_NUMERALS.index(numeral.group(1)) + 1} {text[numeral.end():]}"
    m = _LABEL.match(text)
    if not m:
        return _k("au_label_form", text=text)
    code, rest = m.group(1), m.group(2)
    zh, _, en = rest.partition(" / ") if " / " in rest else rest.partition("/")
    zh, en = zh.strip(), en.strip()
    if not zh:
        return _k("au_label_no_zh", text=text)
    return code, zh, (en or en_column)


def read_audit_xlsx(path: str | Path, *, study_id: str | None = None, title_zh: str | None = None,
                    title_en: str | None = None, category_threshold: float = 0.90,
                    all_categories_must_pass: bool = True, version: int = 1) -> AuditStudy:
    """Import a client's checklist from an XLSX sheet into the audit model.

    The first sheet (or the one named ``checklist``) has a header row with the columns ``category``,
    ``core_item``, ``requirement_code``, ``requirement_zh``, ``requirement_en``, ``evidence`` and ``allow_na``
    (any order, any case; optional ``category_en`` / ``core_item_en``), then one requirement per row:

    - ``category`` / ``core_item``: the code, then the Chinese name, then optionally `` / `` and the English name
      (``1 规划及发展方向 / Planning and development direction``); the English name may instead be in
      ``category_en`` / ``core_item_en``. A category code may be a Chinese numeral (``一、规划及发展方向`` is
      category ``1``). Repeated on every row (a blank cell repeats the row above, as merged
      cells read);
    - ``requirement_code``: a text cell (``1.1.1``); unique;
    - ``evidence``: ``A``, ``B``, ``C`` or several (``A,B`` / ``AB`` / ``A、C``);
    - ``allow_na``: yes/no (是/否, 1/0, true/false); blank is no.

    Blank rows are skipped. ``study_id`` defaults to the file name; the title to the id.

    Raises
    ------
    AuditStudyError
        Listing every bad row by its row number (``row 7: evidence: 'D' is not an evidence type …``) and any
        missing column.
    """
    from openpyxl import load_workbook

    source = str(path)
    problems: list[Problem] = []

    def bad(row: int | None, column: str, message: str) -> None:
        problems.append(Problem(source, f"row {row}" + (f": {column}" if column else "") if row else column,
                                message))

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise AuditStudyError([Problem(source, "", _k("sv_file_not_found"))]) from None
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException …
        raise AuditStudyError([Problem(source, "", _k("au_xlsx_cannot_open", error=type(exc).__name__,
                                                          detail=str(exc)))]) from None
    try:
        ws = wb["checklist"] if "checklist" in wb.sheetnames else wb.worksheets[0]
        rows = iter(ws.iter_rows(values_only=True))
        header: list[str] = []
        header_row = 0
        for number, values in enumerate(rows, start=1):
            if any(_cell(v) for v in values):
                header, header_row = [_cell(v).lower().replace(" ", "_") for v in values], number
                break
        if not header:
            raise AuditStudyError([Problem(source, "", _k("au_xlsx_empty_sheet", columns=", ".join(XLSX_COLUMNS)))])
        missing = [c for c in XLSX_COLUMNS if c not in header]
        if missing:
            raise AuditStudyError([Problem(source, f"row {header_row}",
                                           _k("au_xlsx_missing_columns", missing=", ".join(missing),
                                              header=", ".join(h for h in header if h) or "—"))])
        col = {name: header.index(name) for name in (*XLSX_COLUMNS, *_OPTIONAL_COLUMNS) if name in header}

        categories: dict[str, dict[str, Any]] = {}
        item_owner: dict[str, tuple[str, int]] = {}
        names_seen: dict[tuple[str, str], tuple[str, str, int]] = {}
        codes_seen: dict[str, int] = {}
        previous = {"category": "", "core_item": "", "category_en": "", "core_item_en": ""}
        for number, values in enumerate(rows, start=header_row + 1):
            raw = {name: (values[i] if i < len(values) else None) for name, i in col.items()}
            cells = {name: _cell(v) for name, v in raw.items()}
            if not any(cells.values()):
                continue
            for level in ("category", "core_item"):  # a blank cell repeats the row above (merged cells)
                if cells[level]:
                    previous[level], previous[f"{level}_en"] = cells[level], cells.get(f"{level}_en", "")
                else:
                    cells[level], cells[f"{level}_en"] = previous[level], previous[f"{level}_en"]
            errors_before = len(problems)
            labels: dict[str, tuple[str, str, str]] = {}
            for level in ("category", "core_item"):
                if not cells[level]:
                    bad(number, level, _k("au_cell_empty"))
                    continue
                parsed = _split_label(cells[level], cells.get(f"{level}_en", ""))
                if isinstance(parsed, str):
                    bad(number, level, parsed)
                    continue
                if not parsed[2]:
                    bad(number, level, _k("au_label_no_en", cell=cells[level], level=level))
                    continue
                labels[level] = parsed
                earlier = names_seen.get((level, parsed[0]))
                if earlier is None:
                    names_seen[(level, parsed[0])] = (parsed[1], parsed[2], number)
                elif earlier[:2] != parsed[1:]:
                    bad(number, level, _k(f"au_{level}_renamed", code=parsed[0], zh=parsed[1], en=parsed[2],
                                          zh0=earlier[0], en0=earlier[1], row=earlier[2]))
            code = cells["requirement_code"]
            if isinstance(raw["requirement_code"], float) and not raw["requirement_code"].is_integer():
                bad(number, "requirement_code", _k("au_code_number_cell", value=raw["requirement_code"]))
            elif not code:
                bad(number, "requirement_code", _k("au_cell_empty"))
            elif not _CODE.match(code):
                bad(number, "requirement_code", _k("au_code_chars", code=code))
            elif code in codes_seen:
                bad(number, "requirement_code", _k("au_xlsx_duplicate_code", code=code, row=codes_seen[code]))
            else:
                codes_seen[code] = number
            for lang_col in ("requirement_zh", "requirement_en"):
                if not cells[lang_col]:
                    bad(number, lang_col, _k("au_text_cell_empty"))
            try:
                evidence = _evidence(cells["evidence"])
            except KeyedError as exc:
                bad(number, "evidence", _k(exc.key, **exc.params))
            allow = cells["allow_na"].lower()
            if allow not in _TRUE | _FALSE:
                bad(number, "allow_na", _k("au_allow_na", value=cells["allow_na"]))
            if "core_item" in labels and "category" in labels:
                owner = item_owner.setdefault(labels["core_item"][0], (labels["category"][0], number))
                if owner[0] != labels["category"][0]:
                    bad(number, "core_item", _k("au_core_item_owner", item=labels["core_item"][0], owner=owner[0],
                                                row=owner[1], category=labels["category"][0]))
            if len(problems) > errors_before:
                continue
            ccode, czh, cen = labels["category"]
            icode, izh, ien = labels["core_item"]
            cat = categories.setdefault(ccode, {"code": ccode, "name": {"zh-CN": czh, "en": cen}, "core_items": {}})
            item = cat["core_items"].setdefault(icode, {"code": icode, "name": {"zh-CN": izh, "en": ien},
                                                        "requirements": []})
            item["requirements"].append({"code": code, "evidence": evidence, "allow_na": allow in _TRUE,
                                         "text": {"zh-CN": cells["requirement_zh"], "en": cells["requirement_en"]}})
    finally:
        wb.close()
    if problems:
        raise AuditStudyError(problems)
    if not categories:
        raise AuditStudyError([Problem(source, "", _k("au_xlsx_no_rows"))])
    sid = study_id or re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem).strip("_.-") or "audit"
    if not sid[0].isalpha():
        sid = f"audit_{sid}"
    data = {
        "type": "audit", "id": sid, "version": version,
        "title": {"zh-CN": title_zh or title_en or sid, "en": title_en or title_zh or sid},
        "pass_rules": {"category_threshold": category_threshold,
                       "all_categories_must_pass": all_categories_must_pass},
        "categories": [{**c, "core_items": list(c["core_items"].values())} for c in categories.values()],
    }
    return validate_audit_mapping(data, source)


def write_audit_xlsx(study: AuditStudy, path: str | Path) -> Path:
    """Write a checklist as an XLSX sheet in the import format (:func:`read_audit_xlsx` reads it back), so a
    client can start from a checklist, edit it in Excel and import it again."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "checklist"
    from scoring.cells import append_row

    append_row(ws, list(XLSX_COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for cat, item, req in study.iter_requirements():
        append_row(ws, [f"{cat.code} {cat.name.zh_CN} / {cat.name.en}",
                        f"{item.code} {item.name.zh_CN} / {item.name.en}", req.code, req.text.zh_CN, req.text.en,
                        ",".join(req.evidence), "yes" if req.allow_na else "no"])
    for row in ws.iter_rows(min_row=2):
        row[2].number_format = "@"  # codes stay text when edited (Excel would turn 1.10 into 1.1)
        for cell in row[3:5]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    for letter, width in zip("ABCDEFG", (28, 30, 10, 50, 60, 9, 9), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
