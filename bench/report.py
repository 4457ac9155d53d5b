"""Benchmarks write their own section of docs/performance.md, between markers, so each one
can be rerun alone without disturbing the others' figures."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
HEADER = "# Performance\n\nFigures written by `make bench` (each benchmark under `bench/`).\n"


def machine_line() -> str:
    cpus = os.cpu_count() or 0
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = ""
    return (
        f"Machine: {platform.machine()}, {cpus} CPUs{memory}, Python {platform.python_version()},"
        f" {platform.system()} {platform.release()}."
        f" Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC."
    )


def write_section(name: str, markdown: str, report: Path = REPORT) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = report.read_text() if report.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _m: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)
