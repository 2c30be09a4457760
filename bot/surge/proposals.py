"""The warning line's proposal to the leadership group (seed 004: 向预案领导小组汇报，由领导小组决定是否启动预案).

A crossing recorded by the watch (bot/surge/watch.py) is posted here, off the intake's request: a background
worker posts it in the leadership channel (found by name, created when missing with the named leaders invited)
with the figures and Activate / Dismiss, and pages each member of the leadership group by DM. If nobody decides
within the last escalation level's ack_timeout, the group is paged once more (from the sweep, on the injected
clock). The scheduler's sweep also posts what the worker could not (a crash, a Slack refusal) and expires a
proposal whose volume fell back below the line before anyone decided.

Only the leadership group decides (bot/surge/leadership.py). Each decision is one conditional update of the
proposal's state, so twenty clicks make one decision and the others are told who decided. Activate opens the
surge incident with the activating leader as reporter (so they lead it) and records `surge_activated` on it:

    data = {"proposal_id", "crossed_at" (ISO), "proposed_at" (ISO), "activated_by", "count", "line_count",
            "line_window_seconds", "category", "contact_channel"}

a contract the running plan's summary reads ("time to activate"). Dismiss records who and why.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.errors import NotFoundError, PermissionDeniedError, UserInputError
from bot.core.executor import TrackingExecutor
from bot.core.i18n import N_, _, in_channel_language, in_recipients_language
from bot.core.render import local_time
from bot.core.text import mask_identifiers, safe_text
from bot.incidents.service import IncidentCreate, IncidentService
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.slack.surge_blocks import REASON_MAX, dismiss_modal, proposal_blocks
from bot.surge.leadership import Leadership
from bot.surge.watch import SurgeWatch, count_received
from store import queries
from store.models import SurgeProposal
from store.states import ProposalState

log = logging.getLogger(__name__)

# The sweep leaves a fresh proposal this long to the worker that was handed it before posting it itself.
POST_GRACE = timedelta(seconds=10)
BREAKDOWN_TOP = 8  # categories or contact channels listed by name; the rest are summed
# The intake's contact channels (bot/intake/service.py CONTACT_CHANNELS) as staff read them.
CONTACT_CHANNEL_NAMES = {
    "phone": N_("phone"),
    "email": N_("email"),
    "online_chat": N_("online chat"),
    "branch": N_("branch"),
    "app": N_("mobile app"),
}

# The complaint kind's categories (seed 003: 技术问题、服务问题、政策问题, and money matters) as staff read them;
# another category (an unmapped one from the complaint system) is shown as stored.
CATEGORY_NAMES = {
    "technical": N_("technical issue"),
    "service": N_("service issue"),
    "policy": N_("policy issue"),
    "financial": N_("financial issue"),
}


def category_label(category: str) -> str:
    """A complaint category in the current language (`service` → 服务问题); an unknown one as stored."""
    known = CATEGORY_NAMES.get(category)
    return _(known) if known else category


def window_text(window: timedelta) -> str:
    """A warning line's window as people say it: `10m`, `2h`, `1h 30m` (10分钟, 2小时, 1小时30分钟)."""
    minutes = int(window.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return _("{minutes}m", minutes=rest)
    if not rest:
        return _("{hours}h", hours=hours)
    return _("{hours}h {minutes}m", hours=hours, minutes=rest)


def contact_channel_label(channel: str) -> str:
    """A contact channel in the current language (`online_chat` → 在线客服); an unknown one as stored."""
    known = CONTACT_CHANNEL_NAMES.get(channel)
    return _(known) if known else channel


@dataclass(frozen=True)
class Facts:
    """A proposal as the messages show it: a snapshot taken inside a unit of work."""

    id: int
    state: str
    line_count: int
    window: timedelta
    category: str | None
    contact_channel: str | None
    crossed_at: datetime
    count: int
    figures: dict[str, dict[str, int]]
    channel_id: str | None
    message_ts: str | None
    proposed_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    incident_id: int | None

    @classmethod
    def of(cls, row: SurgeProposal) -> Facts:
        return cls(
            id=row.id,
            state=row.state,
            line_count=row.line_count,
            window=timedelta(seconds=row.line_window_seconds),
            category=row.category,
            contact_channel=row.contact_channel,
            crossed_at=row.crossed_at,
            count=row.count,
            figures=dict(row.figures or {}),
            channel_id=row.channel_id,
            message_ts=row.message_ts,
            proposed_at=row.proposed_at,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            reason=row.reason,
            incident_id=row.incident_id,
        )


class SurgeProposals:
    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        incidents: IncidentService,
        leadership: Leadership,
        watch: SurgeWatch,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.incidents = incidents
        self.leadership = leadership
        self.watch = watch
        self.worker = TrackingExecutor(max_workers=1)  # posts off the intake's request, one at a time
        self._posting = threading.Lock()  # the worker and the sweep never post the same proposal together

    # ---- posting and paging ---------------------------------------------------------------------------------

    def post_soon(self, proposal_id: int) -> None:
        """Hand a new proposal to the background worker (the intake's request does not wait for Slack)."""
        self.worker.submit(self._post_logged, proposal_id)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until the worker has posted what it was handed (tests, the demo)."""
        return self.worker.wait_idle(timeout)

    def _post_logged(self, proposal_id: int, resumed: bool = False) -> None:
        try:
            self.post(proposal_id, resumed=resumed)
        except Exception:  # the sweep posts it later: a proposal is never lost
            log.exception("surge: could not post proposal %d; the next sweep tries again", proposal_id)

    def post(self, proposal_id: int, *, resumed: bool = False) -> bool:
        """Post the proposal in the leadership channel and page the group; False if it was posted already or is
        decided. `resumed`: taken again by the sweep, so Slack is searched for an earlier post first."""
        with self._posting:
            with self.db() as s:
                row = queries.get_proposal(s, proposal_id)
                if row is None or row.message_ts is not None or row.state != ProposalState.PROPOSED:
                    return False
                figures = self.watch.breakdown(s, row)
                facts = Facts.of(row)
            facts = _with(facts, figures=figures)
            channel = self._leadership_channel()
            with in_channel_language(self.playbook):
                text = self._proposal_text(facts)
                blocks = proposal_blocks(text, facts.id)
            ts = self.leadership.post(channel, text, blocks, key=f"surge-proposal-{facts.id}", check_first=resumed)
            now = self.clock.now()
            with self.db.begin() as s:
                queries.set_proposal_posted(
                    s,
                    facts.id,
                    channel_id=channel,
                    message_ts=ts,
                    proposed_at=now,
                    figures=figures,
                    repage_at=now + self.playbook.escalation.levels[-1].ack_timeout,
                )
        self._page(_with(facts, channel_id=channel, message_ts=ts, proposed_at=now), again=False)
        return True

    def _leadership_channel(self) -> str:
        """The leadership channel's id; created (with the named leaders invited) when it does not exist."""
        found = self.leadership.channel_id()
        if found is not None:
            return found
        name = self.playbook.surge.leadership_channel
        try:
            channel = str(self.slack.create_channel(name)["id"])
        except SlackCallError as exc:
            if exc.error != "name_taken":
                raise
            again = self.slack.find_channel(name)  # created meanwhile (another replica), or it is archived
            if again is None:
                raise
            return str(again["id"])
        skipped = self.slack.invite(channel, self.leadership.members())
        if skipped:
            log.warning("surge: could not invite %s to the leadership channel", ", ".join(sorted(skipped)))
        return channel

    def _page(self, facts: Facts, *, again: bool) -> None:
        """DM each member of the leadership group the proposal, its buttons and where to find it."""
        members = self.leadership.members()
        if not members:  # the shipped playbook names nobody and the bot-made channel has only the bot
            log.warning(
                "surge: proposal %d reaches nobody: no surge.leaders, leaders_usergroup or admins, and nobody "
                "is in #%s; set surge.leaders so someone can decide",
                facts.id,
                self.playbook.surge.leadership_channel,
            )
        for user in members:
            with in_recipients_language(self.slack.user_locale(user), self.playbook):
                text = self._page_text(facts, again=again)
                blocks = proposal_blocks(text, facts.id)
            try:
                self.slack.dm(user, text, blocks, key=f"surge-proposal-{facts.id}-page-{int(again)}-{user}")
            except SlackCallError as exc:
                log.warning("surge: could not page %s about proposal %d: %s", user, facts.id, exc.error)

    # ---- the sweep's part -----------------------------------------------------------------------------------

    def sweep(self, now: datetime) -> None:
        """From the scheduler's sweep: look at the lines (a fall with no complaint coming in), post what the
        worker did not, page once more where nobody decided, expire what the volume left behind."""
        self.watch.observe(now, thorough=True)
        with self.db() as s:
            unposted = [p.id for p in queries.list_unposted_proposals(s, created_before=now - POST_GRACE)]
            repages = queries.due_proposal_repages(s, now)
            waiting = [Facts.of(p) for p in queries.list_proposals(s, state=ProposalState.PROPOSED)]
        for proposal_id in unposted:
            self._post_logged(proposal_id, resumed=True)
        volumes = {v.line.key: v for v in self.watch.volumes(now)}
        for facts in waiting:  # expired first: a proposal the volume left behind is not paged again
            self._expire_if_fallen(facts, volumes, now)
        for proposal_id in repages:
            with self.db.begin() as s:
                if not queries.claim_proposal_repage(s, proposal_id, now=now):
                    continue
                row = queries.get_proposal(s, proposal_id)
                paged = Facts.of(row) if row is not None else None
            if paged is not None:
                self._page(paged, again=True)

    def _expire_if_fallen(self, facts: Facts, volumes: dict[str, Any], now: datetime) -> None:
        """A proposal nobody decided, once a whole window has passed since the crossing and the volume is below
        the line again, expires (and the line may propose again when the volume next rises)."""
        if now - utc(facts.crossed_at) < facts.window:
            return
        with self.db.begin() as s:
            row = queries.get_proposal(s, facts.id)
            if row is None:
                return
            volume = volumes.get(row.line)
            count = volume.count if volume is not None else _count_now(s, Facts.of(row), now)
            if count >= row.line_count:
                return
            if not queries.decide_proposal(s, facts.id, state=ProposalState.EXPIRED, decided_at=now):
                return
            queries.record_proposal_fall(s, facts.id, at=now)
            s.refresh(row)
            facts = Facts.of(row)
        self._show_decision(facts)

    # ---- deciding ---------------------------------------------------------------------------------------------

    def require_leader(self, actor: str) -> None:
        """Refuse anyone outside the leadership group, naming who may decide."""
        if self.leadership.is_leader(actor):
            return
        people = ", ".join(f"<@{u}>" for u in self.leadership.members())
        raise PermissionDeniedError(
            _(
                "Only the leadership group ({people}) can activate or dismiss the surge plan.",
                people=people or _("nobody is named yet; ask an admin to set `surge.leaders`"),
            )
        )

    def activate(self, *, proposal_id: int, actor: str) -> str:
        """Activate the surge plan (leaders only): open the surge incident led by `actor`, record when and by
        whom, and show it on the proposal. A second click is told who activated it."""
        self.require_leader(actor)
        now = self.clock.now()
        with self.db.begin() as s:
            row = self._row(s, proposal_id)
            if not queries.decide_proposal(
                s, proposal_id, state=ProposalState.ACTIVATED, decided_by=actor, decided_at=now
            ):
                s.refresh(row)
                return self._already(Facts.of(row))
            facts = Facts.of(row)
        with self.db() as s:
            # the higher of the crossing's count and now's: a short window may have emptied while the group
            # decided, and a surge titled "8 in 10m (warning line 10)" reads as no surge at all
            count = max(_count_now(s, facts, now), facts.count)
        with in_channel_language(self.playbook):
            title = _(
                "Customer complaint surge: {count} in {window} (warning line {line})",
                count=count,
                window=window_text(facts.window),
                line=facts.line_count,
            )
        surge = self.playbook.surge
        try:
            incident = self.incidents.open_incident(
                IncidentCreate(kind=surge.kind, title=title, severity=surge.severity), reporter=actor
            )
        except Exception:
            with self.db.begin() as s:  # nothing was opened: the proposal waits again, a leader may retry
                queries.undo_activation(s, proposal_id, actor=actor)
            raise
        with self.db.begin() as s:
            row = self._row(s, proposal_id)
            row.incident_id = incident.id
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="surge_activated",
                actor_id=actor,
                text=title,
                data={
                    "proposal_id": facts.id,
                    "crossed_at": utc(facts.crossed_at).isoformat(),
                    "proposed_at": utc(facts.proposed_at).isoformat() if facts.proposed_at else None,
                    "activated_by": actor,
                    "count": facts.count,
                    "line_count": facts.line_count,
                    "line_window_seconds": int(facts.window.total_seconds()),
                    "category": facts.category,
                    "contact_channel": facts.contact_channel,
                },
            )
            s.flush()
            facts = Facts.of(row)
        outcome = self.incidents.setup_channel(incident.id)
        channel = outcome.incident.channel_id
        self._show_decision(facts, incident_channel=channel)
        where = f" <#{channel}>" if channel else ""
        return _("Surge plan activated: #{number}{where}. You lead it.", number=incident.id, where=where)

    def dismiss_form(self, *, proposal_id: int, actor: str, trigger_id: str) -> str | None:
        """Ask a leader why the proposal is dismissed (a modal); already decided: say by whom."""
        self.require_leader(actor)
        with self.db() as s:
            facts = Facts.of(self._row(s, proposal_id))
        if facts.state != ProposalState.PROPOSED:
            return self._already(facts)
        self.slack.open_view(trigger_id, dismiss_modal(facts.id, self._summary(facts)))
        return None

    def dismiss_waiting(self, *, actor: str, reason: str) -> str:
        """`/incident surge dismiss <why>`: what the Dismiss modal does, for the proposal waiting now (the latest,
        should two lines be crossed). Leaders only, refused before anything is looked up."""
        self.leadership.require(actor, ending=False)
        with self.db() as s:
            waiting = [p.id for p in queries.list_proposals(s, state=ProposalState.PROPOSED)]
        if not waiting:
            raise NotFoundError(_("No proposal is waiting for the leadership group."))
        return self.dismiss(proposal_id=max(waiting), actor=actor, reason=reason)

    def dismiss(self, *, proposal_id: int, actor: str, reason: str) -> str:
        """Dismiss the proposal (leaders only), recording who and why; the line stays quiet until the volume
        falls below it and rises again."""
        self.require_leader(actor)
        reason = " ".join(reason.split())
        if not reason:
            raise UserInputError(_("Say why the surge plan is not activated."), field="surge_reason")
        now = self.clock.now()
        with self.db.begin() as s:
            row = self._row(s, proposal_id)
            if not queries.decide_proposal(
                s,
                proposal_id,
                state=ProposalState.DISMISSED,
                decided_by=actor,
                decided_at=now,
                reason=reason[:REASON_MAX],
            ):
                s.refresh(row)
                return self._already(Facts.of(row))
            s.flush()
            s.refresh(row)
            facts = Facts.of(row)
        self._show_decision(facts)
        return _("Dismissed; your reason is recorded. The warning comes back if the volume falls and rises again.")

    def _row(self, s: Session, proposal_id: int) -> SurgeProposal:
        row = queries.get_proposal(s, proposal_id)
        if row is None:
            raise NotFoundError(_("That surge proposal is gone; run `/incident surge` to see the volume now."))
        return row

    def _already(self, facts: Facts) -> str:
        """What a late click is told: who decided, and what."""
        who = f"<@{facts.decided_by}>" if facts.decided_by else ""
        if facts.state == ProposalState.ACTIVATED:
            if facts.incident_id is None:  # the winning click is opening the incident right now
                return _("{user} is activating the surge plan right now.", user=who)
            return _("Already activated by {user}: #{number}", user=who, number=facts.incident_id)
        if facts.state == ProposalState.DISMISSED:
            return _("Already dismissed by {user}: {reason}", user=who, reason=safe_text(facts.reason or ""))
        return _("This warning expired: the volume fell back below the line before anyone decided.")

    def _show_decision(self, facts: Facts, *, incident_channel: str | None = None) -> None:
        """Update the proposal message (chat.update): the figures stay, the buttons give way to the decision."""
        if facts.channel_id is None or facts.message_ts is None:
            return
        with in_channel_language(self.playbook):
            text = self._proposal_text(facts)
            status = self._decision_text(facts, incident_channel)
            blocks = proposal_blocks(text, facts.id, status=status)
        try:
            self.slack.update(facts.channel_id, facts.message_ts, text, blocks)
        except SlackCallError as exc:
            log.warning("surge: could not update proposal %d's message: %s", facts.id, exc.error)

    # ---- words ------------------------------------------------------------------------------------------------

    def _when(self, moment: datetime) -> str:
        return local_time(moment, self.playbook.tz, "%H:%M %Z")  # with its zone, as every time the bot writes

    def _scope(self, category: str | None, contact_channel: str | None) -> str:
        if category is not None:
            return _(
                "complaints of category {category}", category=safe_text(mask_identifiers(category_label(category)))
            )
        if contact_channel is not None:
            return _("complaints via {channel}", channel=safe_text(contact_channel_label(contact_channel)))
        return _("complaints")

    def _summary(self, facts: Facts) -> str:
        return _(
            "{count} {scope} in {window} (warning line {line}), crossed at {time}.",
            count=facts.count,
            scope=self._scope(facts.category, facts.contact_channel),
            window=window_text(facts.window),
            line=facts.line_count,
            time=self._when(facts.crossed_at),
        )

    def _breakdown(self, figures: dict[str, dict[str, int]]) -> list[str]:
        lines = []
        for column, label in (("category", _("By category")), ("contact_channel", _("By contact channel"))):
            counts = figures.get(column) or {}
            if not counts:
                continue
            named = list(counts.items())[:BREAKDOWN_TOP]
            names = contact_channel_label if column == "contact_channel" else category_label
            parts = [f"{safe_text(mask_identifiers(names(name)))} {n}" for name, n in named]
            rest = sum(counts.values()) - sum(n for _name, n in named)
            if rest:
                parts.append(_("others {count}", count=rest))
            lines.append(f"{label}: " + ", ".join(parts))
        return lines

    def _proposal_text(self, facts: Facts) -> str:
        lines = [
            _(":rotating_light: *Surge warning line reached*"),
            self._summary(facts),
            *self._breakdown(facts.figures),
            _(
                "The leadership group decides: *Activate* opens the surge plan (you lead it); *Dismiss* records "
                "why not."
            ),
        ]
        return "\n".join(lines)

    def _page_text(self, facts: Facts, *, again: bool) -> str:
        head = (
            _(":rotating_light: Still undecided, paging the leadership group again.")
            if again
            else _(":rotating_light: The surge warning line is reached; the leadership group decides.")
        )
        where = _("The proposal is in <#{channel}>.", channel=facts.channel_id) if facts.channel_id else ""
        return "\n".join(part for part in (head, self._summary(facts), where) if part)

    def _decision_text(self, facts: Facts, incident_channel: str | None) -> str:
        when = self._when(facts.decided_at) if facts.decided_at else ""
        if facts.state == ProposalState.ACTIVATED:
            where = f" <#{incident_channel}>" if incident_channel else ""
            return _(
                ":white_check_mark: Activated by <@{user}> at {time}: incident #{number}{where}.",
                user=facts.decided_by,
                time=when,
                number=facts.incident_id,
                where=where,
            )
        if facts.state == ProposalState.DISMISSED:
            return _(
                ":no_entry_sign: Dismissed by <@{user}> at {time}: {reason}",
                user=facts.decided_by,
                time=when,
                reason=safe_text(mask_identifiers(facts.reason or "")),
            )
        return _(":hourglass: Expired at {time}: the volume fell back below the line before anyone decided.", time=when)

    # ---- /incident surge ------------------------------------------------------------------------------------

    def status_text(self) -> str:
        """The volume now against each warning line, and the proposal waiting for a decision, if any."""
        now = self.clock.now()
        lines = [_("*Complaint volume against the warning lines*")]
        for volume in self.watch.volumes(now):
            spec = volume.line.spec
            state = _("at or over the line") if volume.over else _("below the line")
            lines.append(
                "• "
                + _(
                    "{scope}: {count} in the last {window} (warning line {line}), {state}",
                    scope=self._scope(spec.category, spec.contact_channel),
                    count=volume.count,
                    window=window_text(spec.window),
                    line=spec.count,
                    state=state,
                )
            )
        with self.db() as s:
            waiting = [Facts.of(p) for p in queries.list_proposals(s, state=ProposalState.PROPOSED)]
        if not waiting:
            lines.append(_("No proposal is waiting for the leadership group."))
        for facts in waiting:
            where = f" <#{facts.channel_id}>" if facts.channel_id else ""
            lines.append(
                _(
                    "Waiting for the leadership group{where}: the line was crossed at {time}, {count} in the window.",
                    where=where,
                    count=facts.count,
                    time=self._when(facts.crossed_at),
                )
            )
        if not self.playbook.surge.enabled:
            lines.append(_("The surge watch is off (`surge.enabled: false`)."))
        return "\n".join(lines)


def _with(facts: Facts, **changes: Any) -> Facts:
    return replace(facts, **changes)


def _count_now(s: Session, facts: Facts, now: datetime) -> int:
    """The complaints in the proposal's line's window now."""
    return count_received(s, facts.window, now, facts.category, facts.contact_channel)
