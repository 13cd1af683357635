"""The public web-survey pages (CAWI) through Flask's test client: a whole response on an enterprise's open link,
server validation in the respondent's language, personal tokens used once, duplicates on an open link refused and
counted, rate limits, security headers, page size, escaping, and the supervisor's links + QR codes."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cati.db import transaction
from cati.models import Answer, Interview, InterviewStatus, Invitation, QuestionTime, Role, WebResponse
from cati.services import cawi
from cati.services.studies import install_study
from tests import factories
from tests.web.conftest import csrf_of, fast_user, login

HAPPY = Path(__file__).resolve().parents[2] / "config" / "studies" / "happiness_index.yaml"
CSS = Path(__file__).resolve().parents[2] / "cati" / "web" / "static" / "cawi.css"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ACTION = re.compile(r'<form method="post" action="(/s/[^"]+)"')

#: One answer per question, as the form sends it (value may repeat for multiple choice).
FORM = {
    "INTRO": {}, **{f"P{i}": {"value": "2"} for i in range(1, 15)}, "P8": {"value": "44"}, "P5": {"value": "99"},
    "P9": {"value": "97", "other": "=HYPERLINK(\"http://evil.example\",\"x\")"},
    **{f"H{i}": {"value": str(1 + i % 5)} for i in range(1, 16)},
    "M1": {"value": ["1", "97"], "other": "+cmd|' /C calc'!A0"}, "M2": {"value": ["2", "3"]},
    "M3": {"value": ["1"]}, "M4": {"value": ["2"]}, "O1": {"value": "=1+2"}, "O2": {"value": "@SUM(A1:A9)"},
    "END": {},
}


@pytest.fixture
def web(app, session_factory):
    """The happiness study, one enterprise with its open link and two personal tokens, and a supervisor."""
    with transaction(session_factory) as s:
        study = install_study(s, HAPPY)
        ent = factories.enterprise(s, study, name="幸福呼叫中心")
        now = factories.MONDAY_10AM
        open_inv = cawi.open_invitation(s, study, ent, user_id=None, now=now)
        tokens = cawi.create_personal(s, study, ent, 2, user_id=None, now=now)
        fast_user(s, "sue", Role.SUPERVISOR)
        fast_user(s, "ann", Role.INTERVIEWER)
        return {"study_id": study.id, "enterprise_id": ent.id, "open": open_inv.token,
                "tokens": [t.token for t in tokens], "open_id": open_inv.id}


class Respondent:
    """A phone: one test client (its own cookies), posting the forms the pages show."""

    def __init__(self, app, token: str, **headers):
        self.client = app.test_client()
        self.token = token
        self.headers = headers
        self.pages: list[tuple[str, int]] = []

    def get(self, path: str, **kw):
        r = self.client.get(path, headers=self.headers, **kw)
        self.pages.append((path, len(r.data)))
        return r

    def start(self):
        page = self.get(f"/s/{self.token}")
        assert page.status_code == 200, page.get_data(as_text=True)
        token = CSRF_FIELD.search(page.get_data(as_text=True)).group(1)
        return self.client.post(f"/s/{self.token}/start", data={"csrf_token": token}, headers=self.headers)

    def current(self):
        """The page the respondent is on now (following the redirects from the link)."""
        r = self.get(f"/s/{self.token}", follow_redirects=False)
        while r.status_code in (302, 303):
            r = self.get(r.headers["Location"])
        return r

    def send(self, page, data: dict):
        html = page.get_data(as_text=True)
        action = ACTION.search(html).group(1)
        form = {"csrf_token": CSRF_FIELD.search(html).group(1), **data}
        return self.client.post(action, data=form, headers=self.headers)

    def code_of(self, page) -> str:
        return ACTION.search(page.get_data(as_text=True)).group(1).rsplit("/", 1)[1]

    def answer_all(self, plan: dict = FORM, stop_before: str | None = None):
        page = self.current()
        while True:
            code = self.code_of(page)
            if code == stop_before:
                return page
            r = self.send(page, plan[code])
            assert r.status_code == 303, (code, r.status_code, r.get_data(as_text=True)[:2000])
            if r.headers["Location"].endswith("/done"):
                return self.get(r.headers["Location"])
            page = self.get(r.headers["Location"])


def test_a_whole_response_on_the_open_link_is_stored_in_the_interview_tables(app, web, session_factory):
    phone = Respondent(app, web["open"])
    first = phone.get(f"/s/{web['open']}")
    html = first.get_data(as_text=True)
    assert "不会提供给您的雇主" in html and "少于 5 人" in html and "幸福呼叫中心" in html
    assert phone.start().status_code == 303
    done = phone.answer_all()
    assert "感谢您的参与" in done.get_data(as_text=True)
    css = len(CSS.read_bytes())
    assert max(n for _, n in phone.pages) + css < 50_000, sorted(phone.pages, key=lambda p: -p[1])[:3]
    with session_factory() as s:
        iv = s.scalar(select(Interview).where(Interview.mode == "cawi"))
        assert iv.status == InterviewStatus.COMPLETE and iv.interviewer_id is None
        got = dict(s.execute(select(Answer.question_code, func.coalesce(Answer.value_text, ""))
                             .where(Answer.interview_id == iv.id)).all())
        assert got["O1"] == "=1+2" and got["M1"] == "1,97" and got["P9_other"].startswith("=HYPERLINK")
        timed = set(s.scalars(select(QuestionTime.question_code).where(QuestionTime.interview_id == iv.id)))
        assert timed == set(FORM)  # every page's time, info pages included
        assert s.scalar(select(WebResponse.total_seconds)) >= 0
    # the supervisor's board counts the web complete, by mode
    sup = app.test_client()
    login(sup, "sue")
    board = sup.get("/supervisor/").get_data(as_text=True)
    assert re.search(r'<dd id="by-mode">电话 0 · 网络 1</dd>', board)


def test_every_page_shows_progress_and_back_goes_to_the_previous_answer(app, web):
    phone = Respondent(app, web["open"])
    phone.start()
    page = phone.answer_all(stop_before="P3")
    html = page.get_data(as_text=True)
    assert "第 4 / 37 题" in html and '<progress max="37" value="3">' in html
    back = re.search(r'<a class="back" href="([^"]+)"', html).group(1)
    assert back.endswith("/q/P2")
    prev = phone.get(back).get_data(as_text=True)
    assert 'value="2" checked' in prev  # the answer given, shown again
    # changing it there and going on lands on P3 again
    r = phone.send(phone.get(back), {"value": "1"})
    assert r.headers["Location"].endswith("/q/P3")
    # skipping ahead by hand is not possible: the page of a later question redirects to the current one
    r = phone.get(f"/s/{web['open']}/q/H1")
    assert r.status_code == 303 and r.headers["Location"].endswith("/q/P3")


@pytest.mark.parametrize("headers,params,texts", [
    ({}, "", ["请选择一个选项", "最多选择 3 项", "请注明", "最多 500"]),
    ({"Accept-Language": "en-GB,en;q=0.9"}, "", ["Please choose one option", "choose at most 3", "please specify",
                                                  "at most 500"]),
    ({"Accept-Language": "en"}, "?lang=zh-CN", ["请选择一个选项", "最多选择 3 项", "请注明", "最多 500"]),
])
def test_invalid_answers_are_refused_with_a_message_in_the_respondents_language(app, web, session_factory,
                                                                               headers, params, texts):
    phone = Respondent(app, web["open"], **headers)
    if params:
        phone.get(f"/s/{web['open']}{params}")
    phone.start()
    page = phone.answer_all(stop_before="P1")
    r = phone.send(page, {})  # nothing chosen
    assert r.status_code == 422 and texts[0] in r.get_data(as_text=True)
    page = phone.answer_all(stop_before="M1")
    r = phone.send(page, {"value": ["1", "2", "3", "4"]})
    assert r.status_code == 422 and texts[1] in r.get_data(as_text=True)
    assert r.get_data(as_text=True).count("checked") == 4  # the choices stay ticked to correct them
    r = phone.send(page, {"value": ["97"], "other": "   "})
    assert r.status_code == 422 and texts[2] in r.get_data(as_text=True)
    page = phone.answer_all(stop_before="O1")
    r = phone.send(page, {"value": "字" * 501})
    assert r.status_code == 422 and texts[3] in r.get_data(as_text=True)
    assert "字" * 501 in r.get_data(as_text=True)  # the text is not lost: it is on the page to shorten
    with session_factory() as s:
        iv = s.scalar(select(Interview))
        assert iv.current_question == "O1"
        assert s.scalar(select(func.count(Answer.id)).where(Answer.question_code == "O1")) == 0


def test_a_personal_token_answers_once(app, web, session_factory):
    token = web["tokens"][0]
    phone = Respondent(app, token)
    assert phone.start().status_code == 303
    phone.answer_all(stop_before="H1")
    # the same link on another phone resumes the same response (resume from the token link)
    other = Respondent(app, token)
    assert other.code_of(other.current()) == "H1"
    other.answer_all()
    # done: the link is used, on any device
    for who in (phone, Respondent(app, token)):
        r = who.get(f"/s/{token}")
        assert r.status_code == 409 and "不能再次作答" in r.get_data(as_text=True)
        assert 'action="/s/' not in r.get_data(as_text=True)
    third = Respondent(app, token)
    r = third.client.post(f"/s/{token}/start", data={"csrf_token": csrf_of_page(third.client, f"/s/{web['open']}")})
    assert r.status_code == 409
    with session_factory() as s:
        assert s.scalar(select(func.count(Interview.id))) == 1
        assert s.scalar(select(Invitation.interview_id).where(Invitation.token == token)) is not None


def csrf_of_page(client, path):
    return CSRF_FIELD.search(client.get(path).get_data(as_text=True)).group(1)


def test_duplicates_on_the_open_link_are_refused_and_counted(app, web, session_factory):
    phone = Respondent(app, web["open"])
    phone.start()
    phone.answer_all()
    r = phone.get(f"/s/{web['open']}")
    assert r.status_code == 409 and "已在这台设备上完成" in r.get_data(as_text=True)
    # a hand-made start from the same device is refused too (the form's token from another page of its session)
    token = csrf_of_page(phone.client, f"/s/{web['tokens'][1]}")
    r = phone.client.post(f"/s/{web['open']}/start", data={"csrf_token": token})
    assert r.status_code == 409
    # a colleague on another phone answers
    colleague = Respondent(app, web["open"])
    assert colleague.start().status_code == 303
    with session_factory() as s:
        blocked = s.scalar(select(Invitation.duplicates_blocked).where(Invitation.id == web["open_id"]))
        assert blocked == 2
        assert s.scalar(select(func.count(Interview.id))) == 2
    # the supervisor sees the count
    sup = app.test_client()
    login(sup, "sue")
    page = sup.get("/supervisor/web/").get_data(as_text=True)
    row = re.search(rf'<tr data-id="{web["open_id"]}".*?</tr>', page, re.S).group(0)
    assert f'<td class="dups">{blocked}</td>' in row


def test_rate_limits_per_address_and_per_link(db_url, tmp_path, web):
    from cati.app import create_app

    app = create_app({"database_url": db_url, "instance_path": tmp_path / "i2", "testing": True,
                      "secret_key": "test-secret", "cawi_rate_limit_ip": "100 per minute",
                      "cawi_rate_limit_token": "4 per minute"})
    phone = Respondent(app, web["open"])
    assert phone.get(f"/s/{web['open']}").status_code == 200  # the first visit gets the device cookie
    codes = [phone.get(f"/s/{web['open']}").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # 4 a minute on this link from this device
    r = phone.get(f"/s/{web['open']}")
    assert "请求过于频繁" in r.get_data(as_text=True) and "Retry-After" in r.headers
    assert Respondent(app, web["tokens"][0]).get(f"/s/{web['tokens'][0]}").status_code == 200  # another link
    app2 = create_app({"database_url": db_url, "instance_path": tmp_path / "i3", "testing": True,
                       "secret_key": "test-secret", "cawi_rate_limit_ip": "3 per minute"})
    codes = [Respondent(app2, t).get(f"/s/{t}").status_code for t in [web["open"], *web["tokens"], web["open"]]]
    assert codes == [200, 200, 200, 429]  # the address is over its limit, whichever link it opens
    assert app2.test_client().get("/login").status_code == 200  # only the public survey pages are limited


def test_public_pages_send_security_headers_and_escape_answers(app, web):
    phone = Respondent(app, web["open"])
    r = phone.get(f"/s/{web['open']}")
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in r.get_data(as_text=True)
    phone.start()
    page = phone.answer_all(stop_before="O1")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    phone.send(page, {"value": evil})
    html = phone.get(f"/s/{web['open']}/q/O1").get_data(as_text=True)
    assert evil not in html and "&lt;script&gt;alert(" in html
    assert phone.get("/s/not-a-real-token").status_code == 404


def test_supervisor_makes_links_and_qr_codes(app, web, session_factory):
    sup = app.test_client()
    login(sup, "sue")
    page = sup.get(f"/supervisor/web/?enterprise={web['enterprise_id']}").get_data(as_text=True)
    assert web["open"] in page and "完成：电话访问 0 份，网络自填 0 份" in page
    token = csrf_of(sup, "/supervisor/web/")
    r = sup.post("/supervisor/web/personal", data={"csrf_token": token, "enterprise_id": web["enterprise_id"],
                                                   "n": "3", "label": "=A1 夜班"})
    assert r.status_code == 302
    r = sup.post("/supervisor/web/personal", data={"csrf_token": token, "enterprise_id": web["enterprise_id"],
                                                   "n": "0"})
    assert "1 到 1000" in sup.get(r.headers["Location"]).get_data(as_text=True)
    with session_factory() as s:
        invs = s.scalars(select(Invitation).where(Invitation.kind == "personal")).all()
        assert len(invs) == 5
        fresh = invs[-1]
    svg = sup.get(f"/supervisor/web/{fresh.id}/qr.svg")
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data[:200]
    png = sup.get(f"/supervisor/web/{fresh.id}/qr.png?download=1")
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n" and "attachment" in png.headers["Content-Disposition"]
    import segno

    expected = io.BytesIO()
    segno.make(f"http://localhost/s/{fresh.token}", error="m").save(expected, kind="png", scale=10, border=4)
    assert png.data == expected.getvalue()  # the QR code of the link itself
    old = fresh.token
    r = sup.post(f"/supervisor/web/{fresh.id}/regenerate", data={"csrf_token": token})
    assert r.status_code == 302
    assert app.test_client().get(f"/s/{old}").status_code == 404
    rows = list(csv.reader(io.StringIO(sup.get("/supervisor/web/links.csv").data.decode("utf-8-sig"))))
    assert rows[0][0] == "企业" and len(rows) == 1 + 6
    assert {r[2] for r in rows[1:]} >= {"'=A1 夜班"}  # a formula-like label stays text
    assert all(r[3].startswith("http://localhost/s/") for r in rows[1:])
    # every QR code of the enterprise in one ZIP, for the print shop or a chat
    import zipfile

    page = sup.get(f"/supervisor/web/?enterprise={web['enterprise_id']}").get_data(as_text=True)
    zip_url = re.search(r'href="([^"]+)" id="qr-zip"', page).group(1).replace("&amp;", "&")
    z = zipfile.ZipFile(io.BytesIO(sup.get(zip_url).data))
    pngs = [n for n in z.namelist() if n.endswith(".png")]
    assert len(pngs) == 6 and all(z.read(n)[:4] == b"\x89PNG" for n in pngs)
    listed = list(csv.reader(io.StringIO(z.read("links.csv").decode("utf-8-sig"))))
    assert sorted(r[3] for r in listed[1:]) == sorted(pngs)
    # interviewers may not see it; anonymous visitors are sent to sign in
    assert app.test_client().get("/supervisor/web/").status_code == 302
    ann = app.test_client()
    login(ann, "ann")
    assert ann.get("/supervisor/web/").status_code == 403
    assert ann.get(f"/supervisor/web/{fresh.id}/qr.png").status_code == 403


def test_a_screened_out_respondent_sees_the_end_once(app, study, session_factory):
    """A route that terminates (the CSAT script's screening question) ends the web response with its thanks; the
    link then says it was answered instead of starting over."""
    with transaction(session_factory) as s:
        ent = factories.enterprise(s, s.merge(study))
        token = cawi.open_invitation(s, s.merge(study), ent, user_id=None, now=factories.MONDAY_10AM).token
    phone = Respondent(app, token)
    phone.start()
    r = phone.send(phone.current(), {})  # INTRO
    r = phone.send(phone.get(r.headers["Location"]), {"value": "1"})  # CONSENT yes
    r = phone.send(phone.get(r.headers["Location"]), {"value": "2"})  # S1: no call in the period
    assert r.headers["Location"].endswith("/done")
    assert "问卷在此结束" in phone.get(r.headers["Location"]).get_data(as_text=True)
    again = phone.get(f"/s/{token}")
    assert again.status_code == 409 and 'action="/s/' not in again.get_data(as_text=True)
    with session_factory() as s:
        assert s.scalar(select(Interview.status)) == InterviewStatus.TERMINATED


def test_an_expired_page_asks_again_instead_of_failing(app, web, session_factory):
    """A form sent with a stale or missing CSRF token (a page left open for hours) saves nothing and shows the same
    question again, saying why."""
    phone = Respondent(app, web["open"])
    phone.start()
    page = phone.answer_all(stop_before="P1")
    r = phone.client.post(f"/s/{web['open']}/q/P1", data={"csrf_token": "stale", "value": "2"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/q/P1?expired=1")
    html = phone.get(r.headers["Location"]).get_data(as_text=True)
    assert "已过期" in html and 'name="value" value="2" checked' not in html
    assert phone.send(page, {"value": "2"}).headers["Location"].endswith("/q/P2")  # the fresh form works
    with session_factory() as s:
        assert s.scalar(select(func.count(Answer.id)).where(Answer.question_code == "P1")) == 1
