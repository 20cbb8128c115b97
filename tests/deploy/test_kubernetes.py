"""The Kubernetes manifests under deploy/kubernetes/, checked offline.

No cluster is reachable from the test suite, so the manifests are checked against what can be
known without one:

* **The Kubernetes API schema.** Every document is validated with ``kubernetes-validate``
  (the API's OpenAPI schemas, bundled) in strict mode, so a misspelt or misplaced field is an
  error, not silently dropped by the API server; against the oldest and the newest Kubernetes
  versions checked here.
* **surge's command line.** Each container's ``command`` + ``args`` go through surge's own
  click commands, so an unknown option or a bad value (an endpoint surge refuses, a count out
  of range) fails here and not in the pod. The numbers that must agree across manifests do:
  the coordinator's bind port and the Service, the workers' ``--connect`` and the Service's DNS
  name, ``--expect-workers`` and the worker Job's parallelism and completions.
* **The files surge reads, laid out as the kubelet lays them out.** A pod's volumes are built in
  a temporary directory (:class:`PodFiles`): the Secrets from the ``kubectl create secret``
  commands in README.md applied to keys made by ``surge keys``, with the file modes the kubelet
  gives them; the init containers' ``install`` commands run for real on that tree; then surge's
  own loaders read the keys at the path the main container passes to ``--keys``, and
  surge's coordinator loads the scenario from the ConfigMap's mounts, then a worker loads the
  bundle the coordinator would send, each with the environment its pod would have.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import kubernetes_validate  # the API schemas, offline (setup.cfg: extras "test")
import pytest
import yaml

import surge
from surge.cli import main as surge_cli
from surge.common.curve import load_coordinator_keys, load_worker_keys, write_keys
from surge.common.endpoints import is_loopback_endpoint, parse_tcp_endpoint

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
README = REPO / "README.md"
# Where the surge under test lives (this checkout, or wherever PYTHONPATH pointed).
SURGE_HOME = Path(surge.__path__[0]).resolve().parent

# The oldest Kubernetes release these manifests are checked for, and the newest one
# kubernetes-validate knows: a field must exist in both.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())

Doc = dict[str, Any]


# --------------------------------------------------------------------------- the manifests


def manifest_files() -> list[Path]:
    return sorted(MANIFESTS.glob("*.yaml"))


def load_documents() -> list[tuple[Path, Doc]]:
    """Every document of every manifest file, as `kubectl apply -f deploy/kubernetes/` reads them."""
    docs = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


def the(kind: str, name: str) -> Doc:
    """The one document of ``kind`` named ``name``."""
    found = [d for _, d in load_documents() if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} under {MANIFESTS}, found {len(found)}"
    return found[0]


def coordinator_job() -> Doc:
    return the("Job", "surge-coordinator")


def worker_job() -> Doc:
    return the("Job", "surge-workers")


def coordinator_service() -> Doc:
    return the("Service", "surge-coordinator")


def pod_spec(job: Doc) -> Doc:
    spec: Doc = job["spec"]["template"]["spec"]
    return spec


def main_container(job: Doc) -> Doc:
    containers = pod_spec(job)["containers"]
    assert len(containers) == 1, "one container per pod: one surge process"
    c: Doc = containers[0]
    return c


# --------------------------------------------------------------------------- the API schema


def _documents_by_id() -> list[Any]:
    return [pytest.param(doc, id=f"{path.name}:{doc['kind']}/{doc['metadata']['name']}") for path, doc in load_documents()]


def test_there_is_something_to_validate() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for _, d in load_documents())
    assert kinds == [
        ("ConfigMap", "surge-scenario"), ("Job", "surge-coordinator"), ("Job", "surge-workers"),
        ("Service", "surge-coordinator"),
    ]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("doc", _documents_by_id())
def test_manifest_matches_the_kubernetes_api_schema(doc: Doc, version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"Kubernetes {version}: {doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}")


def test_strict_validation_refuses_an_unknown_field() -> None:
    """The schema check above means something: a misplaced field is an error, not ignored."""
    job = json.loads(json.dumps(worker_job()))
    main_container(job)["resource"] = main_container(job).pop("resources")  # a typo kubectl would drop
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSIONS[-1], strict=True)


# --------------------------------------------------------------------------- surge's command line


def expand(value: str, container: Doc) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command and args, from the container's ``env``.

    A reference to a variable the container does not define stays as it is in Kubernetes, which
    is never what was meant, so it fails here. Values that come from elsewhere (a Secret, the
    downward API) are stood in for by a sample.
    """
    defined: dict[str, str] = {e["name"]: str(e.get("value", "0")) for e in container.get("env", [])}

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in defined, f"container {container['name']}: $({name}) is not in its env"
        return defined[name]

    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, value)


def argv(container: Doc) -> list[str]:
    """What the container runs: ``command`` (the image's ENTRYPOINT when absent) plus ``args``."""
    command = container.get("command")
    if command is None:
        from tests.deploy.test_dockerfile import DOCKERFILE, exec_form, parse_dockerfile

        command = exec_form([i for i in parse_dockerfile(DOCKERFILE.read_text()) if i.keyword == "ENTRYPOINT"][-1].value)
    return [expand(v, container) for v in [*command, *container.get("args", [])]]


def surge_params(container: Doc) -> tuple[str, dict[str, Any]]:
    """Parse the container's surge command with surge's click commands: (subcommand, its params).

    Parsing runs the options' types and callbacks, so surge's own checks apply (an endpoint it
    would refuse, a count out of range, an option it does not have).
    """
    words = argv(container)
    assert words[0] == "surge", f"container {container['name']} runs {words[0]!r}, not surge"
    assert len(words) > 1, f"container {container['name']}: `surge` without a command"
    name, rest = words[1], words[2:]
    parent = click.Context(surge_cli, info_name="surge")
    command = surge_cli.get_command(parent, name)
    assert command is not None, f"container {container['name']}: surge has no command {name!r}"
    try:
        ctx = command.make_context(name, list(rest), parent=parent, resilient_parsing=False)
    except click.ClickException as exc:
        pytest.fail(f"container {container['name']}: `{shlex.join(words)}`: {exc.format_message()}")
    return name, dict(ctx.params)


def env_pairs(params: dict[str, Any]) -> dict[str, str]:
    """The ``-e KEY=VALUE`` pairs, as surge reads them."""
    out = {}
    for pair in params["env"]:
        key, sep, value = pair.partition("=")
        assert sep and key, f"-e {pair!r}: expected KEY=VALUE"
        out[key] = value
    return out


def test_containers_run_commands_surge_has() -> None:
    assert surge_params(main_container(coordinator_job()))[0] == "coordinator"
    assert surge_params(main_container(worker_job()))[0] == "worker"


def test_cli_check_refuses_what_surge_refuses() -> None:
    """The check above means something: surge's own parsing refuses a bad option or value."""
    c = json.loads(json.dumps(main_container(worker_job())))
    for bad in (["--conect=tcp://surge-coordinator:5557"], ["--connect=surge-coordinator:5557"],
                ["--coordinator-timeout=0"]):
        c["args"] = ["worker", *bad]
        with pytest.raises(pytest.fail.Exception):
            surge_params(c)


def _named_port(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert found, f"container {container['name']} has no port named {port!r}"
    return int(found[0])


def test_coordinator_listens_where_the_service_sends() -> None:
    svc, job = coordinator_service(), coordinator_job()
    c = main_container(job)
    _, params = surge_params(c)
    host, bind_port = parse_tcp_endpoint(params["bind"])
    assert host in ("0.0.0.0", "*"), f"--bind {params['bind']}: the Service reaches the pod's IP, not {host}"
    (port,) = svc["spec"]["ports"]
    assert _named_port(c, port.get("targetPort", port["port"])) == bind_port, (
        f"the Service sends to {port.get('targetPort')}, the coordinator binds port {bind_port}"
    )
    assert port.get("protocol", "TCP") == "TCP"
    # The Service must select the coordinator's pod and only it: a worker behind it would be
    # dialled by the other workers.
    selector = svc["spec"]["selector"]
    assert selector.items() <= job["spec"]["template"]["metadata"]["labels"].items(), "the Service misses the coordinator"
    assert not selector.items() <= worker_job()["spec"]["template"]["metadata"]["labels"].items(), (
        "the Service's selector matches the worker pods too"
    )


def test_coordinator_beyond_loopback_has_keys() -> None:
    _, params = surge_params(main_container(coordinator_job()))
    assert not is_loopback_endpoint(params["bind"])
    assert params["keys"] is not None, "a coordinator listening beyond loopback refuses to start without --keys"
    assert not params["insecure"], "--insecure: anyone who reaches the Service could join the fleet"


def test_workers_dial_the_service() -> None:
    svc = coordinator_service()
    _, params = surge_params(main_container(worker_job()))
    host, port = parse_tcp_endpoint(params["connect"])
    name = svc["metadata"]["name"]
    # The Service's DNS names from a pod: NAME in its own namespace, else NAME.NAMESPACE[.svc[.cluster.local]].
    namespace = re.escape(svc["metadata"]["namespace"]) if "namespace" in svc["metadata"] else "[a-z0-9-]+"
    dns = rf"{re.escape(name)}(\.{namespace}(\.svc(\.cluster\.local)?)?)?"
    assert re.fullmatch(dns, host), f"--connect {params['connect']}: the Service's DNS name is {name}, not {host}"
    assert port == svc["spec"]["ports"][0]["port"], (
        f"--connect port {port}, the Service listens on {svc['spec']['ports'][0]['port']}"
    )
    assert params["once"], "--once: a worker Job's pod must end with the run, or the Job never completes"
    assert params["keys"] is not None, "the coordinator admits only workers holding the fleet's key"


def test_expect_workers_is_the_worker_jobs_size() -> None:
    _, params = surge_params(main_container(coordinator_job()))
    spec = worker_job()["spec"]
    assert spec["completionMode"] == "Indexed"
    assert params["expect_workers"] == spec["parallelism"] == spec["completions"], (
        f"--expect-workers {params['expect_workers']}, parallelism {spec['parallelism']}, "
        f"completions {spec['completions']}: the coordinator would wait for workers that never come, "
        "or start without some"
    )


def test_the_coordinator_job_is_the_gate() -> None:
    job = coordinator_job()
    assert job["spec"]["backoffLimit"] == 0, "a retried coordinator is a second load test, and hides the first's exit code"
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert pod_spec(worker_job())["restartPolicy"] == "Never"


def test_one_worker_process_per_cpu() -> None:
    resources = main_container(worker_job())["resources"]
    assert str(resources["requests"]["cpu"]) == str(resources["limits"]["cpu"]) == "1"


def test_every_container_runs_as_the_images_user() -> None:
    from tests.deploy.test_dockerfile import DOCKERFILE, image_user, parse_dockerfile

    uid, gid = image_user(parse_dockerfile(DOCKERFILE.read_text()))
    for job in (coordinator_job(), worker_job()):
        sc = pod_spec(job)["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["runAsUser"] == uid and sc.get("runAsGroup", gid) == gid
        for c in [*pod_spec(job).get("initContainers", []), *pod_spec(job)["containers"]]:
            own = c.get("securityContext", {})
            assert own.get("runAsUser", uid) == uid and own.get("runAsNonRoot", True), c["name"]
            assert own.get("allowPrivilegeEscalation") is False, c["name"]


def _writable(container: Doc, path: str) -> bool:
    """Whether ``path`` is on a writable mount of ``container``'s (the root is read-only)."""
    mount = _mount_of(container, path)
    return mount is not None and not mount.get("readOnly", False)


def _mount_of(container: Doc, path: str) -> Doc | None:
    best: Doc | None = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if (path == mp or path.startswith(mp + "/")) and (best is None or len(mp) > len(best["mountPath"])):
            best = m
    return best


def test_what_the_containers_write_is_on_writable_mounts() -> None:
    for job in (coordinator_job(), worker_job()):
        for c in [*pod_spec(job).get("initContainers", []), *pod_spec(job)["containers"]]:
            assert c["securityContext"].get("readOnlyRootFilesystem") is True, c["name"]
    c = main_container(coordinator_job())
    _, params = surge_params(c)
    written = [str(Path(params["summary_export"]).parent), "/tmp"]
    if "RESULTS_DIR" in env_pairs(params):
        written.append(env_pairs(params)["RESULTS_DIR"])
    for path in written:
        assert Path(path).is_absolute(), f"{path}: relative to the image's WORKDIR, which is read-only"
        assert _writable(c, path), f"the coordinator writes to {path}, which is on no writable mount"
    # A worker writes the scenario's bundle to a temporary directory and imports it from there.
    assert _writable(main_container(worker_job()), "/tmp")


# --------------------------------------------------------------------------- README's commands


def readme_section(title: str) -> str:
    text = README.read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"README.md has no section {title!r}"
    return m.group(1)


def readme_commands() -> list[list[str]]:
    """The shell commands in README.md's Kubernetes section, continuations joined, split."""
    section = readme_section("Kubernetes")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def secrets_from_readme(workdir: Path) -> dict[str, dict[str, bytes]]:
    """The Secrets README.md's commands create, run in ``workdir``: ``surge keys``, then kubectl's.

    Each ``kubectl create secret generic NAME`` is read as kubectl reads it:
    ``--from-file=PATH`` (key: the file's name; a directory gives each regular file in it),
    ``--from-file=KEY=PATH`` and ``--from-literal=KEY=VALUE``.
    """
    commands = readme_commands()
    made = [c for c in commands if c[:2] == ["surge", "keys"]]
    assert len(made) == 1, "README.md's Kubernetes section should make the keys with `surge keys DIR`"
    write_keys(workdir / made[0][2])
    secrets: dict[str, dict[str, bytes]] = {}
    for c in commands:
        if c[:4] != ["kubectl", "create", "secret", "generic"]:
            continue
        name, data = c[4], secrets.setdefault(c[4], {})
        for word in c[5:]:
            flag, _, value = word.partition("=")
            if flag == "--from-literal":
                key, _, literal = value.partition("=")
                data[key] = literal.encode()
            elif flag == "--from-file":
                key, eq, path = value.partition("=")
                if not eq:
                    key, path = "", value
                p = workdir / path
                assert p.exists(), f"kubectl create secret {name}: {path} is not among the files `surge keys` makes"
                if p.is_dir():
                    data.update({f.name: f.read_bytes() for f in sorted(p.iterdir()) if f.is_file()})
                else:
                    data[key or p.name] = p.read_bytes()
            elif word.startswith("-"):
                pytest.fail(f"kubectl create secret {name}: {word}: not read by this test")
    assert secrets, "README.md's Kubernetes section creates no Secret"
    return secrets


def test_readme_applies_what_is_here() -> None:
    commands = readme_commands()
    assert ["kubectl", "apply", "-f", "deploy/kubernetes/"] in commands
    assert any(c[:3] == ["docker", "build", "-t"] and c[-1] == "." for c in commands)


def test_readme_regenerates_the_configmap_from_the_same_files() -> None:
    """README's `kubectl create configmap` gives the keys the coordinator mounts, from the same files."""
    expected = scenario_files()
    for c in readme_commands():
        if c[:3] == ["kubectl", "create", "configmap"]:
            assert c[3] == configmap_name()
            got = {}
            for word in c[4:]:
                flag, _, value = word.partition("=")
                if flag == "--from-file":
                    key, _, path = value.partition("=")
                    got[key] = path
            assert got == {key: rel for key, rel in expected.items()}, "README's configmap command differs from the mounts"
            return
    pytest.fail("README.md's Kubernetes section has no `kubectl create configmap` command")


# --------------------------------------------------------------------------- the scenario ConfigMap


def configmap_name() -> str:
    (vol,) = [v for v in pod_spec(coordinator_job())["volumes"] if "configMap" in v]
    name: str = vol["configMap"]["name"]
    return name


def scenario_root_in_pod() -> tuple[str, str]:
    """(the scenario root in the coordinator's pod, the scenario file's path below it)."""
    _, params = surge_params(main_container(coordinator_job()))
    scenario = str(params["scenario"])
    # The root is the parent of the outermost package: scenarios/ticket_purchase.py lives in
    # package `scenarios`, as in the repository.
    assert scenario.endswith("/scenarios/ticket_purchase.py"), scenario
    return scenario[: -len("/scenarios/ticket_purchase.py")], "scenarios/ticket_purchase.py"


def scenario_files() -> dict[str, str]:
    """ConfigMap key -> the repository file it is mounted as (relative to the repo root)."""
    c = main_container(coordinator_job())
    (vol,) = [v for v in pod_spec(coordinator_job())["volumes"] if "configMap" in v]
    root, _ = scenario_root_in_pod()
    out = {}
    for m in c["volumeMounts"]:
        if m["name"] == vol["name"]:
            assert "subPath" in m, (
                f"{m['mountPath']}: mount each file with subPath; a whole ConfigMap volume is symlinks into a "
                "timestamped directory, which surge would take for part of the scenario's package"
            )
            assert m["mountPath"].startswith(root + "/"), m["mountPath"]
            out[m["subPath"]] = m["mountPath"][len(root) + 1:]
    return out


def test_configmap_is_the_repositorys_scenario() -> None:
    cm = the("ConfigMap", configmap_name())
    files = scenario_files()
    assert "scenarios/ticket_purchase.py" in files.values()
    assert set(cm["data"]) == set(files), (
        f"keys not mounted: {sorted(set(cm['data']) - set(files))}; mounted, not in the ConfigMap: {sorted(set(files) - set(cm['data']))}"
    )
    for key, rel in files.items():
        assert cm["data"][key] == (REPO / rel).read_text(), (
            f"{MANIFESTS.name}/scenario.yaml's {key} differs from {rel}: regenerate it (README.md, \"Kubernetes\")"
        )


# --------------------------------------------------------------------------- the pods' files


class PodFiles:
    """A pod's volumes under a temporary directory, as the kubelet lays them out.

    Secret and ConfigMap volumes are the kubelet's atomic-writer trees: the files in a
    timestamped directory, ``..data`` a symlink to it, and each top-level entry a symlink
    through ``..data``. A file's mode is its item's ``mode`` or the volume's ``defaultMode``,
    and with the pod's ``fsGroup`` the kubelet adds the group read bit (kubernetes/kubernetes
    issue 57923). An emptyDir is an empty directory, shared by the pod's containers.

    :meth:`rootfs` gives one container's view: each mount at its path under a directory of
    its own; a ``subPath`` mount is a regular file (the kubelet bind-mounts the resolved file),
    and a whole-volume mount is the volume's directory.
    """

    def __init__(self, tmp: Path, pod: Doc, secrets: dict[str, dict[str, bytes]], configmaps: dict[str, dict[str, str]]) -> None:
        self.tmp = tmp
        self.pod = pod
        self.volumes: dict[str, Path] = {}
        fs_group = pod.get("securityContext", {}).get("fsGroup")
        for vol in pod.get("volumes", []):
            d = tmp / "volumes" / vol["name"]
            if "emptyDir" in vol:
                d.mkdir(parents=True)
            elif "secret" in vol:
                name = vol["secret"]["secretName"]
                assert name in secrets, f"volume {vol['name']}: Secret {name} is made by no command in README.md"
                self._atomic(d, vol["secret"], secrets[name], fs_group)
            elif "configMap" in vol:
                name = vol["configMap"]["name"]
                assert name in configmaps, f"volume {vol['name']}: no ConfigMap {name} under {MANIFESTS}"
                self._atomic(d, vol["configMap"], {k: v.encode() for k, v in configmaps[name].items()}, fs_group)
            else:
                pytest.fail(f"volume {vol['name']}: a kind this test does not lay out")
            self.volumes[vol["name"]] = d

    @staticmethod
    def _atomic(d: Path, source: Doc, data: dict[str, bytes], fs_group: int | None) -> None:
        default_mode = source.get("defaultMode", 0o644)
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        stamp = d / "..2024_01_01_00_00_00.000000000"
        for item in items:
            assert item["key"] in data, f"the volume asks for key {item['key']!r}, which its source does not have"
            f = stamp / item["path"]
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data[item["key"]])
            mode = item.get("mode", default_mode)
            if fs_group is not None:
                mode |= 0o440
            f.chmod(mode)
        (d / "..data").symlink_to(stamp.name)
        for top in sorted({Path(item["path"]).parts[0] for item in items}):
            (d / top).symlink_to(f"..data/{top}")

    def rootfs(self, container: Doc) -> Path:
        """``container``'s mounts laid out under a directory of its own (see the class docstring)."""
        root: Path = self.tmp / "rootfs" / container["name"]
        root.mkdir(parents=True)
        for m in sorted(container.get("volumeMounts", []), key=lambda m: m["mountPath"].count("/")):
            assert m["name"] in self.volumes, f"container {container['name']} mounts an undeclared volume {m['name']}"
            target = root / m["mountPath"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            source = self.volumes[m["name"]]
            if "subPath" in m:
                resolved = (source / m["subPath"]).resolve()
                assert resolved.is_relative_to(source.resolve()) and resolved.exists(), (
                    f"{m['mountPath']}: subPath {m['subPath']} is not in volume {m['name']}"
                )
                if resolved.is_dir():
                    shutil.copytree(resolved, target)
                else:
                    shutil.copy2(resolved, target)
            else:
                target.symlink_to(source, target_is_directory=True)
        return root

    def run(self, container: Doc) -> None:
        """Run an init container's ``install`` command on its view of the pod's files."""
        words = argv(container)
        assert words[0] == "install", f"init container {container['name']}: this test runs `install` only, not {words[0]}"
        assert shutil.which("install"), "coreutils' install is needed to run the init containers"
        assert not {"-o", "-g", "--owner", "--group"} & set(words), "a non-root copy cannot change owners"
        root = self.rootfs(container)

        def in_root(word: str) -> str:
            if not word.startswith("/"):
                return word
            mount = _mount_of(container, word)
            assert mount is not None, f"init container {container['name']}: {word} is on no volume"
            return str(root / word.lstrip("/"))

        done = subprocess.run([in_root(w) if i else w for i, w in enumerate(words)], capture_output=True, text=True)
        assert done.returncode == 0, f"init container {container['name']}: {shlex.join(words)}: {done.stderr}"

    def start(self) -> dict[str, Path]:
        """Run the init containers in order, then lay out each main container: name -> its root."""
        for c in self.pod.get("initContainers", []):
            self.run(c)
        return {c["name"]: self.rootfs(c) for c in self.pod["containers"]}


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, dict[str, bytes]]:
    work = tmp_path / "work"
    work.mkdir()
    return secrets_from_readme(work)


def configmaps() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for _, d in load_documents() if d["kind"] == "ConfigMap"}


def started(tmp: Path, job: Doc, secrets: dict[str, dict[str, bytes]]) -> Path:
    """The main container's root after the pod's init containers ran."""
    roots = PodFiles(tmp, pod_spec(job), secrets, configmaps()).start()
    (root,) = roots.values()
    return root


def test_coordinator_and_workers_read_matching_keys(tmp_path: Path, secrets: dict[str, dict[str, bytes]]) -> None:
    coordinator = main_container(coordinator_job())
    worker = main_container(worker_job())
    c_root = started(tmp_path / "coordinator", coordinator_job(), secrets)
    w_root = started(tmp_path / "worker", worker_job(), secrets)
    c_keys = surge_params(coordinator)[1]["keys"]
    w_keys = surge_params(worker)[1]["keys"]
    # surge's own loaders: they refuse a missing file, a group-readable secret key, a pair that
    # does not match, a coordinator that accepts no worker key.
    ck = load_coordinator_keys(c_root / str(c_keys).lstrip("/"))
    wk = load_worker_keys(w_root / str(w_keys).lstrip("/"))
    assert wk.coordinator_public_key == ck.public_key, "the workers would not recognise this coordinator"
    assert wk.public_key in ck.authorized_workers, "the coordinator would refuse these workers"
    # The key directories are memory-backed copies: the Secret's own files cannot be 0600 and
    # the user's (see PodFiles), so surge would refuse them.
    for job, keys in ((coordinator_job(), c_keys), (worker_job(), w_keys)):
        mount = _mount_of(main_container(job), str(keys))
        assert mount is not None
        (vol,) = [v for v in pod_spec(job)["volumes"] if v["name"] == mount["name"]]
        assert vol.get("emptyDir", {}).get("medium") == "Memory", f"{keys}: keep the copied secret key off the node's disk"


def test_worker_pods_never_hold_the_coordinators_secret_key(tmp_path: Path, secrets: dict[str, dict[str, bytes]]) -> None:
    (secret_file,) = (tmp_path / "work").glob("*/coordinator/coordinator.key_secret")
    secret_key = secret_file.read_bytes()
    holding = {name for name, data in secrets.items() if secret_key in data.values()}
    assert holding, "no Secret holds the coordinator's secret key"
    for vol in pod_spec(worker_job())["volumes"]:
        if "secret" in vol:
            assert vol["secret"]["secretName"] not in holding, (
                f"the worker pods mount Secret {vol['secret']['secretName']}, which holds the coordinator's secret key"
            )
    for c in pod_spec(worker_job())["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            assert ref is None or ref["name"] not in holding, f"worker env {e['name']} reads the coordinator's Secret"


_LOAD = r"""
import json, sys
from pathlib import Path
from surge.common.errors import SurgeError
mode, path, env, out = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), Path(sys.argv[4])
try:
    if mode == "coordinator":
        from surge.coordinator.prepare import prepare
        from surge.common.scenario import write_bundle
        prepared = prepare(path, env)
        write_bundle(prepared.bundle, out)
        print(json.dumps({"entry": prepared.entry, "bundle": sorted(prepared.bundle)}))
    else:
        from surge.common import api
        from surge.common.scenario import load_module
        api.env.set_overrides(env)
        entry = sys.argv[5]
        load_module(out / (entry.replace(".", "/") + ".py"), root=out, module_name=entry)
        print(json.dumps({"entry": entry}))
except SurgeError as exc:
    sys.exit(f"{type(exc).__name__}: {exc}")
"""


def _container_env(container: Doc, secrets: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """The environment Kubernetes gives ``container`` (Secret values from README's commands)."""
    env = {}
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            data = secrets.get(ref["name"])
            assert data is not None and ref["key"] in data, (
                f"container {container['name']}: env {e['name']} from Secret {ref['name']} key {ref['key']}, "
                "which README.md's commands do not make"
            )
            env[e["name"]] = data[ref["key"]].decode()
        else:
            env[e["name"]] = e.get("value", "0")
    return env


def _load(mode: str, path: Path, overrides: dict[str, str], env: dict[str, str], out: Path, *extra: str) -> dict[str, Any]:
    # A process of its own: scenario modules stay out of the test's sys.modules, and the
    # environment is exactly the pod's (nothing from the developer's shell).
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, mode, str(path), json.dumps(overrides), str(out), *extra],
        capture_output=True, text=True, cwd=out.parent, timeout=120,
        env={**base, **env, "PYTHONPATH": str(SURGE_HOME),
             "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, f"{mode}: {done.stderr.strip()}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_scenario_loads_from_the_configmap_on_the_coordinator_and_its_bundle_on_workers(
    tmp_path: Path, secrets: dict[str, dict[str, bytes]]
) -> None:
    coordinator = main_container(coordinator_job())
    root = started(tmp_path / "coordinator", coordinator_job(), secrets)
    _, params = surge_params(coordinator)
    overrides = env_pairs(params)
    scenario = root / str(params["scenario"]).lstrip("/")
    bundle_dir = tmp_path / "bundle" / "b"
    bundle_dir.parent.mkdir()
    loaded = _load("coordinator", scenario, overrides, _container_env(coordinator, secrets), bundle_dir)
    assert loaded["entry"] == "scenarios.ticket_purchase", loaded
    # Everything mounted is used, and nothing the import pulled in came from elsewhere.
    assert sorted(loaded["bundle"]) == sorted(scenario_files().values()), loaded["bundle"]
    # A worker imports the bundle with its own environment overlaid with the -e pairs.
    worker = main_container(worker_job())
    _load("worker", scenario, overrides, _container_env(worker, secrets), bundle_dir, loaded["entry"])


def iter_containers() -> Iterator[tuple[Doc, Doc]]:
    for job in (coordinator_job(), worker_job()):
        for c in [*pod_spec(job).get("initContainers", []), *pod_spec(job)["containers"]]:
            yield job, c


def test_every_container_uses_one_image() -> None:
    images = {c["image"] for _, c in iter_containers()}
    assert len(images) == 1, f"one image for every container (the keys' copy runs the image's install): {images}"
