"""A telephone network on one machine: real Asterisk PBX(es) and a second Asterisk playing the outside world.

Over 600 lines on purpose: the lab's configuration generators, process control and the event-worker and
scenario runners are one tool, used together by the CLI, the tests and the benchmark scripts.

The lab exists so that the Asterisk backend is tested against the real thing, not against a server we wrote
ourselves. It runs, all on 127.0.0.1 with free ports, each instance in a directory of its own:

``pbx1`` (``pbx2`` …)
    the call centre's PBX: our shipped ``config/asterisk/extensions.conf``, ``manager.conf`` (port and secret
    substituted) and ``amd.conf`` verbatim, plus a generated ``pjsip.conf`` with the carrier trunk
    ``cati-trunk`` and the interviewers' phones (PJSIP endpoints named by extension), both reached over SIP
    on the outside world's port.
``world``
    everything outside the PBX. Dialled numbers behave as scripted (:data:`BEHAVIOURS`): a person greeting, an
    answering machine, busy, congestion, ringing past the timeout, rejection (21), busy before answer (17),
    unallocated (1), a hang-up during machine detection, a silent line, a long call with audio. Interviewer
    and supervisor extensions answer at once (an auto-answer softphone) and echo the audio they hear; extension
    :data:`BUSY_PHONE` is busy. :data:`UNREACHABLE_PHONE` has no SIP contact on the PBX at all (a phone that
    is switched off / not registered).

Audio for the greeting, the machine and the long call is written here as 8 kHz WAV (tone bursts are speech to
``AMD()``: it measures energy, not words).

Use :class:`TelephoneLab` from Python (tests) or ``cati telephony lab start|stop|status`` (a JSON state file
with the ports and PIDs; processes are stopped by PID).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_PREFIX = Path("/opt/cati-asterisk-22.10.1")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "asterisk"

#: behaviour → the E.164 number that shows it in the lab's outside world.
BEHAVIOURS: dict[str, str] = {
    "person": "+8613900000101",              # answers, says a short hello, then silence: AMD HUMAN
    "machine": "+8613900000102",             # answers with a long greeting: AMD MACHINE
    "busy": "+8613900000103",                # Busy(): SIP 486, cause 17
    "congestion": "+8613900000104",          # Congestion(): SIP 503, cause 34
    "no_answer": "+8613900000105",           # rings until the PBX gives up
    "rejected": "+8613900000106",            # Hangup(21): SIP 603, cause 21
    "busy_before_answer": "+8613900000107",  # Hangup(17) while ringing
    "unallocated": "+8613900000108",         # Hangup(1): SIP 404, cause 1
    "hangup_during_amd": "+8613900000109",   # answers, hangs up after 1 s: AMDSTATUS=HANGUP
    "long_call": "+8613900000110",           # a person who keeps talking: audio flows until someone hangs up
    "silent": "+8613900000111",              # answers and sends no audio: AMD NOTSURE
}

#: Ranges of numbers that behave alike, for many distinct respondents (predictive dialing tests):
#: behaviour → the E.164 prefix; ``range_number("person", 7)`` is that behaviour's 8th number.
NUMBER_RANGES: dict[str, str] = {
    "person": "+86139000002",   # + two digits: answers after 2 s, a short hello, then silence (AMD HUMAN)
    "machine": "+86139000003",  # a long greeting (AMD MACHINE)
    "busy": "+86139000004",     # busy
}


def range_number(behaviour: str, index: int) -> str:
    """The ``index``-th (0-99) number of a behaviour range in :data:`NUMBER_RANGES`."""
    if not 0 <= index < 100:
        raise ValueError("range_number: index 0-99")
    return f"{NUMBER_RANGES[behaviour]}{index:02d}"


#: Interviewer / supervisor phones that answer at once.
AUTO_ANSWER_PHONES = [str(1000 + i) for i in range(1, 41)] + [str(9000 + i) for i in range(1, 6)]
BUSY_PHONE = "1099"
UNREACHABLE_PHONE = "1098"

#: What each behaviour must give through the console's dialer path (``run_test_call``):
#: scenario → (number, interviewer extension, run options, expected fields of ``TestCallResult``).
SCENARIOS: dict[str, tuple[str, str, dict, dict]] = {
    "person": (BEHAVIOURS["person"], "1001", {"hangup_after": 1.5},
               dict(outcome=None, source=None, amd="HUMAN", ringing=True, answered=True, cause=16)),
    "machine": (BEHAVIOURS["machine"], "1002", {},
                dict(outcome="3.14", source="auto", amd="MACHINE", ringing=True, answered=True)),
    "busy": (BEHAVIOURS["busy"], "1003", {},
             dict(outcome="3.12", source="auto", cause=17, dial_status="BUSY", ringing=True, answered=False)),
    "congestion": (BEHAVIOURS["congestion"], "1004", {},
                   dict(outcome="3.16", source="auto", cause=34, dial_status="CONGESTION", answered=False)),
    "no_answer": (BEHAVIOURS["no_answer"], "1005", {"ring_timeout": 17},
                  dict(outcome="3.13", source="auto", cause=19, dial_status="NOANSWER", ringing=True,
                       answered=False)),
    "rejected": (BEHAVIOURS["rejected"], "1006", {},
                 dict(outcome="3.15", source="auto", cause=21, answered=False)),
    "busy_before_answer": (BEHAVIOURS["busy_before_answer"], "1007", {},
                           dict(outcome="3.12", source="auto", cause=17, answered=False)),
    "unallocated": (BEHAVIOURS["unallocated"], "1008", {},
                    dict(outcome="4.31", source="auto", cause=1, answered=False)),
    "hangup_during_amd": (BEHAVIOURS["hangup_during_amd"], "1009", {},
                          dict(outcome="3.20", source="auto", amd="HANGUP", answered=True)),
    "long_call_recorded": (BEHAVIOURS["long_call"], "1010", {"hangup_after": 3, "record": True},
                           dict(outcome=None, source=None, amd="HUMAN", answered=True, cause=16)),
    "silent_notsure": (BEHAVIOURS["silent"], "1011", {"hangup_after": 1},
                       dict(outcome=None, source=None, amd="NOTSURE", answered=True)),
    "interviewer_phone_busy": (BEHAVIOURS["person"], BUSY_PHONE, {},
                               dict(outcome=None, source="system", ringing=False, answered=False, cause=None)),
    "interviewer_phone_unreachable": (BEHAVIOURS["person"], UNREACHABLE_PHONE, {},
                                      dict(outcome=None, source="system", ringing=False, answered=False,
                                           cause=None)),
}


class LabError(RuntimeError):
    """The lab could not be started (no Asterisk build, a port clash, an instance that did not boot)."""


def find_asterisk(prefix: Path | str | None = None) -> Path | None:
    """The ``asterisk`` binary of the shared build, or ``None`` when it is not built here."""
    base = Path(prefix) if prefix else DEFAULT_PREFIX
    binary = base / "sbin" / "asterisk"
    return binary if binary.exists() else None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on now (TCP or UDP) on 127.0.0.1."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_udp_and_tcp() -> int:
    """A port free for both UDP (SIP) and TCP (PJSIP binds no TCP here, but keep the pair clean)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise LabError("no free port pair found on 127.0.0.1")


def _free_rtp_range(width: int = 200) -> tuple[int, int]:
    """An even-aligned UDP range where a sample of ports is free (RTP/RTCP pairs)."""
    import random

    rnd = random.Random()
    for _ in range(100):
        start = rnd.randrange(20000, 59000, 2)
        ok = True
        for p in range(start, start + width, 17):
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
                break
        if ok:
            return start, start + width - 1
    raise LabError("no free RTP range found")


# ---------------------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------------------

def _write_wav(path: Path, pieces: list[tuple[str, float]], rate: int = 8000) -> None:
    """``pieces``: ("tone"|"silence", seconds). A 440 Hz tone at about -12 dBFS counts as speech for AMD()."""
    frames = bytearray()
    for kind, seconds in pieces:
        n = int(seconds * rate)
        for i in range(n):
            value = int(8000 * math.sin(2 * math.pi * 440 * i / rate)) if kind == "tone" else 0
            frames += struct.pack("<h", value)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def write_sounds(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # "喂？" — one short word, then silence long enough for AMD's after-greeting silence (800 ms): HUMAN.
    _write_wav(directory / "hello.wav", [("silence", 0.3), ("tone", 0.5), ("silence", 2.5)])
    # A recorded greeting: continuous speech longer than AMD's greeting limit (1500 ms): MACHINE.
    _write_wav(directory / "machine.wav", [("tone", 1.2), ("silence", 0.1), ("tone", 1.5), ("silence", 0.1),
                                           ("tone", 2.0), ("silence", 1.0)])
    # Talking on: words and short pauses, looped for a long call.
    _write_wav(directory / "talk.wav", [("tone", 0.6), ("silence", 0.3), ("tone", 0.4), ("silence", 0.5)])
    # Predictive dialing's abandon message (in production the firm's recording: "这里是××调查公司，稍后再联系您"):
    # the lab plays 1.5 s of "speech" so the message is really heard before the call ends.
    _write_wav(directory / "abandon.wav", [("tone", 1.0), ("silence", 0.2), ("tone", 0.3)])


# ---------------------------------------------------------------------------------------------------
# Configuration files
# ---------------------------------------------------------------------------------------------------

def _asterisk_conf(root: Path, prefix: Path) -> str:
    return f"""[directories]
astetcdir => {root}/etc
astmoddir => {prefix}/lib/asterisk/modules
astvarlibdir => {root}/lib
astdbdir => {root}/lib
astkeydir => {root}/lib
astdatadir => {prefix}/var/lib/asterisk
astagidir => {root}/lib/agi-bin
astspooldir => {root}/spool
astrundir => {root}/run
astlogdir => {root}/log
astsbindir => {prefix}/sbin

[options]
verbose = 3
maxfiles = 4096
"""


_MODULES_CONF = """[modules]
autoload = yes
; no HTTP/ARI, no other channel drivers' config needed in the lab
noload => res_ari.so
noload => res_http_websocket.so
noload => res_stasis.so
noload => res_pjsip_outbound_registration.so
noload => cdr_manager.so
noload => cel_manager.so
noload => res_clioriginate.so
"""

_LOGGER_CONF = """[general]
; app_queue's own record of every queue call (ENTERQUEUE, CONNECT, EXITWITHTIMEOUT, EXITEMPTY, ABANDON …):
; the PBX's count of abandoned predictive calls
queue_log = yes
[logfiles]
messages.log => notice,warning,error,verbose
"""


def _rtp_conf(rtp: tuple[int, int]) -> str:
    return f"[general]\nrtpstart = {rtp[0]}\nrtpend = {rtp[1]}\n"


def _pjsip_transport(port: int) -> str:
    return f"""[global]
type = global
user_agent = cati-lab
endpoint_identifier_order = ip,username

[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:{port}
"""


def pbx_pjsip_conf(sip_port: int, world_port: int, phones: list[str], unreachable: list[str]) -> str:
    """The PBX's ``pjsip.conf``: a trunk to the carrier and one endpoint per phone (lab: both on the world).

    ``direct_media = no`` keeps the PBX in the media path: recording, ChanSpy and AMD need the audio.
    """
    out = [_pjsip_transport(sip_port)]
    out.append(f"""
[cati-trunk]
type = endpoint
transport = transport-udp
context = cati-inbound
disallow = all
allow = ulaw,alaw
direct_media = no
aors = cati-trunk
rtp_symmetric = yes

[cati-trunk]
type = aor
contact = sip:127.0.0.1:{world_port}
qualify_frequency = 0

[cati-trunk]
type = identify
endpoint = cati-trunk
match = 127.0.0.1
""")
    # A reachable phone has a static contact on the outside world; an unreachable one none at all (a softphone
    # that is switched off: Dial() gives CHANUNAVAIL at once).
    phone_aors = [(ext, f"contact = sip:{ext}@127.0.0.1:{world_port}") for ext in phones] + \
        [(ext, "max_contacts = 1") for ext in unreachable]
    for ext, aor in phone_aors:
        out.append(f"""
[{ext}]
type = endpoint
transport = transport-udp
context = cati-phones
disallow = all
allow = ulaw,alaw
direct_media = no
aors = {ext}

[{ext}]
type = aor
{aor}
""")
    return "".join(out)


def world_pjsip_conf(sip_port: int) -> str:
    return _pjsip_transport(sip_port) + """
[pbx]
type = endpoint
transport = transport-udp
context = world
disallow = all
allow = ulaw,alaw
direct_media = no
rtp_symmetric = yes

[pbx]
type = identify
endpoint = pbx
match = 127.0.0.1
"""


def world_extensions_conf(sounds: Path) -> str:
    """The outside world's dialplan: one behaviour per number, auto-answer phones, a busy phone."""
    s = str(sounds)
    n = {k: v.lstrip("+") for k, v in BEHAVIOURS.items()}
    return f"""[general]
static = yes
writeprotect = yes

[world]
; -- respondents behind the carrier trunk ------------------------------------------------------------
exten => {n['person']},1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,Playback({s}/hello)
 same => n,Echo()
exten => {n['machine']},1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,Playback({s}/machine)
 same => n,Wait(30)
 same => n,Hangup()
exten => {n['busy']},1,Ringing()
 same => n,Wait(1)
 same => n,Busy(10)
exten => {n['congestion']},1,Congestion(10)
exten => {n['no_answer']},1,Ringing()
 same => n,Wait(600)
exten => {n['rejected']},1,Ringing()
 same => n,Wait(1)
 same => n,Hangup(21)
exten => {n['busy_before_answer']},1,Ringing()
 same => n,Wait(1)
 same => n,Hangup(17)
exten => {n['unallocated']},1,Hangup(1)
exten => {n['hangup_during_amd']},1,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(1)
 same => n,Hangup(16)
exten => {n['long_call']},1,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Playback({s}/hello)
 same => n(talk),Playback({s}/talk)
 same => n,Goto(talk)
exten => {n['silent']},1,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(120)
; -- ranges of alike respondents (predictive dialing tests) -----------------------------------------
exten => _{NUMBER_RANGES['person'].lstrip('+')}XX,1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,Playback({s}/hello)
 same => n,Echo()
exten => _{NUMBER_RANGES['machine'].lstrip('+')}XX,1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,Playback({s}/machine)
 same => n,Wait(30)
 same => n,Hangup()
exten => _{NUMBER_RANGES['busy'].lstrip('+')}XX,1,Ringing()
 same => n,Wait(1)
 same => n,Busy(10)
; any other number: the carrier says it does not exist
exten => _X.,1,Hangup(1)

; -- interviewer and supervisor phones ---------------------------------------------------------------
exten => _10XX,1,Answer()
 same => n,Echo()
exten => _900X,1,Answer()
 same => n,Echo()
exten => {BUSY_PHONE},1,Busy(10)
"""


def _manager_conf(shipped: str, port: int, username: str, secret: str) -> str:
    """Our shipped ``manager.conf`` with the lab's port and secret (and the user renamed if asked)."""
    text = re.sub(r"(?m)^port\s*=.*$", f"port = {port}", shipped)
    text = re.sub(r"(?m)^secret\s*=.*$", f"secret = {secret}", text)
    if username != "cati":
        text = re.sub(r"(?m)^\[cati\]", f"[{username}]", text)
    return text


# ---------------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------------

@dataclass
class Instance:
    name: str
    root: str
    sip_port: int
    rtp: tuple[int, int]
    ami_port: int | None = None
    pid: int | None = None

    @property
    def conf(self) -> str:
        return f"{self.root}/etc/asterisk.conf"


@dataclass
class LabState:
    root: str
    prefix: str
    secret: str
    username: str = "cati"
    world: Instance | None = None
    pbxes: list[Instance] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text)
        world = Instance(**{**data["world"], "rtp": tuple(data["world"]["rtp"])}) if data.get("world") else None
        pbxes = [Instance(**{**p, "rtp": tuple(p["rtp"])}) for p in data.get("pbxes", [])]
        return cls(root=data["root"], prefix=data["prefix"], secret=data["secret"],
                   username=data.get("username", "cati"), world=world, pbxes=pbxes)


class TelephoneLab:
    """Start/stop the lab. ``pbx_count`` call-centre PBXs share one outside world.

    Parameters
    ----------
    root : a directory of the lab's own (created; instance directories inside).
    prefix : the Asterisk build (default ``/opt/cati-asterisk-22.10.1``).
    pbx_count : how many call-centre PBXs.
    secret : the AMI secret written into each PBX's ``manager.conf`` (a random one by default).
    """

    STATE_FILE = "lab.json"

    def __init__(self, root: Path | str, *, prefix: Path | str | None = None, pbx_count: int = 1,
                 secret: str | None = None, username: str = "cati", config_dir: Path | None = None):
        import secrets as _secrets

        self.root = Path(root).resolve()
        binary = find_asterisk(prefix)
        if binary is None:
            raise LabError(f"no Asterisk build at {prefix or DEFAULT_PREFIX} (run ../shared/asterisk/build.sh)")
        self.binary = binary
        self.prefix = binary.parents[1]
        self.pbx_count = pbx_count
        self.config_dir = Path(config_dir) if config_dir else CONFIG_DIR
        self.state = LabState(root=str(self.root), prefix=str(self.prefix),
                              secret=secret or _secrets.token_hex(12), username=username)

    # -- public -------------------------------------------------------------------------------------
    @property
    def pbxes(self) -> list[Instance]:
        return self.state.pbxes

    @property
    def world(self) -> Instance:
        assert self.state.world is not None
        return self.state.world

    def ami_env(self, index: int = 0, *, client: str = "panoramisk") -> dict[str, str]:
        """The ``CATI_*`` variables that point the project at PBX ``index``."""
        pbx = self.pbxes[index]
        return {"CATI_TELEPHONY": "asterisk", "CATI_AMI_HOST": "127.0.0.1", "CATI_AMI_PORT": str(pbx.ami_port),
                "CATI_AMI_USERNAME": self.state.username, "CATI_AMI_SECRET": self.state.secret,
                "CATI_AMI_CLIENT": client}

    def start(self, timeout: float = 60.0) -> TelephoneLab:
        self.root.mkdir(parents=True, exist_ok=True)
        sounds = self.root / "sounds"
        write_sounds(sounds)
        world_port = _free_udp_and_tcp()
        world = Instance("world", str(self.root / "world"), world_port, _free_rtp_range())
        self._write_world(world, sounds)
        self.state.world = world
        self.state.pbxes = []
        for i in range(self.pbx_count):
            pbx = Instance(f"pbx{i + 1}", str(self.root / f"pbx{i + 1}"), _free_udp_and_tcp(), _free_rtp_range(),
                           ami_port=free_port())
            self._write_pbx(pbx, world_port)
            self.state.pbxes.append(pbx)
        try:
            for inst in [world, *self.state.pbxes]:
                self._launch(inst)
            for inst in [world, *self.state.pbxes]:
                self._wait_booted(inst, timeout)
        except Exception:
            self.stop()
            raise
        self._save()
        return self

    def stop(self) -> None:
        """Stop every instance by its PID (TERM, then KILL after 5 s)."""
        for inst in [*self.state.pbxes, *([self.state.world] if self.state.world else [])]:
            _kill(inst.pid)
            inst.pid = None
        if self.root.exists():
            self._save()

    def cli(self, instance: Instance, command: str, timeout: float = 10.0) -> str:
        """Run an Asterisk CLI command on ``instance`` (``asterisk -rx``)."""
        res = subprocess.run([str(self.binary), "-C", instance.conf, "-rx", command], capture_output=True,
                             text=True, timeout=timeout)
        return res.stdout

    def channels(self, instance: Instance | None = None) -> list[str]:
        """Channel names up on ``instance`` (default: every PBX)."""
        out: list[str] = []
        for inst in [instance] if instance else self.pbxes:
            text = self.cli(inst, "core show channels concise")
            out += [line.split("!")[0] for line in text.splitlines() if "!" in line]
        return out

    @property
    def abandon_prompt(self) -> str:
        """The lab's recording of the abandon message (for ``place_predictive_call``; Playback takes no suffix)."""
        return str(self.root / "sounds" / "abandon")

    def queue_log(self, instance: Instance | None = None) -> list[dict[str, str]]:
        """app_queue's log on ``instance`` (default: the first PBX): one dict per line with ``time``,
        ``call_id`` (the caller's Uniqueid: our call id), ``queue``, ``agent``, ``event`` and ``data``."""
        path = Path((instance or self.pbxes[0]).root) / "log" / "queue_log"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split("|")
            if len(parts) >= 5:
                rows.append({"time": parts[0], "call_id": parts[1], "queue": parts[2], "agent": parts[3],
                             "event": parts[4], "data": "|".join(parts[5:])})
        return rows

    def restart(self, instance: Instance, timeout: float = 60.0) -> None:
        """kill -9 an instance and start it again (same ports, same files)."""
        _kill(instance.pid, hard=True)
        instance.pid = None
        self._launch(instance)
        self._wait_booted(instance, timeout)
        self._save()

    def __enter__(self) -> TelephoneLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------
    def _save(self) -> None:
        (self.root / self.STATE_FILE).write_text(self.state.to_json())

    def _dirs(self, inst: Instance) -> Path:
        root = Path(inst.root)
        for sub in ("etc", "lib", "spool", "run", "log", "lib/agi-bin"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        etc = root / "etc"
        (etc / "asterisk.conf").write_text(_asterisk_conf(root, self.prefix))
        (etc / "modules.conf").write_text(_MODULES_CONF)
        (etc / "logger.conf").write_text(_LOGGER_CONF)
        (etc / "rtp.conf").write_text(_rtp_conf(inst.rtp))
        return etc

    def _write_world(self, inst: Instance, sounds: Path) -> None:
        etc = self._dirs(inst)
        (etc / "pjsip.conf").write_text(world_pjsip_conf(inst.sip_port))
        (etc / "extensions.conf").write_text(world_extensions_conf(sounds))
        (etc / "manager.conf").write_text("[general]\nenabled = no\n")

    def _write_pbx(self, inst: Instance, world_port: int) -> None:
        etc = self._dirs(inst)
        shipped = self.config_dir
        for name in ("extensions.conf", "amd.conf", "queues.conf"):
            shutil.copyfile(shipped / name, etc / name)
        (etc / "manager.conf").write_text(_manager_conf((shipped / "manager.conf").read_text(), inst.ami_port or 0,
                                                        self.state.username, self.state.secret))
        (etc / "pjsip.conf").write_text(pbx_pjsip_conf(inst.sip_port, world_port,
                                                       [*AUTO_ANSWER_PHONES, BUSY_PHONE], [UNREACHABLE_PHONE]))

    def _launch(self, inst: Instance) -> None:
        log = open(Path(inst.root) / "log" / "console.log", "ab")  # noqa: SIM115 - owned by the child
        # -f: foreground (we keep the PID); -n: no colour; -g: core on crash.
        proc = subprocess.Popen([str(self.binary), "-C", inst.conf, "-f", "-n", "-g"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        inst.pid = proc.pid

    def _wait_booted(self, inst: Instance, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if inst.pid is None or not _alive(inst.pid):
                tail = _tail(Path(inst.root) / "log" / "console.log")
                raise LabError(f"Asterisk {inst.name} exited while starting:\n{tail}")
            try:
                res = subprocess.run([str(self.binary), "-C", inst.conf, "-rx", "core waitfullybooted"],
                                     capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()))
                last = res.stdout + res.stderr
                if "fully booted" in last.lower():
                    if inst.ami_port is None or _port_open(inst.ami_port):
                        return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        raise LabError(f"Asterisk {inst.name} did not boot within {timeout:.0f} s: {last.strip()[:200]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _kill(pid: int | None, *, hard: bool = False) -> None:
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + (1.0 if hard else 5.0)
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(40):
        _reap(pid)
        if not _alive(pid):
            return
        time.sleep(0.05)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no console log)"


def load_state(root: Path | str) -> LabState:
    path = Path(root) / TelephoneLab.STATE_FILE
    if not path.exists():
        raise LabError(f"no lab at {root} ({path} missing)")
    return LabState.from_json(path.read_text())


def stop_lab(root: Path | str) -> int:
    """Stop a lab started by another process (``cati telephony lab stop``); returns how many were running."""
    state = load_state(root)
    n = 0
    for inst in [*state.pbxes, *([state.world] if state.world else [])]:
        if inst.pid and _alive(inst.pid):
            n += 1
        _kill(inst.pid)
        inst.pid = None
    (Path(root) / TelephoneLab.STATE_FILE).write_text(state.to_json())
    return n


class EventWorkerProcess:
    """``cati telephony worker`` in a process of its own, storing one PBX's events into a database (the
    production shape: web workers place calls on action-only connections, this process stores the events)."""

    def __init__(self, lab: TelephoneLab, db_url: str, directory: Path, *, client: str = "panoramisk",
                 index: int = 0, reconcile_every: float = 5.0, env: dict | None = None, pbx: str | None = None):
        import sys

        from cati.config import child_environment

        base = child_environment({**(env or lab.ami_env(index, client=client)), "CATI_DATABASE_URL": db_url,
                                  "CATI_INSTANCE_PATH": str(Path(directory) / "instance")})
        name = pbx or f"{client}-{index}"
        self.log_path = Path(directory) / f"worker-{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - owned by the child process
        cmd = [sys.executable, "-m", "cati", "telephony", "worker", "--reconcile-every", str(reconcile_every)]
        if pbx:
            cmd += ["--pbx", pbx]
        self.proc = subprocess.Popen(cmd, env=base, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_listening()

    def _wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "listening to AMI" in self.log_path.read_text():
                return
            if self.proc.poll() is not None:
                raise LabError(f"telephony worker exited: {self.log_path.read_text()}")
            time.sleep(0.1)
        raise LabError(f"telephony worker did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def run_scenarios(lab: TelephoneLab, factory, db_url: str, directory: Path, *, client: str, shape: str) -> dict:
    """Every scenario at once, each from its own phone, in one process shape: ``in-process`` (events stored by
    this process) or ``worker`` (an action-only connection here, a ``cati telephony worker`` storing events)."""
    from concurrent.futures import ThreadPoolExecutor

    from .ami import AmiBackend
    from .testcall import run_test_call

    pbx = lab.pbxes[0]
    backend = AmiBackend("127.0.0.1", pbx.ami_port, lab.state.username, lab.state.secret, client=client,
                         events=(shape == "in-process"))
    worker = None
    try:
        if shape == "worker":
            worker = EventWorkerProcess(lab, db_url, directory, client=client)

        def one(item):
            name, (number, ext, opts, _) = item
            return name, run_test_call(backend, factory, number, ext, store_events=(shape == "in-process"),
                                       **{"timeout": 45, **opts})

        with ThreadPoolExecutor(len(SCENARIOS)) as pool:
            return dict(pool.map(one, SCENARIOS.items()))
    finally:
        backend.close()
        if worker is not None:
            worker.stop()


def wrong_results(results: dict) -> list[str]:
    """The scenarios whose result differs from :data:`SCENARIOS`' expectation (or did not end, or left legs)."""
    wrong = []
    for name, (_, _, _, expected) in SCENARIOS.items():
        r = results[name]
        got = {k: getattr(r, k) for k in expected}
        if got != expected or not r.ended or r.legs_left != 0:
            wrong.append(f"{name}: expected {expected}, ended, 0 legs; got {r.line()} note={r.note}")
    return wrong
