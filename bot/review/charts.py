"""The weekly report's picture: incidents per day by severity (stacked bars) and deadline compliance."""

from __future__ import annotations

import io
from collections import Counter
from datetime import date

from PIL import Image, ImageDraw, ImageFont

from bot.review.kpi import Report

WIDTH, HEIGHT = 1000, 520
SEVERITY_COLOURS = {"sev1": (200, 30, 45), "sev2": (235, 120, 40), "sev3": (240, 190, 60), "sev4": (120, 160, 200)}
OTHER = (150, 150, 150)
INK, GRID, MET, MISSED = (31, 41, 51), (217, 226, 236), (46, 160, 67), (215, 58, 73)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def weekly_chart(days: dict[date, Counter[str]], report: Report, *, title: str) -> bytes:
    """A PNG, readable on a phone: left the days, right the share of each deadline type met."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((24, 16), title, fill=INK, font=_font(26))
    _days(draw, days, (24, 70, 560, HEIGHT - 40))
    _compliance(draw, report, (610, 70, WIDTH - 24, HEIGHT - 40))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _days(draw: ImageDraw.ImageDraw, days: dict[date, Counter[str]], box: tuple[int, int, int, int]) -> None:
    left, top, right, bottom = box
    draw.text((left, top), "Incidents per day, by severity", fill=INK, font=_font(18))
    top += 60
    base = bottom - 24
    peak = max((sum(c.values()) for c in days.values()), default=0) or 1
    scale = (base - top) / peak
    for step in range(0, peak + 1, max(1, peak // 4)):
        y = base - step * scale
        draw.line((left + 30, y, right, y), fill=GRID)
        draw.text((left, y - 8), str(step), fill=INK, font=_font(13))
    slot = (right - left - 40) / max(len(days), 1)
    for i, (day, counts) in enumerate(sorted(days.items())):
        x0 = left + 40 + i * slot + slot * 0.15
        x1 = x0 + slot * 0.7
        y = base
        for severity in sorted(counts):
            height = counts[severity] * scale
            draw.rectangle((x0, y - height, x1, y), fill=SEVERITY_COLOURS.get(severity, OTHER))
            y -= height
        draw.text((x0, base + 4), day.strftime("%a %d"), fill=INK, font=_font(13))
    legend_x = left + 40
    for severity, colour in SEVERITY_COLOURS.items():
        draw.rectangle((legend_x, top - 30, legend_x + 12, top - 18), fill=colour)
        draw.text((legend_x + 16, top - 32), severity.upper(), fill=INK, font=_font(13))
        legend_x += 70


def _compliance(draw: ImageDraw.ImageDraw, report: Report, box: tuple[int, int, int, int]) -> None:
    left, top, right, bottom = box
    draw.text((left, top), "Deadlines met on time (share)", fill=INK, font=_font(18))
    top += 40
    rows = report.deadlines[:10]
    if not rows:
        draw.text((left, top), "No deadline fell due this week.", fill=INK, font=_font(15))
        return
    bar_left, row_height = left + 150, min(40, (bottom - top) // len(rows))
    for i, (key, met, missed) in enumerate(rows):
        y = top + i * row_height
        total = met + missed
        share = met / total if total else 0.0
        draw.text((left, y + 4), key[:18], fill=INK, font=_font(14))
        draw.rectangle((bar_left, y + 4, right - 50, y + row_height - 10), fill=(245, 245, 245))
        if share > 0:
            end = bar_left + (right - 50 - bar_left) * share
            draw.rectangle((bar_left, y + 4, end, y + row_height - 10), fill=MET if share >= 0.9 else MISSED)
        draw.text((right - 45, y + 4), f"{share * 100:.0f}%", fill=INK, font=_font(14))
