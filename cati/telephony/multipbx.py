"""More than one Asterisk: each interviewer's extension belongs to a PBX, and a call is placed on that PBX.

A centre that outgrows one Asterisk runs several. Configuration (environment, like the rest of telephony)::

    CATI_AMI_PBXES="pbx1 10.0.0.11:5038 1001-1200,9001-9009; pbx2 10.0.0.12:5038 1201-1400,9010-9019"
    CATI_AMI_USERNAME=cati
    CATI_AMI_SECRET=…                       # shared, or per PBX:
    CATI_AMI_SECRETS="pbx1=…,pbx2=…"

Each entry is ``name host:port extensions``; names are 1-7 lower-case letters/digits (the attempt's ``backend``
column records ``asterisk:<name>``, so each PBX's worker reconciles only its own calls). Extension lists are
comma-separated numbers or ``first-last`` ranges; an extension may belong to one PBX only.

Each PBX has its own ``cati telephony worker --pbx <name>``. Web workers hold one action-only connection per PBX
(:class:`MultiPbxBackend`). ChanSpy works inside one PBX: a supervisor can monitor calls of interviewers on the
PBX their own phone is on, and is told so otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .base import TelephonyBackend, TelephonyError

_NAME = re.compile(r"^[a-z0-9]{1,7}$")


@dataclass(frozen=True)
class PbxSpec:
    name: str
    host: str
    port: int
    extensions: tuple[tuple[int, int], ...]  # inclusive ranges

    def owns(self, extension: str) -> bool:
        if not extension.isdigit():
            return False
        n = int(extension)
        return any(a <= n <= b for a, b in self.extensions)


def parse_pbxes(spec: str) -> list[PbxSpec]:
    """Parse ``CATI_AMI_PBXES``; raises ``ValueError`` naming the bad entry."""
    out: list[PbxSpec] = []
    for raw in [e.strip() for e in spec.split(";") if e.strip()]:
        parts = raw.split()
        if len(parts) != 3:
            raise ValueError(f"CATI_AMI_PBXES entry {raw!r}: expected 'name host:port extensions'")
        name, addr, exts = parts
        if not _NAME.match(name):
            raise ValueError(f"CATI_AMI_PBXES entry {raw!r}: name must be 1-7 lower-case letters or digits")
        host, _, port_s = addr.rpartition(":")
        if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ValueError(f"CATI_AMI_PBXES entry {raw!r}: {addr!r} is not host:port")
        ranges = []
        for item in exts.split(","):
            a, _, b = item.partition("-")
            if not a.isdigit() or (b and not b.isdigit()):
                raise ValueError(f"CATI_AMI_PBXES entry {raw!r}: {item!r} is not an extension or a range")
            lo, hi = int(a), int(b or a)
            if hi < lo:
                raise ValueError(f"CATI_AMI_PBXES entry {raw!r}: range {item!r} runs backwards")
            ranges.append((lo, hi))
        if any(p.name == name for p in out):
            raise ValueError(f"CATI_AMI_PBXES: PBX {name!r} is listed twice")
        pbx = PbxSpec(name, host, int(port_s), tuple(ranges))
        for other in out:
            for lo, hi in pbx.extensions:
                for olo, ohi in other.extensions:
                    if lo <= ohi and olo <= hi:
                        raise ValueError(f"CATI_AMI_PBXES: extensions {lo}-{hi} of {name} overlap {olo}-{ohi} "
                                         f"of {other.name}")
        out.append(pbx)
    if not out:
        raise ValueError("CATI_AMI_PBXES is empty")
    return out


def parse_secrets(value: str | None) -> dict[str, str]:
    out = {}
    for item in [i.strip() for i in (value or "").split(",") if i.strip()]:
        name, sep, secret = item.partition("=")
        if not sep or not secret:
            raise ValueError("CATI_AMI_SECRETS: expected name=secret pairs separated by commas")
        out[name.strip()] = secret
    return out


class MultiPbxBackend(TelephonyBackend):
    """Several Asterisk PBXs behind the one telephony interface; calls go to the interviewer's PBX."""

    name = "asterisk"

    def __init__(self, pbxes: list[PbxSpec], make: Callable[[PbxSpec], TelephonyBackend]):
        super().__init__()
        self.specs = {p.name: p for p in pbxes}
        self.backends: dict[str, TelephonyBackend] = {}
        self._calls: dict[str, str] = {}
        try:
            for p in pbxes:
                b = make(p)
                b.subscribe(self.hub.emit)
                self.backends[p.name] = b
        except Exception:
            self.close()
            raise

    def pbx_for(self, extension: str) -> str:
        for p in self.specs.values():
            if p.owns(extension):
                return p.name
        raise TelephonyError(f"extension {extension} belongs to no PBX in CATI_AMI_PBXES / 分机 {extension} 未分配到任何交换机")

    def name_for(self, extension: str) -> str:
        """The attempt's ``backend`` value for a call from ``extension``: ``asterisk:<pbx>``."""
        return f"asterisk:{self.pbx_for(extension)}"

    def _holder(self, call_id: str) -> list[TelephonyBackend]:
        """The PBX holding the call, when this process placed it; otherwise every PBX (an action-only web
        worker may act on a call another process placed)."""
        name = self._calls.get(call_id)
        if name is None:
            for n, b in self.backends.items():
                try:
                    if b.live_legs(call_id):
                        self._calls[call_id] = n
                        return [b]
                except TelephonyError:
                    continue
            return list(self.backends.values())
        return [self.backends[name]]

    def place_call(self, call_id, to_e164, interviewer_extension, **kw):
        name = self.pbx_for(interviewer_extension)
        self._calls[call_id] = name
        self.backends[name].place_call(call_id, to_e164, interviewer_extension, **kw)

    def hangup(self, call_id):
        for b in self._holder(call_id):
            b.hangup(call_id)

    def start_recording(self, call_id, path):
        self._holder(call_id)[0].start_recording(call_id, path)

    def stop_recording(self, call_id):
        self._holder(call_id)[0].stop_recording(call_id)

    def _spy_on(self, call_id: str, supervisor_extension: str) -> TelephonyBackend:
        sup = self.pbx_for(supervisor_extension)
        holders = self._holder(call_id)
        if len(holders) == 1 and holders[0] is not self.backends[sup]:
            call_pbx = next(n for n, b in self.backends.items() if b is holders[0])
            raise TelephonyError(f"the call is on {call_pbx}, your phone {supervisor_extension} on {sup}: monitor "
                                 f"from a phone on {call_pbx} / 通话在交换机 {call_pbx}，您的分机在 {sup}")
        return self.backends[sup]

    def listen(self, call_id, supervisor_extension):
        return self._spy_on(call_id, supervisor_extension).listen(call_id, supervisor_extension)

    def whisper(self, call_id, supervisor_extension):
        return self._spy_on(call_id, supervisor_extension).whisper(call_id, supervisor_extension)

    def barge(self, call_id, supervisor_extension):
        return self._spy_on(call_id, supervisor_extension).barge(call_id, supervisor_extension)

    def monitor(self, call_id, supervisor_extension, mode):
        self.check_monitor_free(call_id, supervisor_extension)  # across every PBX, not only the call's
        return self._spy_on(call_id, supervisor_extension).monitor(call_id, supervisor_extension, mode)

    def stop_monitor(self, supervisor_extension):
        return self.backends[self.pbx_for(supervisor_extension)].stop_monitor(supervisor_extension)

    def monitors(self) -> list[dict]:
        return [dict(m, pbx=n) for n, b in self.backends.items() for m in b.monitors()]

    def live_legs(self, call_id):
        return [leg for b in self._holder(call_id) for leg in b.live_legs(call_id)]

    def ping(self):
        return {n: b.ping() for n, b in self.backends.items()}

    def close(self):
        for b in self.backends.values():
            try:
                b.close()
            except Exception:  # noqa: BLE001 - close the others anyway
                pass
        self.hub.close()

