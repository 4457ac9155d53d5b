"""Demo handwriting samples (issue #16 item 4): small PNG pictures drawn in code (zlib and
struct, no imaging library) of a sentence's scribble, one per day, stored through the same
`MediaStore` and `media_samples` rows as a texted picture would be.

The pictures are lines of "ink" whose waviness grows with a `tremor` value, so the strip on
the patient page shows a visible change from day to day, as a clinician would look for.
"""

from __future__ import annotations

import math
import struct
import zlib

__all__ = ["png", "scribble"]

_INK = (30, 40, 90)
_PAPER = (250, 248, 240)


def png(width: int, height: int, pixels: list[list[tuple[int, int, int]]]) -> bytes:
    """An 8-bit RGB PNG of `pixels` (rows of (r, g, b))."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def scribble(seed: int, tremor: float, width: int = 160, height: int = 60) -> bytes:
    """A line of handwriting-like ink: words of loops along a baseline; `tremor` (0..1)
    shakes the stroke and lets the line drift, as a changing hand would."""
    pixels = [[_PAPER for _ in range(width)] for _ in range(height)]
    baseline = height * 0.6
    x = 8.0
    step = 0.25
    while x < width - 8:
        word_end = x + 18 + (seed * 7 + int(x)) % 14
        while x < word_end and x < width - 8:
            drift = tremor * 6 * math.sin(x / 23 + seed)
            shake = tremor * 3 * math.sin(x * 1.7 + seed * 3)
            y = baseline + drift + shake - 8 * abs(math.sin(x / 2.2 + seed))
            _dot(pixels, int(x), int(y))
            x += step
        x += 7
    return png(width, height, pixels)


def _dot(pixels: list[list[tuple[int, int, int]]], x: int, y: int) -> None:
    for dy in (0, 1):
        for dx in (0, 1):
            if 0 <= y + dy < len(pixels) and 0 <= x + dx < len(pixels[0]):
                pixels[y + dy][x + dx] = _INK
