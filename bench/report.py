"""Markdown rendering of one benchmark run (``bench/run.py``): the per-core efficiency table of issue #17
(bare proxy, Portkey, Switchyard, LiteLLM; same-protocol and translated) with its ratios and targets met or
missed, the long-streams and scaling figures, the full results table, the issue-8 targets, the before/after
table of a ``--baseline-ref`` run, and the raw open-loop details."""

from __future__ import annotations

import statistics
from typing import Any

from bench.targets import BASELINE_PAIRS as PAIRS

ORDER = (
    "upstream",
    "floor",
    "portkey",
    "portkey-translated",
    "switchyard-chat",
    "switchyard-keys",
    "switchyard-baseline-chat",
    "switchyard-translated",
    "switchyard",
    "switchyard-baseline",
    "litellm",
)
ISSUE_ROWS = (
    "floor",
    "portkey",
    "switchyard-chat",
    "switchyard-keys",
    "litellm",
    "portkey-translated",
    "switchyard-translated",
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
        "w1s_rps": _get(t, "workers1_shared", "achieved_rps"),
        "w2_rps": _get(t, "workers2", "achieved_rps"),
    }
    m["scaling"] = m["w2_rps"] / m["w1s_rps"] if m["w2_rps"] and m["w1s_rps"] else None
    for rate in rates:
        key = str(rate)
        run = _get(t, "open", key)
        failed = run is not None and (run["error_count"] + run["dropped"]) > 0.01 * max(run["sent"], 1)
        for q in ("p50", "p99"):
            m[f"{q}@{key}"] = added(t, direct, ("open", key, "latency_ms"), q)
        m[f"whole_p99@{key}"] = _get(run, "latency_ms", "p99") if run is not None and run.get("ok") else None
        m[f"fail@{key}"] = failed
    return m


def render(data: dict[str, Any]) -> str:
    meta, targets = data["meta"], data["targets"]
    rates = meta["args"]["rates"]
    present = [n for n in ORDER if n in targets]
    direct = targets.get("upstream")
    ms = {n: metrics_of(targets[n], direct, rates) for n in present if "error" not in targets[n]}
    sy, fl, ll = ms.get("switchyard"), ms.get("floor"), ms.get("litellm")
    chat, pk = ms.get("switchyard-chat"), ms.get("portkey")

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
        ("max throughput, 1 worker on 2 shared cores (req/s)", "w1s_rps", 0),
        ("max throughput, 2 workers on 2 shared cores (req/s)", "w2_rps", 0),
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
        *_issue17(targets, ms, rates, meta),
        "",
        "## All results",
        "",
        "| metric | " + " | ".join(labels) + " | Switchyard chat / floor | Switchyard chat / Portkey |",
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
        ratio_fl = _ratio(_get(chat, key), _get(fl, key)) if key in RATIO_KEYS else ""
        ratio_pk = _ratio(_get(chat, key), _get(pk, key)) if key in RATIO_KEYS else ""
        out.append(f"| {title} | " + " | ".join(cells) + f" | {ratio_fl} | {ratio_pk} |")
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


def _issue17(targets: dict[str, Any], ms: dict[str, Any], rates: list[Any], meta: dict[str, Any]) -> list[str]:
    """The table of issue #17 (one pinned core each), its ratios, and its targets met or missed."""
    key = "500" if 500 in rates else None
    rows = [n for n in ISSUE_ROWS if n in targets]
    lines = [
        "## Per-core efficiency (issue #17)",
        "",
        f"`POST /v1/chat/completions`; one worker pinned to core 0. Latency: added p50 / p99 at {key or '?'} req/s "
        f"with a {meta['args']['delay_ms']:g} ms upstream; CPU per stream at {meta['args'].get('stream_rate', '?')} "
        "streams/s.",
        "",
        "| | max req/s (0 ms upstream) | CPU ms/request | added p50 / p99 (ms) | CPU ms per stream | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for n in rows:
        m = ms.get(n)
        if m is None:
            lines.append(f"| {targets[n]['label']} | failed | | | | |")
            continue
        lat = "n/a"
        if key is not None and m.get(f"p50@{key}") is not None:
            lat = f"{m[f'p50@{key}']:+.2f} / {m[f'p99@{key}']:+.2f}" + (" (errors)" if m.get(f"fail@{key}") else "")
        lines.append(
            f"| {targets[n]['label']} | {_fmt(_round(m['max_rps']))} | {_fmt(m['cpu_ms'], 3)} | {lat} | "
            f"{_fmt(m['cpu_stream_ms'], 3)} | {_fmt(m['peak_rss'], 1)} |"
        )
    chat, fl, pk = ms.get("switchyard-chat"), ms.get("floor"), ms.get("portkey")
    tr, pkt, keys = ms.get("switchyard-translated"), ms.get("portkey-translated"), ms.get("switchyard-keys")
    lines += ["", "| ratio | max req/s | CPU ms/request | CPU ms per stream | peak RSS |", "|---|---|---|---|---|"]
    for title, a, b in (
        ("Switchyard / bare proxy", chat, fl),
        ("Switchyard / Portkey", chat, pk),
        ("Switchyard with a virtual key / Portkey", keys, pk),
        ("Switchyard with a virtual key / without", keys, chat),
        ("Switchyard translated / Portkey translated", tr, pkt),
        ("Switchyard translated / Switchyard same-protocol", tr, chat),
    ):
        if a is None or b is None:
            continue
        cells = [_ratio(_get(a, k), _get(b, k)) for k in ("max_rps", "cpu_ms", "cpu_stream_ms", "peak_rss")]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "| target | result | measured |", "|---|---|---|"]
    if chat is None:
        return [*lines, "| Switchyard | n/a | not measured |", *_rounds_lines(targets, meta.get("rounds") or {})]
    rps = chat["max_rps"]
    if pk and rps and pk["max_rps"]:
        times = rps / pk["max_rps"]
        lines.append(_check("max throughput per core >= 2x Portkey's", times >= 2, f"{times:.2f}x Portkey"))
    if fl and rps and fl["max_rps"]:
        share = rps / fl["max_rps"]
        lines.append(_check("max throughput per core >= 0.25x the bare proxy's", share >= 0.25, f"{share:.2f}x"))
    rounds = meta.get("rounds") or {}
    for other, title in (("portkey", "Portkey's"), ("floor", "the bare proxy's")):
        median = _round_ratio(rounds, "switchyard-chat", other)
        if median is not None:
            need = 2.0 if other == "portkey" else 0.25
            lines.append(
                _check(
                    f"max throughput per core >= {need:g}x {title}, interleaved rounds (median)",
                    median[0] >= need,
                    f"{median[0]:.2f}x (rounds: {', '.join(f'{r:.2f}x' for r in median[1])})",
                )
            )
    if fl and key:
        sp50, fp50 = chat.get(f"p50@{key}"), fl.get(f"p50@{key}")
        if sp50 is not None and fp50 is not None:
            lines.append(
                _check(
                    f"added p50 @ {key} req/s within 1 ms of the bare proxy's",
                    sp50 - fp50 <= 1.0 and not chat.get(f"fail@{key}"),
                    f"{sp50:.2f} ms vs {fp50:.2f} ms ({sp50 - fp50:+.2f} ms)",
                )
            )
        sp99, fp99 = chat.get(f"p99@{key}"), fl.get(f"p99@{key}")
        if sp99 is not None and fp99 is not None:
            limit = 1.5 * max(fp99, 0.0)
            lines.append(
                _check(
                    f"added p99 @ {key} req/s within 1.5x the bare proxy's",
                    sp99 <= limit and not chat.get(f"fail@{key}"),
                    f"{sp99:.2f} ms vs {fp99:.2f} ms (limit {limit:.2f} ms)",
                )
            )
        wp99, wfp99 = chat.get(f"whole_p99@{key}"), fl.get(f"whole_p99@{key}")
        if wp99 is not None and wfp99 is not None:  # the other reading of the target: the p99 itself
            lines.append(
                _check(
                    f"p99 @ {key} req/s within 1.5x the bare proxy's (whole latency, the upstream's included)",
                    wp99 <= 1.5 * wfp99 and not chat.get(f"fail@{key}"),
                    f"{wp99:.2f} ms vs {wfp99:.2f} ms (limit {1.5 * wfp99:.2f} ms)",
                )
            )
    if fl and chat["cpu_stream_ms"] is not None and fl["cpu_stream_ms"]:
        times = chat["cpu_stream_ms"] / fl["cpu_stream_ms"]
        lines.append(_check("CPU per stream within 2x the bare proxy's", times <= 2, f"{times:.2f}x"))
    if chat["peak_rss"] is not None:
        lines.append(_check("RSS under 120 MB", chat["peak_rss"] < 120, f"{chat['peak_rss']:.1f} MB peak"))
    if chat["scaling"] is not None:
        t = targets["switchyard-chat"]
        cpu1, cpu2 = _get(t, "workers1_shared", "server_cpu_s"), _get(t, "workers2", "server_cpu_s")
        used = f"; worker CPU {cpu1:.1f} s -> {cpu2:.1f} s" if cpu1 and cpu2 else ""
        floor_scaling = f", bare proxy {fl['scaling']:.2f}x" if fl and fl.get("scaling") else ""
        lines.append(
            _check(
                "2 workers on 2 cores > 1.8x the 1-worker throughput",
                chat["scaling"] > 1.8,
                f"{chat['scaling']:.2f}x ({_fmt(_round(chat['w1s_rps']))} -> {_fmt(_round(chat['w2_rps']))} req/s"
                f"{used}{floor_scaling}; generator and upstream share the 2 cores)",
            )
        )
    lines += _streams_lines(targets)
    lines += _rounds_lines(targets, rounds)
    return lines


def _round_ratio(rounds: dict[str, Any], a: str, b: str) -> tuple[float, list[float]] | None:
    """The median over the interleaved rounds of a's max req/s over b's in the same round, and each round's."""
    ra, rb = rounds.get(a), rounds.get(b)
    if not ra or not rb:
        return None
    each = [x["rps"] / y["rps"] for x, y in zip(ra, rb, strict=False) if x.get("rps") and y.get("rps")]
    return (statistics.median(each), each) if each else None


def _rounds_lines(targets: dict[str, Any], rounds: dict[str, Any]) -> list[str]:
    """Max throughput measured again at the end of the run, each target in turn, round after round."""
    if not rounds:
        return []
    count = max(len(v) for v in rounds.values())
    head = " | ".join(f"round {i + 1}" for i in range(count))
    lines = [
        "",
        "Max throughput again, interleaved at the end of the run (all started at once, each measured in turn, "
        "round after round: the machine's drift over the run mostly cancels out of a ratio taken within a round; "
        "req/s and CPU ms per request):",
        "",
        f"| target | {head} | median req/s | median / bare proxy | median / Portkey |",
        "|---|" + "---|" * (count + 3),
    ]
    for name, runs in rounds.items():
        label = targets.get(name, {}).get("label", name)
        cells = [f"{_fmt(_round(r['rps']))} ({_fmt(r['cpu_ms'], 3)})" for r in runs]
        cells += [""] * (count - len(cells))
        median = statistics.median(r["rps"] for r in runs) if runs else None
        by_floor = _round_ratio(rounds, name, "floor")
        other = "portkey-translated" if name == "switchyard-translated" else "portkey"
        by_portkey = None if name.startswith("portkey") else _round_ratio(rounds, name, other)
        lines.append(
            f"| {label} | {' | '.join(cells)} | {_fmt(_round(median))} | "
            f"{f'{by_floor[0]:.2f}x' if by_floor and name != 'floor' else ''} | "
            f"{f'{by_portkey[0]:.2f}x' if by_portkey else ''} |"
        )
    return lines


def _streams_lines(targets: dict[str, Any]) -> list[str]:
    rows = [(n, t["streams"]) for n, t in targets.items() if isinstance(t.get("streams"), dict)]
    if not rows:
        return []
    lines = [
        "",
        "Long streams held by one worker (a figure, not a timed test):",
        "",
        "| target | streams asked / held at once | seconds each | ok | errors | RSS before -> peak (MB) | RSS per "
        "open stream (kB) | other requests meanwhile: p50 / p99 (ms), errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, s in rows:
        label = targets[n]["label"]
        if "error" in s:
            lines.append(f"| {label} | failed: {s['error'][:200]} | | | | | | |")
            continue
        probe = s["probe"]
        note = f" (fd limit {s['fd_limit']})" if s["streams"] < s["requested"] else ""
        lines.append(
            f"| {label} | {s['requested']:,} / {s['max_open']:,}{note} | {s['stream_seconds']:g} | {s['ok']:,} | "
            f"{s['error_count']} | {s['rss_before_mb']} -> {s['rss_peak_mb']} | {s['rss_per_stream_kb']} | "
            f"{_fmt(probe['latency_ms']['p50'])} / {_fmt(probe['latency_ms']['p99'])}, {probe['error_count']} "
            f"of {probe['sent']} |"
        )
    return lines


def _round(value: Any) -> Any:
    return round(value) if isinstance(value, float) else value


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
