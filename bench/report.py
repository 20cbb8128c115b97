"""``bench/RESULTS.md`` from ``bench/results.json``: pure formatting, no measuring.

Kept apart from the runners so the Markdown can be regenerated (``python -m bench.report``)
from the raw numbers without running anything again. Every statistic here is over *rounds*:
median, and the range min-max, so that one noisy round on a shared machine shows up as a
wide range rather than silently moving a mean. Ratios are taken round by round (surge's run
and the peer's run of the same round, which ran minutes apart at most) and then summarized
the same way: the ratio is the number to compare across machines, not the absolute CPU.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TOOL_ORDER = ["surge", "surge-pure", "k6", "locust-fast", "locust-http", "wrk"]
TOOL_LABEL = {
    "surge": "surge (worker)",
    "surge-pure": "surge, pure Python (worker)",
    "k6": "k6",
    "locust-fast": "Locust FastHttpUser",
    "locust-http": "Locust HttpUser",
    "wrk": "wrk",
}
# CPU-s per 1000 requests given in the issue for "this machine class" (generator on one core).
ISSUE_REFERENCE = {"wrk": 0.012, "k6": 0.184, "locust-fast": 0.355, "locust-http": 1.21}
# The issue's goals, as (peer cost / surge cost) at least this much. wrk: "within 4x" of it.
ISSUE_TARGET_RATIO = {"k6": 3.5, "locust-fast": 7.0, "wrk": 0.25}
ISSUE_CPU_BUDGET = 0.05  # surge worker CPU-s per 1000 requests
ISSUE_MEM_BUDGET_MB = 250  # 10,000 VUs in one worker


def _sig(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def _stat(values: Sequence[float | None], fmt: Callable[[float | None], str] = _sig) -> str:
    """``median (min–max)`` of the values that exist; just the value for one round."""
    xs = [v for v in values if v is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def _median(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def _ok_runs(doc: dict[str, Any], tool: str) -> list[dict[str, Any]]:
    return [r for r in doc.get("throughput", []) if r["tool"] == tool and r["ok"]]


def _rps(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}"


def _mb(kb: float | None) -> str:
    return "–" if not kb else f"{kb / 1024:.0f}"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.3g}"


def _per_round_ratio(doc: dict[str, Any], peer: str, key: str) -> list[float]:
    surge = {r["round"]: r for r in _ok_runs(doc, "surge")}
    out = []
    for r in _ok_runs(doc, peer):
        s = surge.get(r["round"])
        if s is not None and s.get(key) and r.get(key):
            out.append(r[key] / s[key])
    return out


def _reading(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    if ratio >= 1:
        return f"surge {ratio:.2g}× cheaper"
    return f"surge {1 / ratio:.2g}× dearer"


def throughput_section(doc: dict[str, Any]) -> list[str]:
    s = doc["settings"]
    lines = [
        "## Throughput: CPU per request, 50 keep-alive connections, POST with a small JSON body",
        "",
        f"{s['vus']} connections/VUs, back-to-back POSTs with no think time, {s['duration_s']:g} s per run, "
        f"{s['rounds']} rounds interleaved (the order rotates each round). Generator pinned to core "
        f"{s['gen_cores']}, server to core {s['server_cores']}." if s.get("gen_cores") is not None else
        f"{s['vus']} connections/VUs, back-to-back POSTs, {s['duration_s']:g} s per run, {s['rounds']} rounds; "
        "NOT pinned (one core only).",
        "",
        ("Each cell is the median over rounds, with the range (min–max) in brackets. **CPU/1k** is the "
        "generator's user+system CPU seconds per 1000 requests, whole run (start-up included); "
        "**steady CPU/1k** is the CPU slope over the middle of the run divided by the mean rate, "
        "i.e. without start-up and shut-down. Latency percentiles are each tool's own "
        "(Locust rounds to 2 significant digits; wrk prints no p95)."),
        "",
        ("| tool | requests/s | CPU/1k (CPU-s) | steady CPU/1k | issue's reference CPU/1k | p50 ms | p95 ms | p99 ms "
        "| peak RSS MB | failed | rounds ok |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in TOOL_ORDER:
        runs = [r for r in doc.get("throughput", []) if r["tool"] == tool]
        if not runs:
            continue
        ok = [r for r in runs if r["ok"]]
        lines.append(
            f"| {TOOL_LABEL[tool]} | {_stat([r['rps'] for r in ok], _rps)} | "
            f"{_stat([r['cpu_per_1k'] for r in ok])} | {_stat([r['steady_cpu_per_1k'] for r in ok])} | "
            f"{ISSUE_REFERENCE.get(tool, '–')} | {_stat([r['p50_ms'] for r in ok], _ms)} | "
            f"{_stat([r['p95_ms'] for r in ok], _ms)} | {_stat([r['p99_ms'] for r in ok], _ms)} | "
            f"{_stat([r['peak_rss_kb'] for r in ok], _mb)} | {sum(r['failed'] for r in ok)} | "
            f"{len(ok)}/{len(runs)} |"
        )
    surge_ok = _ok_runs(doc, "surge")
    if surge_ok:
        coord = [r["extra"].get("coordinator_cpu_s") for r in surge_ok]
        coord_per_1k = [
            1000 * r["extra"]["coordinator_cpu_s"] / r["requests"]
            for r in surge_ok if r["requests"] and r["extra"].get("coordinator_cpu_s") is not None
        ]
        sat = sum(1 for r in surge_ok if r["extra"].get("generator_saturated"))
        lines += [
            "",
            (f"surge's coordinator, not counted above: {_stat(coord)} CPU-s per run "
            f"({_stat(coord_per_1k)} CPU-s per 1000 requests), peak RSS "
            f"{_stat([r['extra'].get('coordinator_peak_rss_kb') for r in surge_ok], _mb)} MB. "
            f"surge's own saturation warning fired in {sat} of {len(surge_ok)} runs (expected: the generator "
            "is meant to use its whole core here)."),
        ]
    lines += noise_lines(doc)
    surge_runs = [r for r in doc.get("throughput", []) if r["tool"] == "surge"]
    digests = {r["extra"].get("surge_source_digest") for r in surge_runs} - {None}
    if len(digests) > 1:
        per_round = ", ".join(f"round {r['round']}: `{r['extra'].get('surge_source_digest')}`" for r in surge_runs)
        lines += [
            "",
            (f"**Warning: surge's source changed while the bench ran** ({per_round}): its rounds measured "
            "different code, so its median and range mix versions."),
        ]
    failures = [r for r in doc.get("throughput", []) if not r["ok"]]
    for r in failures:
        lines.append(f"\n- **{r['tool']} round {r['round']} failed**: {r['error'][:400]}")
    lines.append("")
    return lines


def noise_lines(doc: dict[str, Any]) -> list[str]:
    """How disturbed the runs were: the server's load and CPU used by anything else."""
    runs = [r for r in doc.get("throughput", []) if r["extra"].get("noise")]
    if not runs:
        return []

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.0f}%"

    lines = [
        "",
        ("Machine load during those runs (median, range): *server busy* is nginx's CPU over wall time "
        "(near 100 %: the server, not the generator, set the rate); *other CPU* is time used on each core "
        "by anything but the generator, the server and this harness (other work on the machine, plus some "
        "kernel network time), as a share of the run's wall time."),
        "",
        "| tool | server busy | other CPU, generator core | other CPU, server core |",
        "|---|---|---|---|",
    ]
    for tool in TOOL_ORDER:
        mine = [r["extra"]["noise"] for r in runs if r["tool"] == tool]
        if not mine:
            continue
        share = {
            k: [n[k] / n["wall_s"] for n in mine if k in n and n.get("wall_s")]
            for k in ("foreign_gen_s", "foreign_server_s")
        }
        lines.append(
            f"| {TOOL_LABEL[tool]} | {_stat([n['server_busy'] for n in mine], pct)} | "
            f"{_stat(share['foreign_gen_s'], pct)} | {_stat(share['foreign_server_s'], pct)} |"
        )
    return lines


def ratio_section(doc: dict[str, Any]) -> list[str]:
    surge_cpu = _median([r["cpu_per_1k"] for r in _ok_runs(doc, "surge")])
    if surge_cpu is None:
        return ["## surge against its peers", "", "No successful surge run: no ratios.", ""]
    lines = [
        "## surge against its peers (from the same rounds)",
        "",
        ("Ratio = peer's CPU per request ÷ surge worker's CPU per request, taken round by round; "
        "above 1 means surge is cheaper per request. The issue's goal is ≥ 3.5 against k6, ≥ 7 "
        "against Locust FastHttpUser and ≥ 0.25 against wrk (\"within 4×\")."),
        "",
        "| peer | ratio, whole run | ratio, steady state | reading | issue's goal | goal met (whole run) |",
        "|---|---|---|---|---|---|",
    ]
    for peer in TOOL_ORDER[1:]:
        whole = _per_round_ratio(doc, peer, "cpu_per_1k")
        if not whole:
            continue
        steady = _per_round_ratio(doc, peer, "steady_cpu_per_1k")
        goal = ISSUE_TARGET_RATIO.get(peer)
        med = _median(whole)
        met = "–" if goal is None or med is None else ("yes" if med >= goal else "**no**")
        lines.append(
            f"| {TOOL_LABEL[peer]} | {_stat(whole)} | {_stat(steady)} | {_reading(med)} | "
            f"{'≥ ' + str(goal) if goal else '–'} | {met} |"
        )
    met_budget = "yes" if surge_cpu <= ISSUE_CPU_BUDGET else "**no**"
    lines += [
        "",
        (f"surge worker, whole run: **{_sig(surge_cpu)} CPU-s per 1000 requests** (median); the issue's "
        f"budget is ≤ {ISSUE_CPU_BUDGET}: met: {met_budget}."),
        "",
    ]
    return lines


def marginal_kb_per_vu(rows: list[dict[str, Any]], tool: str) -> float | None:
    """(peak RSS at the largest VU count - at the smallest) / the VU difference, for one tool.

    The fixed footprint (interpreter, runtime, imports) cancels out, leaving what one more VU
    with its connection costs.
    """
    mine = sorted((r for r in rows if r["tool"] == tool and r["peak_rss_kb"] and not r.get("connection_per_request")),
                  key=lambda r: r["vus"])
    if len(mine) < 2 or mine[-1]["vus"] == mine[0]["vus"]:
        return None
    return float(mine[-1]["peak_rss_kb"] - mine[0]["peak_rss_kb"]) / float(mine[-1]["vus"] - mine[0]["vus"])


def memory_section(doc: dict[str, Any]) -> list[str]:
    rows = doc.get("memory", [])
    if not rows:
        return []
    s = doc["settings"]
    lines = [
        "## Memory per VU: one keep-alive connection per VU, 1 s think time",
        "",
        (f"Each VU: POST, then sleep 1 s; {s['mem_duration_s']:g} s per run; one run per cell. Peak RSS of the "
        "process holding the VUs (surge: the worker's VmHWM; k6: ru_maxrss). *Connections* is the peak "
        "count of ESTABLISHED client sockets to the server, sampled from /proc/net/tcp during the run: "
        "it shows every VU really held its own connection. *Planned* rate is VUs × 1/s; a generator "
        "that cannot keep up shows a lower achieved rate. Rows marked *a new connection per request* "
        "(`--mem-close-vus`) run past the process's open-file limit "
        f"({s.get('fd_limit') or '?'}), which caps VUs that hold a socket each: there only requests in "
        "flight hold one, and each request pays a dial."),
        "",
        ("| tool | VUs | peak RSS MB | KB per VU (total) | connections | requests/s achieved (planned) "
        "| failed | p95 ms | note |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        note = r["error"][:200] if r["error"] else ""
        if r.get("connection_per_request"):
            note = (note + "; " if note else "") + "a new connection per request (noConnectionReuse), not one per VU"
        share = r["extra"].get("saturated_share")
        if r["tool"] == "surge" and share:
            note = (note + "; " if note else "") + f"surge's monitor: worker saturated in {share:.0%} of its seconds"
        kb = "–" if r["kb_per_vu"] is None else f"{r['kb_per_vu']:.1f}"
        lines.append(
            f"| {r['tool']} | {r['vus']:,} | {_mb(r['peak_rss_kb'])} | {kb} | "
            f"{r['peak_connections']:,} | {_rps(r['rps'])} ({_rps(r['expected_rps'])}) | {r['failed']} | "
            f"{_ms(r['p95_ms'])} | {note} |"
        )
    lines.append("")
    for tool in ("surge", "k6"):
        m = marginal_kb_per_vu(rows, tool)
        if m is not None:
            lines.append(f"- {tool}: marginal memory **{m:.1f} KB per VU** (between the smallest and largest run).")
    surge_10k = [r for r in rows if r["tool"] == "surge" and r["vus"] == 10000 and r["peak_rss_kb"]]
    if surge_10k:
        mb = surge_10k[0]["peak_rss_kb"] / 1024
        met = "yes" if mb < ISSUE_MEM_BUDGET_MB else "**no**"
        lines.append(f"- surge at 10,000 VUs: {mb:.0f} MB; the issue's budget is < {ISSUE_MEM_BUDGET_MB} MB: met: {met}.")
    lines.append("")
    return lines


def coordinator_section(doc: dict[str, Any]) -> list[str]:
    rows = doc.get("coordinator", [])
    if not rows:
        return []
    s = doc["settings"]
    lines = [
        "## Coordinator scaling: CPU against the number of reporting workers",
        "",
        (f"`surge coordinator` on the generator core; N simulated workers ({s['coord_samples']} synthetic "
        "requests each per 1 s report, sinks built by surge's own Recorder, real ZeroMQ and wire protocol) "
        f"in one process on the other core; {s['coord_duration_s']:g} s runs. *CPU-s per s* is the "
        "coordinator's CPU over the window from the first Start to the last final Ack; *total* includes "
        "start-up and the summary. *CPU ms per report* is taken between the coordinator's first and last "
        "CPU samples inside that window, over the reports acknowledged between them (no interpolation at "
        "the ends, where the summary's CPU would leak in). *Merged all* checks that the exported "
        "`http_reqs` equals what the simulated workers sent."),
        "",
        "| workers | CPU-s per s of run | CPU ms per report (incl. fixed per-tick work) | total CPU-s | peak RSS MB | reports | merged all | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_report = r.get("ms_per_report")
        if per_report is None and r.get("reports") and "run_cpu_s" in r:  # a row from before ms_per_report
            per_report = 1000 * r["run_cpu_s"] / r["reports"]
        lines.append(
            f"| {r['workers']} | {_sig(r.get('cpu_per_s'))} | {_sig(per_report)} | {_sig(r.get('total_cpu_s'))} | "
            f"{_mb(r.get('peak_rss_kb'))} | {r.get('reports', '–')} | {r.get('merged_all', '–')} | "
            f"{(r.get('error') or '')[:200]} |"
        )
    lines.append("")
    return lines


SOAK_GOAL_MB_PER_H = 5.0  # the issue's goal for every process's RSS slope after the warm-up


def _marker(name: str, end: bool = False) -> str:
    return f"<!-- bench:{name}:{'end' if end else 'begin'} (written by python -m bench --only {name}) -->"


def splice(text: str, name: str, section: list[str]) -> str:
    """``text`` with the section between ``name``'s markers replaced by ``section`` (appended if absent).

    RESULTS.md also holds hand-written sections; a part that runs alone (the soak) rewrites its
    own block and nothing else.
    """
    block = "\n".join([_marker(name), *section, _marker(name, end=True)])
    begin, end = _marker(name), _marker(name, end=True)
    i, j = text.find(begin), text.find(end)
    if i >= 0 and j > i:
        return text[:i] + block + text[j + len(end):]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def _mb1(kb: float | None) -> str:
    return "–" if not kb else f"{kb / 1024:.1f}"


def _roles(samples: list[dict[str, Any]]) -> dict[str, str]:
    """Role keys (``worker-<pid>``) to stable labels: coordinator, worker 1, worker 2, other …"""
    keys = sorted({s["role"] for s in samples}, key=lambda r: (r != "coordinator", r.split("-")[0],
                                                               int(r.split("-")[1]) if "-" in r else 0))
    out: dict[str, str] = {}
    counters: dict[str, int] = {}
    for k in keys:
        kind = k.split("-")[0]
        if kind == "coordinator":
            out[k] = "coordinator"
        else:
            counters[kind] = counters.get(kind, 0) + 1
            out[k] = f"{kind} {counters[kind]}"
    return out


def soak_section(doc: dict[str, Any]) -> list[str]:
    """The soak's section: command, slope per process, counts, timeline points, RSS samples."""
    r = doc["soak"]
    m = doc["machine"]
    samples = r.get("samples", [])
    label = _roles(samples)
    lines = [
        f"## Soak, {doc['started'][:10]}: {r['duration_s'] / 60:g} minutes at {r['rate']} requests/s over "
        f"{r['urls']:,} distinct URLs",
        "",
        (f"Produced by `{doc['command']}` (from the repository root), {doc['started']} to {doc['finished']}; "
         f"surge commit `{m['surge_commit']}`, {m.get('surge_measured', '')}; {m['nproc']} cores "
         f"({m['cpu_model']}). `surge run -w 2` (coordinator + 2 worker processes, on core "
         f"{doc.get('gen_cores')}) against `surge target` (core {doc.get('server_cores')}), a "
         f"constant-arrival-rate scenario, each iteration `GET /shop/events/<id>` with the id cycling over "
         f"{r['urls']:,} values as raw URLs (so the per-endpoint table overflows its cap: see bench/soak.py). "
         f"VmRSS of every process every {r['sample_s']:g} s; the slope is a least-squares fit over the samples "
         f"from minute {r['warmup_s'] / 60:g} on."),
        "",
    ]
    if r.get("error"):
        lines += [f"**The run failed:** {r['error'][:600]}", ""]
    lines += ["| process | RSS slope after warm-up, MB/hour | peak RSS MB | goal < 5 MB/h met |", "|---|---|---|---|"]
    peaks = r.get("peak_rss_kb", {})
    for role, slope in r["slopes_mb_per_h"].items():
        met = "–" if slope is None else ("yes" if slope < SOAK_GOAL_MB_PER_H else "**no**")
        lines.append(f"| {label.get(role, role)} | {'–' if slope is None else f'{slope:+.2f}'} | "
                     f"{_mb1(peaks.get(role))} | {met} |")
    lines.append("")
    if "http_reqs" in r:
        eq = "equal" if r["counts_equal"] else "**not equal**"
        lines += [
            (f"- Requests: the summary export's `http_reqs` **{r['http_reqs']:,}**, the target's count "
             f"**{r['target_requests']:,}**: {eq} (planned {r['expected_requests']:,}; "
             f"{r['http_req_failed']} failed)."),
            (f"- Timeline in the export: **{r['timeline_points']} points** of {r['timeline_bucket_s']} s "
             f"(bounded by MAX_POINTS = 1000 whatever the length); the export is {r['export_bytes'] / 1024:.0f} KB."),
            f"- Per-endpoint rows in the export: {r['endpoint_rows']} (cap 100, plus the overflow row).",
            "",
        ]
    times = sorted({s["t_s"] for s in samples})
    cols = list(label)
    lines += ["RSS samples, MB:", "", "| t (min) | " + " | ".join(label[c] for c in cols) + " |",
              "|---" * (len(cols) + 1) + "|"]
    at = {(s["t_s"], s["role"]): s["rss_kb"] for s in samples}
    for t in times:
        lines.append(f"| {t / 60:.1f} | " + " | ".join(_mb1(at.get((t, c))) for c in cols) + " |")
    lines.append("")
    return lines


def what_this_shows(doc: dict[str, Any]) -> str:
    """The reading of the numbers above, written from them (so a re-run rewrites it too)."""
    parts: list[str] = []
    med = {t: _median([r["cpu_per_1k"] for r in _ok_runs(doc, t)]) for t in TOOL_ORDER}
    steady = {t: _median([r["steady_cpu_per_1k"] for r in _ok_runs(doc, t)]) for t in TOOL_ORDER}
    if med["surge"] is not None:
        peers = [
            f"{TOOL_LABEL[t]} {_sig(med[t])} ({_reading(_median(_per_round_ratio(doc, t, 'cpu_per_1k')))})"
            for t in TOOL_ORDER[1:] if med[t] is not None
        ]
        parts.append(
            f"Per request, surge's worker spent {_sig(med['surge'])} CPU-s per 1000 requests over the whole run "
            f"({_sig(steady['surge'])} in steady state)"
            + (f", against {'; '.join(peers)}." if peers else ".")
            + f" The issue's budget of {ISSUE_CPU_BUDGET} is "
            + ("met." if med["surge"] <= ISSUE_CPU_BUDGET else "not met.")
        )
        faster = [t for t, ref in ISSUE_REFERENCE.items() if (m := med.get(t)) is not None and m < 0.7 * ref]
        if faster:
            parts.append(
                "The peers cost clearly less here than the issue's reference figures for them ("
                + ", ".join(f"{TOOL_LABEL[t]} {_sig(med[t])} vs {ISSUE_REFERENCE[t]}" for t in faster)
                + "): the absolute figures depend on the machine (and on how the reference figures were "
                "taken), so the issue's absolute budget and its ratios cannot both be read off them; the "
                "ratios measured side by side, above, are the comparison that holds."
            )
    bound = []
    for t in TOOL_ORDER:
        busy = _median([r["extra"]["noise"]["server_busy"] for r in _ok_runs(doc, t) if r["extra"].get("noise")])
        if busy is not None and busy >= 0.9:
            bound.append(f"{TOOL_LABEL[t]} ({busy:.0%})")
    if bound:
        parts.append(
            "nginx's core was nearly saturated under " + ", ".join(bound) + ": that tool's rate is the "
            "server's limit, not its own, and its CPU per request may be somewhat overstated (fewer responses "
            "per wake-up), which would flatter surge's ratio to it."
        )
    mem = doc.get("memory", [])
    if mem:
        bits = []
        for tool in ("surge", "k6"):
            m = marginal_kb_per_vu(mem, tool)
            big = max((r for r in mem if r["tool"] == tool and not r.get("connection_per_request")),
                      key=lambda r: r["vus"], default=None)
            if big is not None:
                bits.append(
                    f"{tool} held {big['peak_connections']:,} connections for {big['vus']:,} VUs in "
                    f"{_mb(big['peak_rss_kb'])} MB"
                    + (f" ({m:.0f} KB per additional VU)" if m is not None else "")
                    + f", reaching {_rps(big['rps'])} of the planned {_rps(big['expected_rps'])} requests/s"
                )
        parts.append("Memory: " + "; ".join(bits) + ". A generator that falls behind its planned rate is "
                     "CPU-bound on its one core, and its latencies then include its own queueing.")
    coord = [r for r in doc.get("coordinator", []) if r.get("cpu_per_s") is not None]
    if len(coord) >= 2:
        lo, hi = coord[0], coord[-1]
        marginal = (hi["cpu_per_s"] - lo["cpu_per_s"]) / (hi["workers"] - lo["workers"])
        parts.append(
            f"Coordinator: from {lo['workers']} to {hi['workers']} reporting workers its CPU went from "
            f"{_sig(lo['cpu_per_s'])} to {_sig(hi['cpu_per_s'])} CPU-s per second of run, "
            f"{_sig(1000 * marginal)} ms of CPU per second for each additional worker"
            + (f", so one core would absorb roughly {1 / marginal:.0f} workers reporting every second "
               "(if the growth stays linear)." if marginal > 0 else ".")
            + f" Its peak RSS grew from {_mb(lo.get('peak_rss_kb'))} MB to {_mb(hi.get('peak_rss_kb'))} MB "
            "over the same range."
        )
    parts.append(
        "Caveats: a shared, virtualised 2-core machine, so rounds vary (the ranges show by how much); only "
        "the generator's CPU is counted (the server's core is excluded, and for surge so is the coordinator, "
        "reported separately); whole-run figures include each tool's start-up (Python imports, Go runtime), "
        "the steady-state column does not; latency percentiles are each tool's own, from generators running "
        "their core flat out, so they measure the generator as much as nginx."
    )
    return "\n\n".join(parts)


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    s = doc["settings"]
    lines = [
        "# surge benchmark results",
        "",
        (f"Produced by `{doc['command']}` (from the repository root) on {doc['started']}, "
        f"finished {doc['finished']}."),
        "",
        "## Machine and software",
        "",
        f"- {m['nproc']} cores ({m['cpu_model']}), {m['mem_total_gb']:.0f} GB RAM, Linux {m['kernel']}",
        f"- {m['python']} ({m['python_executable']}); aiohttp {m['aiohttp']}, uvloop {m['uvloop']}, pyzmq {m['pyzmq']}",
        f"- surge commit `{m['surge_commit']}` (read from .git; the bench never runs git); working-tree source "
        f"digest `{m['surge_source_digest']}` at the start (sha256 of surge/**/*.py: an editable install runs "
        "the working tree, uncommitted edits included)"
        + (
            ""
            if m.get("surge_source_digest_at_end") in (None, m["surge_source_digest"])
            else f", `{m['surge_source_digest_at_end']}` at the end: the tree changed while the bench ran"
        ),
        f"- surge measured: {m.get('surge_measured', 'the live working tree')}",
        f"- server: {doc['server']['kind']} {doc['server']['version']}",
    ]
    for tool, v in doc.get("versions", {}).items():
        lines.append(f"- {tool}: {v}")
    lines.append(f"- settings: `{json.dumps(s)}`")
    if doc.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in doc["notes"]]
    if doc.get("skipped"):
        lines += ["", "Skipped:", ""] + [f"- {k}: {v}" for k, v in doc["skipped"].items()]
    lines.append("")
    lines += throughput_section(doc)
    lines += ratio_section(doc)
    lines += memory_section(doc)
    lines += coordinator_section(doc)
    lines += ["## What this shows", "", what_this_shows(doc), ""]
    lines += [
        "Raw per-round numbers, commands and per-run details: `bench/results.json`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("results.json")
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else src.with_name("RESULTS.md")
    dst.write_text(render(json.loads(src.read_text())))
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
