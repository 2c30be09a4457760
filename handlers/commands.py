"""Slash commands: /incident, and the /complaint and /outage shortcuts."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

import handlers.aftercare
from bot.core.i18n import use_locale
from bot.incidents.service import IncidentCreate
from bot.services import Services
from bot.slack.blocks import report_modal
from bot.slack.commands import Command, parse_command
from bot.slack.replies import reporting_errors

COMMANDS = re.compile(r"^/(incident|complaint|outage)$")
# Read-only commands answer inside the ack; the rest ack first and do their Slack work after.
READ_ONLY = {"help", "list", "status", "timeline", "deadlines"}


def _report_modal(services: Services, channel: str) -> dict[str, Any]:
    """The report form, in the playbook's language until the reader's own locale is looked up."""
    with use_locale(services.playbook.locale):
        return report_modal(services.playbook, origin_channel=channel)


def register(app: App, services: Services) -> None:
    incidents = services.incidents

    def answer_read_only(ack: Ack, command: Command, channel: str, user: str) -> None:
        if command.name == "help":
            ack(text=incidents.help_text())
        elif command.name == "list":
            ack(text=incidents.list_text())
        elif command.name == "status":
            text, blocks = incidents.status_blocks(channel_id=channel, number=command.number, actor=user)
            ack(text=text, blocks=blocks)
        elif command.name == "deadlines":
            ack(text=services.timekeeping.deadlines_text(channel_id=channel, number=command.number, actor=user))
        else:
            ack(text=incidents.timeline_text(channel_id=channel, number=command.number, actor=user))

    def change(command: Command, channel: str, user: str, said: str) -> str | None:
        if command.name == "assign":
            assert command.role is not None and command.user is not None
            return incidents.assign_role(
                channel_id=channel, role=command.role, user=command.user, actor=user, command=said
            )
        if command.name == "sev":
            return incidents.change_severity(
                channel_id=channel, severity=command.severity or "", actor=user, command=said
            )
        if command.name == "update":
            return incidents.post_update(channel_id=channel, text=command.text or "", actor=user, command=said)
        if command.name == "resolve":
            return incidents.resolve(channel_id=channel, summary=command.text or "", actor=user, command=said)
        if command.name == "close":
            return incidents.close(channel_id=channel, actor=user, command=said)
        if command.name == "done":
            return services.timekeeping.mark_done(actor=user, channel_id=channel, word=command.text or "")
        if command.name == "solution":
            return services.timekeeping.record_solution(channel_id=channel, text=command.text or "", actor=user)
        if command.name == "ack":
            return services.timekeeping.acknowledge(actor=user, channel_id=channel)
        if command.name == "pause":
            return incidents.pause(channel_id=channel, reason=command.text or "", actor=user, command=said)
        if command.name == "report":  # over a large store this can take longer than Slack waits for an ack
            return services.reports.kpi_text(command.dates)
        if command.name == "notice":
            assert command.stage is not None
            return services.notices.draft(
                channel_id=channel, stage=command.stage, actor=user, channels=command.channels, locales=command.locales
            )
        if command.name in handlers.aftercare.COMMANDS:
            return handlers.aftercare.run_command(services, command, channel, user)
        if command.name == "resume":
            return incidents.resume(channel_id=channel, actor=user, command=said)
        return incidents.repair(channel_id=channel, number=command.number, actor=user)

    def handle_incident_command(ack: Ack, body: dict[str, Any]) -> None:
        command = parse_command(body.get("text", ""), services.playbook, command=body["command"])
        user, channel = body["user_id"], body["channel_id"]
        if command.name in READ_ONLY:
            answer_read_only(ack, command, channel, user)
            return
        if command.name == "open":
            ack(text=f"Opening a new {command.kind} incident…")
        else:
            ack()
        with reporting_errors(services.slack, body):
            if command.name == "open_modal":
                services.slack.open_view(body["trigger_id"], _report_modal(services, channel))
                return
            if command.name == "open":
                assert command.kind is not None and command.title is not None
                incident = incidents.open_incident(
                    IncidentCreate(
                        kind=command.kind, title=command.title, severity=command.severity, category=command.category
                    ),
                    reporter=user,
                    origin_channel=channel,
                )
                message: str | None = incidents.opened_message(incidents.setup_channel(incident.id))
            else:
                message = change(command, channel, user, f"{body['command']} {body.get('text', '')}".strip())
            if message:
                services.slack.respond(body["response_url"], message)

    app.command(COMMANDS)(handle_incident_command)
