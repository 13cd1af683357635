"""A zh-CN administrator and supervisor in a real browser (Playwright + Debian chromium): every error the rules,
study, users and do-not-call screens show for bad input is in Chinese — no ASCII-only (English) message."""

from __future__ import annotations

import re

import pytest

from .test_supervisor_browser import page, sign_in, site  # noqa: F401 - fixtures (the app under gunicorn)

pytestmark = pytest.mark.browser

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")


def shown_errors(page) -> list[str]:  # noqa: F811
    """The error messages a person sees: error flashes and the problems table's message column."""
    flashes = page.locator(".flash-error").all_inner_texts()
    problems = page.locator("#problems tbody tr td:nth-child(4)").all_inner_texts()
    return [m.strip() for m in flashes + problems if m.strip()]


def submit(page, selector: str) -> None:  # noqa: F811
    """Click a form's submit button like a person and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def assert_chinese(page, where: str) -> list[str]:  # noqa: F811
    msgs = shown_errors(page)
    assert msgs, f"{where}: expected an error message"
    english = [m for m in msgs if not CJK.search(m)]
    assert not english, f"{where}: ASCII-only error messages on a zh-CN screen: {english}"
    return msgs


def test_errors_on_rules_study_users_and_dnc_screens_are_chinese(page, site, tmp_path):  # noqa: F811
    sign_in(page, site, user="adm", landing="/admin/users")

    # Calling rules: broken YAML, then a quota that is not a number, then rules that break the schema.
    page.goto(site["url"] + "/admin/rules")
    page.fill("textarea[name=rules]", "windows: [")
    submit(page, "#rules-form button[type=submit]")
    assert_chinese(page, "rules (YAML)")
    page.fill("input[name=quota]", "很多")
    page.fill("textarea[name=rules]", "max_attempts: 8")
    submit(page, "#rules-form button[type=submit]")
    assert_chinese(page, "rules (quota)")
    page.fill("input[name=quota]", "20")
    page.fill("textarea[name=rules]", "timezone_default: Mars/Olympus\nmax_attempts: many\nwindows: {weekday: []}\n")
    submit(page, "#rules-form button[type=submit]")
    assert len(assert_chinese(page, "rules (schema)")) >= 2

    # Study upload: a file that is not a study.
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\nversion: zero\nquestions: []\n", encoding="utf-8")
    page.goto(site["url"] + "/admin/study")
    page.set_input_files("input[name=file]", str(broken))
    submit(page, "form[enctype] button[type=submit]")
    assert len(assert_chinese(page, "study upload")) >= 2

    # Users: a password too short, then a user that already exists.
    page.goto(site["url"] + "/admin/users")
    form = page.locator("#create-user")
    form.locator("input[name=username]").fill("newbie")
    form.locator("input[name=password]").fill("short")
    submit(page, "#create-user button[type=submit]")
    assert_chinese(page, "users (password)")
    form = page.locator("#create-user")
    form.locator("input[name=username]").fill("sue")
    form.locator("input[name=password]").fill("long-enough-123")
    submit(page, "#create-user button[type=submit]")
    assert_chinese(page, "users (duplicate)")

    # Do-not-call: a line that is not a phone number.
    page.goto(site["url"] + "/supervisor/sample")
    page.fill("textarea[name=numbers]", "not-a-number")
    page.fill("input[name=reason]", "测试")
    submit(page, "form[action$='/dnc'] button[type=submit]")
    msgs = assert_chinese(page, "do-not-call")
    assert any("not-a-number" in m for m in msgs), msgs  # the bad line is named, not masked as ****
