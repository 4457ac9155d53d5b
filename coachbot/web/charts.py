"""Small server-rendered SVG charts: no JavaScript, nothing for the CSP to allow."""

from __future__ import annotations

from collections import Counter

from markupsafe import Markup, escape

from coachbot.queries.patient_page import HeatCell, TrendPoint

_CELL = 11
_GAP = 2
# The heatmap's text alternative counts the states in the legend's order and words.
_LEGEND = (
    ("done", "done"),
    ("partial", "partial"),
    ("skipped", "skipped"),
    ("missed", "missed"),
    ("waiting", "waiting"),
    ("none", "nothing due"),
)


def heatmap_svg(cells: list[HeatCell]) -> Markup:
    """Weeks as columns, days as rows (GitHub style); each cell titled with its day and state,
    the chart named with the count of each state (role="img" hides the cells' titles)."""
    if not cells:
        return Markup("")
    first_weekday = cells[0].day.weekday()
    parts = []
    for index, cell in enumerate(cells):
        slot = index + first_weekday
        x = (slot // 7) * (_CELL + _GAP)
        y = (slot % 7) * (_CELL + _GAP)
        parts.append(
            f'<rect x="{x}" y="{y}" width="{_CELL}" height="{_CELL}" class="hm-{cell.state}">'
            f"<title>{cell.day.isoformat()}: {cell.state}</title></rect>"
        )
    width = ((len(cells) + first_weekday) // 7 + 1) * (_CELL + _GAP)
    height = 7 * (_CELL + _GAP)
    counts = Counter(cell.state for cell in cells)
    tally = ", ".join(f"{counts[state]} {words}" for state, words in _LEGEND if counts[state])
    label = f"Last {len(cells)} days: {tally}"
    # Only numbers, ISO dates and the fixed state names are interpolated: nothing to escape.
    return Markup(  # noqa: S704
        f'<svg class="heatmap" role="img" aria-label="{label}" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
    )


def trend_svg(points: list[TrendPoint], width: int = 360, height: int = 90) -> Markup:
    if not points:
        return Markup("")
    values = [p.value for p in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    start, end = points[0].at.timestamp(), points[-1].at.timestamp()
    duration = (end - start) or 1.0
    pad = 6
    coords = [
        (
            pad + (p.at.timestamp() - start) / duration * (width - 2 * pad),
            height - pad - (p.value - low) / span * (height - 2 * pad),
        )
        for p in points
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>'
        f"{escape(p.at.date().isoformat())}: {p.value:g}</title></circle>"
        for (x, y), p in zip(coords, points, strict=True)
    )
    first, last = points[0].at.date().isoformat(), points[-1].at.date().isoformat()
    label = (
        f"{len(points)} reported values from {first} to {last}:"
        f" lowest {low:g}, highest {high:g}, latest {values[-1]:g}"
        if len(points) > 1
        else f"1 reported value, on {first}: {values[0]:g}"
    )
    # Only numbers and ISO dates are interpolated: nothing to escape.
    return Markup(  # noqa: S704
        f'<svg class="trend" role="img" aria-label="{label}" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}"><polyline points="{line}" />{dots}'
        f'<text x="{pad}" y="12">max {high:g}</text>'
        f'<text x="{pad}" y="{height - 2}">min {low:g}</text></svg>'
    )
