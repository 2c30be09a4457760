"""The public status page in a real headless browser (Debian's chromium), its Atom feed and JSON; and
check-config on notice templates."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import feedparser
import pytest

from bot.cli import main
from bot.sandbox.driver import click_button
from tests.conftest import COMMS, LEAD, ROOT, TECH, Stack, playbook_text
from tests.test_notices import get, preview

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "artifacts"


def publish(stack: Stack, channel: str, user: str, words: str) -> None:
    stack.driver.slash(user, channel, f"notice {words}")
    click_button(stack.driver, user, channel, preview(stack, channel).ts, "Publish")
    assert stack.texts(channel)[-1].startswith(f":loudspeaker: <@{user}> published"), stack.texts(channel)[-1]


def two_incidents(stack: Stack) -> None:
    """#1 ongoing with an initial notice; #2 resolved with initial and resolved notices (history)."""
    first = stack.open("outage sev3 Card <script>alert(1)</script> 6222021234567890123 declined").id
    stack.join(first, COMMS)
    stack.driver.slash(COMMS, first, "assign comms me")
    publish(stack, first, COMMS, "initial status_page")
    stack.clock.sleep(600)
    second = stack.open("outage sev3 Transfers delayed").id
    publish(stack, second, TECH, "initial status_page")
    stack.clock.sleep(1800)
    stack.driver.slash(LEAD, second, "resolve Queue consumer restarted; all transfers completed")
    publish(stack, second, TECH, "resolved status_page")


def chromium(*args: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_the_status_page_renders_in_a_browser_in_both_locales(stack: Stack) -> None:
    two_incidents(stack)
    url = stack.http.url + "/status"

    dom = chromium("--dump-dom", url)
    assert '<html lang="zh-CN">' in dom
    assert "示例银行服务状态 · Example Bank service status" in dom
    assert '<div class="banner degraded" id="banner">部分服务受到影响，我们正在全力处理 · Some services' in dom
    current, _, history = dom.partition("历史公告")
    assert 'id="incident-1"' in current and 'id="incident-2"' in history
    assert (
        '<div class="notice" lang="zh-CN">【服务公告】系统服务异常\n尊敬的客户：我行于2026-11-24 10:00发现Card '
        in current
    )
    assert (
        '<div class="notice" lang="en">[Service notice] Service disruption\nDear customer, at 2026-11-24 10:00'
        in current
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in current and "<script>alert" not in dom
    assert "6222021234567890123" not in dom
    assert '<div class="notice" lang="zh-CN">【恢复公告】Transfers delayed已于2026-11-24 10:40处理完毕' in history
    assert "the service is back to normal" in history
    assert "Queue consumer restarted" not in dom  # the resolution summary is internal; customers get the template

    english = chromium("--dump-dom", url + "?lang=en")
    assert '<html lang="en">' in english and "尊敬的客户" not in english
    assert "<title>Example Bank service status</title>" in english

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)
    chromium("--window-size=390,1400", f"--screenshot={shot}", url)  # a phone-sized viewport
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 390
    assert len(data) > 20_000  # a page with text on it, not a blank one


def test_the_atom_feed_parses_and_the_json_lists_what_was_published(stack: Stack) -> None:
    two_incidents(stack)
    feed = feedparser.parse(get(stack, "/status/feed.atom"))
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.title == "示例银行服务状态 · Example Bank service status"
    assert [entry.title for entry in feed.entries] == [
        "恢复公告 / Resolved: 系统服务异常 / Service disruption",
        "服务公告 / Service notice: 系统服务异常 / Service disruption",
        "服务公告 / Service notice: 系统服务异常 / Service disruption",
    ]
    assert feed.entries[2].link.endswith("/status#incident-1")
    assert "<script>alert(1)</script>" in feed.entries[2].summary  # text content, escaped by the XML itself
    assert "6222021234567890123" not in json.dumps(feed.entries, default=str)

    data = json.loads(get(stack, "/status.json"))
    assert data["status"] == "degraded"
    assert [(i["number"], i["status"], [n["stage"] for n in i["notices"]]) for i in data["incidents"]] == [
        (2, "resolved", ["resolved", "initial"]),
        (1, "ongoing", ["initial"]),
    ]
    assert data["incidents"][0]["kind"] == {"zh-CN": "系统服务异常", "en": "Service disruption"}


def test_an_empty_status_page_says_all_is_well(stack: Stack) -> None:
    stack.open()  # opened, but nothing published: customers see nothing of it
    page = get(stack, "/status?lang=zh-CN").decode()
    assert '<div class="banner ok" id="banner">所有服务运行正常</div>' in page
    assert "暂无历史公告" in page
    assert json.loads(get(stack, "/status.json"))["incidents"] == []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_reports_missing_and_broken_notice_templates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A locale the shipped templates do not have: every stage and channel is reported missing.
    path = write(tmp_path, playbook_text(**{"  locales: [zh-CN, en]": "  locales: [zh-CN, en, zh-HK]"}))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "notices.channels.status_page (zh-HK, initial): 'notices/zh-HK/initial/status_page.j2': TemplateNotFound" in err
    )
    assert err.count("TemplateNotFound") == 24  # the 6 channels the kinds use x 4 stages

    # The bank's own folder adds the locale, without code changes; one template uses a field that does not exist.
    own = tmp_path / "bank-templates"
    for stage in ("initial", "update", "resolved", "diversion"):
        shutil.copytree(ROOT / "templates" / "notices" / "zh-CN" / stage, own / "notices" / "zh-HK" / stage)
    (own / "notices" / "zh-HK" / "update" / "social.j2").write_text("{{ bank_nmae }}：{{ update }}", encoding="utf-8")
    text = playbook_text(**{"  locales: [zh-CN, en]": "  locales: [zh-CN, en, zh-HK]"})
    path = write(tmp_path, f"template_folder: {own}\n{text}")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n  - ") == 1
    assert "notices.channels.social (zh-HK, update): 'notices/zh-HK/update/social.j2': UndefinedError: " in err
    assert "'bank_nmae' is undefined" in err

    # An internal update is not offered to notice templates (customers get the template's own wording).
    (own / "notices" / "zh-HK" / "update" / "social.j2").write_text("{{ bank_name }}：{{ update }}", encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    assert "'update' is undefined" in capsys.readouterr().err
    (own / "notices" / "zh-HK" / "update" / "social.j2").write_text(
        "{{ bank_name }}：{{ kind_name }}", encoding="utf-8"
    )
    assert main(["check-config", str(path)]) == 0


def test_every_time_on_the_status_page_says_its_zone(stack: Stack) -> None:
    """A customer reads the page anywhere: 10:00 is 北京时间 (UTC+8 in English), never a bare clock."""
    two_incidents(stack)
    chinese = get(stack, "/status?lang=zh-CN").decode()
    english = get(stack, "/status?lang=en").decode()
    assert re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?! (?:北京时间|UTC\+8))", _times(chinese)) == []
    assert re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?! UTC\+8)", _times(english)) == []
    assert "UTC+8" in english


def _times(page: str) -> str:
    """The page's own time stamps (the notices' bodies quote their own times, as written)."""
    stamps = re.findall(r'<p class="meta">[^<]*</p>|<footer>[^<]*</footer>', page)
    assert stamps, "the page shows when each incident began and when it was generated"
    return " ".join(stamps)
