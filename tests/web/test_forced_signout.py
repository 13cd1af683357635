"""A supervisor's "sign out" ends the interviewer's browser session, not only the state shown on the board."""

from __future__ import annotations

from .conftest import csrf_of, login
from .test_supervisor import post, sup_app, sworld  # noqa: F401 - fixtures


def test_supervisor_sign_out_ends_the_interviewers_session(app, sup_app, sworld):  # noqa: F811
    interviewer = app.test_client()
    supervisor = app.test_client()
    login(interviewer, "ann")
    assert interviewer.get("/interviewer").status_code == 200
    login(supervisor, "sue")
    post(supervisor, f"/supervisor/interviewers/{sworld['ann']}/signout", {}, "/supervisor/interviewers")
    resp = interviewer.get("/interviewer")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    # Signing in again works and is not undone by the earlier sign-out.
    login(interviewer, "ann")
    assert interviewer.get("/interviewer").status_code == 200
    assert csrf_of(interviewer, "/interviewer")
