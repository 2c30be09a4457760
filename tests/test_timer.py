"""The real timer (APScheduler around the sweeper): a wake-up planned while a sweep runs is never dropped."""

from __future__ import annotations

import time as wall
from datetime import UTC, datetime, timedelta

from bot.deadlines.scheduler import Scheduler
from tests.conftest import LEAD, Stack


def wait_for(condition: object, seconds: float = 10.0) -> bool:
    """Poll the outcome on the real timer's thread, bounded (a generous limit, not a speed assertion)."""
    deadline = wall.monotonic() + seconds
    while wall.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        wall.sleep(0.02)
    return bool(callable(condition) and condition())


def reminders_for(stack: Stack, title: str) -> list[str]:
    return [t for t in stack.dm_texts(LEAD) if t.startswith(":alarm_clock: Reminder") and title in t]


def test_a_row_falling_due_while_a_sweep_is_held_open_is_swept_right_after_it(stack: Stack) -> None:
    """The sweep re-arms the timer while it is still running; a wake-up already due then must coalesce into
    one run right after the sweep, not be skipped until the safety interval (an hour here)."""
    stack.open("complaint sev3 Fee charged twice")
    stack.clock.advance(timedelta(hours=1))
    stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款")
    scheduler = Scheduler(stack.bot.sweeper, db=stack.bot.services.db, clock=stack.clock, interval=timedelta(hours=1))
    scheduler.start()  # its first sweep finds nothing due and plans the next wake-up, hours away
    assert wait_for(lambda: scheduler.aps.get_job("sweep-next") is not None)
    hold = stack.sandbox.hold("chat.postMessage")
    stack.clock.advance(timedelta(hours=11))  # the first incident's reminder is due; the second's in an hour
    scheduler.poke()  # as every change to the rows does: the planned wake-up sweeps now
    try:
        assert hold.reached.wait(10), "the timer never started a sweep"
        stack.clock.advance(timedelta(hours=1))  # while the sweep is held inside Slack, the second falls due
        hold.release()
        assert wait_for(lambda: reminders_for(stack, "被重复扣款")), "the second reminder waited for the interval"
    finally:
        hold.release()
        scheduler.stop()
    assert not scheduler.aps.running
    assert len(reminders_for(stack, "Fee charged twice")) == 1
    assert len(reminders_for(stack, "被重复扣款")) == 1


def test_stopping_while_a_sweep_is_held_open_waits_for_it_and_does_not_hang(stack: Stack) -> None:
    """The shutdown deadlock of APScheduler 3 (its job-store lock held while waiting for a tick that plans
    its next wake-up) must not come back: stop() returns once the held sweep ends."""
    import threading

    stack.open("complaint sev3 Fee charged twice")
    stack.clock.advance(timedelta(hours=1))
    stack.open("complaint sev3 Card declined abroad")
    stack.clock.advance(timedelta(hours=11))
    hold = stack.sandbox.hold("chat.postMessage")
    scheduler = Scheduler(stack.bot.sweeper, db=stack.bot.services.db, clock=stack.clock, interval=timedelta(hours=1))
    scheduler.start()
    stopper = threading.Thread(target=scheduler.stop)
    try:
        assert hold.reached.wait(10), "the timer never started a sweep"
        stack.clock.advance(timedelta(hours=1))  # the held sweep will end with more work due
        stopper.start()
        assert not wait_for(lambda: not stopper.is_alive(), 0.3), "stop() did not wait for the sweep"
    finally:
        hold.release()
    stopper.join(10)
    assert not stopper.is_alive(), "stop() hung"
    assert not scheduler.aps.running
    assert len(reminders_for(stack, "Fee charged twice")) == 1  # the held sweep finished its sends
    assert not reminders_for(stack, "Card declined abroad")  # nothing new started after stop


def test_a_change_made_by_a_command_replans_the_running_timer(stack: Stack) -> None:
    """The app's own timer hears of every change to the rows (the wiring's ScheduleChanged): once its first
    sweep has planned the next wake-up (the weekly report, days away) and its safety interval is taken away,
    only the change itself can plan the earlier wake-up for the new incident's work."""
    scheduler = stack.bot.scheduler
    scheduler.start()
    try:
        # the first tick plans its wake-up as its very last step; the premise is a far one (the weekly report,
        # days away), so wait for that plan rather than for any job (a retry planned a moment ahead would
        # already be earlier than anything the open could add)
        def planned_far() -> bool:
            job = scheduler.aps.get_job("sweep-next")
            return job is not None and job.next_run_time > datetime.now(UTC) + timedelta(hours=1)

        assert wait_for(planned_far, seconds=30), "the first sweep planned no far wake-up"
        scheduler.aps.remove_job("sweep-interval")
        before = scheduler.aps.get_job("sweep-next").next_run_time
        stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款")

        def replanned() -> bool:
            job = scheduler.aps.get_job("sweep-next")
            return job is not None and job.next_run_time < before

        assert wait_for(replanned, seconds=30), "the open did not reach the timer"
    finally:
        scheduler.stop()
    assert not scheduler.aps.running
