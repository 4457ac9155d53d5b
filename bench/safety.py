"""The safety decision over the labelled evaluation set: per-category precision and recall, the
confusion matrix (expected class x decided class), and the decision's time per message, p50 / p99,
against two baselines timed in the same run over the same messages: a bare ``str.casefold()``
and ``keywords.fold`` (the normalisation every parser shares).

    .venv/bin/python -m bench.safety              # 50 timing rounds over the set
    .venv/bin/python -m bench.safety --quick      # 5 rounds
    .venv/bin/python -m bench.safety --no-write   # print only, docs/safety.md untouched

Writes its sections of docs/safety.md between markers (the rest of the page is prose).
The decision is ``coachbot.domain.triage.decide`` for an active patient with the row's prompt
open (tests/safety/evaluation.py maps its classes onto the set's labels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.report import machine_line, write_section
from coachbot.domain.keywords import fold
from coachbot.domain.red_flags import LABELS, RedFlag
from tests.safety.evaluation import CLASSES, Row, classify, load_rows

REPORT = Path(__file__).resolve().parent.parent / "docs" / "safety.md"
DECIDED_CLASSES = (*CLASSES, "opt_in")


def _per_message_us(
    fn: Callable[[Row], object], rows: list[Row], rounds: int
) -> tuple[list[float], list[float]]:
    """Each message's median time over the rounds, and every single call, in microseconds.

    The rounds interleave messages, so a pause of the machine (2 shared cores) hits one call of
    a message, not all of its calls: the per-message median is the message's own cost, and
    the all-calls list keeps the pauses for the record.
    """
    calls: list[list[int]] = [[] for _ in rows]
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for i, row in enumerate(rows):
            start = clock()
            fn(row)
            calls[i].append(clock() - start)
    medians = [statistics.median(c) / 1000 for c in calls]
    every = [t / 1000 for c in calls for t in c]
    return medians, every


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.2f}"  # NaN: no rows


def category_table(rows: list[Row]) -> tuple[str, bool]:
    tp: Counter[RedFlag] = Counter()
    fn: Counter[RedFlag] = Counter()
    fp: Counter[RedFlag] = Counter()
    for row in rows:
        decided = set(classify(row.text, row.prompt).flags)
        expected = set(row.categories)
        for flag in expected & decided:
            tp[flag] += 1
        for flag in expected - decided:
            fn[flag] += 1
        for flag in decided - expected:
            fp[flag] += 1
    lines = [
        "| category | label | rows | recall | precision | missed | extra |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    complete = True
    for flag in RedFlag:
        support = tp[flag] + fn[flag]
        recall = tp[flag] / support if support else float("nan")
        found = tp[flag] + fp[flag]
        precision = tp[flag] / found if found else float("nan")
        complete = complete and fn[flag] == 0
        lines.append(
            f"| {int(flag)} {flag.name} | {LABELS[flag]} | {support} | {_fmt(recall)} |"
            f" {_fmt(precision)} | {fn[flag]} | {fp[flag]} |"
        )
    return "\n".join(lines), complete


def class_tables(rows: list[Row]) -> str:
    matrix: Counter[tuple[str, str]] = Counter()
    for row in rows:
        matrix[(row.expected, classify(row.text, row.prompt).message_class)] += 1
    header = "| expected \\ decided | " + " | ".join(DECIDED_CLASSES) + " | rows |"
    lines = [header, "|---|" + "--:|" * (len(DECIDED_CLASSES) + 1)]
    for expected in CLASSES:
        cells = [matrix[(expected, d)] for d in DECIDED_CLASSES]
        lines.append(
            f"| **{expected}** | " + " | ".join(str(c) for c in cells) + f" | {sum(cells)} |"
        )
    lines += ["", "| class | rows | recall | precision |", "|---|--:|--:|--:|"]
    for cls in CLASSES:
        support = sum(matrix[(cls, d)] for d in DECIDED_CLASSES)
        decided = sum(matrix[(e, cls)] for e in CLASSES)
        recall = matrix[(cls, cls)] / support if support else float("nan")
        precision = matrix[(cls, cls)] / decided if decided else float("nan")
        lines.append(f"| {cls} | {support} | {_fmt(recall)} | {_fmt(precision)} |")
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    danger = [r for r in rows if r.expected in ("red_flag", "crisis")]
    adherence = [r for r in rows if r.expected == "adherence"]
    decided = {r.line: classify(r.text, r.prompt) for r in rows}
    caught = sum(
        1
        for r in danger
        if decided[r.line].message_class in ("red_flag", "crisis")
        and set(r.categories) <= set(decided[r.line].flags)
    )
    filed = sum(1 for r in danger if decided[r.line].message_class == "adherence")
    alarms = sum(1 for r in adherence if decided[r.line].message_class in ("red_flag", "crisis"))
    holdout = [r for r in danger if r.batch == "holdout"]
    languages = Counter(r.language for r in rows)
    return (
        f"{len(rows)} labelled messages ({languages['en']} English, {languages['es']} Spanish;"
        f" {sum(1 for r in rows if r.batch == 'holdout')} of them holdout rows).\n\n"
        f"- Red flag and crisis recall (every expected category found): {caught}/{len(danger)}.\n"
        f"- Red flag or crisis rows recorded as adherence: {filed}.\n"
        f"- False alarms on plain adherence answers: {alarms}/{len(adherence)}"
        f" ({alarms / len(adherence):.1%}; target <= 2%).\n"
        f"- Holdout danger rows in the set: {len(holdout)} (recall now 100%; see"
        ' "How the set was built" for what they caught before their fixes).'
    )


def timing(rows: list[Row], rounds: int) -> str:
    def decide(row: Row) -> object:
        return classify(row.text, row.prompt)

    def casefold(row: Row) -> object:
        return row.text.casefold()

    def folded(row: Row) -> object:
        return fold(row.text)

    paths = (("decision", decide), ("casefold", casefold), ("fold", folded))
    for _, fn in paths:  # warm caches and regex compilation
        _per_message_us(fn, rows, 1)
    results = {name: _per_message_us(fn, rows, rounds) for name, fn in paths}
    base_casefold = statistics.fmean(results["casefold"][0])
    base_fold = statistics.fmean(results["fold"][0])
    lines = [
        f"{len(rows)} messages x {rounds} rounds. Per message: its median over the rounds;"
        " p50 / p99 are across messages. The last column is the p99 over every single call,"
        f" machine pauses included (load average {os.getloadavg()[0]:.1f} on"
        f" {os.cpu_count()} CPUs when the run ended).",
        "",
        "| path | p50 µs | p99 µs | mean µs | mean vs casefold | mean vs fold"
        " | p99 of all calls µs |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, (medians, every) in results.items():
        mean = statistics.fmean(medians)
        lines.append(
            f"| {name} | {_quantile(medians, 0.5):.1f} | {_quantile(medians, 0.99):.1f} |"
            f" {mean:.1f} | {mean / base_casefold:.0f}x | {mean / base_fold:.1f}x |"
            f" {_quantile(every, 0.99):.1f} |"
        )
    p99 = _quantile(results["decision"][0], 0.99)
    verdict = "within" if p99 <= 1000 else "OVER"
    lines += ["", f"Decision p99 {p99:.0f} µs per message: {verdict} the 1 ms budget."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 timing rounds instead of 50")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rows = load_rows()
    rounds = 5 if args.quick else 50
    categories, complete = category_table(rows)
    sections = {
        "safety-summary": summary(rows),
        "safety-categories": categories,
        "safety-classes": class_tables(rows),
        "safety-timing": timing(rows, rounds) + "\n\n" + machine_line(),
    }
    for name, markdown in sections.items():
        print(f"## {name}\n{markdown}\n")
        if not args.no_write:
            write_section(name, markdown, REPORT)
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
