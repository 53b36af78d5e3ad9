"""Benchmark process plumbing: start pinned servers, wait until they answer, read their CPU time and memory
from ``/proc``, stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    """``cmd`` under ``taskset -c cpus`` when ``cpus`` is given and taskset exists."""
    if cpus is None or not _has_taskset():
        return cmd
    return ["taskset", "-c", cpus, *cmd]


def _has_taskset() -> bool:
    return any(os.access(os.path.join(d, "taskset"), os.X_OK) for d in os.environ.get("PATH", "").split(":"))


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a multi-worker server is a supervisor plus workers)."""
    tree = _children()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(tree.get(current, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds of ``pids`` (``/proc/<pid>/stat`` fields utime and stime)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def memory_kb(pids: list[int], field: str) -> int:
    """Sum of a ``/proc/<pid>/status`` field in kB: ``VmRSS`` (now) or ``VmHWM`` (peak)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


@dataclass
class Server:
    """A started server process (in its own session, so that stopping it stops its workers)."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids)

    def rss_mb(self) -> float:
        return memory_kb(self.pids, "VmRSS") / 1024.0

    def peak_rss_mb(self) -> float:
        return memory_kb(self.pids, "VmHWM") / 1024.0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def start(
    name: str, cmd: list[str], *, cpus: str | None, env: dict[str, str], log_dir: Path, cwd: Path | None = None
) -> Server:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            pinned(cmd, cpus),
            cwd=cwd,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(name, proc, log_path)


def post(url: str, body: bytes, timeout: float = 10.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(
    server: Server, url: str, body: bytes, timeout: float = 90.0, headers: dict[str, str] | None = None
) -> None:
    """Poll ``url`` with ``body`` until it answers 200; raise with the log tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited ({server.proc.returncode}):\n{server.log_tail()}")
        try:
            status, data = post(url, body, timeout=5.0, headers=headers)
            if status == 200:
                return
            last = f"HTTP {status}: {data[:300]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s ({last}):\n{server.log_tail()}")


def settle(server: Server, quiet_s: float = 0.5, max_s: float = 30.0) -> bool:
    """Wait until the server stops burning CPU (a backlog from an overload drained). True when idle."""
    deadline = time.monotonic() + max_s
    before = server.cpu()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = server.cpu()
        if now - before < 0.05 * quiet_s:
            return True
        before = now
    return False
