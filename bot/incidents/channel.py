"""The incident's Slack channel: set-up (create, topic, invites, card, plan), repair, and keeping it in step.

Every Slack call here is a side effect the outbox runs (bot/notices/outbox.py), written in the transaction of
the change that causes it, so a crash or a Slack refusal never loses it and `repair` can finish it. Each is
safe to run again: posts carry their key and look for it first, topic, invites and archive just run again.

Set-up is three steps of the incident's lane: create the channel; then the topic, the invites and the card
together (concurrently: none needs another); then the plan and, after a restart, the reporter's DM. So open →
ready is about three Slack round trips, and the card is still the channel's first message.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.i18n import N_, _, current_locale, in_channel_language, in_recipients_language
from bot.core.render import Renderer
from bot.core.text import build_channel_name, truncate
from bot.incidents.budget import ChannelBudget
from bot.incidents.card import card
from bot.incidents.records import load_incident
from bot.incidents.volume import queued_message, ready_after_queue
from bot.notices.outbox import Deferred, LaneResult, Outbox, Recorder, Step
from bot.slack.blocks import drill_labelled
from bot.slack.gateway import PER_USER_INVITE_ERRORS, SlackCallError, SlackGateway
from store import queries
from store.models import Incident
from store.volume import has_timeline_event, queue_effect

log = logging.getLogger(__name__)

TOPIC_MAX = 250
DRILL_CHANNEL_PREFIX = "drill-"  # a drill's channel is told from a real one by its name
NAME_ATTEMPTS = 10
# The channel set-up, one outbox row each, in this order (rows of one batch run concurrently), with what the
# reporter is told when one fails.
SETUP_STEPS: dict[str, tuple[str, str | None]] = {
    "channel.create": (N_("creating the channel"), None),
    "channel.topic": (N_("setting the channel topic"), "ready"),
    "channel.invite": (N_("inviting people"), "ready"),
    "card.post": (N_("posting the incident card"), "ready"),
    "plan.post": (N_("posting the plan"), "after"),
    "setup.done": (N_("telling the reporter"), "after"),
}


@dataclass(frozen=True)
class SetupOutcome:
    incident: Incident
    failed_step: str | None = None
    error: str | None = None
    queued_ahead: int | None = None  # the channel waits behind Slack's creation budget, with this many before it

    @property
    def ok(self) -> bool:
        return self.error is None


def failed_step_name(effect: str) -> str:
    """What the reporter is told Slack failed while doing, in the reader's language."""
    step = SETUP_STEPS.get(effect)
    return _(step[0]) if step else _("updating the channel")


class ChannelUpdates:
    """What follows a committed change in the channel: announcements, card and topic refreshes, run at once."""

    def __init__(
        self, *, playbook: Playbook, db: sessionmaker[Session], slack: SlackGateway, renderer: Renderer, outbox: Outbox
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.renderer = renderer
        self.outbox = outbox

    def queue(self, s: Session, incident_id: int, effect: str, *, key: str | None = None, **payload: Any) -> None:
        """Write a side effect in the transaction of the change that causes it (they commit together); `key`
        names one that must happen once whatever runs it (the final summary), else each call is its own."""
        key = key or f"{effect}:{incident_id}:{uuid.uuid4().hex}"
        self.outbox.add(s, incident_id, key, effect, **payload)

    def announce(self, s: Session, incident_id: int, **context: Any) -> None:
        """Tell the channel what changed (slack/announce.j2), in the playbook's language, once `s` commits."""
        with in_channel_language(self.playbook):
            text = self.renderer.render("slack/announce.j2", **context)
        self.queue(s, incident_id, "post", text=text)

    def refresh(self, s: Session, incident_id: int, *, topic: bool = False) -> None:
        """Bring the card (and the topic) up to the incident as it is once `s` commits."""
        self.queue(s, incident_id, "refresh", topic=topic)

    def flush(self, incident_id: int) -> str | None:
        """Run the incident's pending side effects now, on the thread that committed them; a refusal is
        reported (the outbox retries it, and `repair` resumes it), never undoes the record."""
        result = self.outbox.run(incident_id)
        if result.error is None and not result.waiting:
            return None
        with self.db() as s:
            incident = load_incident(s, incident_id)
        if incident.channel_id is None:
            return no_channel_yet(incident.id)
        if result.error is None:
            return None  # another worker is running this incident's steps, or a retry is due soon
        log.warning("incident %s: Slack step %s failed: %s", incident_id, result.failed_effect, result.error)
        return slack_refused(incident.id, result.error)

    def post_or_log(self, channel_id: str, text: str) -> None:
        """Post outside the outbox (a message nobody waits on); a Slack failure is logged, never undoes what was
        already recorded."""
        with self.db() as s:
            incident = queries.get_incident_by_channel(s, channel_id)
            if incident is not None and incident.is_drill:  # every message of a drill says so
                with in_channel_language(self.playbook):
                    text = drill_labelled(text, None)[0]
        try:
            self.slack.post(channel_id, text)
        except SlackCallError as exc:
            log.warning("could not post to %s: %s", channel_id, exc.error)


def no_channel_yet(number: int) -> str:
    return _("Saved. #{number} has no channel yet; `/incident repair {number}` will create it.", number=number)


def slack_refused(number: int, error: str) -> str:
    return _(
        "Saved, but Slack refused to update the channel (`{error}`). `/incident repair {number}` retries.",
        error=error,
        number=number,
    )


class ChannelSetup:
    """Creates and fills the incident's channel, repairs it, and runs the channel's side effects."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        renderer: Renderer,
        outbox: Outbox,
        budget: ChannelBudget | None = None,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.renderer = renderer
        self.outbox = outbox
        self.budget = budget or ChannelBudget(db, clock)  # Slack's ~20 channel creations a minute
        for effect, handler in {
            "channel.create": self._create,
            "channel.topic": self._topic,
            "channel.invite": self._invite,
            "card.post": self._card,
            "plan.post": self._plan,
            "setup.done": self._setup_done,
            "post": self._post,
            "dm": self._dm,
            "refresh": self._refresh,
            "archive": self._archive,
        }.items():
            outbox.register(effect, self._in_channel_language(handler))

    def _in_channel_language(self, handler: Any) -> Any:
        """Channel messages speak the playbook's language, whoever's request runs the lane."""

        def run(step: Step) -> Recorder | None:
            with in_channel_language(self.playbook):
                result: Recorder | None = handler(step)
                return result

        return run

    # ---- set-up -----------------------------------------------------------------------------------------

    def queue_setup(self, s: Session, incident: Incident, *, reporter: str) -> None:
        """The channel's set-up commits with the incident: a crash cannot lose it."""
        incident.channel_name = self.channel_name(incident)
        for effect, (_step, together) in SETUP_STEPS.items():
            self.outbox.add(
                s, incident.id, f"setup:{incident.id}:{effect}", effect, together=together, reporter=reporter
            )
        self._book_channel(s, incident)

    def _book_channel(self, s: Session, incident: Incident) -> None:
        """Book the channel's creation within Slack's budget, in the opening transaction (first opened, first
        created); beyond the budget it waits in the store for its moment and the timeline says so."""
        key = f"setup:{incident.id}:channel.create"
        booking = self.budget.book(s, key)
        if not booking.queued:
            return
        queue_effect(s, key, at=booking.at, payload={"booked": booking.at.isoformat(), "ahead": booking.ahead})
        queries.add_timeline_event(
            s,
            incident.id,
            at=self.clock.now(),
            event="channel_queued",
            actor_id=None,
            data={"ahead": booking.ahead, "until": booking.at.isoformat()},
        )

    def channel_name(self, incident: Incident, suffix: str = "") -> str:
        date = incident.created_at.astimezone(self.playbook.tz).strftime("%Y%m%d")
        pattern = self.playbook.channel.name_pattern
        return build_channel_name(
            DRILL_CHANNEL_PREFIX + pattern if incident.is_drill else pattern,
            date=date,
            number=incident.id,
            title=incident.title,
            kind=incident.kind,
            severity=incident.severity,
            suffix=suffix,
        )

    def set_up(
        self, incident_id: int, *, result: LaneResult | None = None, tell: Callable[[str], object] | None = None
    ) -> SetupOutcome:
        """Run the incident's set-up from the outbox (each step once) and record how it ended.

        With `tell` (how to reach the reporter), the reporter is told as soon as the channel is ready (created,
        topic, invites, card) while the plan goes out, so they wait about three Slack round trips, not four;
        a step failing after that is told in a second message."""
        if result is not None or tell is None:
            return self._outcome(incident_id, result or self.outbox.run(incident_id))
        ready = self._outcome(incident_id, self.outbox.run(incident_id, until="ready"))
        if not ready.ok or ready.queued_ahead is not None:  # refused, or queued: told so, and told again when ready
            tell(self.opened_message(ready))
            return ready
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tell") as pool:
            told = pool.submit(tell, self.opened_message(ready))
            rest = self.outbox.run(incident_id)
            told.result()
        if rest.error is None or rest.failed_effect is None:
            return ready
        outcome = self._outcome(incident_id, rest)
        tell(self.opened_message(outcome))
        return outcome

    def _outcome(self, incident_id: int, result: LaneResult) -> SetupOutcome:
        """Record how the set-up went, in one transaction: the failed step, or nothing (clearing an old one)."""
        failed = result.error is not None and result.failed_effect is not None
        if result.queued_until is not None:
            with self.db() as s:
                return SetupOutcome(load_incident(s, incident_id), queued_ahead=result.ahead)
        with self.db.begin() as s:
            incident = load_incident(s, incident_id)
            if not failed:
                if incident.setup_error is not None:
                    incident.setup_error = None
                return SetupOutcome(incident)
            step = failed_step_name(str(result.failed_effect))
            incident.setup_error = f"{step}: {result.error}"
            queries.add_timeline_event(
                s,
                incident_id,
                at=self.clock.now(),
                event="setup_failed",
                actor_id=None,
                text=_("Slack failed while {step}", step=step),
                data={"error": result.error, "effect": str(result.failed_effect)},
            )
        log.warning("incident %s set-up failed while %s: %s", incident_id, step, result.error)
        return SetupOutcome(incident, failed_step=step, error=result.error)

    def opened_message(self, outcome: SetupOutcome) -> str:
        """What the reporter is told once the channel is (or is not) ready, or that it is queued."""
        if outcome.queued_ahead is not None:
            return queued_message(outcome.incident.id, outcome.queued_ahead)
        return self.renderer.render(
            "slack/opened.j2",
            number=outcome.incident.id,
            channel_id=outcome.incident.channel_id,
            setup_error=outcome.error,
            failed_step=outcome.failed_step,
            resumed=False,
        )

    def repair(self, incident: Incident) -> str:
        """Resume the incident's outbox, in any state: every unfinished or failed step runs again (posts look
        for their key first, so nothing is duplicated); a fully set-up open incident also gets its invites,
        card and topic refreshed."""
        self.outbox.reopen(incident.id)
        pending = self.outbox.pending(incident.id)
        setup = [effect for effect in pending if effect in SETUP_STEPS]
        if incident.status != "closed" and not pending:
            with self.db.begin() as s:
                self._queue_repair(s, load_incident(s, incident.id))
        result = self.outbox.run(incident.id)
        if setup:
            outcome = self.set_up(incident.id, result=result)
            if outcome.ok:
                with self.db.begin() as s:
                    queries.add_timeline_event(s, incident.id, at=self.clock.now(), event="repaired", actor_id=None)
            return self.opened_message(outcome)
        if result.error:
            return _(
                "Slack refused a step for #{number} (`{error}`); it is retried on its own, "
                "or run `/incident repair {number}` again.",
                number=incident.id,
                error=result.error,
            )
        with self.db() as s:
            incident = load_incident(s, incident.id)
        if incident.status == "closed":
            if result.ran:
                return _("#{number} is closed; unfinished steps done: {n}.", number=incident.id, n=result.ran)
            return _("#{number} is closed; nothing was left to do.", number=incident.id)
        return _(
            "#{number} is fully set up in <#{channel}>; card and topic refreshed.",
            number=incident.id,
            channel=incident.channel_id,
        )

    def _queue_repair(self, s: Session, incident: Incident) -> None:
        """What `repair` queues for an open incident with nothing left in its outbox: any set-up step an older
        version never finished, then the idempotent ones (invites, card and topic) once more."""
        done = {
            "channel.create": incident.channel_id is not None,
            "channel.topic": incident.topic_set,
            "channel.invite": False,
            "card.post": incident.card_ts is not None,
            "plan.post": incident.welcome_posted,
        }
        nonce = uuid.uuid4().hex[:12]
        for effect, finished in done.items():
            if not finished:
                self.outbox.add(s, incident.id, f"repair:{nonce}:{effect}", effect, reporter=incident.reporter_id)
        self.outbox.add(s, incident.id, f"repair:{nonce}:refresh", "refresh", topic=True)

    # ---- the side effects the outbox runs: each is safe to run again ----------------------------------------

    def _load(self, step: Step) -> Incident:
        with self.db() as s:
            return load_incident(s, step.incident_id)

    def _channel_of(self, step: Step) -> tuple[Incident, str]:
        incident = self._load(step)
        if incident.channel_id is None:  # its set-up has not created it yet (or failed): the lane waits
            raise SlackCallError(step.effect, "channel_not_created")
        return incident, incident.channel_id

    def _create(self, step: Step) -> Recorder | None:
        incident = self._load(step)
        if incident.channel_id is not None:
            return None
        booked = step.payload.get("booked")
        if booked is not None and datetime.fromisoformat(str(booked)) > self.clock.now():
            # run before its moment (a repair made it due): back to its place in the queue
            raise Deferred(datetime.fromisoformat(str(booked)), ahead=int(step.payload.get("ahead", 0)))
        channel = self._create_channel(incident)  # adopts our own channel if an earlier run created it and died

        def record(s: Session) -> None:
            row = load_incident(s, incident.id)
            row.channel_id = str(channel["id"])
            row.channel_name = str(channel["name"])
            queries.add_timeline_event(
                s,
                incident.id,
                at=self.clock.now(),
                event="channel_created",
                actor_id=None,
                text=str(channel["name"]),
                data={"channel_id": channel["id"]},
            )

        return record

    def _topic(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        self.slack.set_topic(channel, self.topic(incident))
        return self._flag(step.incident_id, "topic_set", "topic_set")

    def _invite(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        if step.key.startswith("setup:") and not step.retried:
            skipped = self._invite_into_new(channel, self._invitees(incident))
        else:
            skipped = self.slack.invite(channel, self._invitees(incident))
        flag = self._flag(step.incident_id, "members_invited", "members_invited")
        said = self._skipped_text(skipped) if skipped else None  # here, in the channel's language

        def record(s: Session) -> None:
            flag(s)
            if said is not None:  # said after the card and plan, as one more step of the lane
                self.outbox.add(s, step.incident_id, f"{step.key}:skipped", "post", text=said)

        return record

    def _card(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        if incident.card_ts is not None:
            return None
        ts = self.slack.post(
            channel,
            *card(incident, self.playbook, self.renderer),
            key=step.key,
            check_first=step.retried,  # a run killed after Slack took the card finds it instead of posting again
        )

        def record(s: Session) -> None:
            load_incident(s, step.incident_id).card_ts = ts
            queries.add_timeline_event(s, step.incident_id, at=self.clock.now(), event="card_posted", actor_id=None)

        return record

    def _plan(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        if incident.welcome_posted:
            return None
        kind = self.playbook.kinds[incident.kind]
        text = self.renderer.render(
            kind.welcome_template, playbook_version=incident.playbook_version, incident=incident
        )
        if incident.is_drill:
            text = drill_labelled(text, None)[0]
        self.slack.post(channel, text, key=step.key, check_first=step.retried)
        return self._flag(step.incident_id, "welcome_posted", "plan_posted")

    def _invite_into_new(self, channel: str, users: list[str]) -> dict[str, str]:
        """Invite everyone into the channel set-up just created, without first asking Slack who is in it (only
        the bot is); if Slack refuses one of them, the gateway invites them one by one and says who it skipped."""
        wanted = [u for u in dict.fromkeys(users) if u and u != self.slack.bot_user_id]
        if not wanted:
            return {}
        try:
            self.slack.call("conversations.invite", channel=channel, users=",".join(wanted))
        except SlackCallError as exc:
            if exc.error not in PER_USER_INVITE_ERRORS:
                raise
            return self.slack.invite(channel, wanted)
        return {}

    def _setup_done(self, step: Step) -> Recorder | None:
        """The reporter's own request tells them; set-up finished later (after a restart, by the sweep) is
        told by DM, since they are still waiting for their channel."""
        if not step.resumed:
            return None
        incident, channel = self._channel_of(step)
        reporter = str(step.payload.get("reporter") or incident.reporter_id)
        if reporter == self.slack.bot_user_id:  # reported by a system: nobody is waiting for a DM
            return None
        with self.db() as s:
            was_queued = has_timeline_event(s, incident.id, "channel_queued")
        with in_recipients_language(self.slack.user_locale(reporter), self.playbook):  # theirs, not the channel's
            text = (
                ready_after_queue(incident.id, channel)
                if was_queued
                else self.renderer.render(
                    "slack/opened.j2",
                    number=incident.id,
                    channel_id=channel,
                    resumed=True,
                    setup_error=None,
                    failed_step=None,
                )
            )
        self.slack.dm(reporter, text, key=step.key, check_first=True)
        return lambda s: queries.add_timeline_event(
            s, step.incident_id, at=self.clock.now(), event="setup_resumed", actor_id=None
        )

    def _post(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        text, blocks = str(step.payload["text"]), step.payload.get("blocks")
        if incident.is_drill:  # every message of a drill says so
            text, blocks = drill_labelled(text, blocks)
        self.slack.post(channel, text, blocks, key=step.key, check_first=step.retried)
        return None

    def _dm(self, step: Step) -> Recorder | None:
        self.slack.dm(
            str(step.payload["user"]),
            str(step.payload["text"]),
            step.payload.get("blocks"),
            key=step.key,
            check_first=step.retried,
        )
        return None

    def _refresh(self, step: Step) -> Recorder | None:
        """Bring the card (and the topic) up to the incident as it is now: running it again is harmless."""
        incident, channel = self._channel_of(step)
        if incident.card_ts:
            self.slack.update(channel, incident.card_ts, *card(incident, self.playbook, self.renderer))
        if step.payload.get("topic") and incident.topic_set:
            self.slack.set_topic(channel, self.topic(incident))
        return None

    def _archive(self, step: Step) -> Recorder | None:
        _incident, channel = self._channel_of(step)
        self.slack.archive(channel)  # already_archived counts as done (the gateway's benign answers)
        return lambda s: queries.add_timeline_event(
            s, step.incident_id, at=self.clock.now(), event="archived", actor_id=None
        )

    def _flag(self, incident_id: int, flag: str, event: str) -> Recorder:
        def record(s: Session) -> None:
            row = load_incident(s, incident_id)
            if not getattr(row, flag):
                setattr(row, flag, True)
                queries.add_timeline_event(s, incident_id, at=self.clock.now(), event=event, actor_id=None)

        return record

    def _create_channel(self, incident: Incident) -> dict[str, Any]:
        """Create the channel under the claimed name; on name_taken, adopt our own half-made channel or rename."""
        name = incident.channel_name or self.channel_name(incident)
        for attempt in range(1, NAME_ATTEMPTS + 1):
            try:
                return self.slack.create_channel(name)
            except SlackCallError as exc:
                if exc.error != "name_taken":
                    raise
                existing = self.slack.find_channel(name)
                if existing and self._is_ours(existing, incident.id):
                    # an earlier attempt created it and died before recording it, or a sweep took this step over
                    # while our call was still with Slack and recorded it: either way it is this incident's channel
                    return existing
                name = self._claim_name(incident.id, self.channel_name(incident, suffix=f"-{attempt + 1}"))
        raise SlackCallError("conversations.create", "name_taken")

    def _is_ours(self, channel: dict[str, Any], incident_id: int) -> bool:
        if channel.get("creator") != self.slack.bot_user_id or channel.get("is_archived"):
            return False
        with self.db() as s:
            owner = queries.get_incident_by_channel(s, str(channel["id"]))
        return owner is None or owner.id == incident_id

    def _claim_name(self, incident_id: int, name: str) -> str:
        try:
            with self.db.begin() as s:
                load_incident(s, incident_id).channel_name = name
        except IntegrityError:
            raise SlackCallError("conversations.create", "name_taken") from None
        return name

    def _invitees(self, incident: Incident) -> list[str]:
        users = [incident.reporter_id]
        if self.playbook.channel.invite_role_owners:
            users += [a.user_id for a in incident.roles if a.user_id]
        bot = self.slack.bot_user_id  # a system (the complaint system, monitoring) reports as the bot itself
        return [user for user in users if user != bot]

    def _skipped_text(self, skipped: dict[str, str]) -> str:
        people = ", ".join(f"<@{user}> (`{error}`)" for user, error in skipped.items())
        return _(
            ":warning: I could not invite {people}. Check the playbook's default owners, or invite them by hand.",
            people=people,
        )

    def topic(self, incident: Incident) -> str:
        text = self.renderer.render(
            "slack/topic.j2",
            severity=incident.severity,
            kind_name=self.playbook.kinds[incident.kind].name_in(current_locale()),
            title=incident.title,
            status=incident.status,
            is_drill=incident.is_drill,
        )
        return truncate(text, TOPIC_MAX)
