"""Run the whole benchmark in one command and write ``bench/results/<timestamp>.md`` and ``latest.md``.

    python -m bench.run              # full run (installs LiteLLM and Portkey's gateway into bench/ once)
    python -m bench.run --quick      # a few minutes, shorter phases and a 20k-request soak
    python -m bench.run --targets upstream,floor,switchyard --no-litellm-install
    python -m bench.run --baseline-ref main  # + the same Switchyard targets built from a git worktree of main
    python -m bench.run --targets upstream,switchyard-chat --phases none --no-scaling --streams 10000

Each target runs as one worker process pinned to core 0 (``taskset -c 0``); the load generator and the fake
upstream run on core 1. Per target, in order: warm-up; maximum throughput (closed loop, 0 ms upstream delay)
with CPU ms per request from ``/proc/<pid>/stat``; open-loop latency at each ``--rates`` with 50 ms upstream
delay; streaming time to first token (``--stream-rate`` streams/s, with CPU ms per stream); an RSS soak
(``--soak-requests``). Then, for the ``--scaling-targets``, 1 and then 2 workers on both cores, unpinned,
sharing them with the generator and the upstream (the ratio, and the CPU the workers used); and for the
``--streams-targets``, ``--streams`` concurrent streams of ``--stream-seconds`` each held by one worker, with
the RSS per open stream and the latency of other requests meanwhile (a figure, not a pass/fail test; the
open-file limit bounds N: each stream is two sockets in the gateway).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import baseline as baseline_src
from bench import portkey, procs
from bench.loadgen import raise_fd_limit
from bench.report import render
from bench.targets import (
    BASELINE_PAIRS,
    ROOT,
    Launch,
    Request,
    Target,
    build_targets,
    install_litellm,
    litellm_available,
)

RESULTS = ROOT / "bench" / "results"
TARGET_NAMES = (
    "upstream",
    "floor",
    "switchyard",
    "switchyard-chat",
    "switchyard-keys",
    "switchyard-translated",
    *(b for _, b in BASELINE_PAIRS),
    "portkey",
    "portkey-translated",
    "litellm",
)
DEFAULT_TARGETS = (
    "upstream,floor,portkey,portkey-translated,switchyard-chat,switchyard-keys,switchyard-translated,switchyard,litellm"
)
BASELINE_NAMES = {b for _, b in BASELINE_PAIRS}
GEN_CPUS = "1"
TARGET_CPUS = "0"
SCALING_CPUS = "0,1"
FDS_PER_STREAM = 2  # the gateway holds the client's socket and its upstream's
FD_RESERVE = 1000  # the gateway's other sockets and files (probes, logs, the loop), and the generator's


class Bench:
    """One benchmark run: the upstream, the generator and the measurements of every target."""

    def __init__(self, args: argparse.Namespace, work: Path, baseline: baseline_src.Baseline | None = None) -> None:
        self.args = args
        self.work = work
        self.baseline = baseline
        self.upstream_port = procs.free_port()
        self.upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        self.targets = build_targets(self.upstream_url, work, baseline)
        self.upstream: procs.Server | None = None

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- helpers -------------------------------------------------------------------------------------
    def set_delay(self, ms: float) -> None:
        self._control("delay", ms)

    def _control(self, what: str, ms: float) -> None:
        urllib.request.urlopen(
            urllib.request.Request(f"{self.upstream_url}/_bench/{what}/{ms:g}", data=b""), timeout=5
        ).read()

    def body_file(self, request: Request) -> Path:
        path = self.work / f"body-{abs(hash(request.body))}.json"
        path.write_bytes(request.body)
        return path

    def loadgen(
        self, url: str, request: Request, *extra: str, timeout: float, cpus: str | None = GEN_CPUS
    ) -> dict[str, Any]:
        cmd = [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", url + request.path]
        cmd += ["--body-file", str(self.body_file(request)), "--json", *extra]
        for name, value in request.headers.items():
            cmd += ["--header", f"{name}: {value}"]
        out = subprocess.run(procs.pinned(cmd, cpus), capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def closed(
        self,
        url: str,
        request: Request,
        seconds: float,
        *,
        concurrency: int,
        requests: int | None = None,
        cpus: str | None = GEN_CPUS,
    ) -> dict[str, Any]:
        extra = ["--mode", "closed", "--duration", str(seconds), "--concurrency", str(concurrency)]
        extra += ["--timeout", "30"]
        if requests is not None:
            extra += ["--requests", str(requests)]
        return self.loadgen(url, request, *extra, timeout=seconds + 120, cpus=cpus)

    def closed_with_cpu(
        self,
        server: procs.Server,
        url: str,
        request: Request,
        seconds: float,
        *,
        concurrency: int,
        cpus: str | None = GEN_CPUS,
    ) -> tuple[dict[str, Any], float]:
        """A closed-loop phase and the CPU seconds ``server`` used during it."""
        cpu0 = server.cpu()
        run = self.closed(url, request, seconds, concurrency=concurrency, cpus=cpus)
        return run, server.cpu() - cpu0

    def open(self, url: str, request: Request, rate: float, seconds: float, *, stream: bool = False):
        extra = ["--mode", "open", "--rate", str(rate), "--duration", str(seconds)]
        extra += ["--max-connections", "512", "--timeout", "5", "--warm-connections", "8"]
        if stream:
            extra.append("--stream")
        return self.loadgen(url, request, *extra, timeout=seconds + 120)

    # -- lifecycle -----------------------------------------------------------------------------------
    def start_upstream(self) -> None:
        cmd = [sys.executable, str(ROOT / "bench" / "upstream.py"), "--port", str(self.upstream_port)]
        self.upstream = procs.start("upstream", cmd, cpus=GEN_CPUS, env={}, log_dir=self.work)
        probe = self.targets["upstream"].json_request.body
        procs.wait_ready(self.upstream, f"{self.upstream_url}/v1/chat/completions", probe, timeout=30)

    def start_target(
        self, target: Target, workers: int, cpus: str | None = TARGET_CPUS, env: dict[str, str] | None = None
    ) -> tuple[procs.Server, str]:
        assert target.starter is not None
        port = procs.free_port()
        server = target.starter(Launch(port, workers, self.work, cpus, env or {}))
        url = f"http://127.0.0.1:{port}"
        request = target.json_request
        try:
            procs.wait_ready(server, url + request.path, request.body, timeout=180, headers=request.headers)
        except BaseException:
            server.stop()  # one that answers but never 200 (or a Ctrl-C during start) must not outlive the run
            raise
        return server, url

    def pick_stream(self, target: Target, url: str) -> Request | None:
        """The first streaming request the target answers with the upstream's tokens."""
        for candidate in target.stream_candidates:
            try:
                status, data = procs.post(url + candidate.path, candidate.body, timeout=10, headers=candidate.headers)
            except OSError:
                continue
            if status == 200 and b"zq" in data:
                return candidate
        return None

    # -- phases --------------------------------------------------------------------------------------
    def measure(self, target: Target) -> dict[str, Any]:
        a = self.args
        result: dict[str, Any] = {"name": target.name, "label": target.label, "note": target.note}
        server = self.upstream if target.starter is None else None
        url = self.upstream_url
        started = time.monotonic()
        if target.starter is not None:
            server, url = self.start_target(target, 1)
            result["startup_s"] = round(time.monotonic() - started, 2)
        assert server is not None
        try:
            self.set_delay(0)
            self.closed(url, target.json_request, a.warmup_seconds, concurrency=16)
            result["max"], cpu = self.closed_with_cpu(
                server, url, target.json_request, a.max_seconds, concurrency=a.concurrency
            )
            result["cpu_ms_per_request"] = _ms_per_request(cpu, result["max"])
            result["rss_after_warmup_mb"] = round(server.rss_mb(), 1)
            self.log(
                f"{target.name}: max {result['max']['achieved_rps']} req/s, {result['cpu_ms_per_request']} ms CPU/req"
            )

            self.set_delay(a.delay_ms)
            result["open"] = {}
            for rate in a.rates if "open" in a.phases else ():
                run = self.open(url, target.json_request, rate, a.rate_seconds)
                result["open"][str(rate)] = run
                lat = run["latency_ms"]
                self.log(
                    f"{target.name}: {rate} req/s -> {run['achieved_rps']} ok/s, p50 {lat['p50']} p99 {lat['p99']} ms, "
                    f"errors {run['error_count']} dropped {run['dropped']}"
                )
                if not procs.settle(server, max_s=30):
                    self.log(f"{target.name}: still busy 30 s after the {rate} req/s phase")

            stream = self.pick_stream(target, url) if "stream" in a.phases else None
            if stream is None:
                result["stream"] = None
                self.log(f"{target.name}: no streaming endpoint answered; TTFT skipped")
            else:
                result["stream_path"] = stream.path
                cpu0 = server.cpu()
                result["stream"] = self.open(url, stream, a.stream_rate, a.ttft_seconds, stream=True)
                streams = max(result["stream"]["ok"], 1)
                result["cpu_ms_per_stream"] = round((server.cpu() - cpu0) / streams * 1000.0, 3)
                self.log(
                    f"{target.name}: TTFT p50 {result['stream']['ttft_ms']['p50']} ms, "
                    f"{result['cpu_ms_per_stream']} ms CPU/stream"
                )
            procs.settle(server, max_s=30)

            self.set_delay(0)
            if "soak" in a.phases:
                result["soak"] = self.soak(target, server, url)
            result["peak_rss_mb"] = round(server.peak_rss_mb(), 1)
        finally:
            if target.starter is not None:
                server.stop()
        if target.starter is not None and a.scaling and target.name in a.scaling_targets and target.workers_option:
            result |= self.scaling(target)
        if target.starter is not None and a.streams > 0 and target.name in a.streams_targets:
            result["streams"] = self.long_streams(target)
        return result

    def rounds(self, names: list[str]) -> dict[str, list[dict[str, float]]]:
        """Max throughput of ``names`` again, interleaved: all started at once (each one worker on core 0,
        idle while another is measured), then ``--rounds`` rounds of each in turn. The machine's speed drifts
        over a run; a ratio taken within a round of a few seconds does not see most of that drift."""
        a = self.args
        if a.rounds <= 0 or len(names) < 2:
            return {}
        self.log(f"== interleaved max throughput: {', '.join(names)} x {a.rounds}")
        servers: dict[str, tuple[procs.Server, str]] = {}
        out: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        try:
            for name in names:
                servers[name] = self.start_target(self.targets[name], 1)
            self.set_delay(0)
            for name in names:  # a warm-up round, not counted (a fresh Node server's JIT is still cold)
                server, url = servers[name]
                self.closed(url, self.targets[name].json_request, a.round_seconds, concurrency=a.concurrency)
            for number in range(a.rounds):
                for name in names:
                    server, url = servers[name]
                    request = self.targets[name].json_request
                    self.closed(url, request, a.warmup_seconds, concurrency=16)
                    run, cpu = self.closed_with_cpu(server, url, request, a.round_seconds, concurrency=a.concurrency)
                    cpu_ms = _ms_per_request(cpu, run)
                    out[name].append({"rps": run["achieved_rps"], "cpu_ms": cpu_ms})
                    self.log(f"round {number + 1} {name}: {run['achieved_rps']} req/s, {cpu_ms} ms CPU")
        finally:
            for server, _url in servers.values():
                server.stop()
        return out

    def soak(self, target: Target, server: procs.Server, url: str) -> dict[str, Any]:
        """RSS before and after ``--soak-requests`` requests (closed loop, capped in time)."""
        a = self.args
        before = server.rss_mb()
        run = self.closed(url, target.json_request, a.soak_max_seconds, concurrency=32, requests=a.soak_requests)
        after = server.rss_mb()
        self.log(f"{target.name}: soak {run['ok']} req, RSS {before:.1f} -> {after:.1f} MB")
        return {
            "requests": run["ok"],
            "errors": run["error_count"],
            "rss_before_mb": round(before, 1),
            "rss_after_mb": round(after, 1),
            "growth_pct": round((after - before) / before * 100.0, 2) if before else None,
            "elapsed_s": run["elapsed_s"],
        }

    def scaling(self, target: Target) -> dict[str, Any]:
        """1 worker, then 2, on both cores (unpinned, like the generator and the upstream, which share them):
        ``workers1_shared`` and ``workers2``, each with the CPU its workers used."""
        out: dict[str, Any] = {}
        for workers in (1, 2):
            key = "workers2" if workers == 2 else "workers1_shared"
            try:
                server, url = self.start_target(target, workers, cpus=SCALING_CPUS)
            except RuntimeError as exc:
                self.log(f"{target.name}: {workers} workers on 2 cores did not start: {exc}")
                out[key] = None
                continue
            try:
                self.set_delay(0)
                self.closed(url, target.json_request, self.args.warmup_seconds, concurrency=16, cpus=SCALING_CPUS)
                run, cpu = self.closed_with_cpu(
                    server,
                    url,
                    target.json_request,
                    self.args.max_seconds,
                    concurrency=self.args.concurrency * workers,
                    cpus=SCALING_CPUS,
                )
                run["server_cpu_s"] = round(cpu, 3)
                out[key] = run
                self.log(f"{target.name}: {workers} worker(s) on 2 cores {run['achieved_rps']} req/s")
            finally:
                server.stop()
        return out

    def long_streams(self, target: Target) -> dict[str, Any] | None:
        """``--streams`` concurrent streams of ``--stream-seconds`` against one worker: errors, the RSS per
        open stream (peak RSS while they are all open minus the RSS before, over the streams), and the
        latency of ``--probe-rate`` other (non-streamed) requests per second meanwhile."""
        a = self.args
        stream = next(iter(target.stream_candidates), None)
        if stream is None:
            return None
        limit = raise_fd_limit()
        streams = min(a.streams, (limit - FD_RESERVE) // FDS_PER_STREAM)
        if streams < a.streams:
            self.log(f"{target.name}: {a.streams} streams need {a.streams * FDS_PER_STREAM} fds; limit {limit}")
        env = {"SWITCHYARD_MAX_CONNECTIONS": str(streams + 256)}  # the admission limit, sized for the phase
        try:
            server, url = self.start_target(target, 1, env=env)
        except RuntimeError as exc:
            self.log(f"{target.name}: did not start for the streams phase: {exc}")
            return {"error": str(exc)[:500]}
        try:
            self.set_delay(0)
            self.closed(url, target.json_request, a.warmup_seconds, concurrency=16)
            before = server.rss_mb()
            ramp_s = streams / a.streams_ramp
            probe_s = max(1.0, a.stream_seconds - 2.0)  # from the start of the ramp until the first streams end
            self._control("hold", a.stream_seconds * 1000)
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.25):
                    peak[0] = max(peak[0], server.rss_mb())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            extra = ["--mode", "hold", "--concurrency", str(streams), "--ramp-rate", str(a.streams_ramp)]
            extra += ["--probe-url", url + target.json_request.path]
            extra += ["--probe-body-file", str(self.body_file(target.json_request))]
            extra += ["--probe-rate", str(a.probe_rate), "--probe-seconds", f"{probe_s:g}"]
            extra += ["--timeout", str(a.stream_seconds + ramp_s + 60)]
            try:
                run = self.loadgen(url, stream, *extra, timeout=a.stream_seconds + ramp_s + 180)
            finally:
                done.set()
                sampler.join()
                self._control("hold", 0)
            after = server.rss_mb()
            run |= {
                "requested": a.streams,
                "fd_limit": limit,
                "rss_before_mb": round(before, 1),
                "rss_peak_mb": round(peak[0], 1),
                "rss_after_mb": round(after, 1),
                "rss_per_stream_kb": round((peak[0] - before) * 1024.0 / max(run["max_open"], 1), 1),
                "stream_seconds": a.stream_seconds,
            }
            probe = run["probe"]["latency_ms"]
            self.log(
                f"{target.name}: {run['ok']}/{streams} streams ok (errors {run['error_count']}, max open "
                f"{run['max_open']}), RSS {before:.0f} -> {peak[0]:.0f} MB "
                f"({run['rss_per_stream_kb']} kB/stream), probes p50 {probe['p50']} p99 {probe['p99']} ms"
            )
            return run
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            self.log(f"{target.name}: streams phase failed: {exc}")
            return {"error": str(exc)[:2000]}
        finally:
            server.stop()

    def run(self) -> dict[str, Any]:
        meta = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _git("rev-parse", "--short", "HEAD"),
            # the run's own output (results, install logs) is not a change to what is measured
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results")),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "args": {k: v for k, v in vars(self.args).items() if k != "out"},
        }
        if self.baseline is not None:
            meta["baseline"] = {"ref": self.baseline.ref, "commit": self.baseline.commit}
        self.start_upstream()
        results: dict[str, Any] = {}
        rounds: dict[str, list[dict[str, float]]] = {}
        try:
            for name in self.args.targets:
                target = self.targets[name]
                self.log(f"== {target.label}")
                try:
                    results[name] = self.measure(target)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    self.log(f"{name}: FAILED {exc}")
                    results[name] = {
                        "name": name,
                        "label": target.label,
                        "note": target.note,
                        "error": str(exc)[:2000],
                    }
            try:
                measured = [n for n in self.args.rounds_targets if "error" not in results.get(n, {"error": 1})]
                rounds = self.rounds(measured)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                self.log(f"interleaved rounds: FAILED {exc}")
        finally:
            assert self.upstream is not None
            self.upstream.stop()
        if rounds:
            meta["rounds"] = rounds
        meta["loadavg_end"] = os.getloadavg()
        meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        return {"meta": meta, "targets": results}


def _ms_per_request(cpu_s: float, run: dict[str, Any]) -> float:
    """CPU ms per answered request of a phase that used ``cpu_s`` seconds."""
    return round(cpu_s / max(run["ok"], 1) * 1000.0, 3)


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter phases and a 20k-request soak")
    p.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help=f"comma-separated, of: {', '.join(TARGET_NAMES)} (the baselines need --baseline-ref)",
    )
    p.add_argument("--rates", default="100,500,1000", help="open-loop rates (req/s)")
    p.add_argument("--delay-ms", type=float, default=50.0, help="upstream delay of the latency phases")
    p.add_argument("--concurrency", type=int, default=64, help="closed-loop connections")
    p.add_argument("--warmup-seconds", type=float)
    p.add_argument("--max-seconds", type=float, help="max-throughput phase length")
    p.add_argument("--rate-seconds", type=float, help="length of each open-loop phase")
    p.add_argument("--stream-rate", type=float, default=100.0, help="streams/s of the TTFT phase")
    p.add_argument("--ttft-seconds", type=float, help="length of the TTFT phase")
    p.add_argument("--streams", type=int, help="concurrent long streams held by one worker (0: no such phase)")
    p.add_argument("--stream-seconds", type=float, default=30.0, help="length of each long stream")
    p.add_argument("--streams-ramp", type=float, default=350.0, help="long streams opened per second")
    p.add_argument("--streams-targets", default="switchyard-chat", help="targets of the long-streams phase")
    p.add_argument("--probe-rate", type=float, default=20.0, help="other requests/s during the long streams")
    p.add_argument("--soak-requests", type=int)
    p.add_argument("--soak-max-seconds", type=float, default=150.0, help="time cap of one target's soak")
    p.add_argument("--phases", default="open,stream,soak", help="phases after max throughput")
    p.add_argument("--rounds", type=int, help="interleaved max-throughput rounds at the end (0: none)")
    p.add_argument("--round-seconds", type=float, help="length of each target's turn in a round")
    p.add_argument(
        "--rounds-targets",
        default="floor,portkey,switchyard-chat,switchyard-keys,portkey-translated,switchyard-translated",
        help="targets of the interleaved rounds (those in --targets)",
    )
    p.add_argument("--no-scaling", dest="scaling", action="store_false", help="skip the 2-worker runs")
    p.add_argument("--scaling-targets", default="floor,switchyard-chat,switchyard-keys")
    p.add_argument(
        "--baseline-ref",
        metavar="REF",
        help="also measure Switchyard built from a git worktree of REF (before/after table); adds "
        "switchyard-baseline after switchyard and switchyard-baseline-chat after switchyard-chat",
    )
    p.add_argument("--no-litellm-install", action="store_true", help="skip LiteLLM unless already installed")
    p.add_argument("--no-portkey-install", action="store_true", help="skip Portkey unless already installed")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    a = p.parse_args(argv)
    quick = a.quick
    a.warmup_seconds = a.warmup_seconds or (1.0 if quick else 3.0)
    a.max_seconds = a.max_seconds or (4.0 if quick else 10.0)
    a.rate_seconds = a.rate_seconds or (4.0 if quick else 10.0)
    a.ttft_seconds = a.ttft_seconds or (3.0 if quick else 8.0)
    a.streams = a.streams if a.streams is not None else (0 if quick else 10_000)
    a.streams_targets = [t.strip() for t in a.streams_targets.split(",") if t.strip()]
    a.soak_requests = a.soak_requests or (20_000 if quick else 100_000)
    a.rounds = a.rounds if a.rounds is not None else (2 if quick else 3)
    a.round_seconds = a.round_seconds or (3.0 if quick else 5.0)
    a.phases = [t.strip() for t in a.phases.split(",")]
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    a.rates = [float(r) if "." in r else int(r) for r in a.rates.split(",") if r.strip()]
    a.scaling_targets = [t.strip() for t in a.scaling_targets.split(",")]
    a.rounds_targets = [t.strip() for t in a.rounds_targets.split(",") if t.strip() in a.targets]
    if unknown := [t for t in a.targets if t not in TARGET_NAMES]:
        p.error(f"unknown targets {', '.join(unknown)} (known: {', '.join(TARGET_NAMES)})")
    if a.baseline_ref is None and (listed := [t for t in a.targets if t in BASELINE_NAMES]):
        p.error(f"{', '.join(listed)}: needs --baseline-ref REF")
    if a.baseline_ref is not None:
        a.targets = with_baselines(a.targets)
    return a


def with_baselines(targets: list[str]) -> list[str]:
    """``targets`` with each baseline right after its counterpart (unless already listed)."""
    out: list[str] = []
    for name in targets:
        out.append(name)
        for after, before in BASELINE_PAIRS:
            if name == after and before not in targets:
                out.append(before)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # a SIGTERM unwinds like Ctrl-C: servers stopped, the baseline worktree removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    raise_fd_limit()  # inherited by every server and generator (long streams, many connections)
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        work = Path(tmp)
        if {"portkey", "portkey-translated"} & set(args.targets) and not portkey.available():
            if args.no_portkey_install:
                print("Portkey's gateway not installed (bench/.node-portkey): skipped", flush=True)
                args.targets = [t for t in args.targets if not t.startswith("portkey")]
            else:
                print(f"installing @portkey-ai/gateway {portkey.VERSION} into bench/.node-portkey", flush=True)
                if not portkey.install(args.out / "portkey-install.log"):
                    print("Portkey install failed (npm and node needed): skipped", flush=True)
                    args.targets = [t for t in args.targets if not t.startswith("portkey")]
        if "litellm" in args.targets and not litellm_available():
            if args.no_litellm_install:
                print("LiteLLM not installed (bench/.venv-litellm): skipped", flush=True)
                args.targets.remove("litellm")
            else:
                print("installing litellm[proxy] into bench/.venv-litellm (several minutes, once)", flush=True)
                if not install_litellm(args.out / "litellm-install.log"):
                    print("LiteLLM install failed: skipped (see the install log)", flush=True)
                    args.targets.remove("litellm")
        try:
            with baseline_src.worktree(ROOT, work, args.baseline_ref) as baseline:
                check_sources(args.targets, baseline)
                data = Bench(args, work, baseline).run()
        except baseline_src.BaselineError as exc:
            print(f"bench: {exc}", file=sys.stderr, flush=True)
            return 2
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    text = render(data)
    (args.out / f"{stamp}.md").write_text(text)
    (args.out / "latest.md").write_text(text)
    (args.out / f"{stamp}.json").write_text(json.dumps(data, indent=1))
    (args.out / "latest.json").write_text(json.dumps(data, indent=1))
    print(text)
    print(f"written: {args.out / f'{stamp}.md'}", flush=True)
    return 0


def check_sources(targets: list[str], baseline: baseline_src.Baseline | None) -> None:
    """Before any server starts: which ``app`` each Switchyard side imports (``BaselineError`` if wrong)."""
    sides = [("switchyard", ROOT)] if any(t.startswith("switchyard") for t in targets) else []
    if baseline is not None:
        print(f"baseline {baseline.ref} = {baseline.commit}: git worktree at {baseline.src}", flush=True)
        sides.append((f"switchyard-baseline ({baseline.commit})", baseline.src))
    for name, src in sides:
        app_file = baseline_src.check_app_source(src, baseline_src.switchyard_env(src), src)
        print(f"{name}: app imported from {app_file}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
