"""Every status and state a row can be in, and the moves allowed between them, in one place.

StrEnums, so the values stored are the plain strings they always were (no migration) and a member compares
equal to its string. The conditional updates in store/queries.py refuse a move these tables do not allow:
that is a bug in the caller, not a race, so it raises instead of returning False.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TypeVar


class IncidentStatus(StrEnum):
    REPORTED = "reported"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Two different things people call "open", named apart:
# being worked on now (the card offers its roles, the status page says "ongoing", it can be resolved)
ACTIVE: frozenset[IncidentStatus] = frozenset({IncidentStatus.REPORTED, IncidentStatus.INVESTIGATING})
# not closed yet (listed and counted as open: a resolved incident still awaits its review and close)
NOT_CLOSED: frozenset[IncidentStatus] = ACTIVE | {IncidentStatus.RESOLVED}
# resolved or closed: what comes after the fix (satisfaction, the review, the resolved notice)
DONE: frozenset[IncidentStatus] = frozenset({IncidentStatus.RESOLVED, IncidentStatus.CLOSED})

INCIDENT_MOVES: Mapping[IncidentStatus, frozenset[IncidentStatus]] = {
    IncidentStatus.REPORTED: frozenset({IncidentStatus.INVESTIGATING, IncidentStatus.RESOLVED}),
    IncidentStatus.INVESTIGATING: frozenset({IncidentStatus.RESOLVED}),
    IncidentStatus.RESOLVED: frozenset({IncidentStatus.CLOSED}),
    IncidentStatus.CLOSED: frozenset(),
}


class DeadlineState(StrEnum):
    PENDING = "pending"
    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"


DEADLINE_MOVES: Mapping[DeadlineState, frozenset[DeadlineState]] = {
    DeadlineState.PENDING: frozenset({DeadlineState.MET, DeadlineState.MISSED, DeadlineState.CANCELLED}),
    DeadlineState.MISSED: frozenset({DeadlineState.MET}),  # the work done late is recorded as met late
    DeadlineState.MET: frozenset(),
    DeadlineState.CANCELLED: frozenset(),
}


# A complaint's deadlines (complaint_deadlines) take the same states. The complaint system may report work
# after the sweeper marked the deadline missed: done before it was due (the report was late), it is met;
# done after, it stays missed and keeps when it was done (met_at).
COMPLAINT_DEADLINE_MOVES: Mapping[DeadlineState, frozenset[DeadlineState]] = {
    DeadlineState.PENDING: frozenset({DeadlineState.MET, DeadlineState.MISSED, DeadlineState.CANCELLED}),
    DeadlineState.MISSED: frozenset({DeadlineState.MET}),
    DeadlineState.MET: frozenset(),
    DeadlineState.CANCELLED: frozenset(),
}


class EscalationState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    EXHAUSTED = "exhausted"
    CANCELLED = "cancelled"


ESCALATION_MOVES: Mapping[EscalationState, frozenset[EscalationState]] = {
    EscalationState.ACTIVE: frozenset(
        {EscalationState.ACKNOWLEDGED, EscalationState.EXHAUSTED, EscalationState.CANCELLED}
    ),
    EscalationState.ACKNOWLEDGED: frozenset(),
    EscalationState.EXHAUSTED: frozenset(),
    EscalationState.CANCELLED: frozenset(),
}


class NoticeState(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    PUBLISHING = "publishing"  # claimed by one publisher; its deliveries are in the outbox
    PUBLISHED = "published"


NOTICE_MOVES: Mapping[NoticeState, frozenset[NoticeState]] = {
    # an edit keeps a draft a draft and sends an approved notice back to draft; approving again re-binds it
    NoticeState.DRAFT: frozenset({NoticeState.DRAFT, NoticeState.APPROVED, NoticeState.PUBLISHING}),
    NoticeState.APPROVED: frozenset({NoticeState.DRAFT, NoticeState.APPROVED, NoticeState.PUBLISHING}),
    NoticeState.PUBLISHING: frozenset({NoticeState.PUBLISHED}),
    NoticeState.PUBLISHED: frozenset(),
}


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


S = TypeVar("S", bound=StrEnum)


class IllegalTransitionError(ValueError):
    """A caller asked for a move the state machine does not have (a bug, never a user's mistake)."""


def require_moves(moves: Mapping[S, frozenset[S]], expected: Iterable[str], to: str) -> None:
    """Refuse a conditional update from any of `expected` to `to` that the table does not allow."""
    states = {str(state): state for state in moves}
    if to not in states:
        raise IllegalTransitionError(f"unknown state {str(to)!r}")
    for state in expected:
        if state not in states or states[to] not in moves[states[state]]:
            raise IllegalTransitionError(f"no move from {str(state)!r} to {str(to)!r}")


class AlertGroupStatus(StrEnum):
    """The last notification an Alertmanager group sent (store/alert_groups.py): it fires and resolves again
    as often as the alerts do, so every move is allowed."""

    FIRING = "firing"
    RESOLVED = "resolved"


ALERT_GROUP_MOVES: Mapping[AlertGroupStatus, frozenset[AlertGroupStatus]] = {
    state: frozenset(AlertGroupStatus) for state in AlertGroupStatus
}


# ---- the surge plan's warning-line proposals (bot/surge) ----------------------------------------------------


class ProposalState(StrEnum):
    PROPOSED = "proposed"  # posted to the leadership group, waiting for Activate or Dismiss
    ACTIVATED = "activated"  # a leader activated it: the surge incident is open
    DISMISSED = "dismissed"  # a leader dismissed it, saying why
    EXPIRED = "expired"  # volume fell back below the line before anyone decided


PROPOSAL_MOVES: Mapping[ProposalState, frozenset[ProposalState]] = {
    ProposalState.PROPOSED: frozenset({ProposalState.ACTIVATED, ProposalState.DISMISSED, ProposalState.EXPIRED}),
    # an activation whose incident could not be opened is given back, so a leader can try again
    ProposalState.ACTIVATED: frozenset({ProposalState.PROPOSED}),
    ProposalState.DISMISSED: frozenset(),
    ProposalState.EXPIRED: frozenset(),
}


class ComplaintRoute(StrEnum):
    """How a complaint reached its incident (a complaint with none is recorded only)."""

    OPENED = "opened"  # the intake opened the incident for it (or for its cluster)
    JOINED = "joined"  # its cluster's incident was open: it joined that one
    ESCALATED = "escalated"  # a person escalated it (`/incident escalate`, the Escalate button)
