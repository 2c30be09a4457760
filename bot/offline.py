"""Offline mode: the whole bot against the in-process Slack sandbox, playing a scripted complaint.

Nothing here is faked past Slack itself: commands are signed HTTP requests verified by bolt, the bot
calls the sandbox through slack_sdk over HTTP, and the store is a real SQLite database.

It plays in the playbook's language (zh-CN for the shipped one) or in `lang` (`--lang en`): the playbook's
`locale` is set to it, the staff's Slack is in it (but for one colleague who reads Slack in English in the
Chinese demo, as banks have), and they type their words in it. The script, its numbers, severities and
times are the same in both.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import secrets
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TextIO

from bot.app import Bot, create_app
from bot.core.clock import Clock, FixedClock, SystemClock
from bot.core.config import Playbook, WarningLineSpec
from bot.core.i18n import _, ngettext, normalize, use_locale
from bot.core.text import mask_identifiers
from bot.sandbox.driver import SlackDriver
from bot.sandbox.server import Ephemeral, Message, PromptHTTPServer, SlackSandbox
from bot.slack.gateway import make_web_client
from bot.slack.ids import ActionId
from bot.slack.web import HttpServer, make_wsgi
from store import queries
from store.db import make_engine, make_session_factory, upgrade
from store.states import ProposalState

DEMO_USERS = {
    "UMEICHEN001": ("mei.chen", "Mei Chen (customer service)"),
    "ULIWEI00001": ("li.wei", "Li Wei (duty manager)"),
    "UZHANGTAO01": ("zhang.tao", "Zhang Tao (payments engineer)"),
    "UWANGFANG01": ("wang.fang", "Wang Fang (customer comms)"),
    "ULIUYANG001": ("liu.yang", "Liu Yang (legal & compliance)"),
}
# The same people in the Chinese demo (their names as colleagues write them).
DEMO_USERS_ZH = {
    "UMEICHEN001": "陈梅（客服）",
    "ULIWEI00001": "李伟（值班经理）",
    "UZHANGTAO01": "张涛（支付工程师）",
    "UWANGFANG01": "王芳（客户沟通）",
    "ULIUYANG001": "刘洋（法律合规）",
}
ENGLISH_READER = "ULIUYANG001"  # reads Slack in English in the Chinese demo: their replies are English


@dataclass(frozen=True)
class Script:
    """What the staff type, in the demo's language (the identifiers are the same, and are masked)."""

    complaint: str
    update: str
    resolve: str
    satisfaction: str
    action: str
    surge_complaint: str  # what the burst of complaints in the surge act says
    surge_report: str  # customer service's progress report in the surge


SCRIPTS = {
    "en": Script(
        complaint="Customer card 6222021234567890 debited twice for one transfer, phone 13812345678",
        update="Duplicate debit traced to a retry in the clearing job; refund queued",
        resolve="Refund posted to the customer; clearing-job retry fixed",
        satisfaction="Customer thanked us for the quick refund",
        action="Alert on clearing-job retries",
        surge_complaint="Cannot get through to the hotline about the card 6222021234567890 transfer outage",
        surge_report="20 more agents on the phones; high-priority customers routed to the priority line",
    ),
    "zh-CN": Script(
        complaint="客户卡号6222021234567890同一笔转账被重复扣款，联系电话13812345678",
        update="重复扣款原因是清算批处理重试，退款已排队",
        resolve="已为客户退回重复扣款，清算批处理重试问题已修复",
        satisfaction="客户感谢我们快速退款",
        action="清算批处理重试告警",
        surge_complaint="转账故障，卡号6222021234567890的客户热线一直打不通",
        surge_report="已增加20名客服坐席，高优先级客户已引导至优先处理渠道",
    ),
}


@dataclass
class OfflineStack:
    sandbox: SlackSandbox
    bot: Bot
    http: HttpServer
    driver: SlackDriver
    intake_token: str | None = None


@contextmanager
def offline_stack(
    playbook: Playbook, database_url: str, *, clock: Clock | None = None, intake_token: str | None = None
) -> Iterator[OfflineStack]:
    """Sandbox + database + bot over HTTP, all on loopback; torn down on exit. `intake_token` turns the intake
    API on (as INCIDENT_DESK_INTAKE_TOKEN does)."""
    sandbox = SlackSandbox().start()
    engine = make_engine(database_url)
    http: HttpServer | None = None
    try:
        upgrade(engine)
        secret = secrets.token_hex(16)
        bot = create_app(
            playbook,
            make_session_factory(engine),
            client=make_web_client(sandbox.bot_token, sandbox.api_url),
            signing_secret=secret,
            clock=clock or SystemClock(),
        )
        http = HttpServer(make_wsgi(bot, intake_token=intake_token)).start()
        driver = SlackDriver(sandbox, http.url, secret, wait_idle=bot.executor.wait_idle)
        yield OfflineStack(sandbox, bot, http, driver, intake_token)
    finally:
        if http is not None:
            http.stop()
        sandbox.stop()
        engine.dispose()


class BankSystems:
    """The bank's hotline and complaint systems in the demo: a loopback HTTP endpoint that keeps every signed
    notice POSTed to it, so the complaint is really answered through its webhooks."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        systems = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                systems.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = PromptHTTPServer(("127.0.0.1", 0), Handler)
        self.server.serve_in_thread("external-systems")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def environ(self) -> dict[str, str]:
        """The environment the bot reads webhook URLs and the signing secret from, pointed here."""
        return {
            **os.environ,
            "HOTLINE_WEBHOOK_URL": self.url("/hotline"),
            "COMPLAINT_SYSTEM_WEBHOOK_URL": self.url("/complaints"),
            "INCIDENT_DESK_WEBHOOK_SECRET": secrets.token_hex(16),
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Transcript:
    """Turns what landed in the sandbox into text a person reads: names instead of IDs, no escapes."""

    def __init__(self, sandbox: SlackSandbox, out: TextIO) -> None:
        self.sandbox = sandbox
        self.out = out
        self.seen_messages = 0
        self.seen_ephemerals = 0

    def name(self, user_id: str) -> str:
        user = self.sandbox.users.get(user_id)
        return re.split(r" \(|（", str(user["real_name"]))[0] if user else user_id

    def channel(self, channel_id: str) -> str:
        channel = self.sandbox.channels.get(channel_id)
        if channel is None:
            return channel_id
        if channel.is_im:
            other = next((m for m in channel.members if m != self.sandbox.bot_user_id), "?")
            return _("DM with {name}", name=self.name(other))
        return "#" + channel.name

    def plain(self, text: str) -> str:
        text = re.sub(r"<@([A-Z0-9]+)(?:\|[^>]*)?>", lambda m: "@" + self.name(m.group(1)), text)
        text = re.sub(r"<#([A-Z0-9]+)(?:\|[^>]*)?>", lambda m: self.channel(m.group(1)), text)
        return html.unescape(text)

    def blocks(self, blocks: list[dict[str, Any]]) -> list[str]:
        lines: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                lines.append("== " + block["text"]["text"] + " ==")
            elif kind == "section":
                if "text" in block:
                    lines.extend(self.plain(block["text"]["text"]).splitlines())
                fields = [self.plain(f["text"]).replace("\n", ": ", 1) for f in block.get("fields", [])]
                lines.extend("  ".join(fields[i : i + 3]) for i in range(0, len(fields), 3))
            elif kind == "context":
                lines.append("(" + " ".join(self.plain(e.get("text", "")) for e in block["elements"]) + ")")
            elif kind == "markdown":
                lines.extend(self.plain(block["text"]).splitlines())
            elif kind == "actions":
                lines.append(" ".join(f"[{e['text']['text']}]" for e in block["elements"] if "text" in e))
        return lines

    def render(self, item: Message | Ephemeral) -> list[str]:
        body = self.blocks(item.blocks) if item.blocks else self.plain(item.text).splitlines()
        return body or [""]

    def say(self, line: str = "") -> None:
        """Every transcript line is masked too, even the commands as people typed them: the terminal is an
        output like any other."""
        print(mask_identifiers(line), file=self.out)

    def command(self, user: str, channel: str, text: str) -> None:
        where = _("their DM from the bot") if self.sandbox.channels[channel].is_im else self.channel(channel)
        self.say("\n> " + _("{name} in {where}: {text}", name=self.name(user), where=where, text=text))

    def flush(self) -> None:
        """Print what arrived since the last flush: messages per channel, ephemeral replies per person."""
        with self.sandbox.lock:
            messages = self.sandbox.messages[self.seen_messages :]
            ephemerals = self.sandbox.ephemerals[self.seen_ephemerals :]
            self.seen_messages += len(messages)
            self.seen_ephemerals += len(ephemerals)
        for e in ephemerals:
            lines = self.render(e)
            self.say("    " + _("(only {name} sees) {line}", name=self.name(e.user), line=lines[0]))
            for line in lines[1:]:
                self.say(f"        {line}")
        for m in messages:
            lines = self.render(m)
            edited = " " + _("(edited)") if m.edited else ""
            self.say(f"    [{self.channel(m.channel)}] {self.name(m.user)}{edited}: {lines[0]}")
            for line in lines[1:]:
                self.say(f"        {line}")

    def channel_by_channel(self) -> None:
        self.say("\n" + "=" * 78 + "\n" + _("The channels as they read now") + "\n" + "=" * 78)
        with self.sandbox.lock:
            channels = [
                c for c in self.sandbox.channels.values() if any(m.channel == c.id for m in self.sandbox.messages)
            ]
        for channel in channels:
            members = ", ".join(self.name(u) for u in channel.members if u != self.sandbox.bot_user_id)
            archived = " " + _("(archived)") if channel.is_archived else ""
            topic = self.plain(channel.topic) or _("(none)")
            self.say(f"\n--- {self.channel(channel.id)}{archived} — " + _("topic: {topic}", topic=topic))
            self.say("    " + _("members: {members}", members=members or _("(none)")))
            for m in self.sandbox.channel_messages(channel.id):
                lines = self.render(m)
                self.say(f"  {self.name(m.user)}: {lines[0]}")
                for line in lines[1:]:
                    self.say(f"      {line}")


def run_demo(
    playbook: Playbook,
    out: TextIO,
    database_url: str | None = None,
    *,
    lang: str | None = None,
    start: datetime | None = None,
) -> int:
    """Play a complaint from report to close and print the conversation, in `lang` (default: the playbook's
    locale), from `start` (default: now). Returns a process exit code."""
    lang = normalize(lang, normalize(playbook.locale))
    playbook = playbook.model_copy(update={"locale": lang})
    with tempfile.TemporaryDirectory() as tmp, use_locale(lang):
        url = database_url or f"sqlite:///{Path(tmp) / 'offline.db'}"
        # the demo's own clock, so it can skip ahead twelve hours to show reminders
        clock = FixedClock((start or datetime.now(UTC)).replace(second=0, microsecond=0))
        playbook = _demo_surge_line(playbook)
        # the transcript is the story: the intake's per-request log lines would bury the surge act
        for chatty in ("bot.slack.web", "bot.surge.watch"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
        with offline_stack(playbook, url, clock=clock, intake_token=secrets.token_hex(16)) as stack:
            systems = BankSystems()
            stack.bot.services.notices.environ = systems.environ()
            try:
                return _play(stack, clock, out, systems, lang)
            finally:
                systems.stop()


def _show_answer(stack: OfflineStack, t: Transcript, systems: BankSystems) -> None:
    """What reached the customer (through the bank's systems), and what the public status page shows: the
    complaint is answered to its customer, so the page (fetched over HTTP, as a browser would) says nothing."""
    for path, payload in systems.received:
        said = {
            "/hotline": _("The bank's hotline system (script for the call-back) received notice #{number} ({stage}):"),
            "/complaints": _("The bank's complaint system received notice #{number} ({stage}):"),
        }[path]
        t.say("\n    " + said.format(number=payload["incident"], stage=payload["stage"]))
        for text in payload["texts"].values():
            t.say("        " + text.replace("\n", "\n        "))
    with urllib.request.urlopen(stack.http.url + "/status.json", timeout=10) as response:
        published = json.loads(response.read())
    shown = [i["number"] for i in published["incidents"]]
    t.say(
        "\n    "
        + ngettext(
            "The public status page ({url}/status, also /status.json and /status/feed.atom) shows {n} incident, "
            "status {status}: a single customer's complaint is answered to that customer, never in public; "
            "outages and surges are published there.",
            "The public status page ({url}/status, also /status.json and /status/feed.atom) shows {n} incidents, "
            "status {status}: a single customer's complaint is answered to that customer, never in public; "
            "outages and surges are published there.",
            len(shown),
            url=stack.http.url,
            status=repr(published["status"]),
        )
    )


def _drill(
    stack: OfflineStack,
    clock: FixedClock,
    t: Transcript,
    slash: Callable[[str, str, str], None],
    where: str,
    *,
    lead: str,
    engineer: str,
    update: str,
) -> None:
    """The plan rehearsed: the payment-outage scenario at 600× (two hours of plan in twelve seconds), scored."""
    t.say("\n" + _("... a drill: the payment-outage scenario at 600× real time (ten hours of the plan a minute) ..."))
    slash(lead, where, "drill payment-outage 600")
    channel = next((c for c in stack.sandbox.channels.values() if c.name.startswith("drill-")), None)
    if channel is None:
        return
    slash(lead, channel.id, f"assign tech <@{engineer}>")
    clock.advance(timedelta(seconds=3))  # half an hour of the drill's plan
    stack.bot.sweeper.sweep()
    t.flush()
    slash(lead, channel.id, f"update {update}")
    clock.advance(timedelta(seconds=10))  # past the scenario's last time limit: the scorecard is posted
    stack.bot.sweeper.sweep()
    t.flush()


def _approve_and_publish(
    click: Callable[[str, str, str, str], None], preview: Message, *, approver: str, publisher: str
) -> None:
    click(approver, preview.channel, preview.ts, ActionId.APPROVE_NOTICE)
    click(publisher, preview.channel, preview.ts, ActionId.PUBLISH_NOTICE)


def find_button(sandbox: SlackSandbox, channel: str, message_ts: str, action_id: str) -> tuple[str, str]:
    """The label and value of the button with `action_id` on a message: buttons are pressed by what they do,
    so the script is the same whatever language their labels are in."""
    with sandbox.lock:
        message = next(m for m in sandbox.messages if m.channel == channel and m.ts == message_ts)
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element.get("action_id") == action_id:
                return str(element["text"]["text"]), str(element.get("value", ""))
    raise LookupError(f"no button {action_id!r} on message {message_ts}")


def _seed_people(sandbox: SlackSandbox, lang: str) -> None:
    for user_id, (handle, real_name) in DEMO_USERS.items():
        if lang == "en":
            sandbox.add_user(user_id, handle, real_name=real_name, locale="en-US")
        else:
            locale = "en-US" if user_id == ENGLISH_READER else "zh-CN"
            sandbox.add_user(user_id, handle, real_name=DEMO_USERS_ZH[user_id], locale=locale)


def _play(stack: OfflineStack, clock: FixedClock, out: TextIO, systems: BankSystems, lang: str) -> int:
    sandbox, driver = stack.sandbox, stack.driver
    script = SCRIPTS[lang]
    _seed_people(sandbox, lang)
    mei, li, zhang, wang, liu = DEMO_USERS
    service_desk = sandbox.add_channel("customer-service", list(DEMO_USERS))
    sandbox.add_channel("announcements", [sandbox.bot_user_id, *DEMO_USERS])  # where internal notices go
    t = Transcript(sandbox, out)
    t.say(
        _("incident-desk offline demo: a Slack sandbox on loopback, the bot over HTTP, a SQLite store.")
        + "\n"
        + _("Every command below is a signed slash command verified by bolt; every reply went through slack_sdk.")
    )

    def slash(user: str, channel: str, text: str, command: str = "/incident") -> None:
        t.command(user, channel, f"{command} {text}".strip())
        driver.slash(user, channel, text, command=command)
        stack.bot.sweeper.sweep()
        t.flush()

    def click(user: str, channel: str, ts: str, action_id: str) -> None:
        label, value = find_button(sandbox, channel, ts, action_id)
        t.command(user, channel, _("clicks [{label}]", label=label))
        driver.click(user, channel, ts, action_id, value)
        t.flush()

    def last_dm(user: str) -> Message:
        return sandbox.dm_messages(user)[-1]

    slash(
        mei,
        service_desk,
        script.complaint,
        command="/complaint",
    )
    incident_channel = next((c for c in sandbox.channels.values() if c.name.startswith("inc-")), None)
    if incident_channel is None:
        t.say("\n" + _("The incident channel was not created; see the messages above."))
        return 1
    # nobody is the playbook's default lead, so Mei, who reported it, is in charge (the card says so)
    slash(mei, incident_channel.id, f"assign tech <@{zhang}|zhang.tao>")
    slash(mei, incident_channel.id, f"assign comms <@{wang}|wang.fang>")
    slash(li, service_desk, "timeline 1")  # not a participant: the details stay in the incident's channel
    slash(mei, incident_channel.id, "close")
    slash(zhang, incident_channel.id, "sev 2")  # a severe incident pages its lead (not who raised it)
    click(mei, last_dm(mei).channel, last_dm(mei).ts, ActionId.ACKNOWLEDGE)
    slash(mei, incident_channel.id, "deadlines")
    t.say("\n" + _("... twelve hours later (the demo moves its clock; the bot's scheduler sweeps what fell due) ..."))
    clock.advance(timedelta(hours=12))
    stack.bot.sweeper.sweep()
    t.flush()
    click(wang, last_dm(wang).channel, last_dm(wang).ts, ActionId.MARK_DONE)
    slash(zhang, incident_channel.id, f"update {script.update}")
    # a customer notice: a complaint is answered to its customer (never on the public status page), in the
    # templates' customer wording (the engineer's update stays internal); SEV2 needs legal's approval first,
    # and never the drafter's own
    slash(wang, incident_channel.id, "notice update status_page")
    slash(wang, incident_channel.id, "notice update hotline complaint_system internal")
    notice = sandbox.channel_messages(incident_channel.id)[-1]
    click(wang, incident_channel.id, notice.ts, ActionId.PUBLISH_NOTICE)
    slash(mei, incident_channel.id, f"assign legal <@{liu}|liu.yang>")  # approving roles come from the lead
    _approve_and_publish(click, notice, approver=liu, publisher=wang)
    _show_answer(stack, t, systems)
    slash(mei, incident_channel.id, f"resolve {script.resolve}")
    # telling the customer the solution (the resolved notice, approved and published) meets its 48 h deadline
    slash(wang, incident_channel.id, "notice resolved hotline complaint_system internal")
    _approve_and_publish(click, sandbox.channel_messages(incident_channel.id)[-1], approver=liu, publisher=wang)
    # after the incident: the customer's rating, an action item, the review, then close (and archive)
    for user, text in (
        (wang, f"satisfaction 5 {script.satisfaction}"),
        (mei, f"action {script.action} <@{zhang}|zhang.tao> 5d"),
        (mei, "review post"),
        (mei, "review done"),
        (mei, "close"),
        (mei, "timeline"),
    ):
        slash(user, incident_channel.id, text)
    _surge_act(stack, clock, t, script=script, slash=slash, click=click)
    _drill(stack, clock, t, slash, service_desk, lead=mei, engineer=zhang, update=script.update)
    return _finish(t)


def _finish(t: Transcript) -> int:
    t.channel_by_channel()
    t.say(
        "\n" + _("Done. Run `incident-desk run` with SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to use a real workspace.")
    )
    return 0


# ---- the surge act (seed 004): a burst of complaints through the intake API, the leadership group decides ----

SURGE_LEADER = "ULIWEI00001"  # Li Wei, the duty manager, is the demo's leadership group
SURGE_LINE = 20  # the demo's warning line: 20 complaints in 10 minutes (the shipped playbook's is 100)
SURGE_BURST = 24  # complaints in the burst, one every 20 seconds
SURGE_CHANNELS = ("phone", "app", "online_chat", "phone")


def _demo_surge_line(playbook: Playbook) -> Playbook:
    """The demo's leadership group (Li Wei) and a lower warning line than the shipped one, so the burst is short
    to read; everything else is the shipped surge plan."""
    line = WarningLineSpec(count=SURGE_LINE, window=timedelta(minutes=10))
    surge = playbook.surge.model_copy(update={"leaders": (SURGE_LEADER,), "warning_lines": (line,)})
    return playbook.model_copy(update={"surge": surge})


def _post_complaint(stack: OfflineStack, body: dict[str, Any]) -> dict[str, Any]:
    """One complaint from the bank's complaint system: POST /api/v1/complaints with the bearer token."""
    request = urllib.request.Request(
        stack.http.url + "/api/v1/complaints",
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {stack.intake_token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def _button_message(sandbox: SlackSandbox, channel: str, action_id: str) -> Message | None:
    """The latest message in `channel` that carries a button doing `action_id`."""
    for message in reversed(sandbox.channel_messages(channel)):
        if any(
            e.get("action_id") == action_id for b in message.blocks for e in b.get("elements", []) if "action_id" in e
        ):
            return message
    return None


def _surge_act(
    stack: OfflineStack,
    clock: FixedClock,
    t: Transcript,
    *,
    script: Script,
    slash: Callable[[str, str, str], None],
    click: Callable[[str, str, str, str], None],
) -> None:
    """Seed 004 in a few minutes of the demo's clock: complaints cross the warning line, the leadership group
    activates the plan, departments get their duties and report, volume falls, the group ends it, the summary."""
    sandbox, driver = stack.sandbox, stack.driver
    mei, li, zhang, wang, _liu = DEMO_USERS
    t.say(
        "\n"
        + "=" * 78
        + "\n"
        + _(
            "A surge (the customer diversion plan): the bank's complaint system sends {n} complaints in {minutes} "
            "minutes through the intake API (POST /api/v1/complaints, bearer token); the demo's warning line is "
            "{line} in 10 minutes.",
            n=SURGE_BURST,
            minutes=SURGE_BURST // 3,
            line=SURGE_LINE,
        )
        + "\n"
        + "=" * 78
    )
    start = clock.now()
    for i in range(SURGE_BURST):
        answer = _post_complaint(
            stack,
            {
                "external_id": f"CMS-{start:%Y%m%d}-{i + 1:04d}",
                "received_at": clock.now().isoformat(),
                "contact_channel": SURGE_CHANNELS[i % len(SURGE_CHANNELS)],
                "category": "service",
                "product": "debit card",
                "summary": script.surge_complaint,
                "customer_ref": f"CUST-{i + 1:05d}",
            },
        )
        if i == 0:
            t.say("    " + _("The intake API answered: {answer}", answer=json.dumps(answer, ensure_ascii=False)))
        stack.bot.services.surge.wait_idle()  # the proposal is posted off the request; the demo's clock waits
        clock.advance(timedelta(seconds=20))
    t.say("    " + _("... {n} complaints recorded ...", n=SURGE_BURST))
    t.flush()
    room = sandbox.channel_by_name(stack.bot.services.playbook.surge.leadership_channel)
    proposal = _button_message(sandbox, room.id, ActionId.ACTIVATE_SURGE) if room else None
    if room is None or proposal is None:
        t.say("\n" + _("No surge proposal was posted; see the messages above."))
        return
    click(li, room.id, proposal.ts, ActionId.ACTIVATE_SURGE)
    with stack.bot.services.db() as s:
        activated = queries.list_proposals(s, state=ProposalState.ACTIVATED)
        surge = queries.get_incident(s, activated[0].incident_id) if activated and activated[0].incident_id else None
    if surge is None or not surge.channel_id:
        t.say("\n" + _("The surge incident's channel was not created; see the messages above."))
        return
    channel = surge.channel_id

    def type_(user: str, text: str) -> None:  # a command with no sweep after it: the plan starts at the next one
        t.command(user, channel, f"/incident {text}")
        driver.slash(user, channel, text)
        t.flush()

    type_(li, f"assign customer_comms <@{mei}|mei.chen>")
    type_(li, f"assign tech_support <@{zhang}|zhang.tao>")
    type_(li, f"assign marketing <@{wang}|wang.fang>")
    # the next sweep starts the plan: each department's duties, the diversion notice drafted, the live chart
    stack.bot.sweeper.sweep()
    t.flush()
    slash(mei, channel, f"update {script.surge_report}")
    t.say("\n" + _("... the volume falls; the demo moves its clock five minutes at a time ..."))
    end = None
    for _step in range(12):
        clock.advance(timedelta(minutes=5))
        stack.bot.sweeper.sweep()
        end = _button_message(sandbox, room.id, ActionId.END_SURGE)
        if end is not None:
            break
    t.flush()
    if end is None:
        t.say("\n" + _("End was not suggested; see the messages above."))
        return
    click(li, room.id, end.ts, ActionId.END_SURGE)
