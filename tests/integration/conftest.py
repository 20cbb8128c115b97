"""Fixtures for end-to-end tests: a demo target process and a way to run the surge command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from surge.coordinator.local import DemoTarget

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
REPO = Path(__file__).resolve().parents[2]
ANON_KEY = "surge-demo-anon-key"


class Target:
    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/__surge/stats", timeout=5) as resp:
            data: dict[str, int] = json.loads(resp.read())
            return data


def _start_target(args: list[str]) -> tuple[DemoTarget, Target]:
    import asyncio

    t = DemoTarget(args)
    url = asyncio.run(t.start())
    return t, Target(url)


@pytest.fixture
def target() -> Iterator[Target]:
    proc, tgt = _start_target(["--latency-median-ms", "5", "--latency-sigma", "0.3"])
    try:
        yield tgt
    finally:
        proc.stop()


@pytest.fixture
def error_target() -> Iterator[Target]:
    proc, tgt = _start_target(["--latency-median-ms", "2", "--latency-sigma", "0", "--error-rate", "1.0"])
    try:
        yield tgt
    finally:
        proc.stop()


def surge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "surge", *args]


def run_surge(*args: str, timeout: float = 120, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run the surge command to completion (bounded), capturing its output."""
    return subprocess.run(
        surge_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def target_env(t: Target) -> list[str]:
    return ["-e", f"BASE_URL={t.url}", "-e", f"ANON_KEY={ANON_KEY}"]
