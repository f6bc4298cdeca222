"""Start and stop the interop servers as subprocesses on 127.0.0.1."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1:port; its output goes to a log file."""

    def __init__(self, name: str, args: t.Sequence[str], port: int, log_dir: t.Optional[Path] = None) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        log_dir = Path(log_dir or tempfile.mkdtemp(prefix="interop-"))
        self.log_path = log_dir / f"{name}-{port}.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=str(HERE),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    def wait_ready(self, path: str = "/health", timeout: float = 20.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + path, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def start_platform(
    port: int,
    tool_base_url: str,
    *extra: str,
    log_dir: t.Optional[Path] = None,
) -> ServerProcess:
    args = ["platform_server.py", "--port", str(port), "--tool-base-url", tool_base_url, *extra]
    return ServerProcess("platform", args, port, log_dir)


def start_pylti_tool(
    port: int,
    *,
    issuer: str,
    client_id: str,
    deployment_ids: t.Sequence[str],
    auth_url: str,
    jwks_url: str,
    token_url: t.Optional[str] = None,
    log_dir: t.Optional[Path] = None,
) -> ServerProcess:
    args = [
        "pylti_tool.py",
        "--port", str(port),
        "--platform-issuer", issuer,
        "--client-id", client_id,
        "--auth-url", auth_url,
        "--jwks-url", jwks_url,
    ]
    for d in deployment_ids:
        args += ["--deployment-id", d]
    if token_url:
        args += ["--token-url", token_url]
    return ServerProcess("pylti_tool", args, port, log_dir)
