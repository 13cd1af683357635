"""The simulator against what real Asterisk 22 does (README of ../shared/asterisk-ami)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from cati.telephony.ami import parse_ami_stream
from cati.telephony.amisim import Script

from .conftest import read_raw
from .rawami import RawAmi


def test_banner_login_and_unsolicited_events(sim_factory):
    srv = sim_factory()
    c = RawAmi(srv.host, srv.port)
    assert c.banner == "Asterisk Call Manager/11.0.0"
    r = c.login()
    assert r["_raw"].startswith(b"Response: Success\r\nActionID: login-1\r\nMessage: Authentication accepted")
    assert c.read()["Event"] == "FullyBooted"
    auth = c.read()
    assert auth["Event"] == "SuccessfulAuth" and auth["Privilege"] == "security,all"
    c.action("Login", Username="cati", Secret="good")
    assert c.read()["Message"] == "Already authenticated"


def test_bad_login_delayed_then_closed_and_others_warned(sim_factory):
    srv = sim_factory(time_scale=0.05)  # failure delay 0.5 s
    watcher = RawAmi(srv.host, srv.port)
    watcher.login()
    watcher.read_until(lambda m: m.get("Event") == "SuccessfulAuth")
    c = RawAmi(srv.host, srv.port)
    t0 = time.monotonic()
    r = c.login(secret="bad")
    assert r["Response"] == "Error" and r["Message"] == "Authentication failed" and r["ActionID"] == "login-1"
    assert time.monotonic() - t0 >= 0.45
    assert c.read() is None  # server closed the connection
    assert watcher.read()["Event"] == "InvalidPassword"


def test_before_login_permission_denied_and_connection_stays(sim_factory):
    srv = sim_factory()
    c = RawAmi(srv.host, srv.port)
    c.action("Ping", ActionID="p0")
    r = c.read()
    assert (r["Response"], r["Message"]) == ("Error", "Permission denied")
    assert c.login()["Response"] == "Success"


def test_lf_only_lowercase_and_missing_actionid(sim_factory):
    srv = sim_factory()
    c = RawAmi(srv.host, srv.port)
    c.send("action: login\nusername: cati\nsecret: good\nactionid: lower\n\n", crlf=False)
    r = c.read()
    assert r["ActionID"] == "lower" and r["_raw"].count(b"\r\n") == 2  # replies in CRLF anyway
    c.read_until(lambda m: m.get("Event") == "SuccessfulAuth")
    c.send("Action: Ping\n\n")
    r = c.read()
    assert r["Ping"] == "Pong" and "ActionID" not in r


def test_unknown_action_and_logoff(sim_factory):
    srv = sim_factory()
    c = RawAmi(srv.host, srv.port)
    c.login(Events="off")
    c.action("NoSuchAction", ActionID="x")
    assert c.read()["Message"].startswith("Invalid/unknown command: NoSuchAction.")
    c.action("Logoff", ActionID="bye")
    r = c.read()
    assert (r["Response"], r["Message"]) == ("Goodbye", "Thanks for all the fish.")
    assert c.read() is None


def test_authtimeout_closes_silently(sim_factory):
    srv = sim_factory(authtimeout=30, time_scale=0.01)  # 0.3 s real
    c = RawAmi(srv.host, srv.port)
    assert c.read(timeout=3) is None


def originate_resp_first(c, number, n, sync=False, timeout=5000):
    c.action("Originate", Channel=f"Local/{number}@resp", Context="connect", Exten="s", Priority="1",
             Async="false" if sync else "true", CallerID='"CATI" <5551234>', ActionID=f"o{n}",
             Timeout=str(timeout), ChannelId=f"cati-{n}-a", OtherChannelId=f"cati-{n}-b")


CORE = ("Newstate", "DialEnd", "DialState", "OriginateResponse", "Hangup")


def shape(msgs, call):
    """Multiset of (event, leg, key fields) for one call: order inside a millisecond varies."""
    out = Counter()
    for m in msgs:
        ev = m.get("Event")
        if ev not in CORE:
            continue
        uid = m.get("Uniqueid") or m.get("DestUniqueid") or ""
        if not uid.startswith(f"cati-{call}"):
            continue
        leg = ";1" if uid.endswith("-a") else ";2"
        if ev == "Newstate":
            key = m["ChannelStateDesc"]
        elif ev in ("DialEnd", "DialState"):
            key = m["DialStatus"]
        elif ev == "OriginateResponse":
            key = (m["Response"], m["Reason"], m["Channel"].split("-")[0])
        else:
            key = m["Cause"], m["Cause-txt"]
        out[(ev, leg, key)] += 1
    return out


@pytest.mark.parametrize("outcome, transcript, n", [
    ("busy", "s2_busy", 2), ("congestion", "s3_cong", 3), ("noanswer", "s4_noans", 4), ("rejected", "s6_h21", 6),
])
def test_respondent_first_sequences_match_real_asterisk(sim_factory, outcome, transcript, n):
    srv = sim_factory(scripts={"x": outcome}, time_scale=0.01)
    real = [m for _, d, data in read_raw(f"{transcript}_raw.log") if d == "<<" for m in parse_ami_stream(data)]
    c = RawAmi(srv.host, srv.port)
    c.login()
    originate_resp_first(c, "x", n)
    got = c.read_until(lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == f"cati-{n}-a", timeout=5)
    # The OriginateResponse may come before or after the last Hangup: read on briefly.
    try:
        got += c.read_until(lambda m: m.get("Event") == "OriginateResponse", timeout=0.3)
    except TimeoutError:
        pass
    real_shape = shape(real, n)
    sim_shape = shape(got, n)
    # Real Local channels name the failed OriginateResponse Channel by the requested string.
    assert sim_shape == Counter({(k[0], k[1], (k[2][0], k[2][1], "Local/x@resp") if k[0] == "OriginateResponse"
                                  else k[2]): v for k, v in real_shape.items()})


def test_async_originate_always_queued_and_reason_0_for_hangup17(sim_factory):
    srv = sim_factory(scripts={"h17": "hangup17"})
    c = RawAmi(srv.host, srv.port)
    c.login()
    originate_resp_first(c, "h17", 7)
    msgs = c.read_until(lambda m: m.get("Event") == "OriginateResponse")
    assert msgs[-1]["Reason"] == "0" and msgs[-1]["Response"] == "Failure"
    assert any(m.get("Message") == "Originate successfully queued" for m in msgs)
    causes = {m["Uniqueid"]: m["Cause"] for m in msgs if m.get("Event") == "Hangup"}
    assert causes == {"cati-7-a": "17", "cati-7-b": "17"}


def test_blocking_originate_freezes_the_session(sim_factory):
    srv = sim_factory(scripts={"na": Script("noanswer")}, time_scale=0.1)  # 5 s timeout = 0.5 s
    c = RawAmi(srv.host, srv.port)
    c.login()
    c.read_until(lambda m: m.get("Event") == "SuccessfulAuth")
    originate_resp_first(c, "na", 3, sync=True)
    time.sleep(0.15)
    c.action("Ping", ActionID="ping-during")
    msgs = c.read_until(lambda m: m.get("ActionID") == "ping-during", timeout=5)
    names = [m.get("Response") or m.get("Event") for m in msgs]
    assert names[0] == "Error" and msgs[0]["Message"] == "Originate failed"  # first, then the held events
    assert "Newchannel" in names and "OriginateResponse" not in names
    assert names[-1] == "Success"  # the ping reply waited for the Originate


def test_originate_errors(sim_factory):
    srv = sim_factory()
    c = RawAmi(srv.host, srv.port)
    c.login(Events="off")
    c.action("Originate", Channel="nonsense", Context="x", Exten="s", Priority="1", ActionID="e3")
    assert c.read()["Message"] == "Invalid channel"
    c.action("Originate", Context="x", Exten="s", ActionID="e4")
    assert c.read()["Message"] == "Channel not specified"


def test_duplicate_channel_id_and_unknown_tech(sim_factory):
    srv = sim_factory(scripts={"long": Script("human", talk_s=100)})
    c = RawAmi(srv.host, srv.port)
    c.login()
    originate_resp_first(c, "long", 1)
    c.read_until(lambda m: m.get("Event") == "OriginateResponse")
    c.action("Originate", Channel="Local/human@resp", Application="Wait", Data="1", Async="true",
             ChannelId="cati-1-a", ActionID="dup")
    dup = c.read_until(lambda m: m.get("Event") == "OriginateResponse")[-1]
    assert (dup["Response"], dup["Reason"], dup["Uniqueid"]) == ("Failure", "0", "cati-1-a")
    c.action("Originate", Channel="Foo/bar", Context="connect", Exten="s", Async="true", ActionID="e2")
    foo = c.read_until(lambda m: m.get("Event") == "OriginateResponse")[-1]
    assert (foo["Channel"], foo["Uniqueid"]) == ("Foo/bar", "<unknown>")


def test_coreshowchannels_mixmonitor_hangup_and_chanspy(sim_factory):
    srv = sim_factory(scripts={"555": Script("human", ring_s=0.1, amd_s=0.1, talk_s=300)})
    c = RawAmi(srv.host, srv.port)
    c.login()
    c.action("Originate", Channel="Local/1001@cati-interviewer", Context="cati-dialout", Exten="555",
             Priority="1", Async="true", ChannelId="call-1", ActionID="o1")
    c.read_until(lambda m: m.get("Event") == "BridgeEnter" and m.get("Channel", "").startswith("PJSIP/cati-trunk"))
    c.action("CoreShowChannels", ActionID="csc1")
    lst = c.read_until(lambda m: m.get("Event") == "CoreShowChannelsComplete")
    head = next(m for m in lst if m.get("ActionID") == "csc1")
    assert head["EventList"] == "start" and head["Message"] == "Channels will follow"
    items = [m for m in lst if m.get("Event") == "CoreShowChannel"]
    # The lab: the two Local halves, the interviewer's phone (dialled by ;2) and the respondent's trunk channel.
    assert len(items) == 4 and all("Privilege" not in m and m["Linkedid"] == "call-1" for m in items)
    assert sorted(m["Channel"].rsplit("-", 1)[0] for m in items) == [
        "Local/1001@cati-interviewer", "Local/1001@cati-interviewer", "PJSIP/1001", "PJSIP/cati-trunk"]
    assert items[0]["_raw"].startswith(b"Event: CoreShowChannel\r\nActionID: csc1\r\n")
    assert lst[-1]["ListItems"] == "4"

    c.action("MixMonitor", Channel="call-1", File="call-1.wav", Options="b", ActionID="mm1")
    mm = c.read_until(lambda m: m.get("Event") == "MixMonitorStart")
    assert next(m for m in mm if m.get("ActionID") == "mm1")["_raw"] == b"Response: Success\r\nActionID: mm1"
    var = next(m for m in mm if m.get("Variable") == "MIXMONITOR_FILENAME")
    assert var["Value"] == "/var/spool/asterisk/monitor/call-1.wav"
    c.action("MixMonitor", Channel="nosuch", File="x.wav", ActionID="mm-bad")
    assert c.read_until(lambda m: m.get("ActionID") == "mm-bad")[-1]["Message"] == "No such channel"

    spyee = next(m["Channel"] for m in items if m["Channel"].endswith(";2"))
    c.action("Originate", Channel="Local/9001@cati-interviewer", Application="ChanSpy", Data=f"{spyee},qwE",
             Async="true", ChannelId="spy-1", ActionID="spy")
    start = c.read_until(lambda m: m.get("Event") == "ChanSpyStart")[-1]
    assert start["SpyeeChannel"] == spyee and start["SpyerUniqueid"] == "spy-1"
    assert srv.spies[-1]["mode"] == "whisper"

    c.action("Hangup", Channel="call-1", ActionID="hup1")
    msgs = c.read_until(lambda m: m.get("Event") == "ChanSpyStop")
    assert any(m.get("Message") == "Channel Hungup" for m in msgs)
    c.read_until(lambda m: m.get("Event") == "Hangup" and m.get("Channel", "").startswith("PJSIP/1001-"))
    c.action("CoreShowChannels", ActionID="csc2")
    done = c.read_until(lambda m: m.get("Event") == "CoreShowChannelsComplete")
    assert done[-1]["ListItems"] == "0"


def test_split_packets_and_chan_variables(sim_factory):
    srv = sim_factory(split_packets=True, chan_variables={"CATI_CALL_ID": "call-2"}, scripts={"9": "busy"})
    c = RawAmi(srv.host, srv.port)
    c.login()
    c.action("Originate", Channel="Local/1001@cati-interviewer", Context="cati-dialout", Exten="9",
             Priority="1", Async="true", ChannelId="call-2", ActionID="o2", Variable="CATI_CALL_ID=call-2")
    msgs = c.read_until(lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == "call-2;2")
    assert c.chunks > len(msgs) * 2  # really arrived in pieces
    newch = next(m for m in msgs if m.get("Event") == "Newchannel")
    # As in the lab (channelvars = CATI_CALL_ID): empty when the channel is created, the call id once it is set.
    assert newch["ChanVariable"] == "CATI_CALL_ID="
    dial = next(m for m in msgs if m.get("Event") == "DialBegin" and m.get("Uniqueid") == "call-2")
    assert dial["ChanVariable"] == "CATI_CALL_ID=call-2"
    busy = next(m for m in msgs if m.get("Event") == "Hangup" and m["Channel"].startswith("PJSIP/cati-trunk-"))
    assert busy["Cause"] == "17"
