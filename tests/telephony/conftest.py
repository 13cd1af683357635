"""Shared fixtures: the real Asterisk transcripts and a running AMI simulator."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cati.telephony.amisim import AmiSimServer

# The transcripts live beside the shared design, outside the repository: ../shared/asterisk-ami.
TRANSCRIPTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "asterisk-ami"

_LINE = re.compile(r"^\[\s*([0-9.]+)\]\s+(<<|>>)\s+(b'.*'|b\".*\")\s*$")


def read_raw(name: str) -> list[tuple[float, str, bytes]]:
    """(t, direction, bytes) chunks of a ``*_raw.log`` file."""
    path = TRANSCRIPTS / name
    if not path.exists():
        pytest.skip(f"real AMI transcripts not found at {path} (they ship beside design.md; CI has them)")
    out = []
    for line in path.read_text().splitlines():
        m = _LINE.match(line)
        if m:
            out.append((float(m.group(1)), m.group(2), ast.literal_eval(m.group(3))))
    return out


@pytest.fixture
def transcript():
    return read_raw


@pytest.fixture
def sim_factory():
    servers = []

    def make(**kw) -> AmiSimServer:
        kw.setdefault("time_scale", 0.01)
        srv = AmiSimServer(**kw)
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()
