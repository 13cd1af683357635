"""The supervisor's Dialing screen in a real browser (issue 18): a supervisor switches the study to predictive
dialing, is refused a target above the 3 % ceiling, sets 2.5 %, and the board then shows the predictive dialing
panel; an admin raises the ceiling."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cati.models import AuditLog, Study
from cati.services.dialing import settings_of

from . import test_supervisor_browser as _sb

pytestmark = pytest.mark.browser

# The supervisor screens' served site and page (a server of this module's own).
site = _sb.site
page = _sb.page


def _type_target(page, value: str) -> None:
    page.focus('input[name="target"]')
    page.keyboard.press("Control+A")
    page.keyboard.type(value, delay=60)


def _settings(site):
    with site["factory"]() as s:
        return settings_of(s.get(Study, site["study_id"]))


def test_a_supervisor_switches_to_predictive_under_the_ceiling(page, site):
    _sb.sign_in(page, site)
    page.click("a.tab >> text=拨号方式")
    page.wait_for_url(site["url"] + "/supervisor/dialing")
    assert "预览拨号" in page.locator("#dialing-status").inner_text()
    page.check('input[name="mode"][value="predictive"]')
    page.wait_for_timeout(300)
    _type_target(page, "4")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash >> text=只有管理员可以提高上限")
    assert _settings(site).mode == "preview"  # refused: nothing changed
    page.check('input[name="mode"][value="predictive"]')
    _type_target(page, "2.5")
    page.click('#dialing-form button[type="submit"]')
    page.wait_for_selector(".flash >> text=已保存：预测拨号，放弃率目标 2.5%，上限 3%")
    _sb.shot(page, "dialing")
    page.click("a.tab >> text=配额看板")
    page.wait_for_url(site["url"] + "/supervisor/")
    status = page.locator("#dialing-status")
    status.wait_for()
    assert "预测拨号" in status.inner_text() and "放弃率目标 2.5%，上限 3%" in status.inner_text()
    assert page.locator("#dial-level").count() == 1
    got = _settings(site)
    assert (got.mode, got.target, got.ceiling) == ("predictive", 0.025, 0.03)
    with site["factory"]() as s:
        actions = s.scalars(select(AuditLog.action).where(AuditLog.action.like("study.dialing%"))
                            .order_by(AuditLog.id)).all()
    assert actions == ["study.dialing_refused", "study.dialing"]


def test_an_admin_raises_the_ceiling(page, site):
    page.goto(site["url"] + "/login")
    page.fill("#username", "adm")
    page.fill("#password", "password-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/admin**")
    page.goto(site["url"] + "/supervisor/dialing")
    page.focus('input[name="ceiling"]')
    page.keyboard.press("Control+A")
    page.keyboard.type("5", delay=60)
    _type_target(page, "4")
    page.click('#dialing-form button[type="submit"]')
    page.wait_for_selector(".flash >> text=上限 5%")
    assert (_settings(site).target, _settings(site).ceiling) == (0.04, 0.05)
