"""Slash commands: /incident, and its shortcuts (/complaint, /outage). Thin: parse, call, reply.

What each subcommand takes and calls is declared in bot/slack/registry.py. Read-only commands answer inside
the ack; the rest ack first (Slack waits 3 s) and reply through the response URL when their work is done.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.services import Services
from bot.slack.commands import parse_command
from bot.slack.registry import REGISTRY, Answer, Request, acknowledgement, spec_for
from bot.slack.replies import reporting_errors

COMMANDS = re.compile("^(/incident|" + "|".join(re.escape(c) for spec in REGISTRY for c in spec.shortcuts) + ")$")


def register(app: App, services: Services) -> None:
    def handle_incident_command(ack: Ack, body: dict[str, Any]) -> None:
        # In the reader's language: bot/app.py's middleware set it from their Slack locale for this request.
        command = parse_command(body.get("text", ""), services.playbook, command=body["command"])
        spec = spec_for(command)
        request = Request(
            actor=body["user_id"],
            channel=body["channel_id"],
            said=f"{body['command']} {body.get('text', '')}".strip(),
            trigger_id=body.get("trigger_id", ""),
            response_url=body.get("response_url", ""),
        )
        if spec.answers_in_ack:
            answer = spec.run(services, command, request)
            if isinstance(answer, Answer):
                ack(text=answer.text, blocks=answer.blocks)
            else:
                ack(text=answer or "")
            return
        said = acknowledgement(spec, command, services.playbook)
        if said:
            ack(text=said)
        else:
            ack()
        with reporting_errors(services.slack, body):
            reply = spec.run(services, command, request)
            if isinstance(reply, Answer):
                services.slack.respond(body["response_url"], reply.text, reply.blocks)
            elif reply:
                services.slack.respond(body["response_url"], reply)

    app.command(COMMANDS)(handle_incident_command)
