"""After the incident: the customer's satisfaction and the team's own rating, action items, and the
post-incident review (scheduled, drafted from the record, exported as Markdown, completed by the lead)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import mean
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.durations import parse_duration
from bot.core.errors import ConflictError, UserInputError
from bot.core.events import IncidentResolved
from bot.core.i18n import _, current_locale, in_channel_language, in_recipients_language, ngettext
from bot.core.inputs import day_in_range
from bot.core.labels import (
    BOT_NAME,
    DEADLINE_EVENTS,
    ROLE_EVENTS,
    event_label,
    notice_channel_label,
    severity_label,
    stage_label,
    state_label,
)
from bot.core.render import Renderer, SlackMarkup
from bot.core.text import mask_identifiers, safe_snippet, safe_text, truncate
from bot.deadlines.service import ACTION_PREFIX, Deadlines, humanize, is_action_item, next_action, owner_for
from bot.incidents.permissions import Action, Permissions
from bot.notices.outbox import Outbox
from bot.slack.blocks import document_blocks, rating_blocks
from bot.slack.commands import UserRef
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.ids import ActionId
from store import queries
from store.models import Deadline, Incident, TimelineEvent
from store.states import DONE, DeadlineState, IncidentStatus

log = logging.getLogger(__name__)

CUSTOMER = "customer"  # the rater_id of the one customer rating per incident
INTERNAL = "internal"
SLACK_DRAFT_MAX = 11_000  # under the markdown block's 12,000 characters, with room for the footer
MAX_DUE = timedelta(weeks=9999)  # the longest the old grammar (four digits of weeks) allowed
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Due:
    """When an action item is due, as the user typed it: a duration from now, or a calendar date."""

    after: timedelta | None = None
    on: datetime | None = None  # a naive date at midnight, local to the playbook


def parse_due(word: str) -> Due:
    """`3d`, `12h`, `90m`, `2w`, `3天` (bot.core.durations' grammar), or `2026-12-01` (due at the end of that
    working day)."""
    with suppress(ValueError):
        after = parse_duration(word)
        if timedelta(0) <= after <= MAX_DUE:
            return Due(after=after)
    if m := DATE_RE.match(word):
        try:
            on = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            on = None
        if on is not None and day_in_range(on.date()):  # 0001-01-01 or 9999-12-31 is no due date
            return Due(on=on)
    raise UserInputError(
        _(
            "`{word}` is not a due time. Use a duration like `3d`, `12h` or `2w`, or a date like `2026-12-01`. "
            "Example: `/incident action Add an alert on clearing retries @zhang.tao 5d`.",
            word=safe_text(word),
        )
    )


def timeline_text(event: TimelineEvent, playbook: Playbook | None = None, kind: str = "") -> str:
    """What an event says, with severities as every message shows them (the record keeps `sev3 → sev2`), and a
    deadline or role by its playbook name in the current language (the record keeps the English one)."""
    data = event.data or {}
    if playbook is not None and event.event in DEADLINE_EVENTS and isinstance(data.get("key"), str):
        return playbook.deadline_name(kind, data["key"], event.text)
    if playbook is not None and event.event in ROLE_EVENTS and isinstance(data.get("role"), str):
        return playbook.role_name(data["role"])
    if event.event == "severity_changed" and data.get("old") and data.get("new"):
        return f"{severity_label(str(data['old']))} → {severity_label(str(data['new']))}"
    if event.event == "status_changed" and data.get("old") and data.get("new"):
        return f"{state_label(str(data['old']))} → {state_label(str(data['new']))}"
    if event.event.startswith("notice_"):
        return stage_label(event.text)  # a notice event's text is its stage
    return event.text


class IncidentLookup(Protocol):
    """What the review needs of the incidents: find the one a command names, load it in a unit of work,
    resolve a mentioned user, post to its channel, and run its queued side effects now."""

    def find(self, *, channel_id: str | None, number: int | None = None) -> Incident: ...

    def row(self, s: Session, incident_id: int) -> Incident: ...

    def resolve_user(self, ref: UserRef, actor: str) -> str: ...

    def try_post(self, channel_id: str, text: str) -> None: ...

    def flush(self, incident_id: int) -> str | None: ...


def review_footer() -> str:
    """What to do with the draft, in the current language (the channel's or the lead's)."""
    return _(
        "Add action items with `/incident action <text> @owner <due>`, get the whole draft as a file with "
        "`/incident review export`, and mark the review complete with `/incident review done`."
    )


class ReviewService:
    """After the incident: satisfaction, the team's rating, action items and the post-incident review."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        renderer: Renderer,
        outbox: Outbox,
        incidents: IncidentLookup,
        permissions: Permissions,
        deadlines: Deadlines,
        schedule_changed: Callable[[], None],
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.renderer = renderer
        self.outbox = outbox
        self.incidents = incidents
        self.permissions = permissions
        self.deadlines = deadlines
        self.schedule_changed = schedule_changed

    # ---- satisfaction -----------------------------------------------------------------------------------

    def on_resolved(self, event: IncidentResolved) -> None:
        """Ask for the customer's rating in the channel, and each participant for theirs of the response: queued
        in the resolving transaction, so a crash right after the resolve still asks (once)."""
        s, incident = event.session, event.incident
        incident_id = incident.id
        participants = sorted({a.user_id for a in incident.roles if a.user_id})
        box = self.outbox
        if incident.channel_id:
            with in_channel_language(self.playbook):
                prompt = _(
                    "When customer comms has called the customer back (满意度回访), record their rating for "
                    "#{number}: click below, or `/incident satisfaction <1-5> [comment]`.",
                    number=incident_id,
                )
                shown = rating_blocks(prompt, incident_id, ActionId.RATE_CUSTOMER)
            box.add(s, incident_id, f"rate:{incident_id}:customer", "post", text=prompt, blocks=shown)
        if not self.playbook.satisfaction.ask_participants:
            return
        for user in participants:
            with in_recipients_language(self.slack.user_locale(user), self.playbook):  # theirs, not the resolver's
                text = _(
                    "#{number} is resolved. How well did the response go, 1 (badly) to 5 (very well)?",
                    number=incident_id,
                )
                blocks = rating_blocks(text, incident_id, ActionId.RATE_RESPONSE)
            box.add(s, incident_id, f"rate:{incident_id}:{user}", "dm", user=user, text=text, blocks=blocks)

    def record_customer(
        self,
        *,
        actor: str,
        score: int,
        comment: str = "",
        channel_id: str | None = None,
        incident_id: int | None = None,
    ) -> str | None:
        """The customer's rating (one per incident; recording again replaces it). Meets the follow-up deadline."""
        number = incident_id if incident_id is not None else self.incidents.find(channel_id=channel_id).id
        now = self.clock.now()
        with self.db.begin() as s:
            incident = self.incidents.row(s, number)
            self.permissions.require(Action.SATISFACTION, incident, actor)
            if incident.status not in DONE:
                raise ConflictError(
                    _(
                        "#{number} is {status}; the satisfaction follow-up comes after it is resolved.",
                        number=incident.id,
                        status=state_label(incident.status),
                    )
                )
            if not self._upsert(s, incident.id, source=CUSTOMER, rater=CUSTOMER, score=score, comment=comment, now=now):
                recorded = queries.latest_event(s, incident.id, "satisfaction")
                by = _(" by <@{user}>", user=recorded.actor_id) if recorded is not None and recorded.actor_id else ""
                raise ConflictError(
                    _(
                        "The customer's satisfaction for #{number} is already recorded as {score}/5{by}.",
                        number=incident.id,
                        score=score,
                        by=by,
                    )
                )
            incident.satisfaction_score = score  # the KPI report's copy
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="satisfaction",
                actor_id=actor,
                text=f"{score}/5 {comment}".strip(),
                data={"score": score, "source": CUSTOMER},
            )
            self.deadlines.on_event(s, incident, "satisfaction", now=now, actor=actor)
            channel = incident.channel_id if incident.status != IncidentStatus.CLOSED else None
        self.schedule_changed()
        said = f" — {safe_snippet(comment, 500)}" if comment else ""
        if channel:
            with in_channel_language(self.playbook):
                said = (
                    _(":star: <@{user}> recorded the customer's satisfaction: *{score}/5*", user=actor, score=score)
                    + said
                )
            self.incidents.try_post(channel, said)
            return None
        return _("Recorded the customer's satisfaction for #{number}: {score}/5.", number=number, score=score)

    def rate_response(self, *, incident_id: int, score: int, actor: str) -> str:
        """A participant's own 1-5 rating of how the response went."""
        now = self.clock.now()
        with self.db.begin() as s:
            incident = self.incidents.row(s, incident_id)
            self.permissions.require(Action.RATE_RESPONSE, incident, actor)
            if not self._upsert(s, incident_id, source=INTERNAL, rater=actor, score=score, comment="", now=now):
                raise ConflictError(
                    _(
                        "You already rated the response to #{number} {score}/5; thank you.",
                        number=incident_id,
                        score=score,
                    )
                )
            queries.add_timeline_event(
                s,
                incident_id,
                at=now,
                event="response_rated",
                actor_id=actor,
                text=f"{score}/5",
                data={"score": score, "source": INTERNAL},
            )
        return _(
            ":white_check_mark: Thank you: you rated the response to #{number} {score}/5.",
            number=incident_id,
            score=score,
        )

    def _upsert(
        self, s: Session, incident_id: int, *, source: str, rater: str, score: int, comment: str, now: datetime
    ) -> bool:
        """Record or replace one rater's rating in one statement; False if the very same one was there already
        (a repeated or concurrent click), which is then not recorded or announced again."""
        if not 1 <= score <= 5:
            raise UserInputError(_("A rating is a whole number from 1 to 5, e.g. `/incident satisfaction 4`."))
        return queries.record_rating(s, incident_id, source=source, rater=rater, score=score, comment=comment, at=now)

    # ---- action items -----------------------------------------------------------------------------------

    def add_action(self, *, channel_id: str, text: str, owner: UserRef, due: Due, actor: str) -> str | None:
        """An action item is a deadline owned by one person: reminded, and escalated when missed."""
        incident = self.incidents.find(channel_id=channel_id)
        self.permissions.require(Action.ACTION_ITEM, incident, actor)
        user = self.incidents.resolve_user(owner, actor)
        now = self.clock.now()
        due_at = self._due_at(due, now)
        if due_at <= now:
            raise UserInputError(_("That due time has already passed; give a later one, e.g. `5d`."))
        with self.db.begin() as s:
            incident = self.incidents.row(s, incident.id)
            count = queries.count_deadlines(s, incident.id, key_prefix=ACTION_PREFIX)
            deadline = Deadline(
                incident_id=incident.id,
                key=f"{ACTION_PREFIX}{count + 1}",
                name=text,
                owner_role=self.playbook.lead_role,
                owner_user=user,
                start_at=now,
                due_at=due_at,
                state=DeadlineState.PENDING,
                clock="calendar",
                cadence=False,
                escalate=True,
                on_resolve="keep",
                reminders_done=0,
                snoozes=0,
                incident_created_at=incident.created_at,
                incident_is_drill=incident.is_drill,
            )
            deadline.next_action_at = next_action(deadline, self.playbook.reminders.offsets)
            queries.add_deadline(s, deadline)
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="action_added",
                actor_id=actor,
                text=text,
                data={"deadline_id": deadline.id, "key": deadline.key, "owner": user, "due_at": due_at.isoformat()},
            )
            key, channel = deadline.key, incident.channel_id
        self.schedule_changed()
        posted = bool(channel) and incident.status != IncidentStatus.CLOSED
        with in_channel_language(self.playbook) if posted else nullcontext():  # else the reader's reply
            message = _(
                ":pushpin: <@{actor}> added action item `{key}` for <@{owner}>, due {due}: {text}",
                actor=actor,
                key=key,
                owner=user,
                due=self.renderer.local_time(due_at),
                text=safe_text(text),
            )
        if posted and channel:
            self.incidents.try_post(channel, message)
            return None
        return message

    def _due_at(self, due: Due, now: datetime) -> datetime:
        if due.after is not None:
            return now + due.after
        assert due.on is not None
        end = self.playbook.working_hours.end
        return due.on.replace(hour=end.hour, minute=end.minute, tzinfo=self.renderer.tz).astimezone(now.tzinfo)

    # ---- the review -------------------------------------------------------------------------------------

    def post_due_reviews(self, now: datetime) -> int:
        """Post every review draft whose time has come; each is claimed first, so it posts once."""
        with self.db() as s:
            due = queries.list_due_review_ids(s, now, limit=100)
        posted = 0
        for incident_id in due:
            markdown = self.review_markdown(incident_id)
            with self.db.begin() as s:
                claimed = queries.claim_review_post(s, incident_id, at=now)
                if claimed:  # marked posted together with the posts it promises, which the outbox delivers
                    self._queue_review(s, incident_id, markdown)
            if claimed:
                self.incidents.flush(incident_id)
                posted += 1
        return posted

    def post_review_now(self, *, channel_id: str, actor: str) -> str | None:
        incident = self.incidents.find(channel_id=channel_id)
        self.permissions.require(Action.REVIEW_POST, incident, actor)
        if incident.status not in ("resolved", "closed"):
            raise ConflictError(
                _(
                    "#{number} is {status}; the review comes after it is resolved.",
                    number=incident.id,
                    status=state_label(incident.status),
                )
            )
        with in_channel_language(self.playbook), self.db.begin() as s:  # posted in the channel (bot.core.i18n)
            markdown = self.review_markdown(incident.id)
            queries.set_review_posted(s, incident.id, at=self.clock.now())
            self._queue_review(s, incident.id, markdown)
        self.incidents.flush(incident.id)
        return None

    def _queue_review(self, s: Session, incident_id: int, markdown: str) -> None:
        """The draft in the channel and a note to the lead, queued in the transaction that marks it posted."""
        incident = self.incidents.row(s, incident_id)
        channel, lead = incident.channel_id, self.permissions.lead(incident)
        queries.add_timeline_event(s, incident_id, at=self.clock.now(), event="review_posted", actor_id=None)
        shown = markdown if len(markdown) <= SLACK_DRAFT_MAX else markdown[:SLACK_DRAFT_MAX] + "\n\n…"
        nonce = uuid.uuid4().hex[:12]
        box = self.outbox
        if channel:
            with in_channel_language(self.playbook):
                title = _("Review draft for #{number}", number=incident_id)
                blocks = document_blocks(shown, review_footer())
            box.add(s, incident_id, f"review:{incident_id}:{nonce}", "post", text=title, blocks=blocks)
        if lead:
            with in_recipients_language(self.slack.user_locale(lead), self.playbook):
                where = _(" in <#{channel}>", channel=channel) if channel else ""
                text = _(
                    ":memo: The post-incident review draft for #{number} is ready{where}. {footer}",
                    number=incident_id,
                    where=where,
                    footer=review_footer(),
                )
            box.add(s, incident_id, f"review:{incident_id}:{nonce}:lead", "dm", user=lead, text=text)

    def export_review(self, *, channel_id: str, actor: str) -> str | None:
        incident = self.incidents.find(channel_id=channel_id)
        self.permissions.require(Action.REVIEW_EXPORT, incident, actor)
        with in_channel_language(self.playbook):  # a file for the channel (bot.core.i18n)
            markdown = self.review_markdown(incident.id)
            title = _("Review of #{number}", number=incident.id)
            comment = _("<@{user}> exported the review draft of #{number}.", user=actor, number=incident.id)
        filename = f"incident-{incident.id}-review.md"
        try:
            self.slack.upload(channel_id, filename, markdown.encode(), title=title, comment=comment)
        except SlackCallError as exc:
            raise ConflictError(
                _("Slack refused the file (`{error}`); try again in a moment.", error=exc.error)
            ) from None
        return None

    def complete_review(self, *, channel_id: str, actor: str) -> str | None:
        now = self.clock.now()
        with self.db.begin() as s:
            incident = self.incidents.row(s, self.incidents.find(channel_id=channel_id).id)
            self.permissions.require(Action.REVIEW_DONE, incident, actor)
            if incident.status not in ("resolved", "closed"):
                raise ConflictError(
                    _(
                        "#{number} is {status}; resolve it before completing its review.",
                        number=incident.id,
                        status=state_label(incident.status),
                    )
                )
            if incident.review_completed_at is not None:
                raise ConflictError(_("The review of #{number} is already complete.", number=incident.id))
            incident.review_completed_at, incident.review_completed_by = now, actor
            if incident.review_posted_at is None:
                incident.review_at = None  # completed before the draft was due: nothing left to post
            queries.add_timeline_event(s, incident.id, at=now, event="review_completed", actor_id=actor)
            channel, number, status = incident.channel_id, incident.id, incident.status
        if channel and status != IncidentStatus.CLOSED:
            with in_channel_language(self.playbook):
                said = _(
                    ":memo: <@{user}> marked the review of #{number} complete. `/incident close` may follow.",
                    user=actor,
                    number=number,
                )
            self.incidents.try_post(channel, said)
            return None
        return _("The review of #{number} is complete.", number=number)

    # ---- the review draft, from the record ----------------------------------------------------------------

    def review_markdown(self, incident_id: int) -> str:
        """The draft, in the playbook's language: it is posted in (or shared into) the channel."""
        with in_channel_language(self.playbook), self.db() as s:
            context = self._review_context(s, self.incidents.row(s, incident_id))
            return self.renderer.render_markdown(self.playbook.review.template, **context)

    def _review_context(self, s: Session, incident: Incident) -> dict[str, Any]:
        local = self.renderer.local_time
        playbook = self.playbook
        kind = playbook.kinds[incident.kind]
        timeline = queries.list_timeline(s, incident.id)
        deadlines = queries.list_deadlines(s, incident.id)
        chains = queries.list_escalations(s, incident.id)
        notices = queries.list_published_notices(s, incident.id)
        deliveries = {n.id: queries.list_notice_deliveries(s, n.id) for n in notices}
        ratings = queries.list_ratings(s, incident.id)
        customer = next((r for r in ratings if r.source == CUSTOMER), None)
        internal = [r.score for r in ratings if r.source == INTERNAL]

        def outcome(d: Deadline) -> str:
            if d.state == DeadlineState.MET and d.closed_at is not None:
                margin = utc(d.due_at) - utc(d.closed_at)
                if margin >= timedelta(0):
                    return _("met, {time} early", time=humanize(margin))
                return _("met, {time} late", time=humanize(-margin))
            return state_label(d.state)

        nobody = _("nobody")

        def duration(start: datetime | None, end: datetime | None) -> str:

            return humanize(utc(end) - utc(start)) if start and end else "—"

        return {
            "number": incident.id,
            "title": incident.title,
            "kind": kind.name_in(current_locale()),
            "severity": severity_label(incident.severity),
            "category": incident.category or "—",
            "opened": local(incident.created_at),
            "resolved": local(incident.resolved_at),
            "time_to_resolve": duration(incident.created_at, incident.resolved_at),
            "summary": incident.resolution_summary or "—",
            "description": incident.description or "",
            "playbook_version": incident.playbook_version,
            "roles": [
                {
                    "name": playbook.role_name(a.role),
                    "owner": SlackMarkup(f"<@{a.user_id}>") if a.user_id else nobody,
                }
                for a in incident.roles
            ],
            "timeline": [
                {
                    "at": local(e.at, "%m-%d %H:%M"),
                    "actor": SlackMarkup(f"<@{e.actor_id}>") if e.actor_id else BOT_NAME,
                    "event": event_label(e.event),
                    "text": truncate(
                        mask_identifiers(timeline_text(e, playbook, incident.kind).replace("\n", " ")), 200
                    ),
                }
                for e in timeline
            ],
            "deadlines": [
                {
                    "name": playbook.deadline_name(incident.kind, d.key, d.name),
                    "owner": SlackMarkup(f"<@{u}>")
                    if (u := owner_for(incident, d.owner_role, playbook.lead_role, d.owner_user))
                    else nobody,
                    "due": local(d.due_at),
                    "outcome": outcome(d),
                }
                for d in deadlines
                if not is_action_item(d)
            ],
            "escalations": [
                {
                    "reason": c.reason,
                    "started": local(c.started_at),
                    "state": state_label(c.state),
                    "levels_paged": c.level,
                    "time_to_ack": duration(c.started_at, c.acked_at) if c.acked_at else "—",
                    "acked_by": SlackMarkup(f"<@{c.acked_by}>") if c.acked_by else "—",
                }
                for c in chains
            ],
            "notices": [
                {
                    "stage": n.stage,
                    "published": local(n.published_at),
                    "delivered": ", ".join(
                        notice_channel_label(d.channel) for d in deliveries[n.id] if d.outcome == "delivered"
                    )
                    or _("none"),
                    "failed": ", ".join(
                        f"{notice_channel_label(d.channel)} ({d.detail})"
                        for d in deliveries[n.id]
                        if d.outcome != "delivered"
                    ),
                }
                for n in notices
            ],
            "customer_rating": f"{customer.score}/5" if customer else _("not recorded yet"),
            "customer_comment": customer.comment if customer else "",
            "internal_rating": ngettext(
                "{score}/5 from {n} participant",
                "{score}/5 from {n} participants",
                len(internal),
                score=f"{mean(internal):.1f}",
            )
            if internal
            else _("no ratings yet"),
            "actions": [
                {
                    "key": d.key,
                    "text": d.name,
                    "owner": SlackMarkup(f"<@{d.owner_user}>") if d.owner_user else nobody,
                    "due": local(d.due_at),
                    "state": d.state,
                }
                for d in deadlines
                if is_action_item(d)
            ],
            # SEV1/SEV2 (plan_changes.review_severities, at the incident's peak): what the plan should change
            "plan_changes": {"version": incident.playbook_version, "current": playbook.version}
            if (incident.peak_severity or incident.severity) in playbook.plan_changes.review_severities
            else None,
        }
