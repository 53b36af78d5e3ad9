"""A raw HTTP/1.1 client over one socket (keep-alive, chunked bodies, early closes), and a real
``switchyard serve`` process whose output goes to a file: for the tests of the server's own boundaries."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    path: str,
    *,
    host: str = "127.0.0.1",
    body: bytes | dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if data or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@dataclass
class Connection:
    """One client connection; ``closed`` once the server closed it."""

    sock: socket.socket
    buffer: bytes = b""
    closed: bool = False
    answers: list[Answer] = field(default_factory=list)

    @classmethod
    def open(cls, port: int, timeout: float = 30) -> Connection:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        return cls(sock)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        return True

    def _take_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise EOFError(f"the server closed the connection ({self.buffer[:200]!r})")
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError("the server closed the connection mid-body")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read(self) -> Answer:
        """The next whole answer (Content-Length or chunked)."""
        head = self._take_until(b"\r\n\r\n").decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int(self._take_until(b"\r\n").split(b";")[0], 16)
                parts.append(self._take(size))
                self._take(2)
                if size == 0:
                    break
            body = b"".join(parts)
        else:
            while self._fill():
                pass
            body, self.buffer = self.buffer, b""
        answer = Answer(status, headers, body)
        self.answers.append(answer)
        return answer

    def exchange(self, data: bytes) -> Answer:
        self.send(data)
        return self.read()

    def wait_closed(self, timeout: float) -> bool:
        """True if the server closes the connection within ``timeout`` (whatever it sent before)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self._fill():
                    return True
            except TimeoutError:
                return False
        return False

    def is_open(self) -> bool:
        """Not closed by the server (checked without waiting)."""
        self.sock.setblocking(False)
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            self.sock.setblocking(True)
        if chunk:
            self.buffer += chunk
            return True
        return False

    def close(self) -> None:
        self.sock.close()


def sse_data(body: bytes) -> list[str]:
    """The ``data:`` payloads of an event-stream body."""
    return [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]


# --- a real `switchyard serve` --------------------------------------------------------------------------


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"raw": raw})
        return lines

    def lines_of(self, request_id: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line.get("request_id") == request_id]

    def wait_for_line(self, predicate: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if predicate(line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no such log line in {timeout}s:\n{self.log_path.read_text()[-3000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(config: Path, log_path: Path, env: Mapping[str, str], timeout: float = 60) -> Iterator[Served]:
    """``python -m app.cli serve`` on a free port with ``env`` (no other ``SWITCHYARD_*`` variable); killed at
    the end if still running."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--config", str(config)],
            cwd=REPO,
            env={**base_env, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(proc, port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{served.base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "switchyard serve did not start"
            time.sleep(0.1)
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
