"""Loading a scenario, and what its bundle carries to workers (surge/common/scenario.py).

Every test builds a small scenario tree under ``tmp_path`` and imports it for real: the
behaviour under test is the import machinery's, so nothing here is faked except, where a
test says so, the interpreter's idea of where packages are installed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import surge
from surge.common import scenario
from surge.common.errors import ScriptError
from surge.common.scenario import load_module, make_bundle, scenario_root, write_bundle


def _tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


def _load(path: Path) -> tuple[object, Path]:
    root, name = scenario_root(path)
    return load_module(path, root=root, module_name=name), root


@pytest.fixture(autouse=True)
def _forget_tmp_modules(tmp_path: Path) -> Iterator[None]:
    """Modules imported from this test's tree must not leak into the next test."""
    yield
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and Path(f).resolve().is_relative_to(tmp_path.resolve()):
            del sys.modules[name]


# ---------------------------------------------------------------- what the bundle holds


def test_the_bundle_holds_the_scenario_and_the_helpers_it_imports(tmp_path: Path) -> None:
    root = _tree(tmp_path / "proj", {
        "scn_a.py": "from helpers_a.auth import TOKEN\nasync def default(vu):\n    pass\n",
        "helpers_a/__init__.py": "",
        "helpers_a/auth.py": "TOKEN = 't'\n",
        "unused_a.py": "X = 1\n",
    })
    module, r = _load(root / "scn_a.py")
    assert set(make_bundle(module, r)) == {"scn_a.py", "helpers_a/__init__.py", "helpers_a/auth.py"}  # type: ignore[arg-type]


def _venv_tree(root: Path) -> Path:
    """A scenario root with a virtualenv in it, as CI's ``python3 -m venv .venv`` makes."""
    site = root / ".venv" / "lib" / "python3.11" / "site-packages"
    _tree(root, {
        ".venv/pyvenv.cfg": "home = /usr/bin\n",
        ".venv/lib/python3.11/site-packages/fakepkg_v/__init__.py": "VALUE = 42\n",
        ".venv/lib/python3.11/vendored/fakevendor_v/__init__.py": "VALUE = 7\n",
        "scn_v.py": "import fakepkg_v, fakevendor_v\nasync def default(vu):\n    pass\n",
    })
    return site


def test_an_installed_package_under_the_root_is_neither_bundled_nor_reloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    site = _venv_tree(root)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(root / ".venv" / "lib" / "python3.11" / "vendored"))
    module, r = _load(root / "scn_v.py")
    first = (sys.modules["fakepkg_v"], sys.modules["fakevendor_v"])
    assert set(make_bundle(module, r)) == {"scn_v.py"}  # type: ignore[arg-type]
    _load(root / "scn_v.py")
    # the same module objects: a second load evicts the scenario's modules, not installed ones
    assert (sys.modules["fakepkg_v"], sys.modules["fakevendor_v"]) == first
    assert sys.modules["fakepkg_v"] is first[0] and sys.modules["fakevendor_v"] is first[1]


def test_an_interpreter_prefix_inside_the_root_counts_as_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no site-packages component and no pyvenv.cfg: only sys.prefix says it is installed
    root = _tree(tmp_path / "repo", {
        "env/lib/fakeprefix_p/__init__.py": "",
        "scn_p.py": "import fakeprefix_p\nasync def default(vu):\n    pass\n",
    })
    monkeypatch.setattr(sys, "prefix", str(root / "env"))
    monkeypatch.syspath_prepend(str(root / "env" / "lib"))
    module, r = _load(root / "scn_p.py")
    assert set(make_bundle(module, r)) == {"scn_p.py"}  # type: ignore[arg-type]


def test_installed_locations_above_the_root_do_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a scenario that lives under site-packages, or under sys.prefix (a Docker image's
    # WORKDIR /usr/src/app with python in /usr), is still the user's scenario
    root = _tree(tmp_path / "site-packages" / "app", {
        "scn_u.py": "import helper_u\nasync def default(vu):\n    pass\n",
        "helper_u.py": "X = 1\n",
    })
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    module, r = _load(root / "scn_u.py")
    assert set(make_bundle(module, r)) == {"scn_u.py", "helper_u.py"}  # type: ignore[arg-type]


def test_a_second_bundle_with_the_same_module_names_is_imported_afresh(tmp_path: Path) -> None:
    # a long-lived worker writes each run's bundle to a new directory: the second run must
    # not get the first run's modules back from sys.modules
    values = []
    for run in (1, 2):
        d = tmp_path / f"bundle{run}"
        d.mkdir()
        write_bundle({"scn_s.py": b"from helper_s import X\n", "helper_s.py": b"X = %d\n" % run}, d)
        module = load_module(d / "scn_s.py", root=d, module_name="scn_s")
        values.append(module.X)
    assert values == [1, 2]


# ---------------------------------------------------------------- import-time errors


def test_an_import_error_shows_the_scenarios_frames_not_importlibs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path / "proj", {
        "scn_e.py": "from helpers_e.h import x\nasync def default(vu):\n    pass\n",
        "helpers_e/__init__.py": "",
        "helpers_e/h.py": "def f():\n    return 1 / 0\nx = f()\n",
    })
    monkeypatch.chdir(root)  # surge run from the scenario's root, as CI does
    with pytest.raises(ScriptError) as info:
        _load(root / "scn_e.py")
    msg = str(info.value)
    assert "<frozen" not in msg
    assert msg.startswith(f"{root / 'helpers_e' / 'h.py'}:2: ZeroDivisionError")
    assert f'File "{root / "scn_e.py"}", line 1' in msg and "from helpers_e.h import x" in msg
    assert "x = f()" in msg and "return 1 / 0" in msg
    assert info.value.exit_code == 107


def test_a_missing_module_at_import_shows_the_importing_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "proj", {"scn_m.py": "import os\nimport nonexistent_module_m\n"})
    monkeypatch.chdir(root)
    with pytest.raises(ScriptError) as info:
        _load(root / "scn_m.py")
    msg = str(info.value)
    assert "<frozen" not in msg
    assert msg.startswith(f"{root / 'scn_m.py'}:2: ModuleNotFoundError")
    assert "import nonexistent_module_m" in msg


def test_an_error_in_a_bundle_names_the_scenarios_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "surge-bundle-xyz"
    d.mkdir()
    write_bundle({
        "pkg_b/__init__.py": b"",
        "pkg_b/scn_b.py": b"from pkg_b.helpers import x\n",
        "pkg_b/helpers.py": b"def boom():\n    raise RuntimeError('no tickets')\nx = boom()\n",
    }, d)
    monkeypatch.chdir(d)
    with pytest.raises(ScriptError) as info:
        load_module(d / "pkg_b" / "scn_b.py", root=d, module_name="pkg_b.scn_b")
    msg = str(info.value)
    assert str(d) not in msg and "<frozen" not in msg
    assert msg.startswith("pkg_b/helpers.py:2: RuntimeError while loading the scenario: no tickets")
    assert 'File "pkg_b/scn_b.py", line 1' in msg and "from pkg_b.helpers import x" in msg
    assert "raise RuntimeError('no tickets')" in msg


def test_a_syntax_error_in_a_bundle_names_the_relative_path(tmp_path: Path) -> None:
    d = tmp_path / "surge-bundle-syn"
    d.mkdir()
    write_bundle({"scn_y.py": b"import helper_y\n", "helper_y.py": b"x = (\n"}, d)
    with pytest.raises(ScriptError) as info:
        load_module(d / "scn_y.py", root=d, module_name="scn_y")
    assert str(info.value).startswith("helper_y.py:1: syntax error")
    assert str(d) not in str(info.value)


# ---------------------------------------------------------------- surge.open


def test_open_is_exported_from_surge() -> None:
    assert surge.open is scenario.api.open
    assert "open" not in surge.__all__  # a star import must not hide the builtin open


def test_open_reads_relative_to_the_calling_module_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "proj", {
        "scn_o.py": (
            "import surge\nfrom helpers_o import data\n"
            "EMAILS = surge.open('data/emails.csv').splitlines()\n"
            "RAW = surge.open('data/emails.csv', 'b')\n"
            "TEXT = surge.open('data/emails.csv', mode='r')\n"
        ),
        "data/emails.csv": "a@example.test\nb@example.test\n",
        "helpers_o/__init__.py": "",
        "helpers_o/data.py": "import surge\nPAYLOAD = surge.open('payload.json', 'rb')\n",
        "helpers_o/payload.json": b'{"x": "\xc3\xa9"}',
    })
    monkeypatch.chdir(tmp_path)
    module, r = _load(root / "scn_o.py")
    assert module.EMAILS == ["a@example.test", "b@example.test"]  # type: ignore[attr-defined]
    assert module.RAW == b"a@example.test\nb@example.test\n"  # type: ignore[attr-defined]
    assert module.TEXT == "a@example.test\nb@example.test\n"  # type: ignore[attr-defined]
    assert sys.modules["helpers_o.data"].PAYLOAD == b'{"x": "\xc3\xa9"}'
    bundle = make_bundle(module, r)  # type: ignore[arg-type]
    assert bundle["data/emails.csv"] == b"a@example.test\nb@example.test\n"
    assert bundle["helpers_o/payload.json"] == b'{"x": "\xc3\xa9"}'


def test_a_worker_reads_the_shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "coordinator", {
        "scn_w.py": "import surge\nEMAILS = surge.open('data/emails.csv').split()\n",
        "data/emails.csv": "a@example.test\n",
    })
    module, r = _load(root / "scn_w.py")
    bundle = make_bundle(module, r)  # type: ignore[arg-type]
    (root / "data" / "emails.csv").write_text("changed@example.test\n")  # the disk is not what ships
    d = tmp_path / "worker" / "surge-bundle-w"
    d.mkdir(parents=True)
    write_bundle(bundle, d)
    monkeypatch.chdir(tmp_path / "worker")
    on_worker = load_module(d / "scn_w.py", root=d, module_name="scn_w")
    assert on_worker.EMAILS == ["a@example.test"]


def test_open_refuses_a_file_outside_the_scenarios_root(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s")
    root = _tree(tmp_path / "proj", {"scn_x.py": "import surge\n\nX = surge.open('../secret.txt')\n"})
    with pytest.raises(ScriptError) as info:
        _load(root / "scn_x.py")
    msg = str(info.value)
    assert str((tmp_path / "secret.txt").resolve()) in msg
    assert f"{root / 'scn_x.py'}:3" in msg
    assert "outside" in msg and "move it" in info.value.hint


def test_open_of_a_missing_file_names_it_and_the_call(tmp_path: Path) -> None:
    root = _tree(tmp_path / "proj", {"scn_n.py": "import surge\nX = surge.open('nope.csv')\n"})
    with pytest.raises(ScriptError) as info:
        _load(root / "scn_n.py")
    assert f"{root / 'scn_n.py'}:2" in str(info.value) and "nope.csv" in str(info.value)


def test_open_after_init_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "proj", {
        "scn_l.py": "import surge\ndef later():\n    return surge.open('d.txt')\n",
        "d.txt": "x",
    })
    module, _ = _load(root / "scn_l.py")
    with pytest.raises(ScriptError, match=r"only at init"):
        module.later()  # type: ignore[attr-defined]


def test_a_bundle_past_the_size_limit_names_the_biggest_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "proj", {
        "scn_z.py": "import surge\nA = surge.open('big.bin', 'b')\nB = surge.open('medium.bin', 'b')\n",
        "big.bin": b"x" * 600,
        "medium.bin": b"x" * 300,
    })
    monkeypatch.setattr(scenario, "MAX_BUNDLE_BYTES", 800)
    module, r = _load(root / "scn_z.py")
    with pytest.raises(ScriptError) as info:
        make_bundle(module, r)  # type: ignore[arg-type]
    msg = str(info.value)
    assert "800" in msg and msg.index("big.bin") < msg.index("medium.bin")


def test_the_size_limit_is_16_mib() -> None:
    assert scenario.MAX_BUNDLE_BYTES == 16 * 1024 * 1024


@pytest.mark.parametrize("rel", ["../escape.csv", "/etc/passwd", "a/../../escape.py"])
def test_write_bundle_refuses_paths_that_escape(tmp_path: Path, rel: str) -> None:
    with pytest.raises(ScriptError, match="inside the bundle"):
        write_bundle({rel: b"x"}, tmp_path / "b")


def test_write_bundle_writes_data_files(tmp_path: Path) -> None:
    write_bundle({"data/emails.csv": b"a@b\n", "scn.py": b""}, tmp_path)
    assert (tmp_path / "data" / "emails.csv").read_bytes() == b"a@b\n"
