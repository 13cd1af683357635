"""A staff member answers the happiness survey on a phone-sized browser (390×844, touch, JavaScript off), from the
link the enterprise's QR code encodes: every question type, a refused empty answer, Back, the server killed and
restarted mid-survey and the survey resumed from the same link, then completes; a personal token cannot be used
twice. The server is the real app under gunicorn (``serve_app.py``) on a SQLite file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import requests
import segno
from sqlalchemy import func, select

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.models import Answer, Interview, InterviewStatus, QuestionTime, Role
from cati.services import cawi
from cati.services.studies import install_study
from tests import factories

from .conftest import SCREENSHOTS, Server

pytestmark = pytest.mark.browser

HAPPY = Path(__file__).resolve().parents[2] / "config" / "studies" / "happiness_index.yaml"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN", "java_script_enabled": False,
         "user_agent": "Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0"}


@pytest.fixture
def survey(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cati.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        study = install_study(s, HAPPY)
        ent = factories.enterprise(s, study, name="幸福呼叫中心")
        token = cawi.create_personal(s, study, ent, 1, user_id=None, now=factories.MONDAY_10AM)[0].token
        factories.user(s, Role.SUPERVISOR, username="sue", password="password-123")
        ent_id = ent.id
    server = Server(db_url, tmp_path / "instance")
    server.start()
    yield {"server": server, "factory": factory, "url": server.url, "enterprise_id": ent_id, "token": token}
    server.stop()
    engine.dispose()


def open_link_from_the_supervisor(survey) -> str:
    """The supervisor makes the enterprise's open link; returns it (the text of the QR code, checked)."""
    s = requests.Session()
    login = s.get(survey["url"] + "/login").text
    csrf = login.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    assert s.post(survey["url"] + "/login", data={"username": "sue", "password": "password-123",
                                                  "csrf_token": csrf}).ok
    page = s.get(survey["url"] + f"/supervisor/web/?enterprise={survey['enterprise_id']}").text
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    s.post(survey["url"] + "/supervisor/web/open", data={"csrf_token": csrf, "enterprise_id": survey["enterprise_id"]})
    rows = list(csv.reader(io.StringIO(s.get(survey["url"] + "/supervisor/web/links.csv").content.decode(
        "utf-8-sig"))))
    link = next(r[3] for r in rows[1:] if r[1] == "企业公开链接")
    listed = s.get(survey["url"] + f"/supervisor/web/?enterprise={survey['enterprise_id']}").text
    inv_id = listed.split('data-kind="open"', 1)[0].rsplit('data-id="', 1)[1].split('"', 1)[0]
    png = s.get(survey["url"] + f"/supervisor/web/{inv_id}/qr.png").content
    expected = io.BytesIO()
    segno.make(link, error="m").save(expected, kind="png", scale=10, border=4)
    assert png == expected.getvalue()  # the QR code on the poster is this link
    return link


def pause(page, ms: int = 120) -> None:
    page.wait_for_timeout(ms)


def tap(page, text: str) -> None:
    """Tap an option by its label, like a thumb."""
    page.locator("label.opt", has_text=text).first.tap()
    pause(page)


def next_page(page, expect: str | None = None) -> None:
    with page.expect_navigation():
        page.locator("button.go").tap()
    if expect:
        assert page.locator("form").get_attribute("action").endswith("/q/" + expect), page.url


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"cawi-{name}.png"), full_page=True)


def test_a_staff_member_answers_on_a_phone_resumes_after_a_restart_and_completes(browser, survey):
    link = open_link_from_the_supervisor(survey)
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.request.resource_type == "document" else None)
    page.goto(link)
    assert "您的单份回答不会提供给您的雇主" in page.inner_text("#privacy")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    shot(page, "welcome")
    next_page(page, "INTRO")
    assert "第 1 / 37 题" in page.inner_text("#pos")
    next_page(page, "P1")  # an info page: read, then Next
    next_page(page)  # nothing chosen: refused, in Chinese, on the same question
    assert page.inner_text("#error") == "请选择一个选项。"
    shot(page, "error")
    tap(page, "26-30岁")
    next_page(page, "P2")
    tap(page, "女")
    next_page(page, "P3")
    tap(page, "已婚未育")
    next_page(page, "P4")
    # Back shows the previous answer; change it and go on
    with page.expect_navigation():
        page.locator("a.back").tap()
    assert page.locator("label.opt", has_text="已婚未育").locator("input").is_checked()
    tap(page, "未婚")
    next_page(page, "P4")
    tap(page, "大学本科")
    next_page(page, "P5")
    tap(page, "不愿透露")  # prefer not to say, on a single choice
    next_page(page, "P6")
    tap(page, "一线坐席（呼入）")
    next_page(page, "P7")
    tap(page, "华南")
    next_page(page, "P8")
    tap(page, "广东")
    next_page(page, "P9")
    tap(page, "其他（请注明）")  # other, please specify: the text is required
    next_page(page, "P9")
    assert "请注明" in page.inner_text("#error")
    page.locator("input[name=other]").focus()
    page.keyboard.type("新能源汽车", delay=40)
    next_page(page, "P10")
    for code in ("P10", "P11", "P12", "P13", "P14"):
        assert page.locator("form").get_attribute("action").endswith("/q/" + code)
        page.locator("label.opt").nth(1).tap()
        pause(page)
        next_page(page)
    for i in range(1, 6):  # rating items H1–H5
        assert page.locator("form").get_attribute("action").endswith(f"/q/H{i}")
        page.locator("label.opt").nth(i % 3).tap()
        pause(page)
        next_page(page)
    shot(page, "rating")
    # The server dies (SIGKILL) while the respondent reads H6, and comes back.
    assert page.locator("form").get_attribute("action").endswith("/q/H6")
    survey["server"].kill()
    survey["server"].start()
    state = ctx.storage_state()  # the phone's browser is closed; its cookies stay on the device
    ctx.close()
    ctx = browser.new_context(**PHONE, storage_state=state)
    page = ctx.new_page()
    page.on("response", lambda r: sizes.append(len(r.body())) if r.request.resource_type == "document" else None)
    page.goto(link)  # scanning the poster again: straight back to the question it stopped at
    assert page.locator("form").get_attribute("action").endswith("/q/H6")
    assert "第 21 / 37 题" in page.inner_text("#pos")
    with page.expect_navigation():
        page.locator("a.back").tap()
    assert page.locator("label.opt").nth(5 % 3).locator("input").is_checked()  # H5's answer kept
    next_page(page, "H6")
    for i in range(6, 16):
        page.locator("label.opt").nth(i % 4).tap()
        pause(page)
        next_page(page)
    # multiple choice, at most 3, with "other, please specify"
    assert page.locator("form").get_attribute("action").endswith("/q/M1")
    for label in ("薪酬或福利上升", "更灵活的班制", "更多的培训", "其他（请注明）"):
        tap(page, label)
    next_page(page, "M1")
    assert "最多选择 3 项" in page.inner_text("#error")
    tap(page, "更多的培训")  # untick one
    page.locator("input[name=other]").focus()
    page.keyboard.type("=HYPERLINK(\"x\")", delay=20)
    next_page(page, "M2")
    shot(page, "multi")
    for _ in ("M2", "M3", "M4"):
        page.locator("label.opt").first.tap()
        pause(page)
        next_page(page)
    assert page.locator("form").get_attribute("action").endswith("/q/O1")
    page.locator("textarea").focus()
    page.keyboard.type("<b>排班太紧</b> 夜班多", delay=30)
    next_page(page, "O2")
    tap(page, "不愿透露")  # an open question declined
    next_page(page, "END")
    shot(page, "end")
    with page.expect_navigation():
        page.locator("button.go").tap()
    assert "感谢您的参与" in page.inner_text("#closed")
    css = len(requests.get(survey["url"] + "/cawi-static/cawi.css").content)
    assert sizes and max(sizes) + css < 50_000, (max(sizes), css)
    # the same phone cannot answer the open link twice
    page.goto(link)
    assert "已在这台设备上完成" in page.inner_text("#closed")
    ctx.close()
    with survey["factory"]() as s:
        iv = s.scalar(select(Interview))
        assert (iv.mode, iv.status) == ("cawi", InterviewStatus.COMPLETE)
        got = dict(s.execute(select(Answer.question_code, func.coalesce(Answer.value_text, Answer.value_code))
                             .where(Answer.interview_id == iv.id)).all())
        assert got["P3"] == 1 and got["P5"] == 99 and got["P9_other"] == "新能源汽车" and got["O2"] == 99
        assert got["O1"] == "<b>排班太紧</b> 夜班多" and got["M1_other"] == '=HYPERLINK("x")'
        assert s.scalar(select(func.count(QuestionTime.id)).where(QuestionTime.interview_id == iv.id)) == 37


def answer_to_the_end(page) -> None:
    """First option on every page (a text where one is asked), to the end."""
    while page.locator("button.go").count():
        if page.locator("textarea").count():
            page.locator("textarea").fill("还好")
        elif page.locator("label.opt").count():
            page.locator("label.opt").first.tap()
        if page.locator("input[name=other]").count() and page.locator("label.opt").first.inner_text().startswith(
                "其他"):
            page.locator("input[name=other]").fill("无")
        with page.expect_navigation():
            page.locator("button.go").tap()


def test_a_personal_token_cannot_be_used_twice(browser, survey):
    link = survey["url"] + "/s/" + survey["token"]
    first = browser.new_context(**PHONE)
    page = first.new_page()
    page.goto(link)
    with page.expect_navigation():
        page.locator("button.go").tap()
    answer_to_the_end(page)
    assert "感谢您的参与" in page.inner_text("#closed")
    first.close()
    for ctx in (browser.new_context(**PHONE), browser.new_context(**{**PHONE, "locale": "en-US"})):
        page = ctx.new_page()
        page.goto(link)
        text = page.inner_text("#closed")
        assert "不能再次作答" in text or "cannot be used again" in text
        assert page.locator("button").count() == 0
        ctx.close()
    with survey["factory"]() as s:
        assert s.scalar(select(func.count(Interview.id))) == 1
