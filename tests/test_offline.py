"""The README's main command without a workspace: the offline demo plays a whole incident, in the shipped
playbook's Chinese by default and in English with `--lang en`, the same story in both."""

from __future__ import annotations

import io
import json
import re
import urllib.request
from datetime import UTC, datetime

import pytest

from bot.core.config import load_playbook
from bot.offline import run_demo
from tests.conftest import ROOT, Stack

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # both runs start at 10:00 Beijing time, so their times match


@pytest.fixture(scope="module")
def transcripts() -> dict[str, str]:
    """The demo played once per language: the default (the shipped playbook's zh-CN) and `--lang en`."""
    played = {}
    for lang in (None, "en"):
        out = io.StringIO()
        assert run_demo(load_playbook(ROOT / "config.yaml"), out, lang=lang, start=START) == 0
        played[lang or "default"] = out.getvalue()
    return played


def test_the_offline_demo_plays_a_complaint_from_report_to_close(transcripts: dict[str, str]) -> None:
    transcript = transcripts["en"]
    assert "> Mei Chen in #customer-service: /complaint Customer card ****7890" in transcript
    assert "(only Mei Chen sees) :rotating_light: Opened incident *#1* in #inc-" in transcript
    assert "*Incident lead*: @Mei Chen (the reporter, in charge until they hand over" in transcript
    assert "(only Li Wei sees) Only participants (#inc-" in transcript
    assert "(only Mei Chen sees) #1 is investigating; resolve it first" in transcript
    assert "@Mei Chen closed the incident." in transcript
    assert "*Timeline of #1*" in transcript
    assert "topic: SEV2 Customer complaint | Customer card ****7890" in transcript
    assert "[DM with Mei Chen] incident-desk: :rotating_light: *Page for #1*: severity raised to SEV2" in transcript
    assert "[DM with Zhang Tao] incident-desk: :rotating_light:" not in transcript  # who raised it is not paged
    assert "@Mei Chen acknowledged *severity raised to SEV2* after 0m; paging stopped." in transcript
    assert "[DM with Wang Fang] incident-desk: :alarm_clock: Reminder: *First response to the customer*" in transcript
    assert "@Wang Fang marked *First response to the customer* done (12h 0m to spare)." in transcript
    assert "(only Wang Fang sees) #1 is SEV2: its notices need an approval by Legal & compliance" in transcript
    assert ":white_check_mark: Internal broadcast: posted in #announcements" in transcript
    # the complaint is answered to its customer (hotline script, complaint system), never on the status page
    assert "(only Wang Fang sees) Customer complaint notices do not go to `status_page`" in transcript
    assert ":white_check_mark: Complaint system: http 200" in transcript
    answer = transcript.split("The bank's complaint system received notice #1 (update):\n")[1]
    assert answer.startswith("        投诉#1（客户投诉）处理中")
    assert "clearing job" not in answer.split("\n\n")[0]  # the engineer's update stays internal
    assert "The public status page (http://127.0.0.1:" in transcript
    assert "shows 0 incidents, status 'ok': a single customer's complaint is answered to that customer" in transcript
    assert "@Wang Fang recorded the customer's satisfaction: *5/5*" in transcript
    assert "# Post-incident review: #1 Customer card `****7890` debited twice" in transcript
    assert "| Satisfaction follow-up | @Wang Fang | " in transcript
    assert "deadlines: 4 met, 0 missed" in transcript  # solution communicated by the resolved notice
    assert "*Final summary of #1*" in transcript and "#inc-20" in transcript.split("(archived)")[0][-80:]
    assert "6222021234567890" not in transcript and "13812345678" not in transcript
    # the demo ends with a short drill at high speed, scored in its channel
    assert "/incident drill payment-outage 600" in transcript and "[#drill-inc-20261124-4-" in transcript
    assert (
        "[DRILL] :mega: *Complaint* (T+5m): Complaint: a customer's QR payment failed three times and card ****0123"
        in (transcript)
    )
    assert (
        "[DRILL] :clipboard: *Drill scorecard: Payment outage* (speed 600×): 3 on time, 0 late, 4 missed." in transcript
    )
    assert ":white_check_mark: Role taken: Tech support: @Zhang Tao at T+0m (limit 10m), on time" in transcript
    assert ":x: Incident resolved (Incident lead): missed (limit 2h 0m)" in transcript


def test_the_demo_speaks_chinese_by_default(transcripts: dict[str, str]) -> None:
    transcript = transcripts["default"]
    assert transcript.startswith("incident-desk 离线演示：本机回环上的 Slack 沙箱")
    assert (
        "> 陈梅 在 #customer-service：/complaint 客户卡号****7890同一笔转账被重复扣款，联系电话138****5678"
        in transcript
    )
    assert "（仅陈梅可见）:rotating_light: 已在 #inc-20261124-1-" in transcript
    assert "创建事件 *#1*。您已被邀请；那里的卡片列出了各角色。" in transcript
    assert "*本投诉的处理流程*（预案 2026.11-3）" in transcript
    assert ":rotating_light: @张涛 将级别从 *SEV3* 调整为 *SEV2*。" in transcript
    assert "[与王芳的私信] incident-desk: :alarm_clock: 提醒：#1（客户卡号****7890" in transcript
    assert "将于 2026-11-25 10:00 北京时间 到期" in transcript
    assert "……十二小时后（演示拨快了时钟；机器人的调度器处理到期的事项）……" in transcript
    assert "# 事件回顾：#1 客户卡号`****7890`同一笔转账被重复扣款" in transcript
    assert ":checkered_flag: *#1 最终总结* — SEV2 客户投诉：客户卡号****7890" in transcript
    assert "……演练：支付系统故障情景，600 倍速（一分钟演练十小时的预案）……" in transcript
    assert (
        "[演练] :clipboard: *演练评分表：支付系统故障*（速度 600 倍）：按时 3 项，超时 0 项，未完成 4 项。"
        in transcript
    )
    assert "各频道现在的内容" in transcript and "（已归档） — 主题：SEV2 客户投诉 | 客户卡号****7890" in transcript
    assert "CST" not in transcript and "6222021234567890" not in transcript and "13812345678" not in transcript
    # Liu Yang reads Slack in English: what only they see is English, what the channel shows stays Chinese.
    theirs = [line for line in transcript.splitlines() if line.lstrip().startswith("（仅刘洋可见）")]
    assert all(not re.search(r"[\u4e00-\u9fff]", line.split("）", 1)[1]) for line in theirs)
    # ...the demo shows it: his Approve click is answered (in English), and so is his rating DM.
    assert (
        "（仅刘洋可见）:white_check_mark: You approved the *update* notice of #1; it can be published now." in theirs[0]
    )
    assert "[与刘洋的私信] incident-desk: #1 is resolved. How well did the response go, 1 (badly) to 5" in transcript
    assert "[与王芳的私信] incident-desk: 事件 #1 已解决。您如何评价本次处置？" in transcript  # hers stays Chinese
    # Mostly Chinese: most lines the bot or a person wrote carry Chinese characters.
    lines = [line for line in transcript.splitlines() if line.strip()]
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", line)) for line in lines) > 0.6 * len(lines)


def test_both_languages_tell_the_same_story(transcripts: dict[str, str]) -> None:
    """The same severities, times, numbers and people, one spelling per language."""
    zh, en = transcripts["default"], transcripts["en"]

    def figures(text: str, pattern: str) -> list[str]:
        return re.findall(pattern, text)

    for pattern in (r"\bSEV\d\b", r"\b\d{2}-\d{2} \d{2}:\d{2}\b", r"\b2026-\d{2}-\d{2} \d{2}:\d{2}\b", r"#\d+\b"):
        assert sorted(set(figures(zh, pattern))) == sorted(set(figures(en, pattern))), pattern
    for text in (zh, en):  # severities have one spelling (SEV2) in what the bot writes; `sev 2` is typed
        assert not re.search(r"\bsev\d", "\n".join(line for line in text.splitlines() if "/incident sev" not in line))
    assert "2026-11-25 10:00 UTC+8" in en and "2026-11-25 10:00 北京时间" in zh
    people_en = ("Mei Chen", "Li Wei", "Zhang Tao", "Wang Fang", "Liu Yang")
    people_zh = ("陈梅", "李伟", "张涛", "王芳", "刘洋")
    for en_name, zh_name in zip(people_en, people_zh, strict=True):
        assert f"> {en_name} in " in en and f"> {zh_name} 在 " in zh
        assert zh_name not in en and en_name not in zh


def test_the_demo_plays_a_surge_from_the_intake_burst_to_the_summary(transcripts: dict[str, str]) -> None:
    """Seed 004 in both languages: complaints through the intake API cross the demo's line (20 in 10 minutes),
    the proposal reaches the leadership channel, Li Wei activates, the departments get their duties and the
    diversion notice is drafted, customer service reports, volume falls, End is suggested and clicked, and the
    summary counts what the intake recorded."""
    en, zh = transcripts["en"], transcripts["default"]
    act = en.split("A surge (the customer diversion plan)")[1].split("The channels as they read now")[0]
    assert 'The intake API answered: {"number": 1, "external_id": "CMS-' in act
    assert "the card ****7890 transfer outage" in act  # masked in the API's answer too
    assert "[#incident-leadership] incident-desk: :rotating_light: *Surge warning line reached*" in act
    assert "20 complaints in 10m (warning line 20), crossed at 22:06 UTC+8." in act
    assert "By contact channel: phone 10, mobile app 5, online chat 5" in act
    assert "[DM with Li Wei] incident-desk: :rotating_light: The surge warning line is reached" in act
    assert "> Li Wei in #incident-leadership: clicks [Activate]" in act
    # the burst is in one category: the intake's cluster rule (5 in 30 min) opens one incident, #2, the rest join it
    assert "[#incident-intake] incident-desk: :rotating_light: The complaint intake opened incident #2 " in act
    assert re.search(r":inbox_tray: Complaint #6 \([a-z ]+, service\) joined this incident", act)
    assert " INFO " not in act  # the transcript, not the log
    assert "(only Li Wei sees) Surge plan activated: #3 #inc-" in act
    assert "*Surge plan activated: each department's duties*" in act
    assert "• *Customer service* (@Mei Chen): Activation: add agents" in act
    assert "== Customer notice for #3: diversion ==" in act
    assert "*Update* from @Mei Chen: 20 more agents on the phones" in act
    assert "has stayed below every warning line for 30 min" in act
    assert "> Li Wei in #incident-leadership: clicks [End the surge plan]" in act
    summary = act.split("*Summary of the surge plan #3*")[1]
    for line in (
        "Warning line crossed at 22:06:28; proposed at 22:06:28; activated at 22:08:08 by @Li Wei.",
        "• Before (the hour before the crossing): 19",
        "• During (from the crossing until volume last reached a warning line at 22:07): 5",
        "• After (from then until the end): 0",
        "• Peak: 24 in 10m (warning line 20)",
        "• *Customer service* (@Mei Chen): 1 report, 0 late",
        "• *Tech support* (@Zhang Tao): 0 reports, 0 late",
    ):
        assert line in summary, line
    # the same act in Chinese, with the same figures
    act = zh.split("业务激增（客户分流预案）")[1].split("各频道现在的内容")[0]
    assert "[#incident-leadership] incident-desk: :rotating_light: *投诉量已达到预警线*" in act
    assert "10分钟内投诉 20 件（预警线 20），22:06 北京时间 达到预警线。" in act
    assert "> 李伟 在 #incident-leadership：点击 [启动预案]" in act
    assert "（仅李伟可见）分流预案已启动：#3 #inc-" in act
    assert "*分流预案已启动：各部门职责*" in act and "== #3 的客户公告：客户分流 ==" in act
    assert "> 李伟 在 #incident-leadership：点击 [结束分流预案]" in act
    summary = act.split("*分流预案 #3 总结*")[1]
    for line in (
        "22:06:28 超过预警线；22:06:28 提出启动建议；22:08:08 由 @李伟 启动。",
        "• 之前（超过预警线前一小时）：19",
        "• 期间（从超过预警线到 22:07 最后一次达到预警线）：5",
        "• 之后（从那时到结束）：0",
        "• 峰值：10分钟 内 24 件（预警线 20）",
        "• *客户服务部*（@陈梅）：报告 1 次，逾期 0 次",
    ):
        assert line in summary, line
    assert "6222021234567890" not in zh + en


def test_healthz_answers_in_http_mode(stack: Stack) -> None:
    with urllib.request.urlopen(stack.http.url + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"ok": True, "database": "ok"}
