"""medspaCy's ConText (negation, experiencer, temporality, hypotheticals) against coachbot's own
context rules, on the labelled evaluation set, for the red-flag decision.

Both paths find symptom terms the same way (coachbot's category patterns, before any context
rule); they differ only in what cancels a term:

* ``coachbot``: the matcher's own rules (``find_red_flags``: negation walk, resolved, "if"
  clauses, others' history, past events already seen), English and Spanish;
* ``context``: medspaCy's ConText with its default rules (spaCy sentencizer for sentence
  scope); a term is dropped when ConText marks it negated, historical, hypothetical or family.

Scored per row as the safety tests score it: a red-flag or crisis row is caught when every
expected category is found; any other row is a false alarm when it gets a flag.

medspaCy is an optional, heavy dependency (spaCy), not a project dependency. Run it from a
throwaway virtualenv that has both coachbot and medspacy:

    python3 -m venv /tmp/medspacy-venv
    /tmp/medspacy-venv/bin/pip install medspacy -e .
    /tmp/medspacy-venv/bin/python -m bench.safety_medspacy [--rounds 5]

Without medspacy it prints why and exits 0. It prints a markdown table for docs/safety.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

from coachbot.domain.red_flags import CRISIS_FLAGS, RedFlag, _prepare, _scan, find_red_flags
from tests.safety.evaluation import Row, load_rows

Decide = Callable[[str], frozenset[RedFlag]]


def _coachbot(text: str) -> frozenset[RedFlag]:
    return frozenset(find_red_flags(text))


def _context_path() -> Decide:
    # Imported by name: optional packages without type stubs, absent from the project's venv.
    spacy: Any = importlib.import_module("spacy")
    importlib.import_module("medspacy")  # registers the medspacy_* pipeline factories
    importlib.import_module("loguru").logger.remove()  # medspaCy logs every token at DEBUG
    nlp: Any = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("medspacy_context")
    steps = [proc for _, proc in nlp.pipeline]

    def decide(text: str) -> frozenset[RedFlag]:
        tokens, hits = _scan(_prepare(text), checkin=False)
        if not hits:
            return frozenset()
        joined = " ".join(tokens)
        starts: list[int] = []
        pos = 0
        for tok in tokens:
            starts.append(pos)
            pos += len(tok) + 1
        doc = nlp.make_doc(joined)
        spans = []
        taken: set[int] = set()
        for hit in sorted(hits, key=lambda h: (h.first, -h.last)):
            start = starts[hit.first]
            end = starts[hit.last] + len(tokens[hit.last])
            span = doc.char_span(start, end, label=hit.flag.name, alignment_mode="expand")
            if span is None or taken & set(range(span.start, span.end)):
                continue  # spaCy entities cannot overlap: keep the first, longest
            taken |= set(range(span.start, span.end))
            spans.append(span)
        doc.ents = spans
        for step in steps:
            doc = step(doc)
        kept = {
            RedFlag[ent.label_]
            for ent in doc.ents
            if not (
                ent._.is_negated or ent._.is_historical or ent._.is_hypothetical or ent._.is_family
            )
        }
        # Overlapping hits of other categories on a kept span share its fate.
        kept_spans = [(e.start_char, e.end_char) for e in doc.ents if RedFlag[e.label_] in kept]
        for hit in hits:
            start = starts[hit.first]
            if any(a <= start < b for a, b in kept_spans):
                kept.add(hit.flag)
        return frozenset(kept)

    return decide


def score(decide: Decide, rows: list[Row]) -> dict[str, float]:
    danger = [r for r in rows if r.expected in ("red_flag", "crisis")]
    others = [r for r in rows if r.expected not in ("red_flag", "crisis")]
    # Check-in answers ("1,4", "yes", a bare "headache") are read by parse_checkin, not by
    # either context engine: leave those rows out of the comparison.
    danger = [r for r in danger if r.prompt != "checkin"]
    caught = sum(1 for r in danger if set(r.categories) <= decide(r.text))
    crisis_rows = [r for r in danger if r.expected == "crisis"]
    crisis = sum(1 for r in crisis_rows if decide(r.text) & CRISIS_FLAGS)
    alarms = sum(1 for r in others if decide(r.text))
    es = [r for r in rows if r.language == "es"]
    es_right = sum(1 for r in es if _right(decide, r))
    en = [r for r in rows if r.language == "en"]
    en_right = sum(1 for r in en if _right(decide, r))
    return {
        "danger": len(danger),
        "caught": caught,
        "crisis": len(crisis_rows),
        "crisis_caught": crisis,
        "others": len(others),
        "alarms": alarms,
        "accuracy": (caught + len(others) - alarms) / (len(danger) + len(others)),
        "en": en_right / len(en),
        "es": es_right / len(es),
    }


def _right(decide: Decide, row: Row) -> bool:
    flags = decide(row.text)
    if row.expected in ("red_flag", "crisis"):
        return set(row.categories) <= flags if row.prompt != "checkin" else True
    return not flags


def timing(decide: Decide, rows: list[Row], rounds: int) -> tuple[float, float]:
    """p50 and p99 across messages of each message's median time (µs), as bench.safety."""
    calls: list[list[int]] = [[] for _ in rows]
    for _ in range(rounds):
        for i, row in enumerate(rows):
            start = time.perf_counter_ns()
            decide(row.text)
            calls[i].append(time.perf_counter_ns() - start)
    medians = sorted(statistics.median(c) / 1000 for c in calls)
    return medians[len(medians) // 2], medians[int(0.99 * len(medians))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if importlib.util.find_spec("medspacy") is None:
        print(
            "medspacy is not importable in this environment: skipped. Install it in a"
            " throwaway virtualenv (see this module's docstring) to run the comparison."
        )
        return 0
    rows = load_rows()
    paths = {"coachbot rules": _coachbot, "medspaCy ConText": _context_path()}
    lines = [
        "| context rules | danger rows caught | crisis caught | false alarms on other rows"
        " | accuracy | accuracy en | accuracy es | p50 µs | p99 µs |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, decide in paths.items():
        decide(rows[0].text)  # warm up
        s = score(decide, rows)
        p50, p99 = timing(decide, rows, args.rounds)
        lines.append(
            f"| {name} | {s['caught']:.0f}/{s['danger']:.0f} | {s['crisis_caught']:.0f}/"
            f"{s['crisis']:.0f} | {s['alarms']:.0f}/{s['others']:.0f} | {s['accuracy']:.1%} |"
            f" {s['en']:.1%} | {s['es']:.1%} | {p50:.0f} | {p99:.0f} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
