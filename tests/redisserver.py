"""A real `redis-server` for tests: started on a free loopback port, killed and restarted
at will. Without the binary a test skips, except when CI=true: then it fails, so that CI
never passes without having run the Redis tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

REDIS_MISSING = "redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server)"


def redis_server_binary() -> str:
    """The path of `redis-server`; skips the test, or fails it when CI=true, if missing."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{REDIS_MISSING}; CI=true, so the Redis tests must run")
        pytest.skip(REDIS_MISSING)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One `redis-server` process on 127.0.0.1, no persistence; can be killed and restarted."""

    def __init__(self, binary: str, port: int, workdir: str) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--dir", self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not answers_ping(self.port):
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self.process = None
                raise RuntimeError(f"redis-server on port {self.port} exited: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} does not answer PING")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill it (SIGKILL: a crash, not a clean shutdown)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None
