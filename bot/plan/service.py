"""Telling people of a new version of the plan, and keeping it reviewed.

When a new version goes live (bot/plan/versions.py stored it at start-up), the next sweep announces its changelog
entry in the plan's channel and asks each role owner, each member of a usergroup the playbook names, each person
an escalation level pages and each admin to confirm they have read it (a button). Who has not confirmed is listed
in the announcement, which is updated as people confirm, and reminded by DM every `plan_changes.remind_every`.
A year (`review_every`) after the version's date, the plan's owners (else the admins) are reminded to review it.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.errors import UserInputError
from bot.core.i18n import _, in_channel_language, in_recipients_language
from bot.core.render import local_time
from bot.core.text import safe_text
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.plan_blocks import plan_read_blocks
from store import plan as queries
from store.models import PlaybookVersion

log = logging.getLogger(__name__)

REVIEW_REPEAT = timedelta(days=7)  # an overdue review is brought up again weekly until a new version is loaded
REVIEW_AT = time(9, 0)  # the review reminder goes out at this local time of its day


class PlanService:
    def __init__(self, playbook: Playbook, db: sessionmaker[Session], slack: SlackGateway, clock: Clock) -> None:
        self.playbook, self.db, self.slack, self.clock = playbook, db, slack, clock

    # ---- the scheduler's job --------------------------------------------------------------------------------

    def run(self, now: datetime) -> bool:
        """Called by every sweep: announce a version not yet announced, remind who has not confirmed, and bring
        up the yearly review when it is due. True if anything was sent."""
        with self.db() as s:
            if queries.latest_playbook_version(s) is None:
                return False  # no version stored (a bot started without `incident-desk run`: tests, the demo)
        announced = self.announce_new_version(now)
        reminded = self.remind_readers(now)
        reviewed = self.remind_review(now)
        return announced or reminded > 0 or reviewed

    # ---- who reads the plan ---------------------------------------------------------------------------------

    def readers(self) -> list[str]:
        """Everyone the playbook puts in charge of something: admins, roles' default owners and usergroups,
        the people and usergroups escalation pages, the surge plan's leadership group, and the plan's owners."""
        playbook = self.playbook
        users: dict[str, None] = dict.fromkeys(playbook.admins)
        groups: list[str] = []
        for role in playbook.roles.values():
            users.update(dict.fromkeys(role.default_owners))
            groups += [role.usergroup] if role.usergroup else []
        for level in playbook.escalation.levels:
            users.update(dict.fromkeys(level.users))
            groups += [level.usergroup] if level.usergroup else []
        users.update(dict.fromkeys(playbook.surge.leaders))  # the leadership group (预案领导小组)
        groups += [playbook.surge.leaders_usergroup] if playbook.surge.leaders_usergroup else []
        users.update(dict.fromkeys(playbook.plan_changes.owners))
        for group in dict.fromkeys(groups):
            try:
                users.update(dict.fromkeys(self.slack.usergroup_members(group)))
            except SlackCallError as exc:
                log.warning("plan: cannot read usergroup %s's members (%s); they are not asked", group, exc.error)
        return list(users)

    def plan_owners(self) -> list[str]:
        return list(self.playbook.plan_changes.owners or self.playbook.admins)

    # ---- the announcement -----------------------------------------------------------------------------------

    def _channel_name(self) -> str | None:
        name = self.playbook.plan_changes.channel or self.playbook.weekly_report.channel
        return name.lstrip("#") if name else None

    def _find_channel(self) -> str | None:
        name = self._channel_name()
        if not name:
            return None
        try:
            found = self.slack.find_channel(name)
        except SlackCallError as exc:
            log.warning("plan: cannot look up #%s (%s)", name, exc.error)
            return None
        if found is None:
            log.warning("plan: no channel #%s to announce the plan's changes in; only DMs are sent", name)
            return None
        return str(found["id"])

    def _previous(self, s: Session, row: PlaybookVersion) -> str | None:
        older = [r.version for r in queries.list_playbook_versions(s) if r.id < row.id and r.version != row.version]
        return older[-1] if older else None

    def _changes(self, row: PlaybookVersion) -> list[str]:
        lines = []
        if row.reason:
            lines.append(_("Why: {reason}", reason=safe_text(row.reason)))
        lines += [f"• {safe_text(change)}" for change in row.changes or ()]
        return lines

    def _announcement_text(self, row: PlaybookVersion, previous: str | None, pending: list[str], asked: int) -> str:
        """In the current language (the caller picks the channel's)."""
        version, day = safe_text(row.version), row.effective_on.isoformat()
        lines = [
            _(":scroll: *The contingency plan is now version {version}* (dated {date}).", version=version, date=day)
        ]
        lines += self._changes(row)
        if previous:
            lines.append(
                _(
                    "It replaces version {previous}; incidents opened before keep the version they started under.",
                    previous=safe_text(previous),
                )
            )
        lines.append(_("Role owners and admins: read the plan, then confirm with the button below."))
        if pending:
            lines.append(_("Not confirmed yet: {people}", people=", ".join(f"<@{u}>" for u in pending)))
        elif asked:
            lines.append(_("Everyone asked has confirmed reading it."))
        return "\n".join(lines)

    def _ask_text(self, row: PlaybookVersion, *, reminder: bool) -> str:
        """The DM asking one person to confirm, in the current language (the caller picks the recipient's)."""
        version, day = safe_text(row.version), row.effective_on.isoformat()
        if reminder:
            head = _(
                ":scroll: Reminder: please read version {version} of the contingency plan (dated {date}) and "
                "confirm with the button below.",
                version=version,
                date=day,
            )
        else:
            head = _(
                ":scroll: The contingency plan is now version {version} (dated {date}). Please read it and "
                "confirm with the button below.",
                version=version,
                date=day,
            )
        return "\n".join([head, *self._changes(row)])

    def announce_new_version(self, now: datetime) -> bool:
        """Claim the newest version's announcement (once, whichever process sweeps first), ask its readers,
        post it in the plan's channel and DM each reader the button."""
        with self.db.begin() as s:
            latest = queries.latest_playbook_version(s)
            if latest is None or latest.announced_at is not None:
                return False
            if not queries.claim_announcement(s, latest.id, at=now):
                return False
            version_id = latest.id
        readers = self.readers()
        with self.db.begin() as s:
            queries.add_plan_readers(
                s, version_id, readers, at=now, remind_at=now + self.playbook.plan_changes.remind_every
            )
        channel = self._find_channel()
        if channel is not None:
            with self.db() as s:
                row = queries.get_playbook_version(s, version_id)
                assert row is not None
                previous = self._previous(s, row)
                with in_channel_language(self.playbook):
                    text = self._announcement_text(row, previous, readers, len(readers))
                    blocks = plan_read_blocks(text, version_id)
            try:
                ts = self.slack.post(channel, text, blocks, key=f"plan-{version_id}")
            except SlackCallError as exc:
                log.warning("plan: the announcement of version %s was refused (%s)", version_id, exc.error)
            else:
                with self.db.begin() as s:
                    queries.set_announcement(s, version_id, channel=channel, ts=ts)
        for user in readers:
            self._dm_ask(user, version_id, reminder=False)
        return True

    def _dm_ask(self, user: str, version_id: int, *, reminder: bool) -> bool:
        with self.db() as s:
            row = queries.get_playbook_version(s, version_id)
            if row is None:
                return False
            with in_recipients_language(self.slack.user_locale(user), self.playbook):
                text = self._ask_text(row, reminder=reminder)
                blocks = plan_read_blocks(text, version_id)
        try:
            self.slack.dm(user, text, blocks)
        except SlackCallError as exc:
            log.warning("plan: could not DM %s about version %s (%s)", user, version_id, exc.error)
            return False
        return True

    def _refresh_announcement(self, version_id: int) -> None:
        """The announcement lists who has still not confirmed: rewrite it after a confirmation."""
        with self.db() as s:
            row = queries.get_playbook_version(s, version_id)
            if row is None or not row.announcement_channel or not row.announcement_ts:
                return
            channel, ts = row.announcement_channel, row.announcement_ts
            confirmations = queries.list_plan_confirmations(s, version_id)
            pending = [c.user_id for c in confirmations if c.confirmed_at is None]
            with in_channel_language(self.playbook):
                text = self._announcement_text(row, self._previous(s, row), pending, len(confirmations))
                blocks = plan_read_blocks(text, version_id)
        try:
            self.slack.update(channel, ts, text, blocks)
        except SlackCallError as exc:
            log.warning("plan: could not update the announcement of version %s (%s)", version_id, exc.error)

    # ---- confirmations and reminders ------------------------------------------------------------------------

    def confirm(self, *, version_id: int, actor: str) -> str:
        """The button: record that `actor` read the version in force (once; a repeated click changes nothing).
        The reply is in the reader's language."""
        now = self.clock.now()
        with self.db.begin() as s:
            row = queries.get_playbook_version(s, version_id)
            latest = queries.latest_playbook_version(s)
            if row is None or latest is None:
                raise UserInputError(_("That button is out of date; no such version of the plan is stored."))
            version = safe_text(row.version)
            if row.id != latest.id:
                raise UserInputError(
                    _(
                        "Version {version} is no longer in force; version {current} is. Confirm on its announcement.",
                        version=version,
                        current=safe_text(latest.version),
                    )
                )
            first = queries.confirm_plan_read(s, version_id, actor, at=now)
            if not first:
                existing = queries.get_plan_confirmation(s, version_id, actor)
                if existing is None:
                    raise UserInputError(
                        _(
                            "You are not among the people asked to read version {version}; nothing to confirm.",
                            version=version,
                        )
                    )
        if not first:
            return _("You had already confirmed reading version {version}.", version=version)
        self._refresh_announcement(version_id)
        return _(":white_check_mark: Thank you: you confirmed reading version {version} of the plan.", version=version)

    def remind_readers(self, now: datetime) -> int:
        """DM each person who has not confirmed the version in force and whose reminder is due; each reminder is
        claimed first, so two sweeps never send the same one."""
        every = self.playbook.plan_changes.remind_every
        with self.db() as s:
            latest = queries.latest_playbook_version(s)
            if latest is None or latest.announced_at is None:
                return 0
            due = [
                (c.id, c.user_id, utc(c.next_reminder_at))
                for c in queries.due_plan_reminders(s, latest.id, now)
                if c.next_reminder_at is not None
            ]
            version_id = latest.id
        sent = 0
        for confirmation_id, user, at in due:
            with self.db.begin() as s:
                if not queries.claim_plan_reminder(s, confirmation_id, due=at, next_at=max(at, now) + every):
                    continue
            sent += self._dm_ask(user, version_id, reminder=True)
        return sent

    # ---- `/incident plan` -----------------------------------------------------------------------------------

    def status_text(self) -> str:
        """The version in force, what changed, who has not confirmed reading it, when it is due for review; in
        the reader's language."""
        with self.db() as s:
            row = queries.latest_playbook_version(s)
            if row is None:
                return _(
                    "Playbook {version} is loaded; no version is stored yet (the bot stores one each time it starts "
                    "on a new version).",
                    version=safe_text(self.playbook.version),
                )
            confirmations = queries.list_plan_confirmations(s, row.id)
            zone = self.playbook.tz
            lines = [
                _(
                    "*Contingency plan {version}* (dated {date}; in force since {since}).",
                    version=safe_text(row.version),
                    date=row.effective_on.isoformat(),
                    since=local_time(row.loaded_at, zone),
                ),
                *self._changes(row),
            ]
            pending = [c.user_id for c in confirmations if c.confirmed_at is None]
            if confirmations:
                lines.append(
                    _(
                        "Confirmed reading: {confirmed} of {asked}.",
                        confirmed=len(confirmations) - len(pending),
                        asked=len(confirmations),
                    )
                )
            if pending:
                lines.append(_("Not confirmed yet: {people}", people=", ".join(f"<@{u}>" for u in pending)))
            due = utc(self.review_due_at(row)).astimezone(zone)
            lines.append(_("Next review due: {date}.", date=f"{due:%Y-%m-%d}"))
        return "\n".join(lines)

    # ---- the yearly review ----------------------------------------------------------------------------------

    def review_due_at(self, row: PlaybookVersion) -> datetime:
        start = datetime.combine(row.effective_on, REVIEW_AT, self.playbook.tz)
        return utc(start + self.playbook.plan_changes.review_every)

    def remind_review(self, now: datetime) -> bool:
        """A year after the version in force was made, remind the plan's owners (and its channel) to review it;
        again every week until a new version is loaded."""
        with self.db.begin() as s:
            latest = queries.latest_playbook_version(s)
            if latest is None or now < self.review_due_at(latest):
                return False
            last = utc(latest.review_reminded_at) if latest.review_reminded_at else None
            if last is not None and now < last + REVIEW_REPEAT:
                return False
            if not queries.claim_review_reminder(s, latest.id, last=latest.review_reminded_at, at=now):
                return False
            version, day = safe_text(latest.version), latest.effective_on.isoformat()
        owners = self.plan_owners()
        channel = self._find_channel()
        if channel is not None:
            with in_channel_language(self.playbook):
                text = self._review_text(version, day, owners)
            try:
                self.slack.post(channel, text)
            except SlackCallError as exc:
                log.warning("plan: the review reminder was refused in its channel (%s)", exc.error)
        for user in owners:
            with in_recipients_language(self.slack.user_locale(user), self.playbook):
                text = self._review_text(version, day, [])
            try:
                self.slack.dm(user, text)
            except SlackCallError as exc:
                log.warning("plan: could not DM %s about the plan's review (%s)", user, exc.error)
        if not owners:
            log.warning(
                "plan: version %s is due for its review and nobody owns the plan (plan_changes.owners)", version
            )
        return True

    def _review_text(self, version: str, day: str, owners: list[str]) -> str:
        text = _(
            ":calendar: The contingency plan (version {version}, dated {date}) is due for its yearly review. "
            "Review it, then raise `version` and add a `changelog` entry saying what changed (or that nothing did).",
            version=version,
            date=day,
        )
        if owners:
            text += "\n" + _("Plan owners: {people}", people=", ".join(f"<@{u}>" for u in owners))
        return text
