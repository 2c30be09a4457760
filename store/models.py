"""Tables. All times are stored as UTC; the store keeps raw user text (masking happens on output)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import text as text_clause
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    # the highest severity the incident has had: notice approval is bound to it, so lowering the severity,
    # publishing and raising it again cannot skip an approval
    peak_severity: Mapped[str | None] = mapped_column(String(10))
    category: Mapped[str | None] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    customer_ref: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="reported")
    is_drill: Mapped[bool] = mapped_column(Boolean, default=False)
    playbook_version: Mapped[str] = mapped_column(String(60))
    reporter_id: Mapped[str] = mapped_column(String(40))
    origin_channel_id: Mapped[str | None] = mapped_column(String(40))
    # The channel name is claimed here (unique) before Slack is called, so two opens cannot race for it.
    channel_name: Mapped[str | None] = mapped_column(String(80), unique=True)
    channel_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    topic_set: Mapped[bool] = mapped_column(Boolean, default=False)
    members_invited: Mapped[bool] = mapped_column(Boolean, default=False)
    card_ts: Mapped[str | None] = mapped_column(String(40))
    welcome_posted: Mapped[bool] = mapped_column(Boolean, default=False)
    setup_error: Mapped[str | None] = mapped_column(Text)
    resolution_summary: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # waiting on the customer: the incident's clocks stand still while this is set
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the post-incident review: when its draft is due, when it was posted, when the lead completed it
    review_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    review_posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_completed_by: Mapped[str | None] = mapped_column(String(40))
    # kept here for the KPI report (the record stays in deadlines and satisfaction_ratings): when the first
    # response deadline was met, and the customer's rating
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    satisfaction_score: Mapped[int | None] = mapped_column(Integer)

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="incident", cascade="all, delete-orphan", order_by="RoleAssignment.id"
    )

    __table_args__ = (
        Index("ix_incidents_status_created", "status", "created_at"),
        # the KPI report reads a period from this index alone on PostgreSQL (an index-only scan)
        Index(
            "ix_incidents_kpi",
            "created_at",
            postgresql_include=[
                "is_drill",
                "kind",
                "severity",
                "category",
                "resolved_at",
                "first_response_at",
                "satisfaction_score",
            ],
        ),
    )


class RoleAssignment(Base):
    """The current owner of one role in one incident; history lives in the timeline."""

    __tablename__ = "role_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(40))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assigned_by: Mapped[str | None] = mapped_column(String(40))

    incident: Mapped[Incident] = relationship(back_populates="roles")

    __table_args__ = (UniqueConstraint("incident_id", "role", name="uq_role_assignments_incident_role"),)


class TimelineEvent(Base):
    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[str | None] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RoleRotation(Base):
    """Round-robin cursor per role, so default owners take turns across incidents and restarts."""

    __tablename__ = "role_rotation"

    role: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Deadline(Base):
    """One time limit of the plan for one incident. `next_action_at` is when the scheduler must look at it
    next (a reminder or the deadline itself); null once it needs nothing more."""

    __tablename__ = "deadlines"

    __table_args__ = (
        Index("ix_deadlines_next_action", "next_action_at"),
        # deadline compliance per period without joining incidents (their opening time is copied here)
        Index("ix_deadlines_kpi", "incident_created_at", postgresql_include=["key", "state", "incident_is_drill"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    owner_role: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending, met, missed, cancelled
    cadence: Mapped[bool] = mapped_column(Boolean, default=False)
    clock: Mapped[str] = mapped_column(String(10), default="calendar")  # calendar or business
    escalate: Mapped[bool] = mapped_column(Boolean, default=True)
    on_resolve: Mapped[str] = mapped_column(String(10), default="cancel")
    reminders_done: Mapped[int] = mapped_column(Integer, default=0)  # reminder offsets handled so far
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    snoozes: Mapped[int] = mapped_column(Integer, default=0)
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    owner_user: Mapped[str | None] = mapped_column(String(40))  # action items name a person, not a role
    # copied from the incident (neither ever changes), so the KPI report need not join incidents
    incident_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    incident_is_drill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    closed_by: Mapped[str | None] = mapped_column(String(40))


class Escalation(Base):
    """A paging chain: levels frozen when it starts, paged one after another until someone acknowledges."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    deadline_id: Mapped[int | None] = mapped_column(ForeignKey("deadlines.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    level: Mapped[int] = mapped_column(Integer, default=0)  # the next level to page
    state: Mapped[str] = mapped_column(String(20), default="active")  # active, acknowledged, exhausted, cancelled
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_by: Mapped[str | None] = mapped_column(String(40))
    # whose own action started the chain (raising the severity, opening): never paged for it
    caused_by: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (Index("ix_escalations_next_action", "next_action_at"),)


class SentNotification(Base):
    """Written before a reminder or page goes out: its unique key makes a second send impossible."""

    __tablename__ = "sent_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(40), default="claimed")  # claimed, sent, failed: <error>


class OutboxMessage(Base):
    """A side effect of a committed change, written in the same transaction as the change.

    `effect` says what it is: "message" for the clockwork's reminders and pages (text, blocks, recipient in
    their own columns), anything else for an incident's other steps (channel set-up, announcements, card
    refreshes, notice deliveries, rating prompts, final summary, archive), described by `payload` and run
    in order per incident by bot/notices/outbox.py. A crash between the commit and the effect loses nothing: once
    `lease_until` has passed, the next run takes it again (a post looks in the channel for its key first,
    in case Slack had it). An effect Slack refuses is tried again at `due_at`, a bounded number of times."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "state", "due_at"),
        Index("ix_outbox_lane", "incident_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    notification_key: Mapped[str] = mapped_column(String(120))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    digestible: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_id: Mapped[int | None] = mapped_column(Integer)  # a page: its chain moves on if it cannot go out
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(String(80))
    ts: Mapped[str | None] = mapped_column(String(40))
    effect: Mapped[str] = mapped_column(String(20), default="message", server_default="message")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Notice(Base):
    """A customer notice for one stage: its text per channel and locale, who approved which text, and
    when it was published. Editing after approval clears the approval."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON)  # channel -> locale -> text
    state: Mapped[str] = mapped_column(String(20), default="draft")  # draft, approved, published
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_digest: Mapped[str | None] = mapped_column(String(64))  # sha256 of the texts approved
    published_by: Mapped[str | None] = mapped_column(String(40))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    preview_ts: Mapped[str | None] = mapped_column(String(40))


class NoticeDelivery(Base):
    """What happened when a notice went to one target (a channel of the plan)."""

    __tablename__ = "notice_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))  # delivered, failed, skipped
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class SatisfactionRating(Base):
    """A 1-5 rating: the customer's (recorded by customer comms), or a participant's of the response itself."""

    __tablename__ = "satisfaction_ratings"
    __table_args__ = (UniqueConstraint("incident_id", "source", "rater_id", name="uq_rating_per_rater"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(20))  # customer, internal
    rater_id: Mapped[str] = mapped_column(String(40))  # who recorded it (customer) or who rated (internal)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportRun(Base):
    """One run of a scheduled report (the weekly one): claimed before it is posted, so it posts once."""

    __tablename__ = "report_runs"
    __table_args__ = (UniqueConstraint("kind", "due_at", name="uq_report_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(Text, default="")


class SeenRequest(Base):
    """The signature of every verified request from Slack, kept while its timestamp is inside the 5-minute
    window: the primary key refuses a replay on every replica sharing the database."""

    __tablename__ = "seen_requests"

    signature: Mapped[str] = mapped_column(String(80), primary_key=True)
    timestamp: Mapped[int] = mapped_column(Integer, index=True)  # X-Slack-Request-Timestamp, epoch seconds


class KpiStale(Base):
    """15 minutes (UTC) in which an incident was opened whose KPI rows changed since its month was computed;
    the triggers of migration 0010 add it, the rollup's refresh of the month takes it away."""

    __tablename__ = "kpi_stale"

    slot: Mapped[str] = mapped_column(String(16), primary_key=True)  # YYYY-MM-DD HH:MM, minutes 00/15/30/45


class KpiMonth(Base):
    """A month whose KPI cells were computed: in which timezone (its bounds) and with which rating threshold."""

    __tablename__ = "kpi_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM, local
    zone: Mapped[str] = mapped_column(String(64))
    good_at_least: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KpiCell(Base):
    """One row of the KPI report's histogram query for one month: the incidents of a kind, severity and
    category whose measure (resolve, first response, acknowledge) took `minute` whole minutes."""

    __tablename__ = "kpi_cells"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    measure: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(60))
    minute: Mapped[int | None] = mapped_column(Integer)  # None: not resolved
    n: Mapped[int] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(BigInteger)  # microseconds, summed exactly
    rated: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_kpi_cells_month", "month", "measure"),)


class KpiDeadlineCell(Base):
    """How many deadlines of one month's incidents ended in each state, per deadline key."""

    __tablename__ = "kpi_deadline_cells"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    key: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))
    n: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_kpi_deadline_cells_month", "month"),)


class Complaint(Base):
    """A complaint recorded by the intake API. `external_id` is the complaint system's own id (unique: a
    retry finds the row it made); `fingerprint` is a hash of the body, so a retry with another body is told
    apart from a retry. The customer reference is raw here and masked on every output."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(120), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    contact_channel: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(60))
    product: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text)
    customer_ref: Mapped[str] = mapped_column(Text)
    severity: Mapped[str | None] = mapped_column(String(10))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # routing (bot/intake/routing.py): the incident it opened or joined, how, and the cluster it counts in
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    routed: Mapped[str | None] = mapped_column(String(10))  # opened | joined | escalated; None: recorded only
    cluster_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_complaints_cluster_key_created_at", "cluster_key", "created_at"),)


class ComplaintCluster(Base):
    """One row per complaint cluster (a routing rule and a category or product): the lock concurrent complaints
    of the cluster take in turn, and the incident the cluster has open, which later complaints join."""

    __tablename__ = "complaint_clusters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(Integer)
    complaints: Mapped[int] = mapped_column(Integer, server_default="0")  # with that incident, so far
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# ---- the plan's versions and who confirmed reading them -------------------------------------------------------


class PlaybookVersion(Base):
    """A playbook as the bot loaded it, once per distinct (version, content hash): its file's text, when it was
    first loaded and the changelog entry's reason. The newest row is the plan in force; the others are kept for
    tracing (`incident-desk playbook history` / `diff`) and never used."""

    __tablename__ = "playbook_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(60))
    content_hash: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    effective_on: Mapped[date] = mapped_column(Date)  # the changelog entry's date (else the day it was loaded)
    reason: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # the announcement of this version: claimed once (announced_at), then where it was posted
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    announcement_channel: Mapped[str | None] = mapped_column(String(40))
    announcement_ts: Mapped[str | None] = mapped_column(String(40))
    review_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the last yearly-review reminder

    __table_args__ = (UniqueConstraint("version", "content_hash", name="uq_playbook_versions_version_hash"),)


class PlanConfirmation(Base):
    """One person asked to confirm they have read a version of the plan; `confirmed_at` is set once."""

    __tablename__ = "plan_confirmations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("playbook_versions.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(20))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminders: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("version_id", "user_id", name="uq_plan_confirmations_version_user"),)


class SurgeRun(Base):
    """A surge plan running as an incident (seed 004): started once (duties, notices, chart), its live chart's
    last refresh, the End suggestion, and who ended it. The primary key makes the start happen once."""

    __tablename__ = "surge_runs"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    chart_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the live chart's last posting
    end_suggested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None again once volume rises
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_by: Mapped[str | None] = mapped_column(String(40))


class AlertGroup(Base):
    """An Alertmanager group (its `groupKey`) and the incident it opened: later notifications of the group
    join that incident instead of opening another (the unique key decides between concurrent deliveries).
    `fingerprints` are the alerts seen firing in it, so a new alert is told apart from a repeat."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_key: Mapped[str] = mapped_column(Text, unique=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    last_status: Mapped[str] = mapped_column(String(10))  # firing, resolved (store/states.py AlertGroupStatus)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    fingerprints: Mapped[list[str]] = mapped_column(JSON, default=list)


class SurgeProposal(Base):
    """A warning line crossed (seed 004 预警): the proposal put to the leadership group, and what they decided.

    `line` names the warning line (its count, window and filter); at most one proposal per line has no
    `fell_at` (a unique partial index), which is both the guard against two concurrent intakes proposing the
    same crossing and the hysteresis: the next proposal for the line needs the volume to have fallen below it
    (recorded in `fell_at`) since the last one."""

    __tablename__ = "surge_proposals"
    __table_args__ = (
        Index(
            "uq_surge_proposals_live_line",
            "line",
            unique=True,
            sqlite_where=text_clause("fell_at IS NULL"),
            postgresql_where=text_clause("fell_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[str] = mapped_column(String(200))
    line_count: Mapped[int] = mapped_column(Integer)
    line_window_seconds: Mapped[int] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(60))
    contact_channel: Mapped[str | None] = mapped_column(String(20))
    crossed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer)  # complaints in the window when the line was crossed
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the breakdown posted (by category, by channel)
    state: Mapped[str] = mapped_column(String(20))
    channel_id: Mapped[str | None] = mapped_column(String(40))  # the leadership channel it was posted in
    message_ts: Mapped[str | None] = mapped_column(String(40))
    proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # posted to the leadership group
    repage_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # nobody decided by then: page once more
    repaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(40))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    fell_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # volume back below the line afterwards


# The warning lines count complaints by the time they were received (bot/surge/watch.py), overall or for one
# category or contact channel: each count is a range scan of one of these.
Index("ix_complaints_received_at", Complaint.received_at)
Index("ix_complaints_category_received_at", Complaint.category, Complaint.received_at)
Index("ix_complaints_channel_received_at", Complaint.contact_channel, Complaint.received_at)

# ---- complaint records: the seed's deadlines and the complaint system's events (migration 0012) -------------


class ComplaintDeadline(Base):
    """One of the seed's deadlines of a recorded complaint (first response, investigation, solution,
    satisfaction follow-up). `due_at` is empty until its clock starts: the satisfaction follow-up starts when
    the complaint is closed. `met_at` is when the complaint system says the work was done (late or not)."""

    __tablename__ = "complaint_deadlines"
    __table_args__ = (
        UniqueConstraint("complaint_id", "key", name="uq_complaint_deadlines_key"),
        Index("ix_complaint_deadlines_due", "state", "due_at"),
        Index("ix_complaint_deadlines_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    # the complaint's, copied: the KPI report reads a period's deadlines by it without a join
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    clock: Mapped[str] = mapped_column(String(10))  # calendar or business (the playbook's working hours)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(20))
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ComplaintEvent(Base):
    """What the complaint system reported about a complaint, once per type (a repeat is recognised, not
    stored twice). The note is raw here and masked on every output."""

    __tablename__ = "complaint_events"
    __table_args__ = (
        UniqueConstraint("complaint_id", "type", name="uq_complaint_events_type"),
        Index("ix_complaint_events_received_at", "type", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(30))
    # the complaint's, copied: the KPI report reads a period's responses and ratings by it without a join
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    score: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
