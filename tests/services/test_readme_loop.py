"""The README's "loop from the command line" runs as written, today, and reaches done: 1.

The block is read from README.md itself, so an edit there that breaks the loop fails here.
It runs in a temporary directory (with the project's .venv linked in, as on a clone after
`make install`) through bash -e, so any failing line fails the test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## The loop from the command line"


def readme_loop() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found, "the loop section has no ```sh block"
    return found.group(1)


def test_the_loop_uses_relative_dates_and_coachbot_reply() -> None:
    block = readme_loop()
    # A fixed date in the past (or the future) is what made the old loop miss its nudge.
    assert not re.search(r"\d{4}-\d{2}-\d{2}", block), block
    assert "coachbot reply" in block
    assert "--times" in block


def test_the_readme_loop_runs_as_written_and_reaches_done_1(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COACHBOT_ENV")}
    done = subprocess.run(
        ["bash", "-e", "-c", readme_loop()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "You're signed up with Riverside Recovery Clinic" in done.stdout
    assert "sent=2" in done.stdout
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (patient,) = report["patients"]
    sleep = next(t for t in patient["tracks"] if t["track"] == "sleep")
    assert sleep["done"] == 1
    assert (tmp_path / "instance" / "readme-loop.db").is_file()
