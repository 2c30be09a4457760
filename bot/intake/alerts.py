"""Alertmanager's webhook (POST /api/v1/alerts/alertmanager, payload version 4): monitoring opens outages.

A firing group opens an incident of the playbook's `alerts.kind` as the system (the bot reports it, leads
nothing, invites nobody), or joins the incident its group key opened while that one is being worked on.
Alertmanager sends the group again every repeat_interval, and again when an alert joins or leaves it: an
identical repeat changes and posts nothing, a new alert posts one line (and raises the severity when it is more
severe), a resolved notification is posted and, with `alerts.resolve_on_resolved`, resolves the incident.

One unit of work per notification: the group's row (store/alert_groups.py) is claimed and locked first, so
concurrent deliveries of one group decide one after another and open one incident, on SQLite and PostgreSQL.
Nothing here calls Slack on the request's path but the bot's own user id (asked once): the channel set-up and
the lines are outbox rows written with the decision, run afterwards by `follow_up` (the HTTP front runs it
in the background).

A group that fires again after its incident was resolved (or closed) opens a NEW incident, and the resolved
one's channel is told which: a resolved incident is in its aftercare (satisfaction, review, close), and the
state machine has no way back from resolved; the new outage gets its own deadlines and pages.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.errors import ConflictError
from bot.core.i18n import _, in_channel_language
from bot.core.render import Renderer
from bot.core.text import mask_identifiers, truncate
from bot.incidents.channel import ChannelUpdates
from bot.incidents.lifecycle import IncidentCreate, Lifecycle, PreparedOpen
from bot.incidents.records import load_incident
from bot.intake.service import IntakeError
from bot.slack.gateway import SlackGateway
from store.alert_groups import find_alert_group, lock_alert_group
from store.models import AlertGroup, Incident
from store.states import ACTIVE, AlertGroupStatus, IncidentStatus

log = logging.getLogger(__name__)

SOURCE = "alertmanager"
VERSION = "4"
STATUSES = ("firing", "resolved")
GROUP_KEY_MAX = 1000
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
LINES_MAX = 5  # new alerts named in one line; the rest are counted
DETAIL_MAX = 120  # an alert's own labels, as shown after its name


class _NotPreparedError(Exception):
    """The group's incident was resolved (or never opened) since the look before the lock: prepare, try again."""


class Action:
    """What a notification did, as the answer says it."""

    OPENED = "opened"
    JOINED = "joined"
    REPEAT = "repeat"
    RESOLVED = "resolved"
    IGNORED = "ignored"  # a resolved notification of a group that never opened anything here


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or _("alert")


@dataclass(frozen=True)
class Notification:
    """One webhook delivery, checked field by field (Alertmanager's documented payload, version 4)."""

    group_key: str
    status: str
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    truncated: int
    alerts: tuple[Alert, ...]

    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "firing"]


@dataclass(frozen=True)
class AlertOutcome:
    """The answer (`action`, the incident's number and channel) and what runs after it: the channel set-up of
    an incident just opened, or the lane of each incident a line was queued for."""

    action: str
    number: int | None = None
    channel: str | None = None  # the channel's name (known before Slack has created it)
    channel_id: str | None = None
    set_up: int | None = None
    flush: tuple[int, ...] = ()

    def answer(self) -> dict[str, Any]:
        incident = None if self.number is None else {"number": self.number, "channel": self.channel}
        if incident is not None and self.channel_id:
            incident["channel_id"] = self.channel_id
        return {"incident": incident, "action": self.action}


# ---- the payload ------------------------------------------------------------------------------------------------


def _string(value: Any, field: str, *, required: bool = True, default: str = "") -> str:
    if value is None:
        if required:
            raise IntakeError(field, "missing")
        return default
    if not isinstance(value, str):
        raise IntakeError(field, "must be a string")
    return value


def _string_map(value: Any, field: str) -> dict[str, str]:
    """Labels and annotations: an object of strings (Alertmanager never sends another kind of value)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IntakeError(field, "must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise IntakeError(f"{field}.{key}", "must be a string")
    return dict(value)


def _status(value: Any, field: str) -> str:
    if value is None:
        raise IntakeError(field, "missing")
    if value not in STATUSES:
        raise IntakeError(field, "must be firing or resolved")
    return str(value)


def _alert(value: Any, field: str) -> Alert:
    if not isinstance(value, dict):
        raise IntakeError(field, "must be an object")
    status = _status(value.get("status"), f"{field}.status")
    if value.get("labels") is None:
        raise IntakeError(f"{field}.labels", "missing")
    labels = _string_map(value["labels"], f"{field}.labels")
    annotations = _string_map(value.get("annotations"), f"{field}.annotations")
    for key in ("startsAt", "endsAt", "generatorURL"):
        _string(value.get(key), f"{field}.{key}", required=False)
    fingerprint = _string(value.get("fingerprint"), f"{field}.fingerprint", required=False)
    if not fingerprint:  # Alertmanager before 0.19 sent none: the labels identify the alert
        fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    return Alert(status=status, labels=labels, annotations=annotations, fingerprint=fingerprint)


def parse_notification(body: Any) -> Notification:
    """The request body as a Notification, or IntakeError naming the first field that is wrong
    (`alerts.0.labels`)."""
    if not isinstance(body, dict):
        raise IntakeError("body", "must be a JSON object")
    version = body.get("version")
    if version is None:
        raise IntakeError("version", "missing")
    if version != VERSION:
        raise IntakeError("version", f'must be "{VERSION}" (Alertmanager\'s webhook payload version)')
    group_key = _string(body.get("groupKey"), "groupKey")
    if not group_key.strip():
        raise IntakeError("groupKey", "must be a non-empty string")
    if len(group_key) > GROUP_KEY_MAX:
        raise IntakeError("groupKey", f"longer than {GROUP_KEY_MAX} characters")
    status = _status(body.get("status"), "status")
    truncated = body.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise IntakeError("truncatedAlerts", "must be a non-negative integer")
    raw_alerts = body.get("alerts")
    if raw_alerts is None:
        raise IntakeError("alerts", "missing")
    if not isinstance(raw_alerts, list) or not raw_alerts:
        raise IntakeError("alerts", "must be a non-empty list")
    return Notification(
        group_key=group_key,
        status=status,
        receiver=_string(body.get("receiver"), "receiver", required=False),
        group_labels=_string_map(body.get("groupLabels"), "groupLabels"),
        common_labels=_string_map(body.get("commonLabels"), "commonLabels"),
        common_annotations=_string_map(body.get("commonAnnotations"), "commonAnnotations"),
        external_url=_string(body.get("externalURL"), "externalURL", required=False),
        truncated=truncated,
        alerts=tuple(_alert(alert, f"alerts.{i}") for i, alert in enumerate(raw_alerts)),
    )


def _names(alerts: list[Alert]) -> str:
    """The alerts' names, each once, in their order (masked when rendered, as every template value)."""
    return ", ".join(dict.fromkeys(a.name for a in alerts))


# ---- the service ------------------------------------------------------------------------------------------------


class AlertIntake:
    """Turns Alertmanager's notifications into incidents, joins, lines and resolves (see the module's doc)."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        clock: Clock,
        slack: SlackGateway,
        renderer: Renderer,
        lifecycle: Lifecycle,
        updates: ChannelUpdates,
        set_up: Callable[[int], object],
        schedule_changed: Callable[[], None],
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.clock = clock
        self.slack = slack
        self.renderer = renderer
        self.lifecycle = lifecycle
        self.updates = updates
        self.set_up = set_up  # the incident channel's set-up (IncidentService.setup_channel)
        self.schedule_changed = schedule_changed

    # -- reading the notification --

    def severity_of(self, alerts: list[Alert], common: Mapping[str, str]) -> str:
        """The most severe playbook severity the alerts' severity label maps to (the playbook lists sev1 first)."""
        spec = self.playbook.alerts
        fallback = spec.default_severity or self.playbook.kinds[spec.kind].default_severity
        order = list(self.playbook.severities)
        found = []
        for alert in alerts or [Alert("firing", dict(common), {}, "")]:
            value = (alert.labels.get(spec.severity_label) or common.get(spec.severity_label) or "").strip().lower()
            found.append(spec.severities.get(value, fallback))
        return min(found, key=lambda sev: order.index(sev) if sev in order else len(order))

    def _title(self, note: Notification) -> str:
        alertname = (
            note.common_labels.get("alertname")
            or note.group_labels.get("alertname")
            or (note.alerts[0].labels.get("alertname") if note.alerts else None)
            or _("alert")
        )
        shown = note.group_labels or {
            k: v for k, v in note.common_labels.items() if k != self.playbook.alerts.severity_label
        }
        labels = " ".join(f"{k}={v}" for k, v in sorted(shown.items()) if k != "alertname")
        firing = note.firing() or list(note.alerts)
        summary = note.common_annotations.get("summary") or (
            firing[0].annotations.get("summary") if len(firing) == 1 else None
        )
        summary = summary or f"{alertname} {labels}".strip()
        title = self.playbook.alerts.title.format(summary=summary, alertname=alertname, labels=labels)
        title = " ".join(mask_identifiers(title).split())  # stored masked: the raw labels are the monitoring's
        return truncate(title, TITLE_MAX) or alertname

    def _description(self, note: Notification) -> str | None:
        firing = note.firing() or list(note.alerts)
        text = note.common_annotations.get("description") or (
            firing[0].annotations.get("description") if len(firing) == 1 else None
        )
        return truncate(mask_identifiers(text), DESCRIPTION_MAX) if text else None

    def _category(self, note: Notification) -> str | None:
        label = self.playbook.alerts.category_label
        if not label:
            return None
        value = note.common_labels.get(label) or note.group_labels.get(label)
        kind = self.playbook.kinds[self.playbook.alerts.kind]
        return value if value in kind.categories else None

    # -- deciding --

    def receive(self, body: Any) -> AlertOutcome:
        """Decide and record what the notification does, in one unit of work; IntakeError for a bad payload."""
        note = parse_notification(body)
        bot = self.slack.bot_user_id  # asked once, then remembered: the system's actor
        if note.status == "firing":
            return self._firing(note, bot)
        return self._resolved(note, bot)

    def _firing(self, note: Notification, bot: str) -> AlertOutcome:
        # Opening is prepared outside the unit of work (role pools may ask Slack for a user group), and only when
        # the group has no incident being worked on: a repeat asks nothing of Slack. If that changed by the time
        # the group is locked, the unit of work is given up and tried once more, prepared.
        prepared = None if self._worked_on(note.group_key) else self._prepare(note)
        try:
            return self._decide_firing(note, bot, prepared)
        except _NotPreparedError:
            return self._decide_firing(note, bot, self._prepare(note))

    def _worked_on(self, group_key: str) -> bool:
        with self.db() as s:
            group = find_alert_group(s, group_key)
            if group is None or group.incident_id is None:
                return False
            return load_incident(s, group.incident_id).status in ACTIVE

    def _prepare(self, note: Notification) -> PreparedOpen:
        with in_channel_language(self.playbook):  # the title's fallback words are the channel's
            incident_in = IncidentCreate(
                kind=self.playbook.alerts.kind,
                title=self._title(note),
                severity=self.severity_of(note.firing(), note.common_labels),
                category=self._category(note),
                description=self._description(note),
                source=SOURCE,
            )
        return self.lifecycle.prepare_open(incident_in)

    def _decide_firing(self, note: Notification, bot: str, prepared: PreparedOpen | None) -> AlertOutcome:
        now = self.clock.now()
        changed: bool | None = False
        with self.db.begin() as s:
            group, _created = lock_alert_group(s, note.group_key, now=now, create=True)
            assert group is not None  # created if it was not there
            current = load_incident(s, group.incident_id) if group.incident_id is not None else None
            if current is None or current.status not in ACTIVE:
                if prepared is None:
                    raise _NotPreparedError  # rolls back: nothing of this try is kept
                incident = self.lifecycle.record_open(s, prepared, reporter=bot)
                flush: tuple[int, ...] = ()
                if current is not None and current.status == IncidentStatus.RESOLVED:
                    with in_channel_language(self.playbook):
                        self._post(s, current.id, event="reopened_elsewhere", number=incident.id)
                    flush = (current.id,)
                firing_now = {a.fingerprint for a in note.firing()}
                self._remember(group, incident.id, AlertGroupStatus.FIRING, firing_now, now)
                outcome = self._outcome(Action.OPENED, incident, set_up=incident.id, flush=flush)
            else:
                changed = self._join(s, group, current, note, bot=bot, now=now)
                outcome = self._outcome(
                    Action.REPEAT if changed is None else Action.JOINED,
                    current,
                    flush=() if changed is None else (current.id,),
                )
        if outcome.action == Action.OPENED:
            log.info("alertmanager group opened incident %s", outcome.number)
        if outcome.action == Action.OPENED or changed:
            self.schedule_changed()
        return outcome

    def _join(
        self, s: Session, group: AlertGroup, incident: Incident, note: Notification, *, bot: str, now: datetime
    ) -> bool | None:
        """A later notification of the group whose incident is being worked on: a line for what is new, the
        severity raised for a more severe new alert. None: an identical repeat (nothing posted); else whether
        the severity changed."""
        firing = note.firing()
        seen = set(group.fingerprints or ())
        new = [a for a in firing if a.fingerprint not in seen]
        gone = [a for a in note.alerts if a.status == "resolved" and a.fingerprint in seen]
        again = group.last_status == AlertGroupStatus.RESOLVED
        with in_channel_language(self.playbook):
            if again:
                self._post(s, incident.id, event="firing_again", names=_names(firing))
            elif new:
                shown = [
                    {"name": self._which(a, note), "summary": a.annotations.get("summary")} for a in new[:LINES_MAX]
                ]
                self._post(s, incident.id, event="new_alerts", alerts=shown, more=len(new) - len(shown))
            if gone and not again:
                names = ", ".join(self._which(a, note) for a in gone[:LINES_MAX])
                self._post(s, incident.id, event="alerts_resolved", names=names)
        still = (seen | {a.fingerprint for a in firing}) - {a.fingerprint for a in gone}
        self._remember(group, incident.id, AlertGroupStatus.FIRING, still, now)
        if not (again or new or gone):
            return None
        if not (again or new):
            return False
        raised = self.severity_of(firing if again else new, note.common_labels)
        if not self._more_severe(raised, incident.severity):
            return False
        try:
            self.lifecycle.set_severity(s, incident, raised, actor=bot, command=SOURCE)
        except ConflictError:
            return False  # a person changed it a moment ago: theirs stands
        return True

    def _resolved(self, note: Notification, bot: str) -> AlertOutcome:
        now = self.clock.now()
        changed = False
        with self.db.begin() as s:
            group, _created = lock_alert_group(s, note.group_key, now=now, create=False)
            if group is None or group.incident_id is None:
                return AlertOutcome(Action.IGNORED)
            incident = load_incident(s, group.incident_id)
            if group.last_status == AlertGroupStatus.RESOLVED:
                return self._outcome(Action.REPEAT, incident)
            names = _names(list(note.alerts))
            if self.playbook.alerts.resolve_on_resolved and incident.status in ACTIVE:
                with in_channel_language(self.playbook):  # the resolve's own announcement says it in the channel
                    summary = _("Alertmanager: every alert of the group is resolved ({names}).", names=names)
                try:
                    self.lifecycle.mark_resolved(s, incident, mask_identifiers(summary), actor=bot, command=SOURCE)
                    changed = True
                except ConflictError:
                    pass  # resolved by a person a moment ago: the line below still tells the channel
            if not changed and incident.status != IncidentStatus.CLOSED:  # a closed one's channel is archived
                with in_channel_language(self.playbook):
                    self._post(s, incident.id, event="group_resolved", names=names, open=incident.status in ACTIVE)
            self._remember(group, incident.id, AlertGroupStatus.RESOLVED, set(), now)
            outcome = self._outcome(Action.RESOLVED, incident, flush=(incident.id,))
        if changed:
            self.schedule_changed()
        return outcome

    def _post(self, s: Session, incident_id: int, **context: Any) -> None:
        """Queue a line for the incident's channel (worded by the caller's in_channel_language)."""
        self.updates.queue(s, incident_id, "post", text=self.renderer.render("slack/alerts.j2", **context))

    def _which(self, alert: Alert, note: Notification) -> str:
        """An alert told apart from the rest of its group: its name and the labels it does not share with them
        (`PaymentGatewayDown (instance=gw-2)`)."""
        own = [
            f"{k}={v}"
            for k, v in sorted(alert.labels.items())
            if k not in ("alertname", self.playbook.alerts.severity_label) and note.common_labels.get(k) != v
        ]
        return f"{alert.name} ({truncate(' '.join(own), DETAIL_MAX)})" if own else alert.name

    def _more_severe(self, severity: str, than: str) -> bool:
        order = list(self.playbook.severities)
        return severity in order and than in order and order.index(severity) < order.index(than)

    @staticmethod
    def _remember(group: AlertGroup, incident_id: int, status: str, fingerprints: set[str], now: datetime) -> None:
        group.incident_id = incident_id
        group.last_status = status
        group.last_seen = now
        group.fingerprints = sorted(fingerprints)

    @staticmethod
    def _outcome(
        action: str, incident: Incident, *, set_up: int | None = None, flush: tuple[int, ...] = ()
    ) -> AlertOutcome:
        return AlertOutcome(
            action,
            number=incident.id,
            channel=incident.channel_name,
            channel_id=incident.channel_id,
            set_up=set_up,
            flush=flush,
        )

    # -- after the answer --

    def follow_up(self, outcome: AlertOutcome) -> None:
        """Run what the decision queued: the new incident's channel set-up (nobody waits on a DM: the bot
        reported it), then the lanes the lines were queued in. Failures stay in the outbox for its retries."""
        if outcome.set_up is not None:
            self.set_up(outcome.set_up)
        for incident_id in outcome.flush:
            self.updates.flush(incident_id)
