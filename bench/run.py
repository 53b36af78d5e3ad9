"""Run the whole benchmark in one command and write ``bench/results/<timestamp>.md`` and ``latest.md``.

    python -m bench.run              # full run (~15-20 min; installs LiteLLM into bench/.venv-litellm once)
    python -m bench.run --quick      # a few minutes, shorter phases and a 20k-request soak
    python -m bench.run --targets upstream,floor,switchyard --no-litellm-install
    python -m bench.run --baseline-ref main  # + the same Switchyard targets built from a git worktree of main

Each target runs as one worker process pinned to core 0 (``taskset -c 0``); the load generator and the fake
upstream run on core 1. Per target, in order: warm-up; maximum throughput (closed loop, 0 ms upstream delay)
with CPU ms per request from ``/proc/<pid>/stat``; open-loop latency at each ``--rates`` with 50 ms upstream
delay; streaming time to first token; an RSS soak (``--soak-requests``); then, for the gateways, the
maximum throughput with 2 workers (cores 0 and 1, shared with the generator: read it as a ratio).
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
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import baseline as baseline_src
from bench import procs
from bench.report import render
from bench.targets import (
    BASELINE_PAIRS,
    ROOT,
    Request,
    Target,
    build_targets,
    install_litellm,
    litellm_available,
)

RESULTS = ROOT / "bench" / "results"
TARGET_NAMES = ("upstream", "floor", "switchyard", "switchyard-chat", *(b for _, b in BASELINE_PAIRS), "litellm")
BASELINE_NAMES = {b for _, b in BASELINE_PAIRS}
GEN_CPUS = "1"
TARGET_CPUS = "0"


class Bench:
    """One benchmark run: the upstream, the generator and the measurements of every target."""

    def __init__(self, args: argparse.Namespace, work: Path, baseline: baseline_src.Baseline | None = None) -> None:
        self.args = args
        self.work = work
        self.baseline = baseline
        self.upstream_port = procs.free_port()
        self.upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        self.targets = build_targets(self.upstream_url, work, TARGET_CPUS, baseline)
        self.upstream: procs.Server | None = None

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- helpers -------------------------------------------------------------------------------------
    def set_delay(self, ms: float) -> None:
        urllib.request.urlopen(
            urllib.request.Request(f"{self.upstream_url}/_bench/delay/{ms:g}", data=b""), timeout=5
        ).read()

    def loadgen(self, url: str, request: Request, *extra: str, timeout: float) -> dict[str, Any]:
        body_file = self.work / f"body-{abs(hash(request.body))}.json"
        body_file.write_bytes(request.body)
        cmd = [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", url + request.path]
        cmd += ["--body-file", str(body_file), "--json", *extra]
        out = subprocess.run(procs.pinned(cmd, GEN_CPUS), capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def closed(self, url: str, request: Request, seconds: float, *, concurrency: int, requests: int | None = None):
        extra = ["--mode", "closed", "--duration", str(seconds), "--concurrency", str(concurrency)]
        extra += ["--timeout", "30"]
        if requests is not None:
            extra += ["--requests", str(requests)]
        return self.loadgen(url, request, *extra, timeout=seconds + 120)

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

    def start_target(self, target: Target, workers: int) -> tuple[procs.Server, str]:
        assert target.starter is not None
        port = procs.free_port()
        server = target.starter(port, workers, self.work)
        url = f"http://127.0.0.1:{port}"
        try:
            procs.wait_ready(server, url + target.json_request.path, target.json_request.body, timeout=180)
        except BaseException:
            server.stop()  # one that answers but never 200 (or a Ctrl-C during start) must not outlive the run
            raise
        return server, url

    def pick_stream(self, target: Target, url: str) -> Request | None:
        """The first streaming request the target answers with the upstream's tokens."""
        for candidate in target.stream_candidates:
            try:
                status, data = procs.post(url + candidate.path, candidate.body, timeout=10)
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
            cpu0 = server.cpu()
            result["max"] = self.closed(url, target.json_request, a.max_seconds, concurrency=a.concurrency)
            cpu = server.cpu() - cpu0
            ok = max(result["max"]["ok"], 1)
            result["cpu_ms_per_request"] = round(cpu / ok * 1000.0, 3)
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
                result["stream"] = self.open(url, stream, a.stream_rate, a.stream_seconds, stream=True)
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
        if target.starter is not None and a.scaling and target.name in a.scaling_targets:
            result["workers2"] = self.scaling(target)
        return result

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

    def scaling(self, target: Target) -> dict[str, Any] | None:
        try:
            server, url = self.start_target(target, 2)
        except RuntimeError as exc:
            self.log(f"{target.name}: 2 workers did not start: {exc}")
            return None
        try:
            self.set_delay(0)
            self.closed(url, target.json_request, self.args.warmup_seconds, concurrency=16)
            run = self.closed(url, target.json_request, self.args.max_seconds, concurrency=self.args.concurrency)
            self.log(f"{target.name}: 2 workers {run['achieved_rps']} req/s")
            return run
        finally:
            server.stop()

    def run(self) -> dict[str, Any]:
        meta = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "args": {k: v for k, v in vars(self.args).items() if k != "out"},
        }
        if self.baseline is not None:
            meta["baseline"] = {"ref": self.baseline.ref, "commit": self.baseline.commit}
        self.start_upstream()
        results: dict[str, Any] = {}
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
        finally:
            assert self.upstream is not None
            self.upstream.stop()
        meta["loadavg_end"] = os.getloadavg()
        meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        return {"meta": meta, "targets": results}


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter phases and a 20k-request soak")
    p.add_argument(
        "--targets",
        default="upstream,floor,switchyard,switchyard-chat,litellm",
        help=f"comma-separated, of: {', '.join(TARGET_NAMES)} (the baselines need --baseline-ref)",
    )
    p.add_argument("--rates", default="100,500,1000", help="open-loop rates (req/s)")
    p.add_argument("--delay-ms", type=float, default=50.0, help="upstream delay of the latency phases")
    p.add_argument("--concurrency", type=int, default=64, help="closed-loop connections")
    p.add_argument("--warmup-seconds", type=float)
    p.add_argument("--max-seconds", type=float, help="max-throughput phase length")
    p.add_argument("--rate-seconds", type=float, help="length of each open-loop phase")
    p.add_argument("--stream-rate", type=float, default=50.0)
    p.add_argument("--stream-seconds", type=float)
    p.add_argument("--soak-requests", type=int)
    p.add_argument("--soak-max-seconds", type=float, default=150.0, help="time cap of one target's soak")
    p.add_argument("--phases", default="open,stream,soak", help="phases after max throughput")
    p.add_argument("--no-scaling", dest="scaling", action="store_false", help="skip the 2-worker runs")
    p.add_argument("--scaling-targets", default="floor,switchyard,litellm")
    p.add_argument(
        "--baseline-ref",
        metavar="REF",
        help="also measure Switchyard built from a git worktree of REF (before/after table); adds "
        "switchyard-baseline after switchyard and switchyard-baseline-chat after switchyard-chat",
    )
    p.add_argument("--no-litellm-install", action="store_true", help="skip LiteLLM unless already installed")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    a = p.parse_args(argv)
    quick = a.quick
    a.warmup_seconds = a.warmup_seconds or (1.0 if quick else 3.0)
    a.max_seconds = a.max_seconds or (4.0 if quick else 10.0)
    a.rate_seconds = a.rate_seconds or (4.0 if quick else 10.0)
    a.stream_seconds = a.stream_seconds or (3.0 if quick else 8.0)
    a.soak_requests = a.soak_requests or (20_000 if quick else 100_000)
    a.phases = [t.strip() for t in a.phases.split(",")]
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    a.rates = [float(r) if "." in r else int(r) for r in a.rates.split(",") if r.strip()]
    a.scaling_targets = [t.strip() for t in a.scaling_targets.split(",")]
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
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        work = Path(tmp)
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
    sides = [("switchyard", ROOT)] if {"switchyard", "switchyard-chat"} & set(targets) else []
    if baseline is not None:
        print(f"baseline {baseline.ref} = {baseline.commit}: git worktree at {baseline.src}", flush=True)
        sides.append((f"switchyard-baseline ({baseline.commit})", baseline.src))
    for name, src in sides:
        app_file = baseline_src.check_app_source(src, baseline_src.switchyard_env(src), src)
        print(f"{name}: app imported from {app_file}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
