"""``cati import enterprises FILE`` and ``cati import sample FILE``.

Rows that cannot be imported are reported one by one (line and reason) and written to a rejects file; the
command still exits 0 then, because the import did what it could and said what it could not. A file that
cannot be read at all (missing, unknown format, required columns absent) exits 1 and imports nothing.
The last line printed is always ``imported=N rejected=M read=K``.
"""

from __future__ import annotations

from pathlib import Path

import click

from .common import get_app, progress_bar

MAX_SHOWN = 20  # rejects listed on the terminal; all of them are in the rejects file


def _common_options(func):
    func = click.option("--study", "study_code", default=None,
                        help="Study code (default: the only/first active study). 研究代码。")(func)
    func = click.option("--encoding", default=None,
                        help="Force the CSV encoding (utf-8, utf-8-sig, gb18030, gbk…); detected by default.")(func)
    func = click.option("--map", "maps", multiple=True, metavar="OURS=THEIRS",
                        help="Column mapping, repeatable: e.g. --map phone=手机号码.")(func)
    func = click.option("--mapping", "mapping_file", type=click.Path(exists=True, dir_okay=False), default=None,
                        help="YAML file {our_name: their_header}.")(func)
    func = click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), default=None,
                        help="Where to write rejected rows (default: FILE.rejects.csv beside the input).")(func)
    func = click.argument("file", type=click.Path(dir_okay=False))(func)
    return func


@click.group("import")
def import_() -> None:
    """Import enterprises and sample from CSV (UTF-8, BOM, GBK/GB18030) or XLSX. 导入企业名单与样本。"""


def _run(kind: str, file: str, study_code, encoding, maps, mapping_file, rejects_path, **kw) -> None:
    from cati.db import session_scope
    from cati.services.imports import ImportFileError, import_enterprises, import_sample, parse_mapping
    from cati.services.studies import get_study

    path = Path(file)
    rejects = Path(rejects_path) if rejects_path else path.with_name(path.name + ".rejects.csv")
    # The default rejects file is written only when there are rejects (or to replace one an earlier run left
    # there, which would otherwise pass for this run's); --rejects FILE always gets one.
    keep_empty = bool(rejects_path) or rejects.exists()
    try:
        mapping = parse_mapping(list(maps), mapping_file)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    app = get_app()
    with app.app_context():
        try:
            with session_scope(app) as session:
                study = get_study(session, study_code)
                with progress_bar(desc=f"{kind} {path.name}", unit=" rows", unit_scale=True, leave=False,
                                  disable=None) as bar:
                    fn = import_enterprises if kind == "enterprises" else import_sample
                    report = fn(session, study, path, encoding=encoding, mapping=mapping, rejects_path=rejects,
                                progress=bar.update, **kw)
        except (ImportFileError, LookupError) as exc:
            raise click.ClickException(str(exc)) from exc
    if not report.rejected and not keep_empty and report.rejects_path:
        Path(report.rejects_path).unlink(missing_ok=True)
        report.rejects_path = None
    if report.encoding:
        click.echo(f"encoding: {report.encoding}")
    for rej in report.rejects[:MAX_SHOWN]:
        click.echo(f"line {rej.line}: {rej.reason}")
    if report.rejected > MAX_SHOWN:
        click.echo(f"… {report.rejected - MAX_SHOWN} more rejected rows / 其余被拒行见拒绝文件")
    if report.rejects_path:
        click.echo(f"rejects: {report.rejects_path}")
    if report.already_present:
        click.echo(f"already imported (counted in rejected) / 已导入过: {report.already_present}")
    if kind == "sample" and report.replicates_released:
        click.echo(f"replicates released / 已发放批次: {report.replicates_released}")
    click.echo(report.summary())


@import_.command("enterprises")
@_common_options
def enterprises(file, study_code, encoding, maps, mapping_file, rejects_path) -> None:
    """Import enterprises: enterprise_id, name, industry, province (optional region, quota).

    导入企业名单：企业编号、名称、行业（config/industries.yaml 中的行业）、省份。
    """
    _run("enterprises", file, study_code, encoding, maps, mapping_file, rejects_path)


@import_.command("sample")
@_common_options
@click.option("--release", type=click.Choice(["first", "all", "none"]), default="first", show_default=True,
              help="Release replicate 1 of each enterprise, all replicates, or none. 样本批次发放。")
@click.option("--replicate-size", type=click.IntRange(min=1), default=None,
              help="Cases per replicate (default: 3 × the enterprise's quota).")
def sample(file, study_code, encoding, maps, mapping_file, rejects_path, release, replicate_size) -> None:
    """Import sample cases: case_ref, enterprise_id, phone (+ phone2, phone3, replicate, timezone).

    导入样本：样本编号、企业编号、电话（可有 phone2/phone3）；其余列作为样本属性保存。
    """
    _run("sample", file, study_code, encoding, maps, mapping_file, rejects_path, release=release,
         replicate_size=replicate_size)
