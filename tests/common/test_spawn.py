"""A surge process started by surge runs the same surge, whatever directory it starts in."""

from __future__ import annotations

import subprocess
from pathlib import Path

from surge.common.spawn import surge_command, surge_env

REPO = Path(__file__).resolve().parents[2]


def test_a_child_in_a_directory_with_another_surge_runs_this_one(tmp_path: Path) -> None:
    decoy = tmp_path / "surge"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy surge in the working directory was imported')\n")
    (decoy / "__main__.py").write_text("raise SystemExit('the decoy surge in the working directory was imported')\n")
    out = subprocess.run(
        surge_command("inspect", "--json", "-e", "BASE_URL=http://127.0.0.1:9", "-e", "ANON_KEY=k",
                       str(REPO / "scenarios" / "ticket_purchase.py")),
        cwd=tmp_path, env=surge_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "decoy" not in out.stderr


def test_the_child_gets_this_surge_first_on_its_path_and_the_callers_extras() -> None:
    env = surge_env({"PYTHONPATH": "/elsewhere", "HOME": "/h"}, PYTHONUNBUFFERED="1")
    assert env["PYTHONPATH"].split(":") == [str(REPO), "/elsewhere"]  # an editable checkout: not in site-packages
    assert (env["HOME"], env["PYTHONUNBUFFERED"]) == ("/h", "1")
    assert surge_command("worker")[1:] == ["-P", "-m", "surge", "worker"]
