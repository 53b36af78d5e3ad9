"""Markdown rendering of one benchmark run (``bench/run.py``): the results table, the Switchyard / floor and
Switchyard / LiteLLM ratios, the issue's targets with their margins, the before/after table of a
``--baseline-ref`` run, and the raw open-loop details."""

from __future__ import annotations

from typing import Any

from bench.targets import BASELINE_PAIRS as PAIRS

ORDER = (
    "upstream",
    "floor",
    "switchyard",
    "switchyard-baseline",
    "switchyard-chat",
    "switchyard-baseline-chat",
    "litellm",
)


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict) or d.get(key) is None:
            return None
        d = d[key]
    return d


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(a: Any, b: Any) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    value = a / b
    return f"{value:.2f}x" if abs(value) >= 0.1 else f"{value:.2g}x"


def added(t: dict[str, Any], direct: dict[str, Any] | None, path: tuple[str, ...], q: str) -> float | None:
    """Target percentile minus the upstream-direct percentile of the same phase (the gateway's share)."""
    value = _get(t, *path, q)
    base = _get(direct, *path, q) if direct else None
    if value is None or base is None:
        return None
    if _get(t, *path[:-1], "ok") == 0:
        return None
    return round(value - base, 3)


def metrics_of(t: dict[str, Any], direct: dict[str, Any] | None, rates: list[Any]) -> dict[str, Any]:
    m: dict[str, Any] = {
        "max_rps": _get(t, "max", "achieved_rps"),
        "cpu_ms": t.get("cpu_ms_per_request"),
        "cpu_stream_ms": t.get("cpu_ms_per_stream"),
        "peak_rss": t.get("peak_rss_mb"),
        "soak_growth": _get(t, "soak", "growth_pct"),
        "soak_requests": _get(t, "soak", "requests"),
        "ttft_p50": _get(t, "stream", "ttft_ms", "p50"),
        "ttft_added": added(t, direct, ("stream", "ttft_ms"), "p50"),
        "w2_rps": _get(t, "workers2", "achieved_rps"),
    }
    m["scaling"] = m["w2_rps"] / m["max_rps"] if m["w2_rps"] and m["max_rps"] else None
    for rate in rates:
        key = str(rate)
        run = _get(t, "open", key)
        failed = run is not None and (run["error_count"] + run["dropped"]) > 0.01 * max(run["sent"], 1)
        for q in ("p50", "p99"):
            m[f"{q}@{key}"] = added(t, direct, ("open", key, "latency_ms"), q)
        m[f"fail@{key}"] = failed
    return m


def render(data: dict[str, Any]) -> str:
    meta, targets = data["meta"], data["targets"]
    rates = meta["args"]["rates"]
    present = [n for n in ORDER if n in targets]
    direct = targets.get("upstream")
    ms = {n: metrics_of(targets[n], direct, rates) for n in present if "error" not in targets[n]}
    sy, fl, ll = ms.get("switchyard"), ms.get("floor"), ms.get("litellm")

    rows: list[tuple[str, str, int]] = [
        ("max throughput, 0 ms delay (req/s)", "max_rps", 0),
        ("CPU per request (ms)", "cpu_ms", 3),
    ]
    for rate in rates:
        rows.append((f"added p50 @ {rate} req/s, {meta['args']['delay_ms']:g} ms delay (ms)", f"p50@{rate}", 2))
        rows.append((f"added p99 @ {rate} req/s (ms)", f"p99@{rate}", 2))
    rows += [
        ("streaming TTFT p50 (ms)", "ttft_p50", 2),
        ("CPU per stream (ms)", "cpu_stream_ms", 3),
        ("added TTFT p50 (ms)", "ttft_added", 2),
        ("peak RSS (MB)", "peak_rss", 1),
        ("RSS growth over soak (%)", "soak_growth", 2),
        ("soak requests", "soak_requests", 0),
        ("max throughput, 2 workers (req/s)", "w2_rps", 0),
        ("scaling 1 -> 2 workers", "scaling", 2),
    ]
    labels = [targets[n]["label"] for n in present]
    out = [
        "# Switchyard benchmark",
        "",
        f"Run {meta['started']} -> {meta.get('finished', '?')}, commit {meta['commit']}"
        f"{' (+ uncommitted changes)' if meta.get('dirty') else ''}, Python {meta['python']}, "
        f"{meta['cpus']} CPUs, load average {_load(meta.get('loadavg_start'))} at start, "
        f"{_load(meta.get('loadavg_end'))} at end. Targets: one worker pinned to core 0; load generator and "
        "fake upstream on core 1. `added` = the target's percentile minus the upstream-direct percentile of "
        "the same phase. Shared, noisy machine: read the ratios.",
        "",
        "| metric | " + " | ".join(labels) + " | Switchyard / floor | Switchyard / LiteLLM |",
        "|---" * (len(labels) + 3) + "|",
    ]
    for title, key, digits in rows:
        cells = []
        for n in present:
            if n not in ms:
                cells.append("failed")
                continue
            value = ms[n].get(key)
            if isinstance(value, float) and digits == 0:
                value = round(value)
            text = _fmt(value, digits)
            if "@" in key and ms[n].get(f"fail@{key.split('@')[1]}"):
                text += " (errors)"
            cells.append(text)
        ratio_fl = _ratio(_get(sy, key), _get(fl, key)) if key in RATIO_KEYS else ""
        ratio_ll = _ratio(_get(sy, key), _get(ll, key)) if key in RATIO_KEYS else ""
        out.append(f"| {title} | " + " | ".join(cells) + f" | {ratio_fl} | {ratio_ll} |")
    out += ["", *_targets_section(sy, fl, ll, rates)]
    if any(before in targets for _, before in PAIRS):
        out += ["", *_before_after(meta, targets, ms)]
    out += ["", *_details(targets, present, rates)]
    for n in present:
        if "error" in targets[n]:
            out += ["", f"**{targets[n]['label']} failed:**", "", "```", targets[n]["error"], "```"]
    return "\n".join(out) + "\n"


RATIO_KEYS = {"max_rps", "cpu_ms", "cpu_stream_ms", "peak_rss", "w2_rps", "scaling", "p50@500", "p99@500", "ttft_p50"}
BEFORE_AFTER_ROWS = (
    ("max throughput, 0 ms delay (req/s)", "max_rps", 0),
    ("CPU per request (ms)", "cpu_ms", 3),
    ("CPU per stream (ms)", "cpu_stream_ms", 3),
    ("peak RSS (MB)", "peak_rss", 1),
)


def _before_after(meta: dict[str, Any], targets: dict[str, Any], ms: dict[str, Any]) -> list[str]:
    """After (this working tree) against before (``--baseline-ref``), the same requests, back to back."""
    base = meta.get("baseline") or {}
    ref = f"`{base['ref']}` ({base['commit']})" if base else "the baseline ref"
    after = f"commit {meta['commit']}{' + uncommitted changes' if meta.get('dirty') else ''}"
    lines = [
        "## Before / after (issue #11)",
        "",
        f"Before = Switchyard from a git worktree of {ref}; after = this checkout ({after}). Same config, same "
        "requests, same core, measured one after the other in this run. after / before < 1 is less CPU, "
        "less memory; > 1 is more throughput.",
        "",
        "| request | metric | before | after | after / before |",
        "|---|---|---|---|---|",
    ]
    for after_name, before_name in PAIRS:
        if before_name not in targets and after_name not in targets:
            continue
        request = targets.get(after_name, targets.get(before_name, {})).get("note", after_name).split(";")[0]
        for title, key, digits in BEFORE_AFTER_ROWS:
            cells = []
            for name in (before_name, after_name):
                if name not in targets:
                    cells.append("not run")
                elif name not in ms:
                    cells.append("failed")
                else:
                    value = ms[name].get(key)
                    cells.append(_fmt(round(value) if isinstance(value, float) and digits == 0 else value, digits))
            ratio = _ratio(_get(ms.get(after_name), key), _get(ms.get(before_name), key))
            lines.append(f"| {request} | {title} | {cells[0]} | {cells[1]} | {ratio} |")
            request = ""
    return lines


def _load(value: Any) -> str:
    return "/".join(f"{v:.1f}" for v in value) if value else "?"


def _check(name: str, ok: bool | None, detail: str) -> str:
    mark = "n/a" if ok is None else ("PASS" if ok else "MISS")
    return f"| {name} | {mark} | {detail} |"


def _targets_section(sy: Any, fl: Any, ll: Any, rates: list[Any]) -> list[str]:
    lines = ["## Targets (issue #8)", "", "| target | result | measured |", "|---|---|---|"]
    if not sy:
        return [*lines, "| Switchyard | n/a | not measured |"]
    if fl and sy["max_rps"] and fl["max_rps"]:
        share = sy["max_rps"] / fl["max_rps"]
        lines.append(_check("max throughput >= 70% of floor", share >= 0.7, f"{share:.0%} of floor"))
    if ll and sy["max_rps"] and ll["max_rps"]:
        times = sy["max_rps"] / ll["max_rps"]
        lines.append(_check("max throughput > 20x LiteLLM", times > 20, f"{times:.1f}x LiteLLM"))
    key = "500" if 500 in rates else str(rates[len(rates) // 2]) if rates else None
    if fl and key:
        sp50, fp50 = sy.get(f"p50@{key}"), fl.get(f"p50@{key}")
        if sp50 is not None and fp50 is not None:
            lines.append(
                _check(
                    f"added p50 @ {key} req/s within 1 ms of floor",
                    sp50 - fp50 <= 1.0,
                    f"{sp50:.2f} ms vs {fp50:.2f} ms ({sp50 - fp50:+.2f} ms)",
                )
            )
        sp99, fp99 = sy.get(f"p99@{key}"), fl.get(f"p99@{key}")
        if sp99 is not None and fp99 is not None:
            limit = 1.5 * max(fp99, 0.0)
            lines.append(
                _check(
                    f"added p99 @ {key} req/s within 1.5x floor",
                    sp99 <= max(limit, fp99 + 0.5),
                    f"{sp99:.2f} ms vs {fp99:.2f} ms (limit {limit:.2f} ms; 0.5 ms floor for tiny values)",
                )
            )
    if fl and sy["ttft_added"] is not None and fl["ttft_added"] is not None:
        diff = sy["ttft_added"] - fl["ttft_added"]
        lines.append(_check("TTFT within 1 ms of floor", diff <= 1.0, f"{diff:+.2f} ms vs floor"))
    if sy["peak_rss"] is not None:
        lines.append(_check("peak RSS < 150 MB", sy["peak_rss"] < 150, f"{sy['peak_rss']:.1f} MB"))
    if sy["soak_growth"] is not None:
        lines.append(
            _check(
                "RSS growth < 10% over the soak",
                sy["soak_growth"] < 10,
                f"{sy['soak_growth']:+.2f}% over {sy['soak_requests']:,} requests",
            )
        )
    return lines


def _details(targets: dict[str, Any], present: list[str], rates: list[Any]) -> list[str]:
    lines = [
        "## Open-loop and streaming details",
        "",
        "| target | phase | sent | ok | errors | dropped | achieved req/s | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in present:
        t = targets[n]
        phases = [(f"{r} req/s", _get(t, "open", str(r)), "latency_ms") for r in rates]
        phases.append(("stream TTFT", t.get("stream"), "ttft_ms"))
        phases.append(("max throughput", t.get("max"), "latency_ms"))
        for title, run, key in phases:
            if not run:
                continue
            lat = run.get(key) or {}
            errors = ", ".join(f"{k}: {v}" for k, v in run.get("errors", {}).items()) or "0"
            lines.append(
                f"| {t['label']} | {title} | {run.get('sent')} | {run.get('ok')} | {errors} | {run.get('dropped')} | "
                f"{run.get('achieved_rps')} | {_fmt(lat.get('p50'))} | {_fmt(lat.get('p90'))} | "
                f"{_fmt(lat.get('p99'))} | {_fmt(lat.get('max'))} |"
            )
    notes = [f"- {targets[n]['label']}: {targets[n]['note']}" for n in present if targets[n].get("note")]
    notes += [
        f"- {targets[n]['label']} streamed via {targets[n]['stream_path']}"
        for n in present
        if targets[n].get("stream_path")
    ]
    return [*lines, "", *notes] if notes else lines


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report results.json``: print the markdown of a saved run."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    with open(args[0]) as handle:
        print(render(json.load(handle)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
