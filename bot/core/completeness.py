"""Is the plan complete? Every step has someone to do it and a time limit, every notice a template, every
complaint category a route, every escalation level someone to page (seed 000: no step without an owner and a
time limit).

Findings, not errors: the playbook loads (the shipped one has no people in it until a bank fills them in).
`incident-desk check-config` prints one line per finding, field path first (`--strict` makes them fail), and
the bot logs them as warnings at start-up. Operator-facing: English, like bot/core/config.py's warnings.
"""

from __future__ import annotations

from bot.core.config import NOTICE_STAGES, Playbook, leadership_level_gaps
from bot.core.render import Renderer


def _staffed(playbook: Playbook, role: str) -> bool:
    """Someone holds `role` from the start: its default owners or usergroup (the lead is at least the reporter)."""
    spec = playbook.roles.get(role)
    return role == playbook.lead_role or (spec is not None and bool(spec.default_owners or spec.usergroup))


def owner_findings(playbook: Playbook) -> list[str]:
    """Steps (deadlines) whose owner role has nobody by default, and kinds with no time limit at all."""
    found = []
    for key, kind in playbook.kinds.items():
        if not kind.deadlines:
            found.append(f"kinds.{key}.deadlines: none; no step of a {key} incident has a time limit")
        for i, deadline in enumerate(kind.deadlines):
            if deadline.route_by_category:
                continue  # its owner comes from the category's route (checked below)
            if not _staffed(playbook, deadline.owner):
                found.append(
                    f"kinds.{key}.deadlines.{i}.owner: {deadline.key!r} is owned by {deadline.owner!r}, which has no "
                    "default_owners and no usergroup; nobody has this step until someone takes the role"
                )
    return found


def route_findings(playbook: Playbook) -> list[str]:
    """Complaint categories with no route, and routes to nobody. Complaint categories: those of a kind that routes
    work by category (category_routes, or a deadline with route_by_category) or answers one customer
    (notice_audience: customer); an outage's categories only describe it."""
    found = []
    for key, kind in playbook.kinds.items():
        routed = (
            kind.category_routes
            or any(d.route_by_category for d in kind.deadlines)
            or kind.notice_audience == "customer"
        )
        if not routed:
            continue
        for category in kind.categories:
            role = kind.category_routes.get(category)
            if role is None:
                found.append(
                    f"kinds.{key}.category_routes.{category}: no route; a {category} complaint's investigation goes "
                    f"to the deadline's own owner; add `{category}: <role>`"
                )
            elif not _staffed(playbook, role):
                found.append(
                    f"kinds.{key}.category_routes.{category}: routes to {role!r}, which has no default_owners and no "
                    "usergroup"
                )
    return found


def escalation_findings(playbook: Playbook) -> list[str]:
    """Escalation levels that page nobody."""
    found: list[str] = []
    for i, level in enumerate(playbook.escalation.levels):
        if level.owner or level.users or level.usergroup:
            continue
        if level.leadership:
            found += leadership_level_gaps(playbook, i, level)
            continue
        if level.role is not None and _staffed(playbook, level.role):
            continue
        who = f"only whoever holds {level.role!r}, which has no default owner" if level.role else "nobody"
        found.append(f"escalation.levels.{i} ({level.name}): reaches {who}; add users: [U012ABCDEF] or usergroup:")
    return found


def template_findings(playbook: Playbook, renderer: Renderer) -> list[str]:
    """Each kind × stage × notice channel × locale without a notice template."""
    loader = renderer.plain_env.loader
    present = set(loader.list_templates()) if loader is not None else set()
    found = []
    for key in playbook.kinds:
        for channel in playbook.notice_channels_for(key):
            for stage in NOTICE_STAGES:
                for locale in playbook.notices.locales:
                    name = playbook.notices.template(locale, stage, channel)
                    if name not in present:
                        found.append(
                            f"kinds.{key}.notice_channels.{channel}: no {stage} notice template in {locale} ({name})"
                        )
    return found


def completeness_findings(playbook: Playbook, renderer: Renderer | None = None) -> list[str]:
    """Every gap in the plan, one line each, field path first."""
    renderer = renderer or Renderer(playbook.timezone, playbook.template_folder)
    return [
        *owner_findings(playbook),
        *template_findings(playbook, renderer),
        *route_findings(playbook),
        *escalation_findings(playbook),
    ]
