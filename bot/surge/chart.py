"""The surge channel's live picture: complaints per bucket (bars) against each warning line brought to the
same bucket (dashed), with the activation marked. Drawn with Pillow like the weekly chart (bot/review/charts.py);
its default font has no Chinese, so the picture's own words are English and the Slack comment carries the
channel's language."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1000, 460
INK, GRID, BAR, LINE, MARK = (31, 41, 51), (217, 226, 236), (66, 133, 244), (215, 58, 73), (46, 160, 67)


@dataclass(frozen=True)
class Threshold:
    label: str  # e.g. "100 / 10 min"
    per_bucket: float  # the line's rate in complaints per bucket


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def volume_chart(
    counts: Sequence[int],
    *,
    start: datetime,
    bucket: timedelta,
    thresholds: Sequence[Threshold],
    marks: Sequence[tuple[str, datetime]] = (),
    title: str,
) -> bytes:
    """A PNG: one bar per bucket from `start` (local time on the axis), the lines across, `marks` as verticals."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((24, 14), title, fill=INK, font=_font(24))
    minutes = int(bucket.total_seconds() // 60)
    draw.text(
        (24, 46), f"Complaints per {minutes} min; dashed: warning line at the same rate", fill=INK, font=_font(14)
    )
    left, top, right, base = 60, 80, WIDTH - 24, HEIGHT - 40
    top_value = max([*counts, *(t.per_bucket for t in thresholds), 1.0])
    scale = (base - top) / (top_value * 1.1)
    steps = 4
    for i in range(steps + 1):
        value = top_value * 1.1 * i / steps
        y = base - value * scale
        draw.line((left, y, right, y), fill=GRID)
        draw.text((8, y - 8), f"{value:.0f}", fill=INK, font=_font(13))
    slot = (right - left) / max(len(counts), 1)
    for i, count in enumerate(counts):
        x0 = left + i * slot + slot * 0.1
        if count:
            draw.rectangle((x0, base - count * scale, x0 + max(slot * 0.8, 1), base), fill=BAR)
    labels = max(1, len(counts) // 8)
    for i in range(0, len(counts), labels):
        draw.text((left + i * slot, base + 6), (start + bucket * i).strftime("%H:%M"), fill=INK, font=_font(13))
    for threshold in thresholds:
        y = base - threshold.per_bucket * scale
        for dash in range(left, right, 14):
            draw.line((dash, y, min(dash + 8, right), y), fill=LINE, width=2)
        draw.text((right - 160, y - 18), f"line {threshold.label}", fill=LINE, font=_font(13))
    span = bucket * max(len(counts), 1)
    for label, at in marks:
        if start <= at <= start + span:
            x = left + (at - start) / span * (right - left)
            draw.line((x, top, x, base), fill=MARK, width=2)
            draw.text((x + 4, top), label, fill=MARK, font=_font(13))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # fast: it is posted every few minutes
    return out.getvalue()
