"""A synthetic web wave of the staff happiness index (``cati demo --study happiness_index``).

The wave's answers are drawn once by :func:`scoring.synthetic.make_happiness_responses` (enterprises, their
industries and provinces, every respondent's answers). Then:

* **web respondents** answer through the real web pages: each is a Flask test client (the app's WSGI interface
  in-process, its own cookie jar, so its own device) that opens its enterprise's open link, reads the CSRF token
  from the page, presses Start and posts every question's form as the page shows it, following the redirects
  until the thank-you page. Their answers are stored by the endpoints (validation, routing, timings, QC flags),
  exactly as a phone's would be. They are taken round-robin over the enterprises.
* **the other respondents** of the wave are *not* pretended to be web answers: they never enter the database.
  They join the web responses read back from the database only in the frame that is scored and reported, with
  ``mode = "synthetic"`` on their rows, and the summary says how many of each there are.

Why a share: one whole response is 40 pages (about 80 requests); on this 2-core machine in-process that is
about 1 s of CPU per respondent, so 40,000 respondents through the pages would take about 11 hours. The demo
sends as many as fit its time (``web_respondents``), and the rest of the 40,000 are scored from the file.
All respondents come from one client address here, so the demo raises the per-address rate limit for its own app.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

HAPPY_STUDY = Path(__file__).resolve().parents[2] / "config" / "studies" / "happiness_index.yaml"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ACTION = re.compile(r'<form method="post" action="(/s/[^"]+)"')


class WaveError(RuntimeError):
    """A web respondent's page did not behave (an unexpected status or page): the wave stops and says where."""


@dataclass
class WaveResult:
    study_id: int
    enterprises: int
    planned: pd.DataFrame                 # every respondent's planned answers (file contract)
    web_ids: list[str]                    # respondent_id of the plan rows answered through the pages
    provinces: dict[str, str] = field(default_factory=dict)
    web_seconds: float = 0.0
    requests: int = 0
    answer_posts: int = 0
    post_ms: list[float] = field(default_factory=list)

    @property
    def web_share(self) -> float:
        return len(self.web_ids) / max(1, len(self.planned))


def _questions(study: dict) -> dict[str, dict]:
    return {str(q["code"]): q for q in study.get("questions") or [] if isinstance(q, dict) and "code" in q}


def _blank(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v)


def form_for(q: dict, row: pd.Series, prefer_code: int = 99) -> dict[str, Any]:
    """The form a respondent with the planned answers ``row`` sends on the page of question ``q``."""
    code, kind = str(q["code"]), q.get("type")
    if kind == "info":
        return {}
    v = row.get(code)
    if kind == "open":
        if _blank(v) or str(v) == str(prefer_code):
            return {"prefer": "1"} if q.get("prefer_not") else {"value": ""}
        return {"value": str(v)}
    if kind == "multi":
        values = [p for p in re.split(r"[,;\s]+", "" if _blank(v) else str(v)) if p]
        data: dict[str, Any] = {"value": values}
    else:
        data = {"value": str(int(float(v))) if not _blank(v) else ""}
    other = row.get(f"{code}_other")
    if q.get("other_code") is not None and str(q["other_code"]) in (data["value"] if kind == "multi"
                                                                    else [data["value"]]):
        data["other"] = "" if _blank(other) else str(other)
    return data


def _get_or_create_industry(session, name: str):
    from sqlalchemy import select

    from cati.models import Industry

    row = session.scalar(select(Industry).where(Industry.name == name))
    if row is None:
        row = Industry(name=name)
        session.add(row)
        session.flush()
    return row


def setup_wave(factory, plan: pd.DataFrame, study_file: Path = HAPPY_STUDY
               ) -> tuple[int, dict[str, str], dict[str, str]]:
    """Install the study, its enterprises (from the plan) and their open links; → (study id, enterprise id →
    link token, enterprise id → province)."""
    from cati.db import transaction
    from cati.models import Enterprise
    from cati.services import cawi
    from cati.services.studies import install_study

    study_map = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    provinces = {int(k): (v.get("zh-CN") if isinstance(v, dict) else str(v))
                 for k, v in ((study_map.get("scales") or {}).get("province") or {}).get("labels", {}).items()}
    firsts = plan.groupby("enterprise_id", sort=True).first()
    tokens: dict[str, str] = {}
    where: dict[str, str] = {}
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    with transaction(factory) as s:
        study = install_study(s, study_file)
        per = int(plan.groupby("enterprise_id").size().max())
        for eid, r in firsts.iterrows():
            ent = Enterprise(study_id=study.id, external_id=str(eid), name=str(r["enterprise_name"]),
                             industry_id=_get_or_create_industry(s, str(r["industry"])).id,
                             province=provinces.get(int(r["P8"]), str(r["P8"])), quota_target=per, completes=0)
            s.add(ent)
            s.flush()
            where[str(eid)] = ent.province
            tokens[str(eid)] = cawi.open_invitation(s, study, ent, user_id=None, now=now).token
        study_id = study.id
    return study_id, tokens, where


def pick_web(plan: pd.DataFrame, n: int) -> list[str]:
    """``n`` respondents, round-robin over the enterprises (the first of each, then the second …)."""
    order = plan.assign(_k=plan.groupby("enterprise_id").cumcount()).sort_values(["_k", "enterprise_id"])
    return order["respondent_id"].head(max(0, int(n))).tolist()


class WebRespondent:
    """One phone: a test client with its own cookies answering the whole questionnaire through the pages."""

    def __init__(self, app, token: str, questions: dict[str, dict], row: pd.Series, stats: WaveResult):
        self.client = app.test_client()
        self.token = token
        self.questions = questions
        self.row = row
        self.stats = stats

    def _get(self, path: str):
        self.stats.requests += 1
        r = self.client.get(path)
        if r.status_code != 200:
            raise WaveError(f"GET {path}: HTTP {r.status_code}")
        return r.get_data(as_text=True)

    def _post(self, path: str, data: dict):
        self.stats.requests += 1
        t = time.perf_counter()
        r = self.client.post(path, data=data)
        self.stats.post_ms.append(1000 * (time.perf_counter() - t))
        return r

    def run(self) -> None:
        html = self._get(f"/s/{self.token}")
        r = self._post(f"/s/{self.token}/start", {"csrf_token": _CSRF.search(html).group(1)})
        if r.status_code != 303:
            raise WaveError(f"start {self.token}: HTTP {r.status_code}")
        location = r.headers["Location"]
        while not location.endswith("/done"):
            html = self._get(location)
            m = _ACTION.search(html)
            if m is None:
                raise WaveError(f"{location}: no question form on the page")
            action = m.group(1)
            code = action.rsplit("/", 1)[1]
            form = {"csrf_token": _CSRF.search(html).group(1), **form_for(self.questions[code], self.row)}
            r = self._post(action, form)
            self.stats.answer_posts += 1
            if r.status_code != 303:
                body = r.get_data(as_text=True)
                err = re.search(r'class="error"[^>]*>(.*?)<', body, re.S)
                raise WaveError(f"respondent {self.row['respondent_id']} question {code}: HTTP {r.status_code} "
                                f"{err.group(1).strip() if err else ''}")
            location = r.headers["Location"]
        self._get(location)


def run_web_wave(database_url: str, instance_path: Path, plan: pd.DataFrame, web_ids: list[str], *,
                 study_file: Path = HAPPY_STUDY, progress: Callable[[int], None] | None = None,
                 seconds: float | None = None) -> WaveResult:
    """Set up the study and answer ``web_ids`` of ``plan`` through the pages, in order; with ``seconds``, stop
    starting new respondents once that much time is spent (at least one answers). ``result.web_ids`` lists
    those who answered."""
    from cati.app import create_app
    from cati.db import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        study_id, tokens, provinces = setup_wave(make_sessionmaker(engine), plan, study_file)
    finally:
        engine.dispose()
    study_map = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    questions = _questions(study_map)
    app = create_app({"database_url": database_url, "instance_path": instance_path,
                      "secret_key": "cati-demo-happiness", "cawi_rate_limit_ip": "1000000 per minute"})
    result = WaveResult(study_id=study_id, enterprises=len(tokens), planned=plan, web_ids=list(web_ids),
                        provinces=provinces)
    rows = plan.set_index("respondent_id", drop=False)
    t0 = time.perf_counter()
    done: list[str] = []
    for rid in web_ids:
        if seconds is not None and done and time.perf_counter() - t0 >= seconds:
            break
        row = rows.loc[rid]
        WebRespondent(app, tokens[str(row["enterprise_id"])], questions, row, result).run()
        done.append(rid)
        if progress:
            progress(1)
    result.web_ids = done
    result.web_seconds = time.perf_counter() - t0
    app.extensions["cati.db"]["engine"].dispose()
    return result


def wave_frame(db_responses: pd.DataFrame, plan: pd.DataFrame, web_ids: list[str], provinces: dict[str, str]
               ) -> pd.DataFrame:
    """The frame that is scored: the web responses as the database has them, then the plan's other respondents
    (``mode = "synthetic"``, never stored as web answers)."""
    rest = plan[~plan["respondent_id"].isin(set(web_ids))].copy()
    rest["mode"] = "synthetic"
    rest["status"] = "complete"
    rest["province"] = rest["enterprise_id"].astype(str).map(provinces)
    web = db_responses.copy()
    web["respondent_id"] = web["respondent_id"].astype(str).radd("web-")
    return pd.concat([web, rest], ignore_index=True, sort=False)
