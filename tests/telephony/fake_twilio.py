"""A small threaded HTTP server that answers like the Twilio REST API (the parts we use) and, like
Twilio, posts signed status callbacks to the URLs it was given."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests
from twilio.request_validator import RequestValidator

ACCOUNT = "AC" + "0" * 32
TOKEN = "test-auth-token-0123456789abcdef"


def sid(prefix):
    return prefix + uuid.uuid4().hex


class FakeTwilio:
    """Records every request; scripts call outcomes by destination number.

    scripts: number -> dict(outcome=human|machine|fax|busy|no-answer|failed, ring_s, talk_s, sip)
    Virtual time: Timestamp fields advance by the scripted seconds while real time advances little.
    shuffle: deliver each call's callbacks in reverse order, each twice (fault injection).
    """

    def __init__(self, scripts=None, *, shuffle=False, token=TOKEN, account=ACCOUNT):
        self.scripts = scripts or {}
        self.shuffle = shuffle
        self.token = token
        self.account = account
        self.requests: list[dict] = []
        self.calls: dict[str, dict] = {}
        self.callbacks_sent: list[tuple[str, dict, int]] = []
        self._threads: list[threading.Thread] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(5)

    def wait_idle(self, timeout=10):
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    # -- callbacks ----------------------------------------------------------------------------------
    def _post(self, url, params):
        sig = RequestValidator(self.token).compute_signature(url, params)
        try:
            r = requests.post(url, data=params, headers={"X-Twilio-Signature": sig}, timeout=10)
        except requests.ConnectionError:
            self.callbacks_sent.append((url, params, -1))  # like Twilio: an unreachable app is just logged
            return
        self.callbacks_sent.append((url, params, r.status_code))

    def _lifecycle(self, call):
        script = dict(self.scripts.get(call["to"], {"outcome": "human"}))
        outcome = script.get("outcome", "human")
        t0 = datetime.now(UTC).replace(microsecond=0)
        vt = {"t": t0}
        wanted = set(call["events"])
        out = []

        def emit(status, advance=0.0, **extra):
            vt["t"] = vt["t"] + timedelta(seconds=advance)
            p = {"AccountSid": self.account, "CallSid": call["sid"], "CallStatus": status, "To": call["to"],
                 "From": call["from"], "Direction": "outbound-api", "ApiVersion": "2010-04-01",
                 "Timestamp": format_datetime(vt["t"]), "CallbackSource": "call-progress-events",
                 "SequenceNumber": str(len(out))}
            p.update({k: str(v) for k, v in extra.items()})
            call["status"] = status
            out.append(p)
            if not self.shuffle and wanted_now(p):
                self._post(call["callback"], p)  # in order, as it happens

        final_statuses = {"completed", "busy", "no-answer", "failed", "canceled"}

        def wanted_now(p):
            st = p["CallStatus"]
            return st in final_statuses or {"in-progress": "answered"}.get(st, st) in wanted

        emit("initiated")
        ring = float(script.get("ring_s", 3))
        if outcome in ("busy", "failed"):
            final = {"busy": {}, "failed": {"SipResponseCode": script.get("sip", 404)}}[outcome]
            emit(outcome, 0.5, CallDuration=0, **final)
        else:
            emit("ringing", 0.5)
            if outcome == "no-answer":
                emit("no-answer", min(ring, call["timeout"]), CallDuration=0)
            else:
                answered = {}
                if call.get("machine_detection"):
                    answered["AnsweredBy"] = {"human": "human", "machine": "machine_start", "fax": "fax"}[outcome]
                emit("in-progress", ring, **answered)
                # wait for a hangup from the API or the scripted talk time
                talk = float(script.get("talk_s", 5))
                call["hangup"].wait(float(script.get("real_talk_s", 0.3)))
                emit("completed", talk, CallDuration=int(ring + talk), **answered)
        if self.shuffle:  # fault: everything at the end, in reverse order, twice
            for p in list(reversed([p for p in out if wanted_now(p)])) * 2:
                self._post(call["callback"], p)

    # -- REST ---------------------------------------------------------------------------------------
    def _handler(fake):
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _auth_ok(self):
                want = base64.b64encode(f"{fake.account}:{fake.token}".encode()).decode()
                return self.headers.get("Authorization") == f"Basic {want}"

            def _handle(self, method):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode()) if length else {}
                rec = {"method": method, "path": parts.path, "form": form, "auth": self._auth_ok()}
                fake.requests.append(rec)
                if not rec["auth"]:
                    return self._reply(401, {"code": 20003, "message": "Authenticate", "more_info":
                                             "https://www.twilio.com/docs/errors/20003", "status": 401})
                p = parts.path
                acct = f"/2010-04-01/Accounts/{fake.account}"
                one = {k: v[0] for k, v in form.items()}
                if method == "GET" and p == f"{acct}.json":
                    return self._reply(200, {"sid": fake.account, "status": "active", "friendly_name": "CATI test"})
                if method == "POST" and p == f"{acct}/Calls.json":
                    call = {"sid": sid("CA"), "to": one["To"], "from": one["From"], "status": "queued",
                            "events": form.get("StatusCallbackEvent", []), "callback": one.get("StatusCallback"),
                            "timeout": int(one.get("Timeout", 60)), "machine_detection": one.get("MachineDetection"),
                            "hangup": threading.Event(), "twiml": one.get("Twiml")}
                    fake.calls[call["sid"]] = call
                    if call["callback"] and "leg=respondent" in call["callback"]:
                        t = threading.Thread(target=fake._lifecycle, args=(call,), daemon=True)
                        fake._threads.append(t)
                        t.start()
                    return self._reply(201, {"sid": call["sid"], "account_sid": fake.account, "to": call["to"],
                                             "from": call["from"], "status": "queued",
                                             "date_created": None, "uri": f"{acct}/Calls/{call['sid']}.json"})
                if method == "POST" and p.startswith(f"{acct}/Calls/"):
                    rest = p[len(f"{acct}/Calls/"):]
                    csid = rest.split("/")[0].removesuffix(".json")
                    call = fake.calls.get(csid)
                    if call is None:
                        return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                    if rest.endswith("/Recordings.json"):
                        return self._reply(201, {"sid": sid("RE"), "call_sid": csid, "status": "in-progress"})
                    if "/Recordings/" in rest:
                        return self._reply(200, {"sid": sid("RE"), "call_sid": csid, "status": one.get("Status")})
                    if one.get("Status") in ("completed", "canceled"):
                        call["hangup"].set()
                    return self._reply(200, {"sid": csid, "status": call["status"]})
                if method == "POST" and p.startswith(f"{acct}/Conferences/") and p.endswith("/Participants.json"):
                    name = p[len(f"{acct}/Conferences/"):].split("/")[0]
                    return self._reply(201, {
                        "call_sid": sid("CA"), "conference_sid": "CF" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex,
                        "label": one.get("Label"), "muted": one.get("Muted") == "true",
                        "coaching": one.get("Coaching") == "true", "call_sid_to_coach": one.get("CallSidToCoach"),
                        "status": "queued"})
                return self._reply(404, {"code": 20404, "message": f"no route {p}", "status": 404})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        return H
