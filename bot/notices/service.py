"""Customer notices: drafted from templates per channel and locale, approved when the incident is severe,
published to every channel of the plan, each target's outcome shown in the incident channel."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import NOTICE_STAGES, Playbook
from bot.core.errors import ConflictError, NotFoundError, PermissionDeniedError, UserInputError
from bot.core.i18n import N_, _, in_channel_language, ngettext
from bot.core.labels import BOT_NAME, severity_label, stage_label
from bot.core.render import Renderer
from bot.core.text import mask_identifiers, safe_text
from bot.deadlines.service import Deadlines
from bot.incidents.permissions import Action, Permissions
from bot.notices.email import Mailer, SmtpSettings, build_message
from bot.notices.outbox import Outbox, Recorder, Step
from bot.notices.webhooks import Delivery, WebhookSender
from bot.slack.blocks import NOTICE_TEXT_MAX, drill_labelled, notice_edit_modal, notice_preview_blocks, text_blocks
from bot.slack.gateway import SlackCallError, SlackGateway
from store import queries
from store.models import Incident, Notice, NoticeDelivery
from store.states import NoticeState

log = logging.getLogger(__name__)

CHANNEL_NAMES = {  # translated where shown (channel_names())
    "status_page": N_("Status page"),
    "social": N_("Social media"),
    "hotline": N_("Hotline script"),
    "email": N_("E-mail"),
    "internal": N_("Internal broadcast"),
    "complaint_system": N_("Complaint system"),
}
NOT_SENT = N_("not sent")  # a delivery that drafting again cannot fix starts with these words


def channel_names() -> dict[str, str]:
    """The notice channels' names in the current language."""
    return {channel: _(name) for channel, name in CHANNEL_NAMES.items()}


def not_worth_retrying(detail: str) -> bool:
    """Whether a recorded delivery said "not sent" (recorded in English or in the language of the time)."""
    return detail.startswith((NOT_SENT, _(NOT_SENT)))


# The customer's address in a complaint's customer reference (stored as typed, masked wherever shown).
CUSTOMER_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# what check-config renders every notice template with (and `audience`: public or customer). No free text typed
# by staff (updates, the resolution summary) is here: customer text is the template's wording, edited in the modal.
NOTICE_SAMPLE: dict[str, Any] = {
    "number": 1,
    "title": "Card payments failing",
    "kind_name": "Customer complaint",
    "severity_label": "SEV2",
    "bank_name": "Example Bank",
    "opened_at": "2026-11-24 10:00",
    "updated_at": "2026-11-24 11:00",
    "resolved_at": "2026-11-24 12:00",
    "audience": "public",
}


def notice_stages() -> tuple[str, ...]:
    return NOTICE_STAGES


def digest(texts: Mapping[str, Mapping[str, str]], severity: str) -> str:
    """A fingerprint of exactly the text approved and the highest severity it was approved at: any edit, or
    the incident becoming more severe than it has ever been, asks for a new approval."""
    data = {"texts": texts, "severity": severity}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def peak(incident: Incident) -> str:
    """The highest severity the incident has had (sev1 sorts first)."""
    return min(incident.peak_severity or incident.severity, incident.severity)


class IncidentLookup(Protocol):
    """What notices need of the incidents: find the one a command names, load it in a unit of work, post to
    its channel, and run its queued side effects now."""

    def find(self, *, channel_id: str | None, number: int | None = None) -> Incident: ...

    def row(self, s: Session, incident_id: int) -> Incident: ...

    def try_post(self, channel_id: str, text: str) -> None: ...

    def flush(self, incident_id: int) -> str | None: ...


class NoticeService:
    """Draft, edit, approve and publish. Webhook URLs, the signing secret and SMTP settings are read from
    the environment when a notice is published, so they are never stored or shown."""

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
        webhooks: WebhookSender,
        mailer: Mailer,
        schedule_changed: Callable[[], None],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.playbook = playbook
        self.spec = playbook.notices
        self.db = db
        self.slack = slack
        self.clock = clock
        self.renderer = renderer
        self.outbox = outbox
        self.incidents = incidents
        self.permissions = permissions
        self.deadlines = deadlines
        self.webhooks = webhooks
        self.mailer = mailer
        self.schedule_changed = schedule_changed
        self.environ = os.environ if environ is None else environ
        self._slack_channels: dict[str, str] = {}
        outbox.register("notice.deliver", self._fx_deliver)
        outbox.register("notice.finish", self._fx_finish)

    # ---- drafting ---------------------------------------------------------------------------------------

    def context(self, s: Any, incident: Incident, locale: str) -> dict[str, Any]:
        """The fields a notice template may use, from the incident's own record. Internal updates and the
        resolution summary are written for staff, often in another language, so they are not offered: a
        notice says what the template says for customers, edited by the drafter before approval."""
        kind = self.playbook.kinds[incident.kind]
        updates = [e for e in queries.list_timeline(s, incident.id) if e.event == "update"]
        local = self.renderer.local_time
        return {
            "number": incident.id,
            "title": incident.title,
            "kind_name": kind.names.get(locale, kind.name),
            "severity_label": incident.severity.upper(),
            "bank_name": self.spec.bank_name.get(locale, next(iter(self.spec.bank_name.values()), "")),
            "opened_at": local(incident.created_at, "%Y-%m-%d %H:%M"),
            "updated_at": local(updates[-1].at, "%Y-%m-%d %H:%M") if updates else "",
            "resolved_at": local(incident.resolved_at, "%Y-%m-%d %H:%M") if incident.resolved_at else "",
            "audience": kind.notice_audience,
        }

    def channels_for(self, kind: str) -> tuple[str, ...]:
        return self.playbook.notice_channels_for(kind)

    def _refuse_channels(self, incident: Incident, asked: Sequence[str], stage: str) -> None:
        """A channel the incident's kind does not use (a complaint on the status page) is refused by name."""
        allowed = self.channels_for(incident.kind)
        wrong = [c for c in asked if c not in allowed]
        if not wrong:
            return
        kind = self.playbook.kinds[incident.kind]
        uses = ", ".join(f"`{c}`" for c in allowed) or _("none")
        why = (
            " " + _("A single customer's complaint is answered to that customer, never in public.")
            if kind.notice_audience == "customer"
            else ""
        )
        raise UserInputError(
            _(
                "{kind} notices do not go to {wrong}: this kind uses {uses} (`{setting}` in the playbook).{why} "
                "Type `/incident notice {stage}` for all of them, or name some of those.",
                kind=safe_text(kind.name),
                wrong=", ".join(f"`{c}`" for c in wrong),
                uses=uses,
                setting=f"kinds.{incident.kind}.notice_channels",
                why=why,
                stage=stage,
            )
        )

    def draft(
        self, *, channel_id: str, stage: str, actor: str, channels: Sequence[str] = (), locales: Sequence[str] = ()
    ) -> str | None:
        """Render the templates for the channels and locales named (all configured when none) and preview them."""
        if stage not in NOTICE_STAGES:
            raise UserInputError(
                _("Unknown stage `{stage}`. Stages: {stages}.", stage=safe_text(stage), stages=", ".join(NOTICE_STAGES))
            )
        locales = [loc for loc in locales if loc in self.spec.locales] or list(self.spec.locales)
        now = self.clock.now()
        with self.db.begin() as s:
            incident = self.incidents.row(s, self.incidents.find(channel_id=channel_id).id)
            self.permissions.require(Action.DRAFT_NOTICE, incident, actor)
            self._refuse_channels(incident, channels, stage)
            channels = list(channels) or list(self.channels_for(incident.kind))
            if not channels:
                raise ConflictError(
                    _(
                        "`{setting}` names no configured notice channel; "
                        "add one in the playbook to send notices for this kind.",
                        setting=f"kinds.{incident.kind}.notice_channels",
                    )
                )
            if stage == "update" and not any(e.event == "update" for e in queries.list_timeline(s, incident.id)):
                raise ConflictError(_("There is no progress to report yet: post one with `/incident update <text>`."))
            if stage == "resolved" and incident.status not in ("resolved", "closed"):
                raise ConflictError(
                    _("#{number} is not resolved yet; draft the `update` notice instead.", number=incident.id)
                )
            texts = {
                channel: {
                    locale: self.renderer.render_plain(
                        self.spec.template(locale, stage, channel), locale=locale, **self.context(s, incident, locale)
                    )[:NOTICE_TEXT_MAX]
                    for locale in locales
                }
                for channel in channels
            }
            notice = Notice(
                incident_id=incident.id,
                stage=stage,
                texts=texts,
                state=NoticeState.DRAFT,
                created_by=actor,
                created_at=now,
            )
            queries.add_notice(s, notice)
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="notice_drafted",
                actor_id=actor,
                text=stage,
                data={"notice_id": notice.id, "channels": channels, "locales": locales},
            )
            with in_channel_language(self.playbook):  # the preview is posted in the channel (bot.core.i18n)
                status = self._status_line(notice, incident)
            notice_id, number, incident_channel = notice.id, incident.id, incident.channel_id
            drill = incident.is_drill
        if not incident_channel:
            return _(
                "Drafted notice {notice}, but #{number} has no channel to preview it in; run `/incident repair`.",
                notice=notice_id,
                number=number,
            )
        try:
            with in_channel_language(self.playbook):  # the preview is posted in the channel (bot.core.i18n)
                title, blocks = self._labelled(drill, self._preview_title(number, stage), self._preview(notice, status))
                ts = self.slack.post(incident_channel, title, blocks)
        except SlackCallError as exc:
            raise ConflictError(
                _("Slack refused the notice preview (`{error}`); nothing was published.", error=exc.error)
            ) from None
        with self.db.begin() as s:
            row = queries.get_notice(s, notice_id)
            assert row is not None
            row.preview_ts = ts
        return None

    def needs_approval(self, incident: Incident) -> bool:
        """Bound to the highest severity the incident has had: lowering it does not skip the approval."""
        return peak(incident) in self.spec.approval.severities

    def _who_approves(self, incident: Incident) -> str:
        return self.permissions.approver_names(incident)

    @staticmethod
    def _preview_title(number: int, stage: str) -> str:
        return _("Customer notice for #{number} ({stage})", number=number, stage=stage_label(stage))

    def _status_line(self, notice: Notice, incident: Incident) -> str:
        local = self.renderer.local_time
        if notice.state == "published" and notice.published_at:
            return _(
                ":loudspeaker: Published by <@{user}> at {time}.",
                user=notice.published_by,
                time=local(notice.published_at),
            )
        if notice.state == "approved" and notice.approved_at:
            return _(
                ":white_check_mark: Approved by <@{user}> at {time}; ready.",
                user=notice.approved_by,
                time=local(notice.approved_at),
            )
        if self.needs_approval(incident):
            return _(
                ":hourglass: Draft. {severity} notices need an approval by {approvers} (not the drafter) before "
                "they are published.",
                severity=severity_label(peak(incident)),
                approvers=self._who_approves(incident),
            )
        return _("Draft; any responder may publish it.")

    def _preview(self, notice: Notice, status: str) -> list[dict[str, Any]]:
        """The preview's blocks, in the playbook's language (a channel message)."""
        with in_channel_language(self.playbook):
            return notice_preview_blocks(
                notice_id=notice.id,
                number=notice.incident_id,
                stage=stage_label(notice.stage),
                texts=notice.texts,
                published=notice.state == NoticeState.PUBLISHED,
                channel_names=channel_names(),
                status=status,
            )

    @staticmethod
    def _labelled(drill: bool, title: str, blocks: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """A drill's notice preview says it is one (its texts are shown here and sent to no one)."""
        if not drill:
            return title, blocks
        labelled, out = drill_labelled(title, blocks)
        return labelled, out or blocks

    def _refresh_preview(self, notice: Notice, incident: Incident) -> None:
        if not (notice.preview_ts and incident.channel_id):
            return
        with in_channel_language(self.playbook):  # the preview is in the channel (bot.core.i18n)
            title, blocks = self._labelled(
                incident.is_drill,
                self._preview_title(incident.id, notice.stage),
                self._preview(notice, self._status_line(notice, incident)),
            )
            with contextlib.suppress(SlackCallError):  # the preview is a convenience; the record is in the store
                self.slack.update(incident.channel_id, notice.preview_ts, title, blocks)

    # ---- editing and approving --------------------------------------------------------------------------

    def _load(self, s: Any, notice_id: int) -> tuple[Notice, Incident]:
        notice = queries.get_notice(s, notice_id)
        if notice is None:
            raise NotFoundError(_("That notice no longer exists; draft a new one with `/incident notice <stage>`."))
        return notice, self.incidents.row(s, notice.incident_id)

    def editor(self, *, notice_id: int, actor: str) -> dict[str, Any]:
        """The Edit modal, for a responder, while the notice is not yet published."""
        with self.db.begin() as s:
            notice, incident = self._load(s, notice_id)
            self.permissions.require(Action.EDIT_NOTICE, incident, actor)
            self._require_editable(notice)
            return notice_edit_modal(notice.id, incident.id, notice.stage, notice.texts, channel_names())

    def edit(self, *, notice_id: int, texts: Mapping[tuple[str, str], str], actor: str) -> None:
        """Save edited texts (masked); a change after approval needs a new approval."""
        now = self.clock.now()
        with self.db.begin() as s:
            notice, incident = self._load(s, notice_id)
            self.permissions.require(Action.EDIT_NOTICE, incident, actor)
            self._require_editable(notice)
            new = {channel: dict(localized) for channel, localized in notice.texts.items()}
            for (channel, locale), text in texts.items():
                if channel in new and locale in new[channel]:
                    if not text.strip():
                        raise UserInputError(_("A notice text cannot be empty."), field=f"notice:{channel}:{locale}")
                    new[channel][locale] = mask_identifiers(text.strip())[:NOTICE_TEXT_MAX]
            if new == notice.texts:
                return
            was_approved = notice.state == NoticeState.APPROVED
            if not queries.transition_notice(
                s,
                notice.id,
                expected=notice.state,
                state=NoticeState.DRAFT,
                approved_digest=notice.approved_digest,
                values={
                    "texts": new,
                    "approved_by": None,
                    "approved_at": None,
                    "approved_digest": None,
                },
            ):
                s.refresh(notice)  # published or approved by another request a moment ago
                self._require_editable(notice)
                raise ConflictError(_("This notice was approved while you edited it; open Edit again to change it."))
            notice.texts = new
            notice.state, notice.approved_by, notice.approved_at = NoticeState.DRAFT, None, None
            notice.approved_digest = None
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="notice_edited",
                actor_id=actor,
                text=notice.stage,
                data={"notice_id": notice.id, "cleared_approval": was_approved},
            )
            self._refresh_preview(notice, incident)
            channel_id = incident.channel_id
        if channel_id and was_approved:
            with in_channel_language(self.playbook):
                said = _(
                    ":pencil2: <@{user}> edited the approved {stage} notice; it needs a new approval.",
                    user=actor,
                    stage=stage_label(notice.stage),
                )
            self.incidents.try_post(channel_id, said)

    def _require_editable(self, notice: Notice) -> None:
        if notice.state == "publishing":
            raise ConflictError(_("This notice is being published; its text can no longer change. Draft a new one."))
        if notice.state == "published":
            raise ConflictError(_("This notice is already published; draft a new one to say more."))

    @staticmethod
    def _require_unpublished(notice: Notice) -> None:
        if notice.state == NoticeState.PUBLISHING:
            raise ConflictError(
                _(
                    "This notice is already published by <@{user}>; its targets are being sent now.",
                    user=notice.published_by,
                )
            )
        if notice.state == NoticeState.PUBLISHED:
            raise ConflictError(
                _(
                    "This notice is already published by <@{user}>; draft a new one to say more.",
                    user=notice.published_by,
                )
            )

    def _require_approvable(self, notice: Notice, incident: Incident) -> None:
        """Not once published; not again while its approval still holds (another click was first)."""
        self._require_unpublished(notice)
        if notice.state == "approved" and notice.approved_digest == digest(notice.texts, peak(incident)):
            raise ConflictError(
                _("This notice is already approved by <@{user}>; it is ready to publish.", user=notice.approved_by)
            )

    def approve(self, *, notice_id: int, actor: str) -> str:
        """Approve a draft; returns what the approver alone is told (in their language: the preview shows all)."""
        now = self.clock.now()
        with self.db.begin() as s:
            notice, incident = self._load(s, notice_id)
            self.permissions.require(Action.APPROVE_NOTICE, incident, actor)
            self._require_approvable(notice, incident)
            if actor in notice_editors(s, notice):
                raise PermissionDeniedError(
                    _(
                        "You wrote this notice, so someone else approves it: {approvers} or a playbook admin.",
                        approvers=self._who_approves(incident),
                    )
                )
            approved = digest(notice.texts, peak(incident))
            if not queries.transition_notice(
                s,
                notice.id,
                expected=notice.state,
                state=NoticeState.APPROVED,
                approved_digest=notice.approved_digest,
                values={"approved_by": actor, "approved_at": now, "approved_digest": approved},
            ):
                s.refresh(notice)  # approved, edited or published by another request a moment ago
                self._require_approvable(notice, incident)
                raise ConflictError(_("This notice changed while you approved it; read the preview again."))
            notice.state, notice.approved_by, notice.approved_at = "approved", actor, now
            notice.approved_digest = approved
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="notice_approved",
                actor_id=actor,
                text=notice.stage,
                data={"notice_id": notice.id, "digest": notice.approved_digest, "texts": notice.texts},
            )
            self._refresh_preview(notice, incident)
            stage, number = notice.stage, incident.id
        return _(
            ":white_check_mark: You approved the *{stage}* notice of #{number}; it can be published now.",
            stage=stage_label(stage),
            number=number,
        )

    # ---- publishing -------------------------------------------------------------------------------------

    def publish(self, *, notice_id: int, actor: str) -> None:
        now = self.clock.now()
        with self.db.begin() as s:
            notice, incident = self._load(s, notice_id)
            self.permissions.require(Action.PUBLISH_NOTICE, incident, actor)
            self._require_unpublished(notice)
            if self.needs_approval(incident) and notice.approved_digest != digest(notice.texts, peak(incident)):
                was = (
                    _(" (it has been {severity})", severity=severity_label(peak(incident)))
                    if peak(incident) != incident.severity
                    else ""
                )
                raise PermissionDeniedError(
                    _(
                        "#{number} is {severity}{was}: its notices need an approval by {approvers} or a playbook "
                        "admin before they are published.",
                        number=incident.id,
                        severity=severity_label(incident.severity),
                        was=was,
                        approvers=self._who_approves(incident),
                    )
                )
            # one conditional update claims the notice: of concurrent clicks exactly one publishes it, and an edit
            # or a new approval in between (state or digest changed) makes this click lose rather than send it
            if not queries.transition_notice(
                s,
                notice.id,
                expected=notice.state,
                state=NoticeState.PUBLISHING,
                approved_digest=notice.approved_digest,
                values={"published_by": actor},
            ):
                s.refresh(notice)  # published, edited or approved again by another request a moment ago
                self._require_unpublished(notice)
                raise ConflictError(_("This notice changed while you published it; read the preview and try again."))
            s.refresh(notice)  # ours now: send the texts as stored (an edit a moment before included)
            # each target's delivery, then the record of the outcome, commit with the decision to publish: a
            # crash mid-publish is finished after the restart, and the notice never stays "publishing"
            box, number = self.outbox, incident.id
            for channel in notice.texts:
                box.add(
                    s,
                    number,
                    f"notice:{notice.id}:{channel}",
                    "notice.deliver",
                    notice_id=notice.id,
                    at=now.isoformat(),
                )
            box.add(s, number, f"notice:{notice.id}:published", "notice.finish", notice_id=notice.id, actor=actor)
        self.incidents.flush(number)
        self.schedule_changed()

    def _fx_deliver(self, step: Step) -> Recorder | None:
        """Send one channel's texts to its target, once: a delivery already recorded is not sent again. A
        webhook carries the step's key as its Idempotency-Key, so a re-send after a crash can be recognised."""
        notice_id, channel = int(step.payload["notice_id"]), step.key.rsplit(":", 1)[1]
        now = datetime.fromisoformat(str(step.payload["at"]))
        with self.db() as s:
            notice, incident = self._load(s, notice_id)
            if any(d.channel == channel for d in self._deliveries(s, notice_id)):
                return None
            texts, stage, number = notice.texts, notice.stage, incident.id
            context = {locale: self.context(s, incident, locale) for locale in self.spec.locales}
            allowed = self.channels_for(incident.kind)
            kind_name = self.playbook.kinds[incident.kind].name
            audience = self.playbook.kinds[incident.kind].notice_audience
            customer_ref = incident.customer_ref
            drill = incident.is_drill
        delivery = (
            Delivery(True, 0, _("drill: shown in this channel only, sent to no one"), worth_retrying=False)
            if drill  # nothing of a drill reaches a customer, the status page, e-mail, webhooks or the broadcast
            else self._deliver_safely(
                channel,
                number=number,
                stage=stage,
                texts=texts,
                context=context,
                now=now,
                audience=audience,
                customer_ref=customer_ref,
                key=step.key,
            )
            if channel in allowed
            else Delivery(
                False,
                0,
                _("not sent: {kind} notices do not go to this channel", kind=kind_name),
                worth_retrying=False,
            )
        )

        def record(s: Any) -> None:
            queries.add_notice_delivery(
                s,
                NoticeDelivery(
                    notice_id=notice_id,
                    channel=channel,
                    attempts=delivery.attempts,
                    outcome="delivered" if delivery.ok else "failed",
                    detail=delivery.detail,
                    at=now,
                ),
            )

        return record

    @staticmethod
    def _deliveries(s: Any, notice_id: int) -> list[NoticeDelivery]:
        return queries.list_notice_deliveries(s, notice_id)

    def _fx_finish(self, step: Step) -> Recorder | None:
        """Every target has been tried: the notice is published, its deadlines met, the channel told."""
        notice_id, actor = int(step.payload["notice_id"]), str(step.payload["actor"])

        def record(s: Any) -> None:
            notice, incident = self._load(s, notice_id)
            if notice.state == NoticeState.PUBLISHED:
                return
            rows = self._deliveries(s, notice_id)
            now = max((utc(d.at) for d in rows), default=self.clock.now())
            outcomes = {
                d.channel: Delivery(
                    d.outcome == "delivered", d.attempts, d.detail, worth_retrying=not not_worth_retrying(d.detail)
                )
                for d in rows
            }
            notice.state, notice.published_by, notice.published_at = NoticeState.PUBLISHED, actor, now
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="notice_published",
                actor_id=actor,
                text=notice.stage,
                data={
                    "notice_id": notice.id,
                    "outcomes": {c: d.detail for c, d in outcomes.items()},
                    "delivered": [c for c, d in outcomes.items() if d.ok],
                },
            )
            if any(d.ok for c, d in outcomes.items() if c != "internal"):
                for event in ("notice", f"notice_{notice.stage}"):  # any notice; the resolved one tells the solution
                    self.deadlines.on_event(s, incident, event, now=now, actor=actor)
            self._refresh_preview(notice, incident)
            if incident.channel_id:
                text = self._outcome_text(actor, notice.stage, outcomes)
                self.outbox.add(s, incident.id, f"notice:{notice.id}:told", "post", text=text)

        return record

    def _outcome_text(self, actor: str, stage: str, outcomes: dict[str, Delivery]) -> str:
        lines = []
        names = channel_names()
        for channel, delivery in outcomes.items():
            name = names.get(channel, channel)
            tries = (
                ngettext(" after {n} attempt", " after {n} attempts", delivery.attempts)
                if delivery.attempts > 1
                else ""
            )
            mark = ":white_check_mark:" if delivery.ok else ":x:"
            lines.append(
                _(
                    "{mark} {channel}: {detail}{tries}",
                    mark=mark,
                    channel=name,
                    detail=safe_text(delivery.detail),
                    tries=tries,
                )
            )
        failed = [c for c, d in outcomes.items() if not d.ok and d.worth_retrying]
        tail = (
            "\n"
            + _(
                "Fix the failed targets and draft the notice again for them, e.g. `{command}`.",
                command=f"/incident notice {stage} {' '.join(failed)}",
            )
            if failed
            else ""
        )
        head = _(":loudspeaker: <@{user}> published the *{stage}* notice:", user=actor, stage=stage_label(stage))
        return head + "\n" + "\n".join(lines) + tail

    def _deliver_safely(self, channel: str, **kwargs: Any) -> Delivery:
        try:
            return self._deliver(channel, **kwargs)
        except Exception as exc:  # one broken target must not stop the others or lose the record
            log.exception("notice delivery to %s failed", channel)
            return Delivery(False, 0, _("internal error ({error})", error=type(exc).__name__))

    def _deliver(
        self,
        channel: str,
        *,
        number: int,
        stage: str,
        texts: dict[str, dict[str, str]],
        context: dict[str, dict[str, Any]],
        now: Any,
        audience: str = "public",
        customer_ref: str | None = None,
        key: str = "",
    ) -> Delivery:
        """Send one channel's texts to its target. A failure here never stops the other channels."""
        spec = self.spec.channels.get(channel)  # type: ignore[call-overload]
        localized = {locale: mask_identifiers(text) for locale, text in texts[channel].items()}  # as they leave
        if channel == "status_page":
            return Delivery(True, 1, _("published at /status"))  # served from the store by /status
        if channel == "internal":
            return self._to_slack(spec.slack_channel if spec else None, localized)
        if channel == "email":
            return self._email(spec, localized, context, number=number, audience=audience, customer_ref=customer_ref)
        if spec is not None and spec.webhook_url_env:
            url = self.environ.get(spec.webhook_url_env)
            if not url:
                return Delivery(False, 0, _("{setting} is not set", setting=spec.webhook_url_env))
            secret = self.environ.get(self.spec.webhook_secret_env, "")
            if not secret:
                return Delivery(False, 0, _("{setting} is not set", setting=self.spec.webhook_secret_env))
            payload: dict[str, Any] = {
                "incident": number,
                "stage": stage,
                "channel": channel,
                "texts": localized,
                "published_at": utc(now).isoformat(),
            }
            if channel == "complaint_system" and customer_ref:
                payload["customer_ref"] = mask_identifiers(customer_ref)  # a hint to match the case, never the number
            return self.webhooks.send(url, payload, secret, key=key)
        return Delivery(False, 0, _("no target is configured for {channel}", channel=channel))

    def _email(
        self,
        spec: Any,
        localized: dict[str, str],
        context: dict[str, dict[str, Any]],
        *,
        number: int = 0,
        audience: str = "public",
        customer_ref: str | None = None,
    ) -> Delivery:
        """One bilingual message: the first line of each locale's text is its subject, the rest its body. A
        customer-audience notice goes to the customer's own address (from the customer reference) only."""
        if spec is None or not spec.sender:
            return Delivery(False, 0, _("{setting} needs a sender", setting="notices.channels.email"))
        recipients: tuple[str, ...] = tuple(spec.recipients)
        if audience == "customer":
            found = CUSTOMER_EMAIL.search(customer_ref or "")
            if found is None:
                return Delivery(
                    False,
                    0,
                    _(
                        "not sent: #{number} has no customer e-mail address (its customer reference holds none); "
                        "reach the customer by the hotline or the complaint system",
                        number=number,
                    ),
                    worth_retrying=False,
                )
            recipients = (found.group(0),)
        if not recipients:
            return Delivery(False, 0, _("{setting} needs recipients", setting="notices.channels.email"))
        settings = SmtpSettings.from_env(self.environ)
        if isinstance(settings, str):
            return Delivery(False, 0, settings)
        parts = {locale: split_subject(text) for locale, text in localized.items()}
        subject = " / ".join(subject for subject, _body in parts.values())
        text = "\n\n----------\n\n".join(body for _subject, body in parts.values())
        html = self.renderer.render_html(
            "html/email.html.j2",
            subject=subject,
            parts=[
                {"locale": locale, "subject": sub, "paragraphs": [p for p in body.split("\n\n") if p.strip()]}
                for locale, (sub, body) in parts.items()
            ],
            bank_name=next(iter(context.values()), {}).get("bank_name", ""),
        )
        message = build_message(sender=spec.sender, recipients=recipients, subject=subject, text=text, html=html)
        sent = self.mailer.send(settings, message)
        if audience == "customer" and sent.ok:
            return Delivery(
                True, sent.attempts, _("sent to the customer ({address})", address=mask_identifiers(recipients[0]))
            )
        return sent

    def _to_slack(self, name: str | None, localized: dict[str, str]) -> Delivery:
        if not name:
            return Delivery(False, 0, _("{setting} is not set", setting="notices.channels.internal.slack_channel"))
        try:
            channel_id = self._slack_channels.get(name)
            if channel_id is None:
                found = self.slack.find_channel(name.lstrip("#"))
                if found is None:
                    return Delivery(False, 1, _("no Slack channel #{name}", name=safe_text(name.lstrip("#"))))
                channel_id = self._slack_channels[name] = str(found["id"])
            text = "\n\n".join(safe_text(t) for t in localized.values())
            self.slack.post(channel_id, text[:3000], text_blocks(text[:3000]))
        except SlackCallError as exc:
            hint = (
                _(" (invite @{bot} to #{name})", bot=BOT_NAME, name=safe_text(name.lstrip("#")))
                if exc.error == "not_in_channel"
                else ""
            )
            return Delivery(False, 1, exc.error + hint)
        return Delivery(True, 1, _("posted in #{name}", name=safe_text(name.lstrip("#"))))

    # ---- what the status page shows -------------------------------------------------------------------------

    def published(self, s: Any) -> list[dict[str, Any]]:
        """Incidents with published status-page notices, newest first; drills never appear, nor any incident
        whose kind does not use the status page now (a complaint published there before kinds said so)."""
        public = [kind for kind in self.playbook.kinds if "status_page" in self.channels_for(kind)]
        rows = queries.list_public_notices(s, public, limit=200)
        by_incident: dict[int, dict[str, Any]] = {}
        for notice, incident in rows:
            if "status_page" not in notice.texts or incident.kind not in public or notice.published_at is None:
                continue
            entry = by_incident.setdefault(
                incident.id,
                {
                    "number": incident.id,
                    "status": incident.status,
                    "severity": incident.severity,
                    "kind": incident.kind,
                    "opened_at": utc(incident.created_at),
                    "resolved_at": utc(incident.resolved_at) if incident.resolved_at else None,
                    "notices": [],
                },
            )
            entry["notices"].append(
                {
                    "id": notice.id,
                    "stage": notice.stage,
                    "published_at": utc(notice.published_at),
                    "texts": {loc: mask_identifiers(t) for loc, t in notice.texts["status_page"].items()},
                }
            )
        return list(by_incident.values())


def split_subject(text: str) -> tuple[str, str]:
    """An e-mail template's first line is the subject; the rest, after blank lines, is the body."""
    first, _sep, rest = text.strip().partition("\n")
    return first.strip()[:200], rest.strip()


def notice_editors(s: Any, notice: Notice) -> set[str]:
    """Who wrote a notice's text: its drafter and everyone who edited it (none of them may approve it)."""
    edits = [
        e
        for e in queries.list_timeline(s, notice.incident_id)
        if e.event == "notice_edited" and (e.data or {}).get("notice_id") == notice.id
    ]
    return {notice.created_by, *(e.actor_id for e in edits if e.actor_id)}
