"""Who the leadership group (预案领导小组) is: they alone activate, dismiss and end a surge plan.

The playbook names them (`surge.leaders`, `surge.leaders_usergroup`) and admins always count; a playbook that
names nobody lets the members of the leadership channel decide, so a fresh install still has someone who can
(check-config warns). When Slack cannot say who is in a group or channel, the answer is "not a leader": the
safe side of a decision that opens an incident for the whole bank.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.core.config import Playbook
from bot.core.errors import PermissionDeniedError
from bot.core.i18n import _
from bot.slack.gateway import SlackCallError, SlackGateway

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, playbook: Playbook, slack: SlackGateway) -> None:
        self.playbook = playbook
        self.slack = slack

    def channel_id(self) -> str | None:
        """The leadership channel's id (found by name), or None when it does not exist yet."""
        try:
            found = self.slack.find_channel(self.playbook.surge.leadership_channel)
        except SlackCallError as exc:
            log.warning("could not look up the leadership channel: %s", exc.error)
            return None
        return str(found["id"]) if found else None

    def members(self) -> list[str]:
        """Everyone the group's pages go to: the named leaders (and their user group), else the channel's
        members; admins are added either way. The bot itself is never one."""
        surge = self.playbook.surge
        people: list[str] = list(surge.leaders)
        if surge.leaders_usergroup:
            try:
                people += self.slack.usergroup_members(surge.leaders_usergroup)
            except SlackCallError as exc:
                log.warning("could not read the leadership user group: %s", exc.error)
        if not (surge.leaders or surge.leaders_usergroup):
            channel = self.channel_id()
            if channel is not None:
                try:
                    people += sorted(self.slack.channel_members(channel))
                except SlackCallError as exc:
                    log.warning("could not read the leadership channel's members: %s", exc.error)
        people += list(self.playbook.admins)
        bot = self.slack.bot_user_id
        return list(dict.fromkeys(p for p in people if p != bot))

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        key: str,
        check_first: bool = False,
    ) -> str:
        """Post in the leadership channel; where people made it without the bot (`not_in_channel`), join it and
        post again (the refused post did not go out, so its key is reused)."""
        try:
            return self.slack.post(channel, text, blocks, key=key, check_first=check_first)
        except SlackCallError as exc:
            if exc.error != "not_in_channel":
                raise
            log.info("joining the leadership channel %s to post in it", channel)
            self.slack.join_channel(channel)
            return self.slack.post(channel, text, blocks, key=key, check_first=check_first)

    def is_leader(self, user: str) -> bool:
        return user in self.members()

    def require(self, actor: str, *, ending: bool) -> None:
        """Refuse `/incident surge end|dismiss` to anyone outside the group, naming who may decide (the policy's
        rule: Who.LEADERSHIP and admins, who are always members)."""
        if self.is_leader(actor):
            return
        people = ", ".join(f"<@{u}>" for u in self.members()) or _("nobody named yet: set `surge.leaders`")
        if ending:
            message = _(
                "Only the leadership group ({people}) or a playbook admin can end the surge plan.", people=people
            )
        else:
            message = _(
                "Only the leadership group ({people}) or a playbook admin can dismiss the surge proposal.",
                people=people,
            )
        raise PermissionDeniedError(message)
