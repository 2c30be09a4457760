"""The incidents package's front door: builds its parts and offers the commands the handlers call.

The parts stand alone, each taking what it uses in its constructor:
- lifecycle.py  the state machine (open, severity, update, pause/resume, resolve, close)
- channel.py    the incident channel: set-up, repair, and the side effects the outbox runs
- roles.py      assigning and taking roles, finding the people a command names
- views.py      status, timeline, list and help (read-only)
- records.py    loading an incident inside a unit of work
- permissions.py the one permission policy

`IncidentService` only delegates. The handful of attributes other services still read from it (db, clock,
renderer, slack, outbox, find, row, try_post, flush…) are kept until the composition root hands those
services their own; new code takes the parts (or their dependencies) directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.render import Renderer
from bot.deadlines.escalation import Escalations
from bot.deadlines.service import Deadlines
from bot.incidents.channel import SETUP_STEPS, ChannelSetup, ChannelUpdates, SetupOutcome
from bot.incidents.lifecycle import AfterResolve, IncidentCreate, Lifecycle
from bot.incidents.permissions import Action, Permissions, Who, language
from bot.incidents.records import load_incident, locate_incident
from bot.incidents.roles import Roles
from bot.incidents.views import Views
from bot.notices.outbox import LaneResult, Outbox
from bot.slack.commands import UserRef
from bot.slack.gateway import SlackGateway
from store.models import Incident

__all__ = ["SETUP_STEPS", "IncidentCreate", "IncidentService", "SetupOutcome"]


P = ParamSpec("P")
R = TypeVar("R")


def speaks(method: Callable[Concatenate[IncidentService, P], R]) -> Callable[Concatenate[IncidentService, P], R]:
    """Run a command in the language its caller chose (the request's reader, set by the bolt middleware), or,
    when no one chose (a job, a test calling the service), in the playbook's."""

    @functools.wraps(method)
    def run(service: IncidentService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with service.language():
            return method(service, *args, **kwargs)

    return run


class IncidentService:
    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        renderer: Renderer,
        deadlines: Deadlines,
        escalations: Escalations,
        outbox: Outbox,
        permissions: Permissions | None = None,
        schedule_changed: Callable[[], None] = lambda: None,
        after_resolve: Sequence[Callable[[Session, Incident], None]] = (),
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.renderer = renderer
        self.outbox = outbox
        self.schedule_changed = schedule_changed
        self.permissions = permissions or Permissions(playbook, slack)
        # written in the resolving transaction, e.g. the satisfaction rating prompts (given by the composition root)
        self.after_resolve: tuple[AfterResolve, ...] = tuple(after_resolve)
        self.channel = ChannelSetup(
            playbook=playbook, db=db, slack=slack, clock=clock, renderer=renderer, outbox=outbox
        )
        self.updates = ChannelUpdates(playbook=playbook, db=db, slack=slack, renderer=renderer, outbox=outbox)
        self.lifecycle = Lifecycle(
            playbook=playbook,
            db=db,
            clock=clock,
            renderer=renderer,
            deadlines=deadlines,
            escalations=escalations,
            permissions=self.permissions,
            channel=self.channel,
            updates=self.updates,
            schedule_changed=schedule_changed,
            after_resolve=self.after_resolve,
        )
        self.roles = Roles(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            permissions=self.permissions,
            lifecycle=self.lifecycle,
            updates=self.updates,
        )
        self.views = Views(playbook=playbook, db=db, slack=slack, renderer=renderer, permissions=self.permissions)

    def language(self) -> AbstractContextManager[str]:
        """The caller's language if one is set, else the playbook's."""
        return language(self.playbook)

    # ---- opening and the channel ------------------------------------------------------------------------

    @speaks
    def open_incident(
        self,
        incident_in: IncidentCreate,
        *,
        reporter: str,
        origin_channel: str | None = None,
        prepare: Callable[[Session, Incident], None] | None = None,
    ) -> Incident:
        return self.lifecycle.open(incident_in, reporter=reporter, origin_channel=origin_channel, prepare=prepare)

    @speaks
    def setup_channel(
        self, incident_id: int, *, result: LaneResult | None = None, tell: Callable[[str], object] | None = None
    ) -> SetupOutcome:
        return self.channel.set_up(incident_id, result=result, tell=tell)

    @speaks
    def opened_message(self, outcome: SetupOutcome) -> str:
        return self.channel.opened_message(outcome)

    @speaks
    def repair(self, *, channel_id: str | None, number: int | None, actor: str) -> str:
        with self.db() as s:
            incident = locate_incident(s, channel_id=channel_id, number=number)
        self.permissions.require(Action.REPAIR, incident, actor)
        return self.channel.repair(incident)

    # ---- changes ----------------------------------------------------------------------------------------

    @speaks
    def assign_role(self, *, channel_id: str, role: str, user: UserRef, actor: str, command: str = "") -> str | None:
        return self.roles.assign(channel_id=channel_id, role=role, user=user, actor=actor, command=command)

    @speaks
    def take_role(self, *, incident_id: int, role: str, actor: str) -> str | None:
        return self.roles.take(incident_id=incident_id, role=role, actor=actor)

    @speaks
    def change_severity(self, *, channel_id: str, severity: str, actor: str, command: str = "") -> str | None:
        return self.lifecycle.change_severity(channel_id=channel_id, severity=severity, actor=actor, command=command)

    @speaks
    def post_update(self, *, channel_id: str, text: str, actor: str, command: str = "") -> str | None:
        return self.lifecycle.post_update(channel_id=channel_id, text=text, actor=actor, command=command)

    @speaks
    def resolve(self, *, channel_id: str, summary: str, actor: str, command: str = "") -> str | None:
        return self.lifecycle.resolve(channel_id=channel_id, summary=summary, actor=actor, command=command)

    @speaks
    def close(self, *, channel_id: str, actor: str, command: str = "") -> str | None:
        return self.lifecycle.close(channel_id=channel_id, actor=actor, command=command)

    @speaks
    def pause(self, *, channel_id: str, reason: str, actor: str, command: str = "") -> str | None:
        return self.lifecycle.pause(channel_id=channel_id, reason=reason, actor=actor, command=command)

    @speaks
    def resume(self, *, channel_id: str, actor: str, command: str = "") -> str | None:
        return self.lifecycle.resume(channel_id=channel_id, actor=actor, command=command)

    # ---- views ------------------------------------------------------------------------------------------

    @speaks
    def readable(self, action: Action, *, channel_id: str | None, number: int | None, actor: str) -> Incident:
        return self.views.readable(action, channel_id=channel_id, number=number, actor=actor)

    @speaks
    def status_blocks(
        self, *, channel_id: str | None, number: int | None, actor: str
    ) -> tuple[str, list[dict[str, Any]]]:
        return self.views.status_blocks(channel_id=channel_id, number=number, actor=actor)

    @speaks
    def timeline_text(self, *, channel_id: str | None, number: int | None, actor: str) -> str:
        return self.views.timeline_text(channel_id=channel_id, number=number, actor=actor)

    @speaks
    def list_text(self) -> str:
        return self.views.list_text()

    @speaks

    # ---- kept for the services that still reach through this one (notices, review, owner actions) -----------

    def row(self, s: Session, incident_id: int) -> Incident:
        """Use `records.load_incident`."""
        return load_incident(s, incident_id)

    @speaks
    def find(self, *, channel_id: str | None, number: int | None = None) -> Incident:
        """Use `records.locate_incident` inside the command's own transaction."""
        with self.db() as s:
            return locate_incident(s, channel_id=channel_id, number=number)

    @speaks
    def require(self, action: Action, incident: Incident, actor: str, *, also: tuple[Who, ...] = ()) -> None:
        self.permissions.require(action, incident, actor, also=also)

    def lead_of(self, incident: Incident) -> str | None:
        return self.permissions.lead(incident)

    @speaks
    def resolve_user(self, ref: UserRef, actor: str) -> str:
        return self.roles.resolve_user(ref, actor)

    @speaks
    def flush(self, incident_id: int) -> str | None:
        return self.updates.flush(incident_id)

    @speaks
    def try_post(self, channel_id: str, text: str) -> None:
        """Use `ChannelUpdates.post_or_log`."""
        self.updates.post_or_log(channel_id, text)
