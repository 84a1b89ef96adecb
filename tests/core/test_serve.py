"""``siyu serve --with-worker``: the console answers and the worker beside it ends with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(p) for p in children.read().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split()[2] != "Z"


@pytest.mark.skipif(not os.path.exists("/proc"), reason="reads processes from /proc")
def test_the_worker_started_beside_the_server_stops_with_it(tmp_path):
    port = _free_port()
    env = {**os.environ, "SIYU_VAR_DIR": str(tmp_path), "SIYU_DATABASE_URL": "", "SIYU_NIGHTLY_AT": "off"}
    server = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "siyu.cli", "serve", f"127.0.0.1:{port}", "--with-worker"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/console/login/", timeout=5).status
            except OSError:
                time.sleep(0.5)
        workers = _children(server.pid)
        assert status == 200
        assert len(workers) == 1 and _alive(workers[0])

        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(workers[0])
    finally:
        for pid in _children(server.pid) if server.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
        server.kill()
