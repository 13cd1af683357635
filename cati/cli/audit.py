"""``cati audit …``: audit checklists (CCSO, YD/T 2823-2015): a judgement template, scoring a filled one, and
importing a client's own checklist from XLSX.

评审：生成评审判定模板（CSV），对填好的判定打分（按类别统计符合率并给出整体结论），导入客户自己的评审清单。

The judgements file (CSV, or XLSX when Excel saved it so) has the columns ``category,core_item,requirement,evidence,judgement`` (other columns, such as a
note, are ignored). ``requirement`` starts with the requirement code (``1.1.1 有经管理层批准的…``); only the
code is read, so the text may be left out. An optional ``note`` column (备注) carries the auditor's note into the
report. ``judgement`` is ``yes`` / ``no`` / ``na`` (also 是 / 否 / 不适用,
符合 / 不符合, any case, surrounding spaces ignored). The file may be UTF-8 (with or without BOM) or GBK.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import click

from scoring.cells import write_csv_rows

from .score import _pad

_SHIPPED = Path(__file__).resolve().parents[2] / "config" / "studies" / "ccso_audit.yaml"
#: The example checklist of the repository (relative to the working directory when not in a source checkout).
DEFAULT_AUDIT_STUDY = _SHIPPED if _SHIPPED.is_file() else Path("config/studies/ccso_audit.yaml")
TEMPLATE_COLUMNS = ("category", "core_item", "requirement", "evidence", "judgement")

#: Accepted spellings of a judgement (compared after strip + casefold).
JUDGEMENT_SPELLINGS: dict[str, str] = {
    "yes": "yes", "y": "yes", "是": "yes", "符合": "yes",
    "no": "no", "n": "no", "否": "no", "不符合": "no",
    "na": "na", "n/a": "na", "不适用": "na",
}
_NUMERALS = "一二三四五六七八九十"


class JudgementFileError(click.ClickException):
    """A judgements file that cannot be scored; the message lists every problem, one per line."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.problems = problems
        super().__init__(f"{path}: cannot score, {len(problems)} problem(s) / 无法评分，共 {len(problems)} 个问题:\n"
                         + "\n".join(f"  {p}" for p in problems))


def _load(study_file: Path):
    from cati.study.audit import AuditStudyError, load_audit_study

    try:
        return load_audit_study(study_file)
    except AuditStudyError as exc:
        raise click.ClickException(f"{study_file}: not a usable audit checklist:\n{exc}") from None


def _category_label(cat) -> str:
    code = cat.code
    if code.isdigit() and 1 <= int(code) <= len(_NUMERALS):
        code = _NUMERALS[int(code) - 1]
    return f"{code} {cat.name.zh_CN}"


study_option = click.option(
    "--study", "study_file", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_AUDIT_STUDY,
    help="Audit checklist (YAML, or an XLSX sheet in the import format; default: the example "
         "config/studies/ccso_audit.yaml).")


@click.group("audit")
def audit() -> None:
    """Audit checklists (CCSO, YD/T 2823-2015). 呼叫中心评审（CCSO）清单与评分。"""


@audit.command("template")
@study_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the CSV here (default: standard output).")
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True,
              help="Language of the names and requirement texts.")
def template(study_file: Path, out_file: Path | None, lang: str) -> None:
    """Write a judgements template: one row per requirement, judgement empty (CSV, UTF-8 with BOM).

    生成评审判定模板：每条具体要求一行，judgement 列留空，填写 yes/no/na（是/否/不适用）。
    """
    study = _load(study_file)
    buf = io.StringIO()
    rows = [TEMPLATE_COLUMNS] + [
        [f"{cat.code} {cat.name.get(lang)}", f"{item.code} {item.name.get(lang)}", f"{req.code} {req.text.get(lang)}",
         ",".join(req.evidence), ""] for cat, item, req in study.iter_requirements()]
    write_csv_rows(buf, rows, lineterminator="\r\n")
    text = buf.getvalue()
    if out_file is None:
        click.echo("\ufeff" + text, nl=False)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text, encoding="utf-8-sig", newline="")
    n = study.counts()
    click.echo(f"{out_file}: {n[2]} requirements in {n[1]} core items and {n[0]} categories "
               f"({study.id} v{study.version}); fill the judgement column with yes/no/na (是/否/不适用)", err=True)


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise click.ClickException(f"{path}: file not found / 文件不存在") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror or exc}") from None
    from cati.services.imports import detect_encoding

    encoding = detect_encoding(data[:65536], truncated=len(data) > 65536)
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise click.ClickException(f"{path}: cannot decode the file as {encoding}; save it as UTF-8 or GBK") from None


_EXPECTED = "expected the header " + ",".join(TEMPLATE_COLUMNS)


def _csv_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str] | str]]]:
    """The header and ``(line, values)`` of a CSV (``(line, message)`` for a row csv cannot read)."""
    text = _decode(path)
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    delimiter = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise JudgementFileError(path, [f"the file is empty ({_EXPECTED})"]) from None
    except csv.Error as exc:
        raise JudgementFileError(path, [f"line 1: cannot read the header: {exc}"]) from None

    def rows() -> Iterator[tuple[int, list[str] | str]]:
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, f"cannot read the row: {exc}"
                start = reader.line_num + 1
                continue
            line, start = start, reader.line_num + 1
            yield line, values

    return header, rows()


def _xlsx_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str] | str]]]:
    """The same from the first sheet of an XLSX (line = row number), for a template filled in and saved by Excel."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise click.ClickException(f"{path}: file not found / 文件不存在") from None
    except Exception as exc:  # BadZipFile, InvalidFileException …
        raise click.ClickException(f"{path}: cannot open as an XLSX workbook ({exc})") from None
    try:
        table = [["" if v is None else str(v) for v in row] for row in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    if not table:
        raise JudgementFileError(path, [f"the sheet is empty ({_EXPECTED})"])
    return table[0], iter(list(enumerate(table[1:], start=2)))


NOTE_COLUMNS = ("note", "notes", "备注", "说明")


def read_judgements(path: Path, study) -> dict[str, str]:
    """Read a judgements file (CSV in UTF-8/BOM/GBK, or XLSX) against a checklist: requirement code → yes/no/na.

    See :func:`read_judgement_file` (which also returns the auditor's notes).
    """
    return read_judgement_file(path, study)[0]


def read_judgement_file(path: Path, study) -> tuple[dict[str, str], dict[str, str]]:
    """Read a judgements file against a checklist: (requirement code → yes/no/na, requirement code → note).

    Notes come from an optional ``note`` column (also ``notes``, 备注, 说明); blank notes are left out.

    Raises
    ------
    JudgementFileError
        Listing every unknown or duplicate requirement code, blank or unknown judgement and not-allowed ``na`` by
        its line number, and every requirement of the checklist the file leaves out.
    """
    reader = _xlsx_rows if path.suffix.lower() in (".xlsx", ".xlsm") else _csv_rows
    raw_header, rows = reader(path)
    header = [h.strip().lstrip("\ufeff").lower() for h in raw_header]
    missing = [c for c in ("requirement", "judgement") if c not in header]
    if missing:
        raise JudgementFileError(path, [f"line 1: missing column(s) {', '.join(missing)} ({_EXPECTED})"])
    i_req, i_judge = header.index("requirement"), header.index("judgement")
    i_note = next((header.index(c) for c in NOTE_COLUMNS if c in header), None)
    notes: dict[str, str] = {}
    known = {req.code: req for _, _, req in study.iter_requirements()}
    problems: list[str] = []
    seen: dict[str, int] = {}
    judgements: dict[str, str] = {}
    for line, values in rows:
        if isinstance(values, str):
            problems.append(f"line {line}: {values}")
            continue
        if not "".join(values).strip():
            continue  # blank lines are not rows
        cell = values[i_req].strip() if i_req < len(values) else ""
        code = cell.split(maxsplit=1)[0] if cell else ""
        if not code:
            problems.append(f"line {line}: the requirement is blank (it must start with the requirement code)")
            continue
        if code not in known:
            problems.append(f"line {line}: unknown requirement code {code!r} (not in the checklist {study.id})")
            continue
        if code in seen:
            problems.append(f"line {line}: requirement {code} appears twice (also on line {seen[code]})")
            continue
        seen[code] = line
        raw = values[i_judge].strip() if i_judge < len(values) else ""
        if not raw:
            problems.append(f"line {line}: requirement {code}: the judgement is blank "
                            "(write yes, no or na / 是, 否, 不适用)")
            continue
        value = JUDGEMENT_SPELLINGS.get(unicodedata.normalize("NFKC", raw).strip().casefold())  # ＹＥＳ, ｎａ
        if value is None:
            problems.append(f"line {line}: requirement {code}: unknown judgement {raw!r} "
                            "(write yes, no or na / 是, 否, 不适用)")
            continue
        if value == "na" and not known[code].allow_na:
            problems.append(f"line {line}: requirement {code}: 'not applicable' is not allowed for this requirement "
                            "(judge it yes or no)")
            continue
        judgements[code] = value
        if i_note is not None and i_note < len(values) and values[i_note].strip():
            notes[code] = values[i_note].strip()
    for code in known:
        if code not in seen:
            problems.append(f"requirement {code} is missing from the file (every requirement needs a line)")
    if problems:
        raise JudgementFileError(path, problems)
    return judgements, notes


def _rjust(text: str, width: int) -> str:
    """Right-justify by display width (a CJK character takes two columns)."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return " " * max(0, width - shown) + text


def _score(judgements: dict[str, str], study):
    from scoring.audit import score_audit

    rules = study.pass_rules
    return score_audit(judgements, study.requirement_categories(), category_threshold=rules.category_threshold,
                       all_categories_must_pass=rules.all_categories_must_pass)


def score_file(judgements_file: Path, study):
    """Read and score a judgements file: the :class:`scoring.audit.AuditResult`."""
    return _score(read_judgements(judgements_file, study), study)


@audit.command("score")
@click.argument("judgements_file", metavar="JUDGEMENTS.csv", type=click.Path(dir_okay=False, path_type=Path))
@study_option
def score(judgements_file: Path, study_file: Path) -> None:
    """Score a filled judgements file: each category's conforming / applicable, percentage and pass/fail, then
    the overall result (last line: ``audit=<pass|fail> categories_passed=<n>/<categories>``).

    按类别统计符合数、适用数、符合率与是否达标，最后一行给出整体结论。
    """
    from scoring.audit import percentage_label

    study = _load(study_file)
    result = score_file(judgements_file, study)
    t = result.threshold
    widths = (24, 10, 10, 10)
    lines = [f"{study.title.zh_CN} ({study.id} v{study.version}); "
             f"类别达标线 category threshold {100 * t:g} %"
             + (", 全部类别达标方为通过 all categories must pass" if study.pass_rules.all_categories_must_pass
                else ", 按总体符合率判定 pooled share")]
    lines.append(_pad("类别 category", widths[0]) + _rjust("符合 yes", widths[1]) + _rjust("适用 base", widths[2])
                 + _rjust("符合率 %", widths[3]) + "  结果 result")
    frame = result.categories
    for cat in study.categories:
        row = frame.loc[cat.code]
        status = {"pass": "pass 达标", "fail": "fail 未达标", "not_assessed": "fail 未评定 (all n/a)"}[row.status]
        lines.append(_pad(_category_label(cat), widths[0]) + f"{int(row.conforming):>{widths[1]}}"
                     f"{int(row.applicable):>{widths[2]}}"
                     f"{percentage_label(int(row.conforming), int(row.applicable), t):>{widths[3]}}"
                     f"  {status}")
    total_y, total_a = int(frame["conforming"].sum()), int(frame["applicable"].sum())
    total_na = int(frame["not_applicable"].sum())
    lines.append(_pad("合计 total", widths[0]) + f"{total_y:>{widths[1]}}{total_a:>{widths[2]}}"
                 f"{percentage_label(total_y, total_a, t):>{widths[3]}}  ({total_na} n/a 不适用)")
    nc = result.nonconforming
    lines.append(f"不符合项 non-conformities: {len(nc)}" + (f" ({', '.join(nc[:12])}"
                                                             + (", …" if len(nc) > 12 else "") + ")" if nc else ""))
    lines.append(result.summary)
    click.echo("\n".join(lines))


@audit.command("report")
@click.argument("judgements_file", metavar="JUDGEMENTS.csv", type=click.Path(dir_okay=False, path_type=Path))
@study_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("audit_report"),
              show_default=True, help="Directory for the report files.")
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
@click.option("--format", "formats", multiple=True, type=click.Choice(["html", "pdf", "xlsx"]),
              help="Output format(s); repeat the option. Default: html, pdf, xlsx.")
@click.option("--centre", default=None, help="The audited centre's name, shown under the title.")
def report(judgements_file: Path, study_file: Path, out_dir: Path, lang: str, formats: tuple[str, ...],
           centre: str | None) -> None:
    """Write the audit report (HTML, PDF, XLSX): per-category results and the non-conformity list (with the
    auditor's notes when the file has a ``note`` column).

    生成评审报告：各类别结果与不符合项清单。
    """
    from reports.audit import build_audit_report

    study = _load(study_file)
    judgements, notes = read_judgement_file(judgements_file, study)
    result = _score(judgements, study)
    try:
        paths = build_audit_report(study, judgements, result, lang=lang, out_dir=out_dir,
                                   formats=formats or ("html", "pdf", "xlsx"), centre=centre, notes=notes)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths.values():
        click.echo(f"written: {path}")
    click.echo(result.summary)


@audit.command("import")
@click.argument("xlsx_file", metavar="CHECKLIST.xlsx", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The audit YAML file to write.")
@click.option("--id", "study_id", default=None, help="Checklist id (default: from the file name).")
@click.option("--title-zh", default=None, help="Chinese title.")
@click.option("--title-en", default=None, help="English title.")
@click.option("--threshold", type=float, default=0.90, show_default=True,
              help="Share of applicable judgements a category needs to pass, in (0, 1].")
@click.option("--pooled", is_flag=True, default=False,
              help="Pass on the pooled share instead of requiring every category to pass.")
def import_(xlsx_file: Path, out_file: Path, study_id: str | None, title_zh: str | None, title_en: str | None,
            threshold: float, pooled: bool) -> None:
    """Import a client's checklist from XLSX (columns category, core_item, requirement_code, requirement_zh,
    requirement_en, evidence, allow_na) and write it as an audit YAML file.

    从 XLSX 导入客户自己的评审清单并写成 YAML，无需改代码即可使用。
    """
    from cati.study.audit import AuditStudyError, read_audit_xlsx, write_audit_yaml

    try:
        study = read_audit_xlsx(xlsx_file, study_id=study_id, title_zh=title_zh, title_en=title_en,
                                category_threshold=threshold, all_categories_must_pass=not pooled)
    except AuditStudyError as exc:
        raise click.ClickException(f"{xlsx_file}: not imported, {len(exc.problems)} problem(s):\n{exc}") from None
    write_audit_yaml(study, out_file, source=str(xlsx_file))
    n = study.counts()
    click.echo(f"{out_file}: {study.id} v{study.version}: {n[0]} categories, {n[1]} core items, "
               f"{n[2]} requirements")


@audit.command("export")
@study_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The XLSX file to write.")
def export(study_file: Path, out_file: Path) -> None:
    """Write a checklist as an XLSX sheet in the import format, to edit in Excel and bring back with
    ``cati audit import``.

    导出评审清单为 XLSX（与导入格式相同），便于在 Excel 中修改后再导入。
    """
    from cati.study.audit import write_audit_xlsx

    study = _load(study_file)
    write_audit_xlsx(study, out_file)
    n = study.counts()
    click.echo(f"{out_file}: {n[2]} requirements in {n[1]} core items and {n[0]} categories")


@audit.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate audit checklist FILE(s) (YAML or XLSX); print a summary, or every problem and exit 1."""
    from cati.study.audit import AuditStudyError, load_audit_study

    failed = False
    for path in files:
        try:
            s = load_audit_study(path)
        except AuditStudyError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(f"ERROR {problem}", err=True)
            continue
        n = s.counts()
        na = sum(1 for _, _, r in s.iter_requirements() if r.allow_na)
        click.echo(f"{path}: OK  {s.id} v{s.version}: {n[0]} categories, {n[1]} core items, {n[2]} requirements "
                   f"({na} may be n/a); threshold {s.pass_rules.category_threshold:g}, "
                   f"{'all categories must pass' if s.pass_rules.all_categories_must_pass else 'pooled share'}"
                   + ("; EXAMPLE checklist" if s.example else ""))
    if failed:
        raise SystemExit(1)

