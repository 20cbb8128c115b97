"""The Dockerfile, checked without a Docker daemon: what can be known from its text.

The image must run surge as the manifests expect (``ENTRYPOINT ["surge"]``, a numeric non-root
user that Kubernetes' ``runAsNonRoot`` can verify, the same UID the pods run as) and be built
from this checkout on the slim Python base. A build can also fail on a ``COPY`` of a file that
is missing or that ``.dockerignore`` keeps out of the build context, so each source is checked
against both, and against what ``pip install .`` reads (``setup.cfg`` names its long
description file and its packages).
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    value: str  # the rest of the logical line, continuations joined


def parse_dockerfile(text: str) -> list[Instruction]:
    """The Dockerfile's instructions: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        keyword, _, value = logical.partition(" ")
        out.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def exec_form(value: str) -> list[str]:
    """An instruction's JSON (exec) form; the shell form would run surge under /bin/sh."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        pytest.fail(f"expected the exec form [\"...\"], got {value!r}")
    assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed), value
    return parsed


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` keeps ``rel`` (or a directory above it) out of the context.

    Docker's rules, reduced to what this repository uses: patterns match from the context's
    root, ``**`` matches any number of directories, ``!`` re-includes, the last match wins.
    """
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        for cand in candidates:
            if fnmatch.fnmatchcase(cand, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(cand, pat[3:])):
                verdict = not negate
    return verdict


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _last(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1]


def _copies(instructions: list[Instruction]) -> list[tuple[list[str], str]]:
    """Each COPY/ADD as (sources, destination), flags such as --chown dropped."""
    out = []
    for ins in instructions:
        if ins.keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(ins.value) if not w.startswith("--")]
            assert len(words) >= 2, ins
            out.append((words[:-1], words[-1]))
    return out


def test_base_image_is_slim_python_311(instructions: list[Instruction]) -> None:
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert froms, "no FROM"
    image = froms[-1].value.split()[0]  # the final stage is the image
    assert image == "python:3.11-slim" or image.startswith("python:3.11-slim@"), image


def test_surge_is_installed_from_the_checkout(instructions: list[Instruction]) -> None:
    runs = [i.value for i in instructions if i.keyword == "RUN"]
    assert any(
        "pip install ." in run.replace("  ", " ") and "pip install .[" not in run for run in runs
    ), f"no `pip install .` among the RUN lines: {runs}"
    copied = {src.rstrip("/") for sources, _ in _copies(instructions) for src in sources}
    # What setuptools reads to build surge: without any of these `pip install .` fails or
    # installs something else (a PyPI package of the same name, say).
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    needed = {"pyproject.toml", "setup.cfg", "surge"}
    long_description = cfg.get("metadata", "long_description", fallback="")
    if long_description.startswith("file:"):
        needed |= {f.strip() for f in long_description[len("file:"):].split(",")}
    assert needed <= copied | {"."}, f"the image does not COPY {sorted(needed - copied)}"


def test_every_copied_file_exists_and_is_in_the_build_context(instructions: list[Instruction]) -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for sources, _ in _copies(instructions):
        for src in sources:
            if src.startswith(("http://", "https://")):
                pytest.fail(f"COPY/ADD of a URL ({src}): the build would depend on the network")
            rel = src.rstrip("/")
            assert (REPO / rel).exists(), f"COPY {src}: no such file in the checkout"
            assert not ignored(rel, patterns), f"COPY {src}: .dockerignore keeps it out of the build context"


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for rel in (".git", ".venv", "keys/coordinator/coordinator.key_secret", "fleet-keys/worker/worker.key_secret", "staging/worker/worker.key_secret",
                "scenarios/results/ticket-purchase-results.json", "bench/RESULTS.md", "surge/__pycache__/cli.pyc"):
        assert ignored(rel, patterns), f".dockerignore lets {rel} into the build context"


def test_entrypoint_is_surge(instructions: list[Instruction]) -> None:
    assert exec_form(_last(instructions, "ENTRYPOINT").value) == ["surge"]
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = cfg.get("options.entry_points", "console_scripts")
    assert any(line.split("=")[0].strip() == "surge" for line in scripts.splitlines() if line.strip()), (
        "setup.cfg installs no `surge` command for the ENTRYPOINT to run"
    )


def image_user(instructions: list[Instruction]) -> tuple[int, int | None]:
    """The final ``USER`` as (uid, gid): numeric, so that Kubernetes can tell it is not root."""
    user, _, group = _last(instructions, "USER").value.partition(":")
    assert user.isdigit(), f"USER {user}: give a numeric UID (runAsNonRoot cannot check a name)"
    assert not group or group.isdigit(), f"USER ...:{group}: give a numeric GID"
    return int(user), int(group) if group else None


def test_runs_as_a_non_root_user(instructions: list[Instruction]) -> None:
    uid, gid = image_user(instructions)
    assert uid != 0, "USER is root"
    assert gid != 0, "USER's group is root"
    # The user must exist in the image (useradd/adduser with that UID), or tools that look it
    # up (Python's getpass, pip's cache dir) fail.
    runs = " ".join(i.value for i in instructions if i.keyword == "RUN")
    assert f"--uid {uid}" in runs, f"no RUN creates a user with UID {uid}"
