"""The README's main command without a workspace: the offline demo plays a whole incident."""

from __future__ import annotations

import io
import json
import urllib.request

from bot.core.config import load_playbook
from bot.offline import run_demo
from tests.conftest import ROOT, Stack


def test_the_offline_demo_plays_a_complaint_from_report_to_close() -> None:
    out = io.StringIO()
    assert run_demo(load_playbook(ROOT / "config.yaml"), out) == 0
    transcript = out.getvalue()
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
    assert "shows 0 incident(s), status 'ok': a single customer's complaint is answered to that customer" in transcript
    assert "@Wang Fang recorded the customer's satisfaction: *5/5*" in transcript
    assert "# Post-incident review: #1 Customer card `****7890` debited twice" in transcript
    assert "| Satisfaction follow-up | @Wang Fang | " in transcript
    assert "deadlines: 4 met, 0 missed" in transcript  # solution communicated by the resolved notice
    assert "*Final summary of #1*" in transcript and "#inc-20" in transcript.split("(archived)")[0][-80:]
    assert "6222021234567890" not in transcript and "13812345678" not in transcript


def test_healthz_answers_in_http_mode(stack: Stack) -> None:
    with urllib.request.urlopen(stack.http.url + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"ok": True, "database": "ok"}
