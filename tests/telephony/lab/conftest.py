"""The telephone lab for tests: a real Asterisk 22.10.1 PBX (two of them) and an outside world over PJSIP.

In CI (``CI`` set) the Asterisk build must be there (``.ci/run`` builds it into /opt): a missing build fails the
run instead of skipping it. Locally the tests skip with the reason when the build is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cati.telephony.ami import AmiBackend
from cati.telephony.lab import DEFAULT_PREFIX, TelephoneLab, find_asterisk
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


class Worker:
    """``cati telephony worker`` in a process of its own, storing one PBX's events into a database."""

    def __init__(self, lab: TelephoneLab, db_url: str, directory: Path, *, client: str, index: int = 0,
                 reconcile_every: float = 5.0):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CATI_")}
        env.update(lab.ami_env(index, client=client))
        env.update({"CATI_DATABASE_URL": db_url, "CATI_INSTANCE_PATH": str(directory / "instance")})
        self.log = open(directory / f"worker-{client}-{index}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cati", "telephony", "worker", "--reconcile-every", str(reconcile_every)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.directory = directory
        self._wait_listening()

    def _wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        path = Path(self.log.name)
        while time.monotonic() < deadline:
            if "listening to AMI" in path.read_text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"telephony worker exited: {path.read_text()}")
            time.sleep(0.1)
        raise RuntimeError(f"telephony worker did not start: {path.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A migrated scratch database (the test-call path) shared by a module's calls."""
    directory = tmp_path_factory.mktemp("scratch")
    url, factory = scratch_database(directory)
    return directory, url, factory
