"""The service container handed to handlers and jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.render import Renderer
from bot.deadlines.escalation import Escalations
from bot.deadlines.owner_actions import TimekeepingService
from bot.deadlines.service import Deadlines
from bot.incidents.service import IncidentService
from bot.notices.outbox import Outbox
from bot.notices.service import NoticeService
from bot.notices.status_page import StatusPage
from bot.review.service import AftercareService
from bot.review.weekly import ReportService
from bot.slack.gateway import SlackGateway


@dataclass
class Services:
    playbook: Playbook
    db: sessionmaker[Session]
    slack: SlackGateway
    clock: Clock
    renderer: Renderer
    deadlines: Deadlines
    escalations: Escalations
    incidents: IncidentService
    timekeeping: TimekeepingService
    notices: NoticeService
    status_page: StatusPage
    aftercare: AftercareService
    reports: ReportService
    outbox: Outbox
    # called after a change that moves a deadline or a page, so the scheduler can plan its next wake-up
    schedule_changed: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def build(cls, playbook: Playbook, db: sessionmaker[Session], slack: SlackGateway, clock: Clock) -> Services:
        renderer = Renderer(playbook.timezone, playbook.template_folder)
        deadlines, escalations = Deadlines(playbook), Escalations(playbook)
        listeners: list[Callable[[], None]] = []
        outbox = Outbox(db, clock, playbook.locale)

        def changed() -> None:
            for listener in listeners:
                listener()

        incidents = IncidentService(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            renderer=renderer,
            deadlines=deadlines,
            escalations=escalations,
            outbox=outbox,
            schedule_changed=changed,
        )
        timekeeping = TimekeepingService(
            incidents=incidents, deadlines=deadlines, escalations=escalations, schedule_changed=changed
        )
        notices = NoticeService(incidents=incidents, deadlines=deadlines)
        status_page = StatusPage(playbook, db, renderer, clock, notices.published)
        aftercare = AftercareService(incidents=incidents, deadlines=deadlines)
        incidents.after_resolve.append(aftercare.on_resolved)
        return cls(
            playbook,
            db,
            slack,
            clock,
            renderer,
            deadlines,
            escalations,
            incidents,
            timekeeping,
            notices,
            status_page,
            aftercare,
            ReportService(playbook, db, slack, clock, renderer),
            outbox,
            listeners,
        )
