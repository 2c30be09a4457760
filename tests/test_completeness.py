"""Is the plan complete (seed 000: no step without an owner and a time limit)? `check-config` lists every gap as
a warning, field path first, and fails on them only with `--strict`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.core.completeness import completeness_findings
from bot.core.config import load_playbook_text
from tests.conftest import TEST_EDITS, playbook_text

# A deliberately incomplete plan: a security incident has no time limit, a complaint category has no route, and
# customer comms (who owns three complaint steps) has nobody by default.
INCOMPLETE = {
    **TEST_EDITS,
    (
        "    deadlines:\n      - {key: acknowledge, name: Lead acknowledges the incident, "
        "names: {zh-CN: 组长确认事件}, owner: lead, after: 5m, met_by: [ack]}\n"
        "      - {key: status_update, name: Status update, "
        "names: {zh-CN: 进展通报}, owner: lead, after: 30m, cadence: true}"
    ): "    deadlines: []",
    "policy: legal_compliance, ": "",
}
COMPLETE = {
    **TEST_EDITS,
    "aliases: [comms, customer_service, cs, 客户沟通, 客服]\n    default_owners: []": (
        "aliases: [comms, customer_service, cs, 客户沟通, 客服]\n    usergroup: S0COMMS01"
    ),
    "aliases: [legal, compliance, 法律合规]\n    default_owners: []": (
        "aliases: [legal, compliance, 法律合规]\n    default_owners: [ULEGAL00001]"
    ),
    "aliases: [financial, 财务]\n    default_owners: []": "aliases: [financial, 财务]\n    usergroup: S0FIN0001",
    "  leaders: []": "  leaders: [UBOSS000001]",
    "市场部, 营销]\n    default_owners: []": "市场部, 营销]\n    default_owners: [UMARKET0001]",
    "人力资源, 人力资源部]\n    default_owners: []": "人力资源, 人力资源部]\n    usergroup: S0HR00001",
}


def test_check_config_lists_every_gap_of_an_incomplete_plan_and_fails_on_them_only_when_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(playbook_text(**INCOMPLETE), encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    gaps = [line.removeprefix("  ! ") for line in out.splitlines() if line.startswith("  ! ")]
    assert "kinds.security.deadlines: none; no step of a security incident has a time limit" in gaps
    comms_steps = [g for g in gaps if g.startswith("kinds.complaint.deadlines.")]
    assert [g.split(":")[0] for g in comms_steps] == [
        "kinds.complaint.deadlines.0.owner",
        "kinds.complaint.deadlines.2.owner",
        "kinds.complaint.deadlines.3.owner",
    ]  # the investigation (1) follows its category's route; the lead's and tech support's steps have owners
    assert comms_steps[0] == (
        "kinds.complaint.deadlines.0.owner: 'first_response' is owned by 'customer_comms', which has no "
        "default_owners and no usergroup; nobody has this step until someone takes the role"
    )
    assert (
        "kinds.complaint.category_routes.policy: no route; a policy complaint's investigation goes to the "
        "deadline's own owner; add `policy: <role>`"
    ) in gaps
    assert (
        "kinds.complaint.category_routes.financial: routes to 'finance', which has no default_owners and no usergroup"
        in gaps
    )
    assert not any(g.startswith("kinds.complaint.category_routes.technical") for g in gaps)  # tech support is staffed
    assert not any(g.startswith("kinds.outage.category_routes") for g in gaps)  # outages are not routed by category
    assert (
        gaps.count(
            "escalation.levels.2 (Leadership group): pages the leadership group, which names nobody, so the "
            "members of #incident-leadership and the admins are paged; add surge.leaders: [U012ABCDEF] or "
            "surge.leaders_usergroup:"
        )
        == 1
    )  # said once, though playbook_warnings says it too
    assert main(["check-config", "--strict", str(path)]) == 1


def test_a_complete_plan_has_no_gaps_and_a_missing_notice_template_is_named_per_kind_stage_channel_and_locale() -> None:
    assert completeness_findings(load_playbook_text(playbook_text(**COMPLETE))) == []
    # a third notice locale the bank has not written templates for
    playbook = load_playbook_text(playbook_text(**COMPLETE, **{"locales: [zh-CN, en]": "locales: [zh-CN, en, zh-TW]"}))
    found = completeness_findings(playbook)
    assert (
        "kinds.complaint.notice_channels.hotline: no initial notice template in zh-TW "
        "(notices/zh-TW/initial/hotline.j2)" in found
    )
    assert "kinds.outage.notice_channels.status_page: no resolved notice template in zh-TW" in " ".join(found)
    assert not any(" in zh-CN " in f or " in en " in f for f in found)
    # 4 kinds' channels (complaint 4, outage/surge/security 5 each) × 4 stages, in the one missing locale
    assert len(found) == (4 + 5 * 3) * 4
