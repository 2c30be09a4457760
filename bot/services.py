"""The service container handed to handlers and jobs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Playbook
from bot.incidents import IncidentService
from bot.render import Renderer
from bot.slack import SlackGateway


@dataclass
class Services:
    playbook: Playbook
    db: sessionmaker[Session]
    slack: SlackGateway
    clock: Clock
    renderer: Renderer
    incidents: IncidentService

    @classmethod
    def build(cls, playbook: Playbook, db: sessionmaker[Session], slack: SlackGateway, clock: Clock) -> Services:
        renderer = Renderer(playbook.timezone)
        incidents = IncidentService(playbook=playbook, db=db, slack=slack, clock=clock, renderer=renderer)
        return cls(playbook, db, slack, clock, renderer, incidents)
