"""A throw-away ``mlflow server`` for tests: a subprocess on 127.0.0.1, a sqlite backend and proxied artefacts.

:class:`MlflowServer` starts ``mlflow server`` (the one in this virtual environment) on a free
loopback port with its backend store and artefacts in a temporary folder, waits for ``/health``,
and can be stopped and started again on the same port and store (the "server lost mid-run" test).
The process runs in its own session; stopping it signals that process group only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 180  # the first start migrates the sqlite schema; slow on a shared 2-core machine


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """``mlflow server`` in a subprocess.

    Args:
        folder: where its sqlite store (``server.db``), artefacts and log go.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until ``/health`` answers.

        Raises:
            RuntimeError: it exited or did not answer within :data:`START_TIMEOUT_S` (its log is quoted).
        """
        mlflow = Path(sys.executable).parent / "mlflow"
        command = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
                   "--artifacts-destination", (self.folder / "artifacts").as_uri(), "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1"]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        tail = (self.folder / "server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"mlflow server on {self.url} did not start within {START_TIMEOUT_S} s:\n{tail}")

    def stop(self) -> None:
        """Stop it (its process group: the server and its workers) and wait until the port is closed."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the group this object started (own session)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None
        for _ in range(100):  # workers may hold the socket a moment longer
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
