"""``cati study …``: check study files."""

from __future__ import annotations

import click

from cati.study.loader import StudyError, load_study


@click.group("study")
def study() -> None:
    """Study files (questionnaire, scoring, quotas, calling rules). 问卷/研究配置文件。"""


@study.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check(files: tuple[str, ...]) -> None:
    """Validate study FILE(s); print a summary, or every problem and exit 1.

    校验研究配置文件：通过则打印摘要，否则逐条列出问题并以状态码 1 退出。
    """
    failed = False
    for path in files:
        try:
            s = load_study(path)
        except StudyError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(f"ERROR {problem}", err=True)
            for warning in exc.warnings:
                click.echo(f"WARNING {warning}", err=True)
            click.echo(f"{path}: FAILED, {len(exc.problems)} problem(s) / 校验失败，共 {len(exc.problems)} 个问题",
                       err=True)
            continue
        for warning in s.warnings:
            click.echo(f"WARNING {warning}")
        asked = sum(1 for q in s.questions if q.type != "info")
        click.echo(
            f"{path}: OK  {s.id} v{s.version}: {len(s.questions)} questions ({asked} with answers), "
            f"{len(s.item_codes)} items, {len(s.indicators)} indicators, "
            f"languages {', '.join(s.languages)}, mode {s.mode}"
            + (f", quota {s.quota.per_enterprise}/enterprise" if s.quota is not None else "")
        )
    if failed:
        raise SystemExit(1)
