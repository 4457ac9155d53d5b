"""The safety decision over the labelled evaluation set: per-category precision and recall, the
confusion matrix (expected class x decided class), and the decision's time per message, p50 / p99,
against two baselines timed in the same run over the same messages: a bare ``str.casefold()``
and ``keywords.fold`` (the normalisation every parser shares).

    .venv/bin/python -m bench.safety              # 50 timing rounds over the set
    .venv/bin/python -m bench.safety --quick      # 5 rounds
    .venv/bin/python -m bench.safety --no-write   # print only, docs/safety.md untouched

Writes its sections of docs/safety.md between markers (the rest of the page is prose).
The decision is ``coachbot.domain.triage.decide`` when it exists, otherwise the composition in
tests/safety/evaluation.py (keywords, then danger, then revocation, then the reply parser).
"""

from __future__ import annotations

import argparse
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


def _per_message_ns(
    fn: Callable[[Row], object], rows: list[Row], rounds: int
) -> tuple[list[int], float]:
    """Every call's time in ns (all rounds), and the mean per message."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for row in rows:
            start = clock()
            fn(row)
            samples.append(clock() - start)
    return samples, statistics.fmean(samples)


def _quantile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0  # microseconds


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

    for fn in (decide, casefold, folded):  # warm caches and regex compilation
        _per_message_ns(fn, rows, 1)
    results = {
        name: _per_message_ns(fn, rows, rounds)
        for name, fn in (("decision", decide), ("casefold", casefold), ("fold", folded))
    }
    d_samples, d_mean = results["decision"]
    lines = [
        f"{len(rows)} messages x {rounds} rounds, one `perf_counter_ns` pair per call.",
        "",
        "| path | p50 µs | p99 µs | max µs | mean µs | mean vs casefold | mean vs fold |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    base_casefold = results["casefold"][1]
    base_fold = results["fold"][1]
    for name, (samples, mean) in results.items():
        lines.append(
            f"| {name} | {_quantile(samples, 0.5):.1f} | {_quantile(samples, 0.99):.1f} |"
            f" {max(samples) / 1000:.1f} | {mean / 1000:.1f} | {mean / base_casefold:.0f}x |"
            f" {mean / base_fold:.1f}x |"
        )
    p99 = _quantile(d_samples, 0.99)
    verdict = "within" if p99 <= 1000 else "OVER"
    lines += [
        "",
        f"Decision p99 {p99:.0f} µs per message: {verdict} the 1 ms budget"
        f" (mean {d_mean / 1000:.0f} µs).",
    ]
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
