"""The compiled hot path (surge/hotpath.py): installed, importable, and as correct as its source.

The rest of the suite imports surge from this checkout, which is its source. These tests look
at the surge that ``pip install .`` put in the interpreter's site-packages, from a directory
that holds no surge: the one a user's ``surge run`` runs. With ``SURGE_EXPECT_COMPILED=1`` (CI
sets it) every hot module must be a mypyc extension there; the hot path's own tests then run
again against it, and so does a short ticket-purchase run against the demo target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from surge.hotpath import HOT_MODULES, compiled_modules, is_compiled

REPO = Path(__file__).resolve().parents[1]

# The tests of the hot modules, run again against the installed build.
HOT_TESTS = (
    "tests/common/test_sketch.py",
    "tests/common/test_metrics.py",
    "tests/common/test_endpoint_stats.py",
    "tests/common/test_grants.py",
    "tests/coordinator/test_aggregate.py",
    "tests/results/test_timeline.py",
    "tests/worker/test_vu.py",
    "tests/worker/test_open_model.py",
    "tests/worker/test_recorder.py",
    "tests/worker/test_recorder_endpoints.py",
    "tests/worker/http/test_client.py",
    "tests/worker/http/test_fast.py",
    "tests/worker/http/test_framing.py",
    "tests/worker/http/test_idle_memory.py",
    "tests/worker/http/test_parser_property.py",
    "tests/worker/http/test_transports.py",
)


def _env_without_pythonpath() -> dict[str, str]:
    """This environment less PYTHONPATH, so that a child imports the installed surge, not this checkout."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _installed(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that cannot see this checkout's sources."""
    return subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, env=_env_without_pythonpath(),
                          capture_output=True, text=True, timeout=120, check=False)


def _installed_build(tmp_path: Path) -> dict[str, object]:
    out = _installed(tmp_path, "import json, surge, surge.hotpath as h; "
                               "print(json.dumps({'file': surge.__file__, 'compiled': h.compiled_modules()}))")
    assert out.returncode == 0, out.stderr
    build: dict[str, object] = json.loads(out.stdout)
    return build


def _compiled_build(tmp_path: Path) -> None:
    """Skip, saying why, unless an installed surge outside this checkout is compiled."""
    build = _installed_build(tmp_path)
    if not build["compiled"]:
        if os.environ.get("SURGE_EXPECT_COMPILED") == "1":
            pytest.fail(f"SURGE_EXPECT_COMPILED=1 but the installed surge ({build['file']}) is pure Python; "
                        "see pip's output for the line starting 'surge build:'")
        pytest.skip(f"the installed surge ({build['file']}) is not compiled (an editable install, or built "
                    "with SURGE_NO_COMPILE=1 or without mypyc); CI sets SURGE_EXPECT_COMPILED=1")


def test_every_hot_module_is_a_module_of_surge() -> None:
    assert len(set(HOT_MODULES)) == len(HOT_MODULES)
    for name in HOT_MODULES:
        assert (REPO / Path(*name.split("."))).with_suffix(".py").is_file(), name
    assert all(not is_compiled(m) for m in HOT_MODULES), "this checkout's own modules are sources"
    assert compiled_modules() == []


def test_the_installed_surge_has_every_hot_module_compiled_when_ci_expects_it(tmp_path: Path) -> None:
    _compiled_build(tmp_path)
    build = _installed_build(tmp_path)
    assert build["compiled"] == list(HOT_MODULES)
    assert Path(str(build["file"])).resolve().parent != REPO / "surge", "the checkout's sources, not an installed build"


def test_the_hot_paths_own_tests_pass_against_the_installed_build(tmp_path: Path) -> None:
    _compiled_build(tmp_path)
    # A copy of the tests, beside no surge of their own: pytest puts the copy's root first on
    # sys.path, so `import surge` finds the installed build, never this checkout.
    shutil.copytree(REPO / "tests", tmp_path / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    probe = tmp_path / "tests" / "test_zz_which_surge.py"
    probe.write_text("import surge.hotpath as h\n\n\ndef test_which() -> None:\n"
                     "    assert h.compiled_modules() == list(h.HOT_MODULES)\n")
    env = _env_without_pythonpath()
    out = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", *HOT_TESTS, str(probe.relative_to(tmp_path))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_the_ticket_purchase_test_passes_on_the_installed_build(tmp_path: Path) -> None:
    _compiled_build(tmp_path)
    shutil.copytree(REPO / "scenarios", tmp_path / "scenarios", ignore=shutil.ignore_patterns("results", "__pycache__"))
    summary = tmp_path / "summary.json"
    env = _env_without_pythonpath()
    out = subprocess.run(
        [sys.executable, "-P", "-m", "surge", "run", "--demo-target", "-w", "2", "-e", "RAMP_UP=2s", "-e", "HOLD=4s",
         "-e", "RAMP_DOWN=2s", "-e", f"RESULTS_DIR={tmp_path}", "--summary-export", str(summary),
         "scenarios/ticket_purchase.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads(summary.read_text())
    reqs = data["metrics"]["http_reqs"]["values"]["count"]
    assert reqs > 0
    assert data["metrics"]["http_req_failed"]["values"]["rate"] < 0.01


EVERY_EXECUTOR = """\
from surge import env

URL = env["BASE_URL"] + "/functions/v1/create-checkout-session"
_once = {"gracefulStop": "2s"}
options = {"scenarios": {
    "looping": {"executor": "constant-vus", "vus": 2, "duration": "2s", **_once},
    "arrivals": {"executor": "constant-arrival-rate", "rate": 10, "timeUnit": "1s", "duration": "2s",
                 "preAllocatedVUs": 2, "maxVUs": 4, **_once},
    "ramping_arrivals": {"executor": "ramping-arrival-rate", "startRate": 5, "timeUnit": "1s",
                         "preAllocatedVUs": 2, "maxVUs": 4, "stages": [{"duration": "2s", "target": 10}], **_once},
    "per_vu": {"executor": "per-vu-iterations", "vus": 2, "iterations": 5, **_once},
    "shared": {"executor": "shared-iterations", "vus": 2, "iterations": 10, **_once},
}}


async def default(vu):
    await vu.http.post(URL, json={"quantity": 1}, headers={"Authorization": "Bearer " + env["ANON_KEY"]})
"""


def test_every_executor_runs_on_the_installed_build(tmp_path: Path) -> None:
    # The ticket-purchase test plays only looping VUs. The open-model and iteration-count
    # executors live in modules of their own; on the compiled build they once failed to start
    # (a subclass of a native class) and then failed every iteration (an interpreted await of
    # a compiled generator) while every test of the checkout passed.
    _compiled_build(tmp_path)
    (tmp_path / "every_executor.py").write_text(EVERY_EXECUTOR)
    summary = tmp_path / "summary.json"
    env = _env_without_pythonpath()
    out = subprocess.run(
        [sys.executable, "-P", "-m", "surge", "run", "--demo-target", "-w", "2", "--summary-export", str(summary),
         "every_executor.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    metrics = json.loads(summary.read_text())["metrics"]
    assert "surge_script_errors" not in metrics, out.stderr[-3000:]
    iterations = metrics["iterations"]["values"]["count"]
    assert metrics["http_reqs"]["values"]["count"] == iterations
    assert iterations >= 5 * 2 + 10 + 10  # per-VU and shared iterations, and some of each of the others


def test_the_build_requires_what_surge_requires() -> None:
    import configparser
    import tomllib

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    runtime = {line.strip() for line in cfg["options"]["install_requires"].splitlines() if line.strip()}
    build = set(tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"])
    assert runtime <= build, f"pyproject.toml's build requirements lack {sorted(runtime - build)}"
    assert any(r.startswith("mypy==") for r in build)


def test_a_build_whose_compiler_fails_installs_the_pure_package(tmp_path: Path) -> None:
    # What a machine without a working C compiler gets: pip's build goes on, pure Python,
    # and no extension of the hot path is left behind to shadow its source.
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                             ".mypy_cache", ".hypothesis", ".pytest_cache", "*.so"))
    env = {**os.environ, "CC": "false", "PIP_NO_INPUT": "1"}
    env.pop("SURGE_NO_COMPILE", None)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "surge build: compiling the hot path failed" in out.stdout + out.stderr
    import zipfile

    (wheel,) = (tmp_path / "dist").glob("surge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith(".so")], names
    assert all(f"{m.replace('.', '/')}.py" in names for m in HOT_MODULES)


def _classes_built_on_hot_ones(path: Path) -> list[str]:
    """``Class(Base)`` in ``path`` where ``Base`` comes from a hot module (by name or ``module.Base``)."""
    import ast

    tree = ast.parse(path.read_text(), str(path))
    from_hot: dict[str, str] = {}  # local name -> "module.Name"
    hot_aliases: dict[str, str] = {}  # local name of an imported hot module -> its dotted name
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in HOT_MODULES and node.level == 0:
            for alias in node.names:
                from_hot[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in HOT_MODULES and alias.asname:
                    hot_aliases[alias.asname] = alias.name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                dotted = ast.unparse(base)
                module = dotted.rpartition(".")[0]
                if dotted in from_hot or module in HOT_MODULES or module in hot_aliases:
                    found.append(f"{path.relative_to(REPO)}: class {node.name}({from_hot.get(dotted, dotted)})")
    return found


def test_a_build_whose_compile_fails_ships_no_compiled_module_of_an_earlier_build(tmp_path: Path) -> None:
    """When mypyc cannot translate the hot path the build falls back to the sources; a compiled
    module an earlier build left in ``build/`` must not be packed beside them (it imports before
    its ``.py``, so the edit that broke the compile would silently not run). Seen on a working
    tree: a type error in a new method, and the bench measured yesterday's extension."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "surge", src / "surge", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    with (src / "surge" / "worker" / "vu.py").open("a") as f:
        f.write("\n_BROKEN: int = 'a type error: mypyc refuses the hot path'\n")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    lib = src / "build" / f"lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"
    stale = [lib / "surge" / "worker" / f"vu{suffix}", lib / f"surge_hotpath__mypyc{suffix}"]
    for path in stale:  # what an earlier compiled build of this tree left behind
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"an earlier build's extension")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SURGE_NO_COMPILE")}
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-v", "--no-deps", "--target", str(tmp_path / "out"), str(src)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "mypyc could not translate the hot path" in out.stdout + out.stderr  # pip -v shows the build's words
    shipped = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob(f"*{suffix}"))
    assert shipped == [], shipped
    assert (tmp_path / "out" / "surge" / "worker" / "vu.py").is_file()


def test_no_module_outside_the_hot_path_subclasses_one_of_its_classes() -> None:
    # mypyc's native classes refuse interpreted subclasses ("TypeError: interpreted classes
    # cannot inherit from compiled"), and only the installed build says so, when the class
    # statement runs: an executor built on surge.worker.vu's PlannedWaits outside it failed
    # every constant-arrival-rate test on the compiled build while the checkout passed.
    hot_files = {(REPO / Path(*m.split("."))).with_suffix(".py") for m in HOT_MODULES}
    found = [hit for path in sorted((REPO / "surge").rglob("*.py")) if path not in hot_files
             for hit in _classes_built_on_hot_ones(path)]
    assert found == [], "compile these modules too (surge/hotpath.py) or base them elsewhere:\n" + "\n".join(found)
