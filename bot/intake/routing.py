"""Which complaints become incidents (the playbook's `intake:` rules), and the escalation of one by a person.

Routing runs inside the transaction that records the complaint, so a complaint and its incident (or its place
in a cluster) commit together: a retry of the same external id finds both and opens nothing; a crash leaves
neither. Concurrent complaints of one cluster take the cluster's lock row in turn (store/routing.py), so N
complaints arriving at once open ONE incident. Nothing here calls Slack on the request's path: the incident's
channel set-up is in its outbox, run in the background once the answer is on its way.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import IntakeRuleSpec, Playbook
from bot.core.errors import ConflictError, NotFoundError, UserInputError
from bot.core.executor import TrackingExecutor
from bot.core.i18n import N_, _, in_channel_language
from bot.core.text import mask_identifiers, safe_text, truncate
from bot.incidents.lifecycle import IncidentCreate
from bot.incidents.records import load_incident
from bot.incidents.service import IncidentService
from bot.slack.gateway import SlackCallError, SlackGateway
from store import queries
from store import routing as store
from store.models import Complaint, Incident
from store.states import ACTIVE, ComplaintRoute

log = logging.getLogger(__name__)

SOURCE = "complaint_system"
TITLE_MAX = 80
# the complaint system's contact channels, as staff read them
CHANNEL_NAMES = {
    "phone": N_("phone"),
    "email": N_("e-mail"),
    "online_chat": N_("online chat"),
    "branch": N_("branch"),
    "app": N_("app"),
}
# A cluster's incident hears of each of its first complaints; after that only of every JOIN_EVERY-th (a count),
# so a surge of complaints floods neither its timeline nor its channel (Slack takes about a post a second).
JOIN_LINES = 10
JOIN_EVERY = 25
RECORDED = "recorded"


@dataclass(frozen=True)
class Routed:
    """Where a complaint went: `route` is opened, joined, escalated or recorded; the incident when it has one."""

    route: str
    incident: int | None = None
    channel: str | None = None  # the incident channel's name (claimed when opened; created in the background)
    created: bool = False  # this request opened the incident: its channel still has to be set up
    rule: str | None = None
    posts: bool = False  # a line for the incident's channel is queued in its outbox

    def answer(self) -> dict[str, object]:
        """What the intake API adds to its answer."""
        shown: dict[str, object] = {"routed": self.route}
        if self.incident is not None:
            shown["incident"] = {"number": self.incident, "channel": self.channel}
        return shown


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


class ComplaintRouter:
    """Applies the playbook's intake rules to each new complaint, and escalates one on a person's say-so."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        clock: Clock,
        slack: SlackGateway,
        incidents: IncidentService,
        schedule_changed: Callable[[], None],
        background: TrackingExecutor | None = None,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.clock = clock
        self.slack = slack
        self.incidents = incidents
        self.schedule_changed = schedule_changed
        # channel set-up after the answer: a few workers, so a burst queues here instead of in the requests
        self.background = background or TrackingExecutor(max_workers=4)
        self._intake_channel: str | None = None
        self._intake_channel_lock = threading.Lock()  # two set-ups finishing together find (or create) it once
        kind = playbook.kinds.get("complaint")
        self._own = {_fold(c): c for c in (kind.categories if kind else ())}
        self._mapped = {_fold(k): v for k, v in playbook.intake.categories.items()}

    # ---- the rules ----------------------------------------------------------------------------------------

    def category_of(self, sent: str) -> str | None:
        """The complaint kind's category for what the complaint system sent, or None when the playbook has no
        mapping for it (the complaint is still recorded, and the incident a rule opens for it has no category)."""
        folded = _fold(sent)
        return self._mapped.get(folded) or self._own.get(folded)

    def rule_for(self, complaint: Complaint) -> IntakeRuleSpec | None:
        """The first rule every condition of which the complaint meets."""
        if not self.playbook.intake.enabled:
            return None
        category = self.category_of(complaint.category)
        summary = _fold(complaint.summary)
        for rule in self.playbook.intake.rules:
            if rule.severities and complaint.severity not in rule.severities:
                continue
            if rule.categories and category not in rule.categories:
                continue
            if rule.products and _fold(complaint.product) not in {_fold(p) for p in rule.products}:
                continue
            if rule.min_amount is not None and (complaint.amount is None or complaint.amount < rule.min_amount):
                continue
            if rule.keywords and not any(_fold(word) in summary for word in rule.keywords):
                continue
            return rule
        return None

    def cluster_key(self, rule: IntakeRuleSpec, complaint: Complaint) -> str:
        """The cluster a complaint counts in: the rule, and its category (mapped, else as sent) or product."""
        assert rule.cluster is not None
        if rule.cluster.by == "category":
            value = self.category_of(complaint.category) or _fold(complaint.category)
        else:
            value = _fold(complaint.product)
        digest = hashlib.sha256(f"{rule.cluster.by}:{value}".encode()).hexdigest()[:20]
        return f"{rule.name[:40]}:{digest}"

    # ---- routing a new complaint (in the transaction that records it) --------------------------------------

    def plan(self, complaint: Complaint) -> tuple[IntakeRuleSpec | None, str | None]:
        """The rule a new complaint meets and the cluster it counts in (pure Python, before it is inserted: its
        cluster key goes in with it, so routing it costs no update for that)."""
        rule = self.rule_for(complaint)
        if rule is None or rule.cluster is None:
            return rule, None
        return rule, self.cluster_key(rule, complaint)

    def route(self, s: Session, complaint: Complaint, rule: IntakeRuleSpec | None = None) -> Routed:
        """Open the complaint's incident, join its cluster's open one, or leave it recorded. `complaint` is the
        row just inserted (its values, not loaded back: `rule` and its cluster key come from `plan`); what it
        routes to is written with one update."""
        if rule is None:
            return Routed(RECORDED)
        if rule.cluster is None:
            incident = self._open(s, complaint, rule, cluster=None)
            self._link(s, complaint, incident.id, ComplaintRoute.OPENED)
            return Routed(ComplaintRoute.OPENED, incident.id, incident.channel_name, created=True, rule=rule.name)
        key = complaint.cluster_key or self.cluster_key(rule, complaint)
        now = self.clock.now()
        # the cluster's lock with the join's count, and its incident's state
        cluster = store.take_cluster_turn(s, key, now=now)
        if cluster.incident_id is not None and cluster.status in ACTIVE:
            told = self._join(s, complaint, cluster.incident_id, cluster.complaints)
            return Routed(ComplaintRoute.JOINED, cluster.incident_id, cluster.channel_name, rule=rule.name, posts=told)
        since = now - rule.cluster.window  # no incident open for the cluster (or it is resolved): count afresh
        # locked before the incident is opened: an escalation holding one of them finishes first (or waits), so
        # the two never wait on each other
        waiting = store.lock_unrouted_in_cluster(s, key, since=since)
        if len(waiting) < rule.cluster.count:
            if cluster.incident_id is not None:
                store.set_cluster(s, key, incident_id=None, complaints=0)
            return Routed(RECORDED, rule=rule.name)
        incident = self._open(s, complaint, rule, cluster=(len(waiting), rule.cluster.window))
        others = [number for number in waiting if number != complaint.id]
        store.link_complaints(s, others, incident_id=incident.id, route=ComplaintRoute.JOINED)
        self._link(s, complaint, incident.id, ComplaintRoute.OPENED)
        store.set_cluster(s, key, incident_id=incident.id, complaints=len(waiting))
        return Routed(ComplaintRoute.OPENED, incident.id, incident.channel_name, created=True, rule=rule.name)

    def routed_of(self, s: Session, complaint: Complaint) -> Routed:
        """How an already recorded complaint was routed (a retry gets the first request's answer)."""
        if complaint.incident_id is None:
            return Routed(RECORDED)
        incident = queries.get_incident(s, complaint.incident_id)
        return Routed(complaint.routed or RECORDED, complaint.incident_id, incident.channel_name if incident else None)

    def _open(
        self, s: Session, complaint: Complaint, rule: IntakeRuleSpec, *, cluster: tuple[int, timedelta] | None
    ) -> Incident:
        kind = self.playbook.kinds[rule.kind]
        category = self.category_of(complaint.category)
        with in_channel_language(self.playbook):  # the incident's title and card are the channel's
            if cluster is None:
                title = truncate(mask_identifiers(complaint.summary), TITLE_MAX)
            else:
                title = _(
                    "{count} complaints about {subject} within {minutes} min",
                    count=cluster[0],
                    subject=mask_identifiers(
                        complaint.category if rule.cluster and rule.cluster.by == "category" else complaint.product
                    ),
                    minutes=int(cluster[1].total_seconds() // 60),
                )
            description = _(
                "Opened by the complaint intake (rule {rule}) for complaint #{number}: {summary}",
                rule=rule.name,
                number=complaint.id,
                summary=mask_identifiers(complaint.summary),
            )
        severity = rule.severity or (complaint.severity if complaint.severity in self.playbook.severities else None)
        incident_in = IncidentCreate(
            kind=rule.kind,
            title=title,
            severity=severity,
            category=category if category in kind.categories else None,
            description=description,
            customer_ref=complaint.customer_ref if cluster is None else None,
            source=SOURCE,
        )
        return self.incidents.lifecycle.open_in(
            s, incident_in, reporter=self.slack.bot_user_id, lead=self._intake_lead(s)
        )

    def _intake_lead(self, s: Session) -> str | None:
        """`intake.leads`, taken in turn; None leaves the lead role to its default owners (or nobody)."""
        leads = self.playbook.intake.leads
        if not leads:
            return None
        return leads[queries.next_rotation_position(s, "intake:lead", len(leads))]

    def _link(self, s: Session, complaint: Complaint, incident_id: int, route: str, *, recorded: bool = True) -> None:
        """Put the complaint with the incident; `recorded`: in the incident's timeline too. A complaint the
        session holds (an escalation) is updated through it; one just inserted by the intake with one update."""
        if complaint not in s:
            store.route_complaint(s, complaint.id, incident_id=incident_id, route=route)
        complaint.incident_id, complaint.routed = incident_id, route
        if not recorded:
            return
        queries.add_timeline_event(
            s,
            incident_id,
            at=self.clock.now(),
            event=f"complaint_{route}",
            actor_id=None,
            text=mask_identifiers(complaint.summary),
            data={"complaint": complaint.id, "category": complaint.category, "channel": complaint.contact_channel},
        )

    def _join(self, s: Session, complaint: Complaint, incident_id: int, count: int) -> bool:
        """Join the cluster's incident. Its timeline and channel hear of each of its first JOIN_LINES complaints
        (a short masked line, through the incident's lane), then of the count every JOIN_EVERY, so a surge of
        complaints does not flood either; True if a line was queued."""
        first = count <= JOIN_LINES
        self._link(s, complaint, incident_id, ComplaintRoute.JOINED, recorded=first)
        if not first and count % JOIN_EVERY:
            return False
        with in_channel_language(self.playbook):
            if first:
                text = _(
                    ":inbox_tray: Complaint #{number} ({channel}, {category}) joined this incident: {summary}",
                    number=complaint.id,
                    channel=_(CHANNEL_NAMES.get(complaint.contact_channel, complaint.contact_channel)),
                    category=safe_text(complaint.category),
                    summary=safe_text(truncate(complaint.summary, 200)),
                )
            else:
                text = _(
                    ":inbox_tray: {count} complaints are with this incident now; "
                    "`/incident complaints` lists the newest.",
                    count=count,
                )
        self.incidents.updates.queue(s, incident_id, "post", text=text)
        return True

    # ---- after the commit, off the request's path --------------------------------------------------------

    def after_commit(self, routed: Routed) -> None:
        """Set up a new incident's channel (or post a join) in the background; the API answer does not wait."""
        if routed.incident is None or routed.route == RECORDED:
            return
        if routed.created:
            self._submit(self._set_up, routed.incident, routed.rule)
        elif routed.posts:
            self._submit(self.incidents.flush, routed.incident)

    def _submit(self, work: Callable[..., object], *args: object) -> None:
        """Background work whose failure is logged (the outbox keeps what it did not finish for the sweep)."""

        def done(future: Future[object]) -> None:
            if future.exception() is not None:
                log.error("intake: background work for incident %s failed", args[0], exc_info=future.exception())

        self.background.submit(work, *args).add_done_callback(done)

    def _set_up(self, incident_id: int, rule: str | None) -> None:
        self.schedule_changed()  # the timer plans for its deadlines (a query: kept out of the request)
        outcome = self.incidents.setup_channel(incident_id)
        self.tell_intake_channel(outcome.incident, rule)

    def tell_intake_channel(self, incident: Incident, rule: str | None, *, by: str | None = None) -> None:
        """Someone must SEE that a complaint opened an incident: a line in `intake.channel`, with its link."""
        channel = self.intake_channel()
        if channel is None:
            return
        with self.db() as s:
            incident = load_incident(s, incident.id)
            lead = self.incidents.lead_of(incident)
        where = f"<#{incident.channel_id}>" if incident.channel_id else f"#{incident.channel_name}"
        with in_channel_language(self.playbook):
            if by is not None:
                opened = _(
                    ":rotating_light: <@{user}> escalated a complaint: incident #{number} {where} — {title}",
                    user=by,
                    number=incident.id,
                    where=where,
                    title=safe_text(incident.title),
                )
            else:
                opened = _(
                    ":rotating_light: The complaint intake opened incident #{number} {where} (rule {rule}) — {title}",
                    number=incident.id,
                    where=where,
                    rule=rule or "-",
                    title=safe_text(incident.title),
                )
            who = (
                _("Lead: <@{user}>.", user=lead)
                if lead
                else _("Nobody leads it yet: join the channel and type `/incident assign lead me`.")
            )
        self.incidents.try_post(channel, f"{opened}\n{who}")

    def intake_channel(self) -> str | None:
        """`intake.channel`'s id: found by name, else created (with the intake leads invited); None if Slack
        refuses both (logged: the incidents themselves are not held up)."""
        with self._intake_channel_lock:
            if self._intake_channel is not None:
                return self._intake_channel
            name = self.playbook.intake.channel
            try:
                found = self.slack.find_channel(name)
                if found is None:
                    found = self.slack.create_channel(name)
                    if self.playbook.intake.leads:
                        self.slack.invite(str(found["id"]), list(self.playbook.intake.leads))
            except SlackCallError as exc:  # another replica may have created it a moment ago: found next time
                log.warning("could not find or create the intake channel #%s: %s", name, exc.error)
                return None
            self._intake_channel = str(found["id"])
            return self._intake_channel

    # ---- escalation by a person ---------------------------------------------------------------------------

    def escalate(self, number: int, *, actor: str, severity: str | None = None) -> Incident:
        """Open an incident for a recorded complaint, with `actor` as its reporter (so its lead when the lead
        role has no default owner). Idempotent: the complaint is claimed by one conditional update, so twenty
        clicks open one incident; the others are told which one it is."""
        with self.db.begin() as s:
            claimed = store.claim_complaint_for_incident(s, number, route=ComplaintRoute.ESCALATED)
            complaint = queries.get_complaint(s, number)
            if complaint is None:
                raise NotFoundError(
                    _("There is no complaint #{number}. `/incident complaints` lists them.", number=number)
                )
            if not claimed:
                self._already(s, complaint)
            kind = self.playbook.kinds.get("complaint")
            if kind is None:
                raise UserInputError(
                    _("This playbook has no `{kind}` kind; use `/incident open <kind> <title>`.", kind="complaint")
                )
            category = self.category_of(complaint.category)
            with in_channel_language(self.playbook):
                description = _(
                    "Escalated from complaint #{number} by <@{user}>: {summary}",
                    number=complaint.id,
                    user=actor,
                    summary=mask_identifiers(complaint.summary),
                )
            incident = self.incidents.lifecycle.open_in(
                s,
                IncidentCreate(
                    kind="complaint",
                    title=truncate(mask_identifiers(complaint.summary), TITLE_MAX),
                    severity=severity
                    or (complaint.severity if complaint.severity in self.playbook.severities else None),
                    category=category if category in kind.categories else None,
                    description=description,
                    customer_ref=complaint.customer_ref,
                ),
                reporter=actor,
            )
            self._link(s, complaint, incident.id, ComplaintRoute.ESCALATED)
        self.schedule_changed()
        return incident

    def escalate_and_set_up(
        self, number: int, *, actor: str, severity: str | None = None, tell: Callable[[str], object] | None = None
    ) -> str | None:
        """`escalate`, then the channel's set-up as for `/incident open` (the escalating person is told as soon as
        the channel is ready, through `tell`), and a line in the intake channel; without `tell`, the answer."""
        incident = self.escalate(number, actor=actor, severity=severity)
        if tell is None:
            answer = self.incidents.opened_message(self.incidents.setup_channel(incident.id))
            self.tell_intake_channel(incident, None, by=actor)
            return answer
        self.incidents.setup_channel(incident.id, tell=tell)
        self.tell_intake_channel(incident, None, by=actor)
        return None

    def _already(self, s: Session, complaint: Complaint) -> None:
        if complaint.incident_id is None:  # claimed by a click whose incident is being opened right now
            raise ConflictError(_("Complaint #{number} is being escalated right now.", number=complaint.id))
        incident = queries.get_incident(s, complaint.incident_id)
        where = f" <#{incident.channel_id}>" if incident is not None and incident.channel_id else ""
        raise ConflictError(
            _(
                "Complaint #{number} is already with incident #{incident}{where}.",
                number=complaint.id,
                incident=complaint.incident_id,
                where=where,
            )
        )


def parse_complaint_number(word: str) -> int:
    """`12` or `#12`: a complaint number, or a clear refusal."""
    text = word.strip().lstrip("#")
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise UserInputError(
            _("Give a complaint number, e.g. `/incident escalate 12` (`/incident complaints` lists them).")
        )
    return int(text)
