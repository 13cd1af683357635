"""The live screens: the event stream (``/supervisor/stream``) and its snapshot cache, the latest board /
interviewers reading of this process shared by every open stream; and the per-app caches of the supervisor
screens."""

from __future__ import annotations

import json
import threading
import time

from flask import Response, current_app, render_template, request, stream_with_context

from cati.services import supervision as sv

from .board import board_args, row_view, totals
from .common import (
    agent_alert,
    bp,
    centre_tz,
    local_text,
    now_utc,
    release_request_tx,
    study_reading,
    tr,
    viewer,
)
from .interviewers import monitoring

#: Live screens poll the database this often (the SSE lag budget is 1 s).
POLL_SECONDS = 0.3


class _Snapshot:
    """The latest board / interviewers reading of this process, shared by every open stream: ten supervisors
    watching cost one query per interval, not ten."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = float("-inf")
        self.value: tuple = (None, None)


_cache_lock = threading.Lock()


def app_cache(name: str) -> dict:
    """A per-app dict in ``app.extensions`` (a new app, e.g. a test's, starts empty)."""
    with _cache_lock:
        return current_app.extensions.setdefault(f"cati.supervisor.{name}", {})


def shared(kind: str, max_age: float) -> tuple:
    """(now, rows) for ``kind`` board | agents, read at most once per ``max_age`` seconds per process."""
    snaps = app_cache("snapshots")
    with _cache_lock:
        snap = snaps.setdefault(kind, _Snapshot())
    with snap.lock:  # one stream reads, the others wait for its result instead of reading again
        if max_age <= 0 or time.monotonic() - snap.at >= max_age * 0.9:
            now = now_utc()
            with study_reading() as (s, study):
                value = (sv.quota_board(s, study, now) if kind == "board"
                         else sv.interviewers_live(s, study, now, tz=centre_tz()))
            snap.value, snap.at = (now, value), time.monotonic()
        return snap.value


@bp.get("/stream")
@viewer
def stream():
    """Server-sent events for the live screens: ``board`` (only the rows that changed since the last event,
    plus totals) and ``agents`` (the interviewers table, re-rendered when anything in it changed).

    Each poll reads in its own short deferred transaction (shared by all streams of the process: :func:`shared`);
    nothing is held while sleeping. The stream ends after
    ``max`` seconds (default 300; EventSource reconnects by itself and gets a full board again).
    """
    release_request_tx()
    what = set((request.args.get("what") or "board").split(","))
    filters = board_args()
    limit = min(float(request.args.get("max", 300)), 3600)
    interval = max(float(request.args.get("interval", POLL_SECONDS)), 0.05)

    def gen():
        last_rows: dict[int, tuple] = {}
        last_agents = None
        started = time.monotonic()
        beat = started
        yield "retry: 1000\n\n"
        while time.monotonic() - started < limit:
            tick = time.monotonic()
            # A stream's first reading is its own: a shared one from before the page loaded could put back
            # values the page already shows newer (e.g. just after an action and its redirect).
            age = interval if last_rows or last_agents is not None else 0.0
            now, rows = shared("board", age) if "board" in what else (now_utc(), [])
            live = shared("agents", age)[1] if "agents" in what else None
            sent = False
            if "board" in what:
                fp = sv.board_fingerprint(rows)
                changed = [r for r in rows if last_rows.get(r.enterprise_id) != fp[r.enterprise_id]]
                if changed:
                    last_rows = fp
                    done_text = tr("done")
                    try:  # the summary cards add up what the page shows: the search and filters apply
                        shown = sv.filter_board(rows, **filters)
                    except ValueError:
                        shown = rows
                    payload = {"rows": [row_view(r, done_text) for r in changed], "totals": totals(shown),
                               "at": local_text(now, "%H:%M:%S"), "sent": time.time()}
                    yield f"event: board\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                    sent = True
            if live is not None:
                key = [(x.user_id, x.status, x.pause_reason, x.case_id, int(x.seconds_in_state) // 5, x.question,
                        agent_alert(x), x.stats.as_dict() if x.stats else None) for x in live]
                if key != last_agents:
                    last_agents = key
                    html = render_template("supervisor/_agents.html", live=live, now=now, monitoring=monitoring())
                    yield f"event: agents\ndata: {json.dumps({'html': html}, ensure_ascii=False)}\n\n"
                    sent = True
            if sent:
                beat = time.monotonic()
            elif time.monotonic() - beat > 15:
                yield ": keep-alive\n\n"
                beat = time.monotonic()
            time.sleep(max(interval - (time.monotonic() - tick), 0.02))

    return Response(stream_with_context(gen()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
