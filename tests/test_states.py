"""Statuses and states: one table of allowed moves, enforced by the store's conditional updates; and the two
meanings of "open" (being worked on, not closed yet) kept apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.slack.ids import BlockId
from store import queries
from store.db import make_engine, make_session_factory, upgrade
from store.models import Escalation, Incident
from store.states import (
    ACTIVE,
    DEADLINE_MOVES,
    ESCALATION_MOVES,
    INCIDENT_MOVES,
    NOT_CLOSED,
    NOTICE_MOVES,
    DeadlineState,
    EscalationState,
    IllegalTransitionError,
    IncidentStatus,
    NoticeState,
)
from tests.conftest import LEAD, OUTSIDER, REPORTER, Stack

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_the_stored_values_are_the_strings_already_in_the_database() -> None:
    """No migration: an enum member is the very string the rows hold, and compares equal to it."""
    assert [str(s) for s in IncidentStatus] == ["reported", "investigating", "resolved", "closed"]
    assert [str(s) for s in DeadlineState] == ["pending", "met", "missed", "cancelled"]
    assert [str(s) for s in EscalationState] == ["active", "acknowledged", "exhausted", "cancelled"]
    assert [str(s) for s in NoticeState] == ["draft", "approved", "publishing", "published"]
    assert IncidentStatus.CLOSED == "closed" and "resolved" in NOT_CLOSED and "resolved" not in ACTIVE


@pytest.mark.parametrize("moves", [INCIDENT_MOVES, DEADLINE_MOVES, ESCALATION_MOVES, NOTICE_MOVES])
def test_every_state_has_its_moves_and_they_stay_inside_the_machine(moves: dict) -> None:  # type: ignore[type-arg]
    states = set(moves)
    assert states == set(type(next(iter(states))))
    assert all(targets <= states for targets in moves.values())


def incident_row(status: str) -> Incident:
    return Incident(
        kind="complaint",
        severity="sev2",
        title="客户卡号6222021234567890123被重复扣款",
        status=status,
        playbook_version="1",
        reporter_id=REPORTER,
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_move_the_machine_lacks_is_refused_and_nothing_changes(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    upgrade(engine)
    db = make_session_factory(engine)
    with db.begin() as s:
        number = queries.add_incident(s, incident_row(IncidentStatus.CLOSED)).id
    with db.begin() as s, pytest.raises(IllegalTransitionError, match="no move from 'closed' to 'reported'"):
        queries.transition_incident(s, number, expected=[IncidentStatus.CLOSED], status=IncidentStatus.REPORTED)
    with db.begin() as s, pytest.raises(IllegalTransitionError, match="no move from 'met' to 'missed'"):
        queries.transition_deadline(s, 1, expected=[DeadlineState.MET], state=DeadlineState.MISSED)
    with db.begin() as s, pytest.raises(IllegalTransitionError, match="no move from 'published' to 'draft'"):
        queries.transition_notice(
            s, 1, expected=NoticeState.PUBLISHED, state=NoticeState.DRAFT, approved_digest=None, values={}
        )
    with db() as s:
        incident = queries.get_incident(s, number)
        assert incident is not None and incident.status == IncidentStatus.CLOSED
    # the allowed move goes through, once: the second caller finds it moved already
    with db.begin() as s:
        number = queries.add_incident(s, incident_row(IncidentStatus.REPORTED)).id
    for expected in (True, False):
        with db.begin() as s:
            moved = queries.transition_incident(s, number, expected=ACTIVE, status=IncidentStatus.RESOLVED)
            assert moved is expected
    engine.dispose()


def test_cancelling_escalations_stops_only_the_active_chains_asked_for(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    upgrade(engine)
    db = make_session_factory(engine)

    def chain(incident_id: int, deadline_id: int | None, state: str) -> Escalation:
        return Escalation(
            incident_id=incident_id,
            deadline_id=deadline_id,
            reason="first response missed",
            levels=[],
            state=state,
            started_at=NOW,
            next_action_at=NOW if state == EscalationState.ACTIVE else None,
        )

    with db.begin() as s:
        mine = queries.add_incident(s, incident_row(IncidentStatus.REPORTED)).id
        other = queries.add_incident(s, incident_row(IncidentStatus.REPORTED)).id
        from store.models import Deadline

        deadline = queries.add_deadline(
            s,
            Deadline(
                incident_id=mine,
                key="first_response",
                name="First response",
                owner_role="lead",
                start_at=NOW,
                due_at=NOW,
                state=DeadlineState.MISSED,
            ),
        )
        for row in (
            chain(mine, deadline.id, EscalationState.ACTIVE),  # 1: for the deadline
            chain(mine, None, EscalationState.ACTIVE),  # 2: for a raised severity (no deadline)
            chain(mine, deadline.id, EscalationState.ACKNOWLEDGED),  # 3: stopped already
            chain(other, None, EscalationState.ACTIVE),  # 4: another incident's
        ):
            queries.add_escalation(s, row)

    def states() -> list[tuple[str, bool]]:
        with db() as s:
            rows = queries.list_escalations(s, mine) + queries.list_escalations(s, other)
            return [(str(c.state), c.next_action_at is not None) for c in rows]

    with db.begin() as s:
        loaded = queries.list_escalations(s, mine, state=EscalationState.ACTIVE)  # in the session already
        assert queries.cancel_escalations(s, mine, deadline_id=deadline.id) == 1
        assert [str(c.state) for c in loaded] == ["cancelled", "active"]  # the loaded rows say so too
    assert states() == [("cancelled", False), ("active", True), ("acknowledged", False), ("active", True)]
    with db.begin() as s:
        assert queries.cancel_escalations(s, mine, unbound_only=True) == 1
    assert states() == [("cancelled", False), ("cancelled", False), ("acknowledged", False), ("active", True)]
    with db.begin() as s:
        assert queries.cancel_escalations(s, mine) == 0  # nothing active is left: acknowledged stays so
    assert states()[2:] == [("acknowledged", False), ("active", True)]
    engine.dispose()


def test_a_resolved_incident_is_still_listed_but_no_longer_worked_on(stack: Stack) -> None:
    """Open means two things: `/incident list` shows every incident not closed yet (a resolved one awaits its
    review and close), while only an incident being worked on offers its roles to take on the card."""
    complaint = stack.open("complaint sev2 客户卡号6222021234567890123被重复扣款")
    outage = stack.open("outage sev3 Transfers delayed")
    stack.driver.slash(LEAD, outage.id, "resolve Consumer restarted")
    general = stack.sandbox.channel_by_name("general")
    assert general is not None

    listing = stack.driver.slash(OUTSIDER, general.id, "list").text
    assert listing.splitlines()[0] == "*Open incidents* (2)"
    assert f"*#1* SEV2 complaint — 客户卡号****0123被重复扣款 — reported — <#{complaint.id}>" in listing
    assert f"*#2* SEV3 outage — Transfers delayed — resolved — <#{outage.id}>" in listing

    def offers_roles(channel: str) -> bool:
        card = stack.sandbox.channel_messages(channel)[0]
        return any(b.get("block_id") == BlockId.ROLE_ACTIONS for b in card.blocks)

    assert offers_roles(complaint.id) and not offers_roles(outage.id)

    stack.driver.slash(LEAD, outage.id, "review done")
    stack.driver.slash(LEAD, outage.id, "close")
    listing = stack.driver.slash(OUTSIDER, general.id, "list").text
    assert listing.splitlines()[0] == "*Open incidents* (1)" and "#2" not in listing
