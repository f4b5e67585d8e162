"""Real servers on 127.0.0.1 for tests: a free port, and waiting until a server answers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(uri: str, server: subprocess.Popen, explain: Callable[[], str], timeout_s: float = 120) -> None:
    """Return once ``<uri>/health`` answers; fail with ``explain()`` if ``server`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not _answers(uri):
        assert server.poll() is None and time.monotonic() < deadline, explain()
        time.sleep(0.5)


def _answers(uri: str) -> bool:
    try:
        return requests.get(f"{uri}/health", timeout=2).ok
    except requests.ConnectionError:
        return False
