"""The weekly report: planned on the playbook's cron, posted once at Monday 09:00 on the injected clock,
with a PNG chart uploaded to Slack that the test opens and checks."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from PIL import Image
from sqlalchemy import select

from store.models import ReportRun
from tests.conftest import LEAD, ROOT, Stack


def test_the_weekly_report_is_posted_on_monday_with_a_chart(stack: Stack) -> None:
    reports = stack.sandbox.add_channel("incident-reports", [stack.sandbox.bot_user_id, LEAD])
    stack.bot.sweeper.sweep()  # the first sweep plans the first run
    with stack.bot.services.db() as s:
        (planned,) = s.scalars(select(ReportRun)).all()
    assert planned.due_at.replace(tzinfo=UTC) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Monday 09:00 Shanghai

    first = stack.open("outage sev1 Core banking down").id  # Tuesday
    stack.driver.slash(LEAD, first, "ack")
    stack.advance(days=1)
    stack.open("complaint sev2 cat:service Queue too long")  # Wednesday
    stack.open("complaint sev3 cat:service Rude answer")
    stack.advance(days=4, hours=22, minutes=59)  # Monday 08:59
    assert stack.sandbox.channel_messages(reports) == []
    stack.advance(minutes=1)

    text, upload = stack.sandbox.channel_messages(reports)
    assert text.text.startswith(
        ":bar_chart: Weekly incident report\n*Incident KPIs, 2026-11-23 – 2026-11-29*: 3 incidents"
    )
    assert "Hot spots: service (2)" in text.text
    (chart,) = [stack.sandbox.files[f] for f in upload.files]
    assert chart.filename == "incidents-2026-11-23.png" and chart.data is not None
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "weekly-chart.png").write_bytes(chart.data)  # for a person to look at
    image = Image.open(io.BytesIO(chart.data)).convert("RGB")
    assert image.size == (1000, 520)
    colours = {colour for _, colour in image.getcolors(maxcolors=100_000) or []}
    assert len(colours) > 10  # not blank
    assert (200, 30, 45) in colours and (235, 120, 40) in colours and (240, 190, 60) in colours  # sev1-3 bars

    stack.bot.sweeper.sweep()  # nothing more until next Monday
    assert len(stack.sandbox.channel_messages(reports)) == 2
    with stack.bot.services.db() as s:
        runs = [
            (r.due_at.replace(tzinfo=UTC), r.outcome) for r in s.scalars(select(ReportRun).order_by(ReportRun.due_at))
        ]
    assert runs == [
        (datetime(2026, 11, 30, 1, 0, tzinfo=UTC), "posted"),
        (datetime(2026, 12, 7, 1, 0, tzinfo=UTC), ""),
    ]
