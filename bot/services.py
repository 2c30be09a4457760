"""The composition root's domain half: every service built once, in dependency order, each given exactly
what it uses. Reading `Services.build` top to bottom tells who calls whom; nothing registers itself later."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.events import Events, IncidentResolved, ScheduleChanged, SurgeProposed
from bot.core.render import Renderer
from bot.deadlines.escalation import Escalations
from bot.deadlines.owner_actions import DeadlineActions
from bot.deadlines.scheduler import Scheduler, Sweeper
from bot.deadlines.service import Deadlines
from bot.drills.service import DrillService
from bot.incidents.permissions import Permissions
from bot.incidents.service import IncidentService
from bot.intake.alerts import AlertIntake
from bot.intake.listing import ComplaintList
from bot.intake.records import ComplaintRecords
from bot.intake.routing import ComplaintRouter
from bot.intake.service import ComplaintIntake
from bot.notices.email import Mailer
from bot.notices.outbox import LEASE, Outbox
from bot.notices.service import NoticeService
from bot.notices.status_page import StatusPage
from bot.notices.webhooks import WebhookSender
from bot.plan.service import PlanService
from bot.review.kpi import refresh_rollup
from bot.review.service import ReviewService
from bot.review.weekly import ReportService
from bot.slack.gateway import SlackGateway
from bot.surge.leadership import Leadership
from bot.surge.plan import SurgePlan
from bot.surge.proposals import SurgeProposals
from bot.surge.watch import SurgeWatch
from store.models import Incident


@dataclass(frozen=True)
class Services:
    """What handlers, jobs and the CLI are handed; built only by `build`."""

    playbook: Playbook
    db: sessionmaker[Session]
    slack: SlackGateway
    clock: Clock
    renderer: Renderer
    events: Events
    outbox: Outbox
    permissions: Permissions
    deadlines: Deadlines
    escalations: Escalations
    incidents: IncidentService
    deadline_actions: DeadlineActions
    notices: NoticeService
    status_page: StatusPage
    review: ReviewService
    reports: ReportService
    sweeper: Sweeper
    scheduler: Scheduler  # the timer around the sweeper; `incident-desk run` starts it
    intake: ComplaintIntake  # complaints from the bank's complaint system (the intake API)
    plan: PlanService  # the plan's versions: announcing a new one, read confirmations, the yearly review
    surge_plan: SurgePlan  # the running surge plan: duties, diversion notices, live chart, End and summary
    alerts: AlertIntake  # Alertmanager's webhook: monitoring opens and joins outages
    # the surge plan (seed 004): who decides, the warning lines, the proposals to the leadership group
    leadership: Leadership
    surge_watch: SurgeWatch
    surge: SurgeProposals
    complaint_records: ComplaintRecords  # each complaint's deadlines and the complaint system's events
    routing: ComplaintRouter  # which complaints open or join incidents, and escalation by a person
    complaints: ComplaintList  # `/incident complaints`
    drills: DrillService  # rehearsals of the plan on their own clock (issue 13)

    @classmethod
    def build(
        cls,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        *,
        send_workers: int = 8,
        timer_interval: timedelta = timedelta(seconds=15),
    ) -> Services:
        # the parts every service may use
        renderer = Renderer(playbook.timezone, playbook.template_folder)
        events = Events()
        outbox = Outbox(db, clock, playbook.locale)
        permissions = Permissions(playbook, slack)

        def schedule_changed() -> None:
            events.publish(ScheduleChanged())

        def resolved(s: Session, incident: Incident) -> None:
            events.publish(IncidentResolved(s, incident))

        # the rules for deadline and page rows, used inside other services' units of work
        deadlines = Deadlines(playbook)
        escalations = Escalations(playbook)

        # the incident's lifecycle, then what people do around it
        incidents = IncidentService(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            renderer=renderer,
            deadlines=deadlines,
            escalations=escalations,
            outbox=outbox,
            permissions=permissions,
            schedule_changed=schedule_changed,
            after_resolve=(resolved,),
        )
        deadline_actions = DeadlineActions(
            playbook=playbook,
            db=db,
            clock=clock,
            renderer=renderer,
            incidents=incidents,
            permissions=permissions,
            deadlines=deadlines,
            escalations=escalations,
            schedule_changed=schedule_changed,
        )
        notices = NoticeService(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            renderer=renderer,
            outbox=outbox,
            incidents=incidents,
            permissions=permissions,
            deadlines=deadlines,
            webhooks=WebhookSender(sleep=clock.sleep),
            mailer=Mailer(sleep=clock.sleep),
            schedule_changed=schedule_changed,
        )
        status_page = StatusPage(playbook, db, renderer, clock, notices.published)
        review = ReviewService(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            renderer=renderer,
            outbox=outbox,
            incidents=incidents,
            permissions=permissions,
            deadlines=deadlines,
            schedule_changed=schedule_changed,
        )
        reports = ReportService(playbook, db, slack, clock, renderer)
        plan = PlanService(playbook, db, slack, clock)
        # drills: scenarios played as drill incidents; their cues and scorecards are the sweeper's due work
        drills = DrillService(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            outbox=outbox,
            incidents=incidents,
            schedule_changed=schedule_changed,
        )

        # the surge plan (seed 004): who decides; the running plan, started from the record and driven by the
        # sweep below; the warning lines and the leadership group's decision (bot/surge)
        leadership = Leadership(playbook, slack)
        surge_plan = SurgePlan(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            renderer=renderer,
            outbox=outbox,
            leadership=leadership,
            lifecycle=incidents.lifecycle,
            notices=notices,
        )
        surge_watch = SurgeWatch(playbook, db, clock, events.publish)
        surge = SurgeProposals(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            incidents=incidents,
            leadership=leadership,
            watch=surge_watch,
        )

        # every complaint's deadlines, met by the complaint system's events, missed by the sweep
        complaint_records = ComplaintRecords(db, clock, playbook, deadlines)

        # the clock's sweep and its timer: due deadlines and pages, plus the jobs due at a moment
        sweeper = Sweeper(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            renderer=renderer,
            escalations=escalations,
            leaders=leadership.members,  # an escalation level with `leadership: true` pages the surge plan's group
            write_effect=outbox.add,  # channel notes decided before the channel exists wait in its lane
            jobs=(
                # side effects whose worker died (lease ran out), whose retry is due, or left unrun past the lease
                functools.partial(outbox.resume, grace=LEASE),
                review.post_due_reviews,
                drills.inject_due,  # a drill's cues and scorecard, due on its compressed clock
                drills.remind_quarterly,  # a quarter passed with no drill of a kind: the plan's owners are told
                reports.run_weekly,
                plan.run,  # a new version's announcement, reminders to read it, the yearly review
                surge_plan.run_due,
                surge.sweep,  # the warning lines with no complaint coming in; proposals to post, page again, expire
                functools.partial(  # the KPI report's months, computed again once stale (bot/review/kpi.py)
                    refresh_rollup, db, zone=playbook.tz, good_at_least=playbook.satisfaction.good_at_least
                ),
                complaint_records.mark_missed,
            ),
            send_workers=send_workers,
        )
        scheduler = Scheduler(sweeper, db=db, clock=clock, interval=timer_interval)

        # what other systems send in
        routing = ComplaintRouter(
            playbook=playbook,
            db=db,
            clock=clock,
            slack=slack,
            incidents=incidents,
            schedule_changed=schedule_changed,
        )
        intake = ComplaintIntake(
            db,
            clock,
            playbook,
            surge_watch,
            router=routing,
            after_record=(complaint_records.add_deadlines,),
        )
        alerts = AlertIntake(
            playbook=playbook,
            db=db,
            clock=clock,
            slack=slack,
            renderer=renderer,
            lifecycle=incidents.lifecycle,
            updates=incidents.updates,
            set_up=incidents.setup_channel,
            schedule_changed=schedule_changed,
        )
        complaints = ComplaintList(playbook=playbook, db=db, clock=clock, router=routing)

        # who reacts to what, all of it here
        events.subscribe(ScheduleChanged, lambda _: scheduler.poke())
        events.subscribe(IncidentResolved, review.on_resolved)
        events.subscribe(SurgeProposed, lambda event: surge.post_soon(event.proposal_id))
        events.seal()

        return cls(
            playbook=playbook,
            db=db,
            slack=slack,
            clock=clock,
            renderer=renderer,
            events=events,
            outbox=outbox,
            permissions=permissions,
            deadlines=deadlines,
            escalations=escalations,
            incidents=incidents,
            deadline_actions=deadline_actions,
            notices=notices,
            status_page=status_page,
            review=review,
            reports=reports,
            sweeper=sweeper,
            scheduler=scheduler,
            intake=intake,
            plan=plan,
            surge_plan=surge_plan,
            alerts=alerts,
            leadership=leadership,
            surge_watch=surge_watch,
            surge=surge,
            complaint_records=complaint_records,
            routing=routing,
            complaints=complaints,
            drills=drills,
        )
