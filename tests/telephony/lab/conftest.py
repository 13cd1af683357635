"""The telephone lab for tests: a real Asterisk 22.10.1 PBX (two of them) and an outside world over PJSIP.

In CI (``CI`` set) the Asterisk build must be there (``.ci/run`` builds it into /opt): a missing build fails the
run instead of skipping it. Locally the tests skip with the reason when the build is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cati.telephony.ami import AmiBackend
from cati.telephony.lab import DEFAULT_PREFIX, EventWorkerProcess, TelephoneLab, find_asterisk
from cati.telephony.testcall import scratch_database

CLIENTS = ("panoramisk", "asterisk-ami")
SHAPES = ("in-process", "worker")


def _need_asterisk() -> None:
    if find_asterisk() is not None:
        return
    reason = f"no Asterisk build at {DEFAULT_PREFIX} (bash ../shared/asterisk/build.sh builds it)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the telephony lab tests, never skip them", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """One lab for the session: two call-centre PBXs sharing one outside world."""
    _need_asterisk()
    lab = TelephoneLab(tmp_path_factory.mktemp("lab"), pbx_count=2)
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def own_lab(tmp_path):
    """A lab of the test's own (for tests that kill or restart a PBX)."""
    _need_asterisk()
    lab = TelephoneLab(tmp_path / "lab", pbx_count=1)
    lab.start()
    yield lab
    lab.stop()


def backend_for(lab: TelephoneLab, index: int = 0, *, client: str = "panoramisk", events: bool = True,
                **kw) -> AmiBackend:
    pbx = lab.pbxes[index]
    return AmiBackend("127.0.0.1", pbx.ami_port, lab.state.username, lab.state.secret, client=client,
                      events=events, **kw)


def Worker(lab: TelephoneLab, db_url: str, directory: Path, *, client: str, index: int = 0,  # noqa: N802
           reconcile_every: float = 5.0) -> EventWorkerProcess:
    """``cati telephony worker`` in a process of its own (see :class:`cati.telephony.lab.EventWorkerProcess`)."""
    return EventWorkerProcess(lab, db_url, directory, client=client, index=index, reconcile_every=reconcile_every)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A migrated scratch database (the test-call path) shared by a module's calls."""
    directory = tmp_path_factory.mktemp("scratch")
    url, factory = scratch_database(directory)
    return directory, url, factory
