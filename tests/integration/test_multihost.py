"""A fleet across machines: coordinator, load machines and target each in a network namespace.

The machines (see :mod:`tests.integration.netns`), on a bridge of their own in 10.200.0.0/24::

    jumpbox .1   the coordinator            load1 .2, load2 .3   keyed workers
    target  .4   the demo target            nokeys .8, wrongkey .9   workers the fleet must refuse

Every run uses the fleet's CURVE keys (``surge keys``, made on the jump box; each load machine
has its own copy of ``worker/`` only). Every request goes to the target's address, every load is
a few VUs for a few seconds (or until the test kills a process), and the target counts what it
received per sender's address (``by_client`` in ``/__surge/stats``), so the tests can say which
machine sent what. Skipped where namespaces cannot be made (not root, no ``ip``, refused).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration import netns
from tests.integration.conftest import ANON_KEY, FIXTURES, REPO, stop, wait_for_line

pytestmark = [pytest.mark.integration, pytest.mark.netns]

MACHINES = {"jumpbox": 1, "load1": 2, "load2": 3, "target": 4, "nokeys": 8, "wrongkey": 9}
PORT = 5557
TARGET_PORT = 8787
SCENARIO = FIXTURES / "multihost.py"
HEARTBEAT_S = 1.0  # both ends heartbeat every second (README: "Silence stops the load")
WORKER_LOSS_S = 5.0  # the coordinator's silence limit for a worker


def surge(*args: str) -> list[str]:
    return [sys.executable, "-m", "surge", *args]


@pytest.fixture(scope="module")
def lan() -> Iterator[netns.Network]:
    with netns.network("mh", MACHINES) as net:
        yield net


@pytest.fixture(scope="module")
def keys(lan: netns.Network, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fleet's keys, made on the jump box: ``DIR/coordinator/`` and ``DIR/worker/``."""
    d = tmp_path_factory.mktemp("jumpbox") / "keys"
    made = subprocess.run(lan["jumpbox"].argv(*surge("keys", str(d))), cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    return d


def machine_keys(keys: Path, machine: str, tmp_path: Path) -> Path:
    """What a load machine holds: a copy of ``keys/worker/`` only (as scp would leave it)."""
    home = tmp_path / machine / "keys"
    home.mkdir(parents=True)
    shutil.copytree(keys / "worker", home / "worker")  # copy2 keeps the secret's mode 0600
    return home


@dataclass
class Target:
    """The demo target on the target machine, read from the jump box."""

    lan: netns.Network
    proc: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://{self.lan['target'].address}:{TARGET_PORT}"

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.lan["jumpbox"].get_json(self.lan["target"].address, TARGET_PORT, "/__surge/stats")
        return data

    def sent_by(self, machine: str) -> int:
        return int(self.stats()["by_client"].get(self.lan[machine].address, 0))


@pytest.fixture
def target(lan: netns.Network) -> Iterator[Target]:
    m = lan["target"]
    # --parent-pid: it ends by itself if this process dies without cleaning up (ip netns exec execs it)
    proc = m.popen(*surge("target", "--host", m.address, "--port", str(TARGET_PORT), "--latency-median-ms", "5",
                         "--latency-sigma", "0.3", "--parent-pid", str(os.getpid())), cwd=REPO)
    t = Target(lan, proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert t.stats()["requests"] == 0
                break
            except OSError:
                assert proc.poll() is None, f"the target exited {proc.returncode}: {proc.communicate()[1]}"
                assert time.monotonic() < deadline, "the target never listened"
                time.sleep(0.1)
        yield t
    finally:
        stop(proc)


def start_coordinator(lan: netns.Network, keys: Path, target: Target, export: Path, *flags: str) -> subprocess.Popen[str]:
    """The coordinator on the jump box, for two workers, with the fleet's keys."""
    return lan["jumpbox"].popen(*surge(
        "coordinator", str(SCENARIO), "--bind", f"tcp://0.0.0.0:{PORT}", "--expect-workers", "2", "--keys", str(keys),
        "--summary-export", str(export), "-e", f"BASE_URL={target.url}", "-e", f"ANON_KEY={ANON_KEY}", *flags,
    ), cwd=REPO)


def start_worker(lan: netns.Network, machine: str, *flags: str) -> subprocess.Popen[str]:
    return lan[machine].popen(*surge(
        "worker", "--connect", f"tcp://{lan['jumpbox'].address}:{PORT}", "--name", machine, *flags,
    ), cwd=REPO)


def wait_for_both_machines(target: Target, at_least: int = 5, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while min(target.sent_by("load1"), target.sent_by("load2")) < at_least:
        assert time.monotonic() < deadline, f"the load never came from both load machines: {target.stats()}"
        time.sleep(0.1)


def last_change_after(target: Target, since: float, quiet_s: float, within_s: float) -> float:
    """Poll the target's count until it has not moved for ``quiet_s``; when it last moved, after ``since``."""
    last, changed = target.stats()["requests"], time.monotonic()
    while time.monotonic() - changed < quiet_s:
        assert time.monotonic() - since < within_s, f"the load is still running after {within_s}s"
        time.sleep(0.1)
        now = target.stats()["requests"]
        if now != last:
            last, changed = now, time.monotonic()
    return changed - since


def summary_metrics(export: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(export.read_text())["metrics"]
    return data


def test_the_machines_reach_only_each_other(lan: netns.Network) -> None:
    # no default route anywhere: a request can only go to an address of the test's own machines
    for m in lan.machines.values():
        routes = m.routes()
        assert [r.split()[:3] for r in routes] == [[f"{netns.SUBNET}.0/24", "dev", "eth0"]], routes


# ------------------------------------------------------------------ a. a run passing


def test_a_run_across_machines_passes_and_the_summary_counts_what_the_target_served(
    lan: netns.Network, keys: Path, target: Target, tmp_path: Path
) -> None:
    export = tmp_path / "summary.json"
    workers = [start_worker(lan, m, "--once", "--keys", str(machine_keys(keys, m, tmp_path))) for m in ("load1", "load2")]
    coord = start_coordinator(lan, keys, target, export, "-q")
    try:
        _, err = coord.communicate(timeout=60)
        assert coord.returncode == 0, err
        for m in ("load1", "load2"):
            assert f"worker {m} joined from {lan[m].address}" in err, err
        served = target.stats()
        assert summary_metrics(export)["http_reqs"]["values"]["count"] == served["requests"]
        # both load machines sent load, nobody else did
        assert set(served["by_client"]) == {lan["load1"].address, lan["load2"].address}, served
        assert min(served["by_client"].values()) > 0
        assert [w.wait(timeout=30) for w in workers] == [0, 0]  # --once: each ran the run and left
    finally:
        stop(coord, *workers)


# ------------------------------------------------------------------ b. workers without the fleet's key


def wrong_keys(keys: Path, tmp_path: Path) -> Path:
    """A key pair the fleet never authorized, beside the coordinator's public key (which is no secret)."""
    other = tmp_path / "other-fleet"
    made = subprocess.run(surge("keys", str(other)), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    home = tmp_path / "wrongkey" / "keys" / "worker"
    shutil.copytree(other / "worker", home)
    shutil.copy2(keys / "worker" / "coordinator.key", home / "coordinator.key")
    return home


def test_workers_without_the_fleets_key_are_refused_and_never_get_the_run(
    lan: netns.Network, keys: Path, target: Target, tmp_path: Path
) -> None:
    assert (keys / "worker" / "coordinator.key").exists()
    export = tmp_path / "summary.json"
    coord = start_coordinator(lan, keys, target, export, "-q")
    nokeys = start_worker(lan, "nokeys")
    wrongkey = start_worker(lan, "wrongkey", "--keys", str(wrong_keys(keys, tmp_path)))
    members: list[subprocess.Popen[str]] = []
    try:
        # The ZAP gate names the sender of a key it does not know. A peer with no CURVE at all is
        # refused inside libzmq, whose events carry no peer address: logged as "a peer on <bind>".
        seen = "".join(wait_for_line(coord, f"refused {lan['wrongkey'].address}: unknown CURVE key", within_s=30))
        if "refused a peer on" not in seen:
            seen += "".join(wait_for_line(coord, "refused a peer on", within_s=30))
        wait_for_line(wrongkey, "refused this worker's key", within_s=30)
        wait_for_line(nokeys, "waiting for the coordinator", within_s=30)
        members = [start_worker(lan, m, "--once", "--keys", str(machine_keys(keys, m, tmp_path))) for m in ("load1", "load2")]
        _, err = coord.communicate(timeout=60)
        err = seen + err
        assert coord.returncode == 0, err
        joined = sorted(line.split(" joined from ")[0].rsplit(" ", 1)[-1] for line in err.splitlines() if " joined from " in line)
        assert joined == ["load1", "load2"], err
        served = target.stats()
        assert set(served["by_client"]) == {lan["load1"].address, lan["load2"].address}, served  # not a request from either
        assert summary_metrics(export)["http_reqs"]["values"]["count"] == served["requests"] > 0
        assert nokeys.poll() is None and wrongkey.poll() is None, "the refused workers still wait: they never got a run"
    finally:
        stop(coord, nokeys, wrongkey, *members)


# ------------------------------------------------------------------ c. a load machine's worker killed mid-run


@dataclass
class LostWorkerRun:
    """What a run did after one load machine's worker was killed (SIGKILL) mid-run."""

    code: int
    out: str
    err: str
    export: Path
    killed: str  # the machine whose worker was killed
    sent_by_killed_after_kill: int  # its requests the target had counted shortly after the kill
    served: dict[str, Any]  # the target's stats once the load had stopped
    survivor_err: str = ""  # load2's worker's stderr


def run_losing_a_worker(lan: netns.Network, keys: Path, target: Target, tmp_path: Path, *coordinator_flags: str) -> LostWorkerRun:
    """A 20 s run over load1 and load2; load1's worker is killed once both send load.

    ``coordinator_flags`` is for a loss policy (``--on-worker-loss continue``); the default
    policy needs none.
    """
    export = tmp_path / "summary.json"
    workers = {m: start_worker(lan, m, "--keys", str(machine_keys(keys, m, tmp_path))) for m in ("load1", "load2")}
    coord = start_coordinator(lan, keys, target, export, "-q", "-e", "DURATION=20s", *coordinator_flags)
    try:
        wait_for_both_machines(target, at_least=30)  # ~1.5 s of load: load1 has sent a report or so
        workers["load1"].send_signal(signal.SIGKILL)
        workers["load1"].wait(timeout=10)
        time.sleep(0.5)  # slack: requests already on the wire when the process died may still be counted
        after_kill = target.sent_by("load1")
        out, err = coord.communicate(timeout=60)
        killed_at = time.monotonic()
        last_change_after(target, killed_at, quiet_s=1.5, within_s=15)  # load2's load ended with the run
        run = LostWorkerRun(coord.returncode, out, err, export, "load1", after_kill, target.stats())
    finally:
        stop(coord, *workers.values())
    run.survivor_err = workers["load2"].communicate(timeout=30)[1]
    return run


def test_a_killed_worker_ends_the_run_with_exit_120_after_the_summary_naming_it(
    lan: netns.Network, keys: Path, target: Target, tmp_path: Path
) -> None:
    run = run_losing_a_worker(lan, keys, target, tmp_path)
    assert run.code == 120, run.err
    last = run.err.strip().splitlines()[-1]
    assert last.startswith(f"surge: error: worker {run.killed} was lost ") and "(silent for 5s)" in last, last
    kept = re.search(r"into the run \(silent for 5s\); kept: its \d+ report\(s\) covering the first [\d.]+s "
                     r"\((\d+) requests\)", last)
    assert kept, last
    assert "http_reqs" in run.out  # the summary came first, on stdout
    # nothing more came from the killed machine after its death ...
    killed, other = run.served["by_client"][lan[run.killed].address], run.served["by_client"][lan["load2"].address]
    assert killed == run.sent_by_killed_after_kill
    # ... and the summary holds all that load2 sent (its final report came in) and what load1 had reported
    assert summary_metrics(run.export)["http_reqs"]["values"]["count"] == other + int(kept.group(1))
    assert int(kept.group(1)) <= killed and other > 0


def test_with_continue_the_survivor_takes_over_the_killed_workers_vus_and_the_run_passes(
    lan: netns.Network, keys: Path, target: Target, tmp_path: Path
) -> None:
    run = run_losing_a_worker(lan, keys, target, tmp_path, "--on-worker-loss", "continue")
    assert run.code == 0, run.err  # judged by its thresholds, which held
    last = run.err.strip().splitlines()[-1]
    assert last.startswith(f"surge: warning: worker {run.killed} was lost ") and "took over its share" in last, last
    (lost,) = json.loads(run.export.read_text())["state"]["lostWorkers"]
    assert lost["name"] == run.killed and lost["handedOver"] is True
    assert "taking over 1 slice(s) of a lost worker's share" in run.survivor_err
    killed, other = run.served["by_client"][lan[run.killed].address], run.served["by_client"][lan["load2"].address]
    assert killed == run.sent_by_killed_after_kill  # the dead machine sent nothing more
    assert summary_metrics(run.export)["http_reqs"]["values"]["count"] == other + lost["requests"]


# ------------------------------------------------------------------ d. the coordinator killed mid-run


COORDINATOR_TIMEOUT_S = 2.0
STOP_SLACK_S = 1.5  # scheduling noise and the 0.1 s polling on a busy 2-core machine (seen: stopped after ~1.8 s)


def test_a_killed_coordinator_stops_the_load_within_the_workers_timeout(
    lan: netns.Network, keys: Path, target: Target, tmp_path: Path
) -> None:
    export = tmp_path / "summary.json"
    workers = [
        start_worker(lan, m, "--coordinator-timeout", f"{COORDINATOR_TIMEOUT_S:g}", "--keys", str(machine_keys(keys, m, tmp_path)))
        for m in ("load1", "load2")
    ]
    coord = start_coordinator(lan, keys, target, export, "-q", "-e", "DURATION=20s")
    try:
        wait_for_both_machines(target)
        coord.send_signal(signal.SIGKILL)
        coord.wait(timeout=10)
        killed_at = time.monotonic()
        # the 20 s run stops within the workers' 2 s timeout (their last heartbeat heard came
        # before the kill), plus the stated slack; a quiet 2 s means it has stopped
        stopped_after = last_change_after(target, killed_at, quiet_s=2.0, within_s=15)
        assert stopped_after <= COORDINATOR_TIMEOUT_S + STOP_SLACK_S, stopped_after
        served = target.stats()
        assert set(served["by_client"]) == {lan["load1"].address, lan["load2"].address}, served
        assert all(w.poll() is None for w in workers), "long-lived workers survive and wait for a coordinator"
        for w in workers:
            w.kill()
            _, err = w.communicate(timeout=30)
            assert f"no word from the coordinator for {COORDINATOR_TIMEOUT_S:g}s: stopping the load now" in err, err
    finally:
        stop(coord, *workers)


# ------------------------------------------------------------------ the README's walkthrough, run as written


README = REPO / "README.md"
BLOCK = re.compile(r"<!-- one-machine: (\w+) -->\n```sh\n(.*?)```", re.S)


def readme_blocks() -> dict[str, str]:
    """The fenced blocks of "Trying it on one machine", by their marker."""
    blocks = dict(BLOCK.findall(README.read_text()))
    assert set(blocks) == {"setup", "run", "cleanup"}, sorted(blocks)
    return blocks


def test_the_readme_walkthrough_on_one_machine_runs_as_written(tmp_path: Path) -> None:
    reason = netns.cannot_create() or next((f"the walkthrough needs {tool}" for tool in ("unshare", "curl", "bash")
                                          if shutil.which(tool) is None), None)
    if reason:
        pytest.skip(reason)
    blocks = readme_blocks()
    # "from the top of this repository": a copy of what the commands use, so that the keys, logs
    # and results they leave end up here and not in the checkout
    work = tmp_path / "checkout"
    shutil.copytree(REPO / "scenarios", work / "scenarios", ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    # `surge` is the installed command; this checkout's package goes first on its path (a
    # directory holding only the package, so that the checkout's own scenarios/ is not importable)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "surge").symlink_to(REPO / "surge")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", "PYTHONPATH": str(pkg),
           "PYTHONUNBUFFERED": "1"}
    # The README's names (lan, jumpbox, ...) are made in a tmpfs over /run/netns that only this
    # mount namespace sees, so they clash with no one's; in a PID namespace of its own, every
    # process the blocks start dies with it, whatever happens. Nothing else is added to the blocks.
    script = "\n".join([
        "mount -t tmpfs surge-readme-test /run/netns",
        "finish() {", blocks["cleanup"], "ip netns list > netns-left.txt", "}",
        "trap finish EXIT",
        "set -e", blocks["setup"], "set +e",
        blocks["run"],
    ])
    Path("/run/netns").mkdir(parents=True, exist_ok=True)  # what `ip netns add` would make anyway
    try:
        res = subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
                              "--mount-proc", "bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                             timeout=120)
    except subprocess.TimeoutExpired as exc:  # subprocess.run killed unshare, and with it every process inside
        raise AssertionError(f"the walkthrough did not end within 120 s: {exc.stderr!r}") from None
    first = res.stderr.strip().splitlines()[0] if res.stderr.strip() else ""
    if first.startswith("unshare: ") or (first.startswith("mount: ") and "denied" in first):
        pytest.skip(f"cannot make a private mount and PID namespace here: {first}")
    out = res.stdout
    assert "exit status 0" in out.splitlines(), f"{out}\n{res.stderr}"
    assert (work / "scenarios" / "results" / "ticket-purchase-results.json").exists()  # the scenario's own results
    counted = int(re.search(r"^http_reqs (\d+)$", out, re.M).group(1))  # type: ignore[union-attr]
    served = json.loads(next(line for line in out.splitlines() if line.startswith('{"requests"')))
    assert served["requests"] == counted > 0, out
    assert set(served["by_client"]) == {"10.200.0.2", "10.200.0.3"}, served
    assert min(served["by_client"].values()) > 0
    assert summary_metrics(work / "summary.json")["http_reqs"]["values"]["count"] == counted
    # the README's cleanup deleted its namespaces, and removed what the run left but the summary
    assert (work / "netns-left.txt").read_text() == ""
    assert sorted(p.name for p in work.iterdir()) == ["netns-left.txt", "scenarios", "summary.json"], res.stderr
    assert res.returncode == 0, res.stderr
