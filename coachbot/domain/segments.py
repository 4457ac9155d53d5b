"""How many SMS segments a text costs, by the GSM 03.38 rules carriers bill by.

Empty text counts as one GSM-7 segment of zero units: a carrier still bills a message that is sent,
so the honest count for "send this" is never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# GSM 03.38 default alphabet. ESC (0x1B) is left out: it only introduces the extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[]~|€")

GSM7_SINGLE_LIMIT = 160
GSM7_PART_LIMIT = 153  # 7 septets of each part go to the concatenation header
UCS2_SINGLE_LIMIT = 70
UCS2_PART_LIMIT = 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    units: int
    segments: int
    non_gsm_chars: tuple[str, ...] = ()


def _gsm7_cost(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


def _ucs2_cost(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _pack(costs: list[int], single_limit: int, part_limit: int) -> tuple[int, int]:
    """Total units and parts; a multi-unit character is never split across two parts.

    Handsets rebuild an escape pair or surrogate pair only when both halves arrive in one part,
    so a character that would straddle the boundary moves whole to the next part.
    """
    units = sum(costs)
    if units <= single_limit:
        return units, 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part_limit:
            parts += 1
            used = 0
        used += cost
    return units, parts


def non_gsm_characters(text: str) -> tuple[str, ...]:
    """Distinct characters outside GSM-7 (basic and extension), in order of first appearance."""
    return tuple(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION))


def count_segments(text: str) -> SegmentCount:
    non_gsm = non_gsm_characters(text)
    if non_gsm:
        units, segments = _pack([_ucs2_cost(c) for c in text], UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT)
        return SegmentCount("UCS-2", units, segments, non_gsm)
    units, segments = _pack([_gsm7_cost(c) for c in text], GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT)
    return SegmentCount("GSM-7", units, segments)
