"""The playbook and the environment: what passes, and the errors a broken one gets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.config import ConfigError, Settings, load_playbook_text, parse_duration
from bot.core.i18n import use_locale
from tests.conftest import ROOT, playbook_text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(fragment: str) -> int:
    """The line of the shipped config.yaml where `fragment` first appears (1-based)."""
    lines = (ROOT / "config.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def test_the_shipped_playbook_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "config.yaml")]) == 0
    assert "OK — playbook 2026.11-3, 4 kinds, 9 roles, 4 severities" in capsys.readouterr().out


def test_check_config_names_the_field_and_line_of_an_unknown_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, playbook_text(**{"roles: [lead, tech_support, customer_comms, pr]": "roles: [lead, wizard, pr]"})
    )
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    line = line_of("roles: [lead, tech_support, customer_comms, pr]")
    assert f"kinds.outage.roles.1 (line {line}): unknown role 'wizard'" in err


def test_check_config_refuses_a_category_route_to_a_role_the_kind_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A financial complaint's investigation would go to Finance, which a complaint without it cannot hold."""
    roles = "roles: [lead, customer_comms, tech_support, legal_compliance, finance]"
    path = write(tmp_path, playbook_text(**{roles: "roles: [lead, customer_comms, tech_support, legal_compliance]"}))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "kinds.complaint.category_routes.financial (line " in err
    assert "'finance' is not one of this kind's roles (lead, customer_comms, tech_support, legal_compliance); " in err
    assert "add it to kinds.complaint.roles" in err


def test_check_config_refuses_a_negative_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, playbook_text(**{"owner: tech_support, after: 48h": "owner: tech_support, after: -48h"}))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    line = line_of("owner: tech_support, after: 48h")
    assert f"kinds.complaint.deadlines.1.after (line {line}): '-48h' must be positive" in err


def test_check_config_reports_a_missing_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path, playbook_text(**{"welcome_template: slack/welcome_surge.j2": "welcome_template: slack/nope.j2"})
    )
    assert main(["check-config", str(path)]) == 2
    assert "kinds.surge.welcome_template: 'slack/nope.j2': TemplateNotFound" in capsys.readouterr().err


def test_check_config_reports_a_missing_review_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, playbook_text(**{'  at: "10:00"': '  at: "10:00"\n  template: review/nope.md.j2'}))
    assert main(["check-config", str(path)]) == 2
    assert "review.template: 'review/nope.md.j2': TemplateNotFound" in capsys.readouterr().err


def test_check_config_lists_every_problem_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = playbook_text(
        **{"timezone: Asia/Shanghai": "timezone: Mars/Olympus", "default_severity: sev3": "default_severity: sev9"}
    )
    assert main(["check-config", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert f"timezone (line {line_of('timezone:')}): 'Mars/Olympus' is not a time zone name" in err
    line = line_of("default_severity: sev3")
    assert f"kinds.complaint.default_severity (line {line}): 'sev9' is not one of severities" in err


def test_yaml_syntax_errors_and_missing_files_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(write(tmp_path, "version: [unclosed\n"))]) == 2
    assert "(yaml) (line 2)" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_the_bot_refuses_to_start_with_a_broken_playbook(tmp_path: Path) -> None:
    path = write(tmp_path, playbook_text(**{"lead_role: lead": "lead_role: boss"}))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--offline"],
        env={"INCIDENT_DESK_CONFIG": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert f"lead_role (line {line_of('lead_role:')}): 'boss' is not one of roles" in result.stderr
    assert "offline demo" not in result.stdout


def test_unknown_keys_are_refused_rather_than_ignored() -> None:
    with pytest.raises(ConfigError) as exc:
        load_playbook_text(playbook_text(**{"locale: zh-CN": "locale: zh-CN\nlocael: zh-CN"}))
    line = line_of("locale: zh-CN") + 1
    assert any(p.startswith(f"locael (line {line}): Extra inputs are not permitted") for p in exc.value.problems)


@pytest.mark.parametrize(("text", "hours"), [("30m", 0.5), ("24h", 24), ("2d", 48), (72, 72), ("1.5h", 1.5)])
def test_durations(text: str | int, hours: float) -> None:
    assert parse_duration(text).total_seconds() == hours * 3600


def test_settings_come_from_the_environment_and_hide_secrets() -> None:
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-secret-value",
            "SLACK_SIGNING_SECRET": "sig-secret",
            "SLACK_API_URL": "http://127.0.0.1:9999/api",
            "PORT": "8080",
        }
    )
    assert settings.port == 8080 and settings.slack_api_url == "http://127.0.0.1:9999/api/"
    assert "xoxb-secret-value" not in repr(settings) and "sig-secret" not in repr(settings)
    with pytest.raises(ConfigError, match="PORT: 'eighty' is not a port number"):
        Settings.from_env({"PORT": "eighty"})


def test_running_against_slack_without_credentials_names_the_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INCIDENT_DESK_CONFIG", str(ROOT / "config.yaml"))
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN: not set" in err and "incident-desk run --offline" in err


COMPLAINT_CHANNELS = "    notice_channels: [hotline, email, complaint_system, internal]"


def test_check_config_refuses_a_notice_channel_a_kind_may_not_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, playbook_text(**{COMPLAINT_CHANNELS: "    notice_channels: [hotline, fax, status_page, internal]"})
    )
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    line = line_of(COMPLAINT_CHANNELS.strip())
    assert (
        f"kinds.complaint.notice_channels.1 (line {line}): 'fax' is not one of notices.channels "
        "(status_page, social, hotline, complaint_system, email, internal)"
    ) in err
    assert (
        f"kinds.complaint.notice_channels.2 (line {line}): 'status_page' is public, and this kind's notices answer "
        "one customer (notice_audience: customer); use hotline, email, complaint_system, internal"
    ) in err


def test_notice_channels_default_by_audience_when_a_kind_names_none() -> None:
    text = playbook_text(**{COMPLAINT_CHANNELS + "\n": ""})
    text = text.replace("    notice_channels: [status_page, social, hotline, email, internal]\n", "")
    playbook = load_playbook_text(text)
    assert playbook.kinds["complaint"].notice_channels is None
    assert playbook.notice_channels_for("complaint") == ("hotline", "complaint_system", "email", "internal")
    assert playbook.notice_channels_for("outage") == ("status_page", "social", "hotline", "email", "internal")
    # a playbook without a complaint system or notice settings at all still loads, with the channels it has
    bare = load_playbook_text(
        text.replace("    complaint_system: {webhook_url_env: COMPLAINT_SYSTEM_WEBHOOK_URL}\n", "")
    )
    assert bare.notice_channels_for("complaint") == ("hotline", "email", "internal")


def test_check_config_reports_a_missing_template_for_a_kinds_notice_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "bank-templates"
    (own / "notices" / "en" / "update").mkdir(parents=True)
    (own / "notices" / "en" / "update" / "complaint_system.j2").write_text(
        "{% include 'notices/en/update/nope.j2' %}", encoding="utf-8"
    )
    path = write(tmp_path, f"template_folder: {own}\n{playbook_text()}")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "notices.channels.complaint_system (en, update): 'notices/en/update/complaint_system.j2': TemplateNotFound"
    ) in err
    assert err.rstrip().endswith("(used by kinds complaint)")


def test_names_per_language_are_optional_and_fall_back_to_the_english_name() -> None:
    """A playbook without `names:` (a bank's own, older file) still loads; every reader then sees `name`."""
    text = (ROOT / "config.yaml").read_text(encoding="utf-8").replace("names: {zh-CN: 技术支持}", "")
    playbook = load_playbook_text(text)
    assert playbook.roles["tech_support"].name_in("zh-CN") == "Tech support"
    assert playbook.roles["lead"].name_in("zh-CN") == "事件组长"
    assert playbook.roles["lead"].name_in("en") == "Incident lead"
    assert playbook.severities["sev1"].name_in("zh-CN") == "特别重大"
    with use_locale("zh-CN"):
        assert playbook.deadline_name("complaint", "investigation", "Investigation finished") == "完成调查"
        # the same key in another kind has that kind's own name; an action item keeps the text typed for it
        assert playbook.deadline_name("surge", "report_marketing", "Marketing progress report") == "市场营销部进展报告"
        assert playbook.deadline_name("complaint", "action_3", "Alert on retries") == "Alert on retries"
        assert playbook.role_name("no_such_role") == "no_such_role"
    with use_locale("en"):  # the row's own name: the one it was created with
        assert playbook.deadline_name("complaint", "investigation", "Investigation done") == "Investigation done"


def test_the_surge_plan_must_name_a_kind_the_playbook_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, playbook_text(**{"  kind: surge\n  severity: sev2": "  kind: rush\n  severity: sev2"}))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "surge.kind" in err and "'rush' is not one of kinds" in err


def test_a_playbook_without_a_surge_section_or_kind_loads_with_the_surge_plan_off() -> None:
    text = playbook_text()
    text = text[: text.index("\nsurge:")]  # the section is the file's last
    text = text.replace("  surge:\n    name: Traffic surge", "  rush:\n    name: Traffic surge")
    assert load_playbook_text(text).surge.enabled is False
    assert load_playbook_text(playbook_text()).surge.enabled is True
