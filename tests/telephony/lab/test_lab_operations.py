"""Against the real lab: supervisors monitoring a live call, Asterisk restarted mid-call, two PBXs, test-call."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from cati.models.calls import AttemptStatus, CallAttempt
from cati.telephony.base import MonitorBusy, TelephonyError
from cati.telephony.dialer import BatchingEventSink, dial_and_commit
from cati.telephony.factory import backend_from_env
from cati.telephony.lab import BEHAVIOURS, BUSY_PHONE, SCENARIOS, UNREACHABLE_PHONE, EventWorkerProcess
from cati.telephony.testcall import run_test_call, scratch_case

from .conftest import backend_for


def wait_until(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def attempt_of(factory, call_id):
    with factory() as s:
        return s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))


def live_call(backend, factory, number, extension, **kw):
    """Dial like the console and wait until the respondent is connected (AMD said HUMAN)."""
    case = scratch_case(factory, number, extension)
    call_id = dial_and_commit(factory, backend, case.case_id, case.phone_id, case.interviewer_id, extension,
                              machine_detection=True, **kw)
    wait_until(lambda: (attempt_of(factory, call_id) or CallAttempt()).machine_detection == "HUMAN", 20,
               "the respondent to be connected")
    return call_id


def spy_channels(lab, pbx=None):
    return [c for c in lab.channels(pbx) if "900" in c.split("@")[0]]


def test_monitoring_one_session_per_supervisor_and_no_spy_leg_outlives_the_call(lab, scratch):
    _, _, factory = scratch
    backend = backend_for(lab)
    sink = BatchingEventSink(factory)
    backend.subscribe(sink)
    other = backend_for(lab, events=False, client="asterisk-ami")  # another web worker, events off
    try:
        call_id = live_call(backend, factory, BEHAVIOURS["long_call"], "1012")
        backend.monitor(call_id, "9001", "listen")
        wait_until(lambda: backend.monitors(), what="the spy leg")
        assert [(m["supervisor_extension"], m["call_id"], m["mode"]) for m in backend.monitors()] == \
            [("9001", call_id, "listen")]

        # A new mode replaces the old one: still one session for 9001, now whisper. Started by another process,
        # seen by every process (the PBX is the truth).
        other.monitor(call_id, "9001", "whisper")
        time.sleep(1.0)
        sessions = [(m["supervisor_extension"], m["call_id"], m["mode"]) for m in backend.monitors()]
        assert sessions == [("9001", call_id, "whisper")], sessions
        # A second supervisor may not barge in at the same time: one monitoring session per call.
        with pytest.raises(MonitorBusy):
            backend.monitor(call_id, "9002", "barge")
        assert [(m["supervisor_extension"], m["mode"]) for m in other.monitors()] == [("9001", "whisper")]
        # Stop ends 9001's session, whoever started it; then the second supervisor can barge.
        assert backend.stop_monitor("9001") == 1
        wait_until(lambda: not other.monitors(), what="9001's spy leg to end")
        backend.monitor(call_id, "9002", "barge")
        wait_until(lambda: other.monitors(), what="9002's spy leg")
        assert [(m["supervisor_extension"], m["mode"]) for m in other.monitors()] == [("9002", "barge")]
        # The call ends (the interviewer hangs up): the remaining spy leg goes with it.
        backend.hangup(call_id)
        wait_until(lambda: attempt_of(factory, call_id).status == AttemptStatus.ENDED, what="the call to end")
        time.sleep(3.0)
        assert backend.live_legs(call_id) == []
        assert spy_channels(lab, lab.pbxes[0]) == []
        assert backend.monitors() == []
    finally:
        other.close()
        backend.close()
        sink.close()


def test_monitoring_refuses_a_call_that_is_not_live(lab):
    backend = backend_for(lab)
    try:
        with pytest.raises(TelephonyError, match="not live"):
            backend.monitor("00000000-0000-0000-0000-000000000000", "9001", "listen")
    finally:
        backend.close()


@pytest.mark.parametrize("shape", ["in-process", "worker"])
@pytest.mark.parametrize("client", ["panoramisk", "asterisk-ami"])
def test_asterisk_restarted_mid_call(own_lab, scratch, client, shape, tmp_path):
    """kill -9 of the PBX during a conversation: the backend (or the event worker) reconnects, the lost call
    ends with cause 41, nothing is left up, and the next call works."""
    from .conftest import Worker

    _, url, factory = scratch
    backend = backend_for(own_lab, client=client, backoff=(0.2, 1.0), events=(shape == "in-process"))
    sink = worker = None
    if shape == "in-process":
        sink = BatchingEventSink(factory)
        backend.subscribe(sink)
    else:
        worker = Worker(own_lab, url, tmp_path, client=client)
    try:
        call_id = live_call(backend, factory, BEHAVIOURS["long_call"], "1013")
        started = time.monotonic()
        own_lab.restart(own_lab.pbxes[0])
        wait_until(lambda: backend.reconnects >= 1 and backend.connected.is_set(), 30, "the reconnect")
        reconnect_s = time.monotonic() - started
        if sink is not None:
            sink.flush()
        a = wait_until(lambda: (lambda x: x if x.status == AttemptStatus.ENDED else None)(attempt_of(factory, call_id)),
                       10, "the lost call to end")
        assert a.hangup_cause == 41
        assert "lost" in (a.hangup_cause_text or "")
        assert own_lab.channels() == []
        assert reconnect_s < 15
        r = run_test_call(backend, factory, BEHAVIOURS["busy"], "1013", store_events=False, legs_grace=1)
        assert (r.outcome, r.ended, r.legs_left) == ("3.12", True, 0), r.line()
    finally:
        backend.close()
        if sink is not None:
            sink.close()
        if worker is not None:
            worker.stop()


def _two_pbx_env(lab, client="panoramisk"):
    p1, p2 = lab.pbxes
    env = {k: v for k, v in lab.ami_env(0, client=client).items() if k not in ("CATI_AMI_HOST", "CATI_AMI_PORT")}
    env["CATI_AMI_PBXES"] = (f"pbx1 127.0.0.1:{p1.ami_port} 1001-1020,9001-9002; "
                             f"pbx2 127.0.0.1:{p2.ami_port} 1021-1040,9003-9005,{BUSY_PHONE}")
    return env


def test_two_pbxs_each_call_on_its_interviewers_pbx(lab, scratch):
    directory, url, factory = scratch
    env = _two_pbx_env(lab)
    backend = backend_from_env(env, events=False)  # web workers: action-only, one connection per PBX
    workers = []
    try:
        for name in ("pbx1", "pbx2"):  # one event worker per PBX
            workers.append(EventWorkerProcess(lab, url, directory, env=env, pbx=name, reconcile_every=2))

        on_pbx = {}

        def watch(call_ext):
            # while the call is up, its channels are on the interviewer's PBX and on no other
            number, ext = call_ext
            pbx1, pbx2 = lab.pbxes
            for _ in range(100):
                c1 = [c for c in lab.channels(pbx1) if f"/{ext}" in c]
                c2 = [c for c in lab.channels(pbx2) if f"/{ext}" in c]
                if c1 or c2:
                    on_pbx[ext] = ("pbx1" if c1 else "") + ("pbx2" if c2 else "")
                    return
                time.sleep(0.05)

        results = {}

        def call(key, number, ext):
            results[key] = run_test_call(backend, factory, number, ext, store_events=False, hangup_after=1)

        threads = [threading.Thread(target=call, args=("a", BEHAVIOURS["person"], "1001")),
                   threading.Thread(target=call, args=("b", BEHAVIOURS["machine"], "1021")),
                   threading.Thread(target=call, args=("c", BEHAVIOURS["busy"], "1022")),
                   threading.Thread(target=watch, args=((None, "1001"),)),
                   threading.Thread(target=watch, args=((None, "1021"),))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert on_pbx == {"1001": "pbx1", "1021": "pbx2"}
        assert (results["a"].amd, results["a"].outcome, results["a"].ended) == ("HUMAN", None, True), results["a"].line()
        assert results["b"].outcome == "3.14", results["b"].line()
        assert results["c"].outcome == "3.12", results["c"].line()
        for r in results.values():
            assert r.legs_left == 0, r.line()
        assert attempt_of(factory, results["a"].call_id).backend == "asterisk:pbx1"
        assert attempt_of(factory, results["b"].call_id).backend == "asterisk:pbx2"

        # A supervisor monitors a call on their own PBX; a phone on the other PBX is told why it can't.
        sink_backend = backend_from_env(env)
        sink = BatchingEventSink(factory)
        sink_backend.subscribe(sink)
        try:
            call_id = live_call(sink_backend, factory, BEHAVIOURS["long_call"], "1023")
            with pytest.raises(TelephonyError, match="pbx2"):
                sink_backend.monitor(call_id, "9001", "listen")
            assert sink_backend.monitor(call_id, "9003", "listen").startswith("spy-9003-")
            sink_backend.hangup(call_id)
            wait_until(lambda: attempt_of(factory, call_id).status == AttemptStatus.ENDED, what="the end")
        finally:
            sink_backend.close()
            sink.close()
    finally:
        backend.close()
        for w in workers:
            w.stop()


def test_cli_test_call_prints_the_line_for_each_behaviour(lab, tmp_path):
    """Every behaviour of the outside world through `cati telephony test-call` (its own process each), the line
    it prints checked field by field against what the behaviour must give."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATI_")}
    env.update(lab.ami_env(0))
    yn = {True: "yes", False: "no"}
    procs = {}
    for i, (name, (number, ext, opts, _)) in enumerate(SCENARIOS.items()):
        ext = ext if not ext.startswith("10") or ext in (BUSY_PHONE, UNREACHABLE_PHONE) else str(1020 + i)
        cmd = [sys.executable, "-m", "cati", "telephony", "test-call", "--extension", ext, "--number", number,
               "--timeout", "45"]
        if "hangup_after" in opts:
            cmd += ["--hangup-after", str(opts["hangup_after"])]
        if "ring_timeout" in opts:
            cmd += ["--ring-timeout", str(opts["ring_timeout"])]
        if opts.get("record"):
            cmd.append("--record")
        procs[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       cwd=tmp_path)
    for name, (_, _, _, expected) in SCENARIOS.items():
        out, err = procs[name].communicate(timeout=120)
        assert procs[name].returncode == 0, (name, out, err)
        fields = dict(item.split("=", 1) for item in out.split())
        for key, value in expected.items():
            want = yn[value] if isinstance(value, bool) else ("none" if value is None else str(value))
            key = {"source": "source", "amd": "amd"}.get(key, key)
            assert fields[key] == want, (name, key, out, err)
        assert fields["ended"] == "yes" and fields["legs_left"] == "0", (name, out)
    # A call that does not end within the timeout exits 1 (and is hung up, nothing left).
    out = subprocess.run([sys.executable, "-m", "cati", "telephony", "test-call", "--extension", "1035",
                          "--number", BEHAVIOURS["long_call"], "--timeout", "8"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1, out
    assert "ended=no legs_left=0" in out.stdout, out
    # A bad number is a configuration error (2), nothing dialled.
    out = subprocess.run([sys.executable, "-m", "cati", "telephony", "test-call", "--extension", "1036",
                          "--number", "call-me"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and "not a phone number" in out.stderr, out


def test_cli_check_prints_no_part_of_the_secret(lab):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATI_")}
    env.update(lab.ami_env(0))
    out = subprocess.run([sys.executable, "-m", "cati", "telephony", "check"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out
    secret = lab.state.secret
    assert "secret=(set)" in out.stdout
    assert secret not in out.stdout + out.stderr
    assert secret[:2] + "…" not in out.stdout  # what it used to print
    assert "OK" in out.stdout


def test_load_script_twenty_concurrent_calls_all_right():
    """scripts/bench_lab_load.py: 20 calls at once through its own lab, every code right, nothing left up."""
    from .conftest import _need_asterisk

    _need_asterisk()
    root = __import__("pathlib").Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, str(root / "scripts" / "bench_lab_load.py"), "--calls", "20", "--rounds",
                          "1", "--client", "panoramisk"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "panoramisk       20    20" in out.stdout, out.stdout
