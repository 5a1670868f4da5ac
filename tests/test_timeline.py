"""The call page's timeline presenter (monitor/web/timeline.py): lanes, bar positions,
overtalk shading, raised-voice marks and finding marks, for stereo and mono calls. Pure
geometry: no app, no store, no model."""

from __future__ import annotations

import pytest

from monitor.models import Call, Finding, SpeakerRoles, Turn
from monitor.store.calls import StoredFinding
from monitor.web.timeline import LABEL_WIDTH, RIGHT_PAD, WIDTH, overtalk_spans, timeline

SPAN = WIDTH - LABEL_WIDTH - RIGHT_PAD


def _finding(rule: str, turn: int | None, start: float | None, category="abuse", severity="high", decision=None):
    return StoredFinding(f"f-{rule}", "c", Finding(rule, category, severity, turn, start, None, "…", True), "v1", True,
                         decision)


def _stereo() -> Call:
    """20 s: the collector talks over the debtor 3–4 s, shouts at 10 s; the debtor's turns
    at 3 s and 15 s. Turn 4 has no times (a gap in the recognition)."""
    return Call("c", (
        Turn("collector", "您好", 0.0, 4.0, speaker_source="channel", overtalk=1.0),
        Turn("debtor", "我没钱", 3.0, 6.0, speaker_source="channel", overtalk=1.0),
        Turn("collector", "你有病吧", 10.0, 12.0, speaker_source="channel", raised_voice=True, overtalk=0.0),
        Turn("debtor", "你凭什么骂人", 15.0, 20.0, speaker_source="channel", overtalk=0.0),
        Turn("collector", "（听不清）", speaker_source="channel"),
    ), duration=20.0)


def test_bars_sit_at_their_turns_times_one_lane_per_side():
    chart = timeline(_stereo(), [])
    assert [lane["label"] for lane in chart["lanes"]] == ["催收员", "债务人"]
    assert [lane["turns"] for lane in chart["lanes"]] == [2, 2]  # the untimed turn has no bar
    bars = {bar["turn"]: bar for bar in chart["bars"]}
    assert sorted(bars) == [0, 1, 2, 3]
    assert bars[0]["x"] == LABEL_WIDTH and bars[0]["w"] == pytest.approx(SPAN * 4 / 20, abs=0.1)
    assert bars[2]["x"] == pytest.approx(LABEL_WIDTH + SPAN * 10 / 20, abs=0.1)
    assert bars[3]["x"] + bars[3]["w"] == pytest.approx(WIDTH - RIGHT_PAD, abs=0.1)  # ends at the call's end
    collector, debtor = chart["lanes"]
    assert {bars[0]["y"], bars[2]["y"]} == {collector["y"]} and bars[1]["y"] == debtor["y"] > collector["y"]
    assert bars[1]["href"] == "#turn-1" and "抢话 1.0 秒" in bars[1]["title"]
    assert [t["label"] for t in chart["ticks"]] == ["0:00", "0:05", "0:10", "0:15", "0:20"]


def test_overtalk_is_shaded_and_raised_voice_marked():
    chart = timeline(_stereo(), [])
    [shade] = chart["overtalk"]
    assert shade["x"] == pytest.approx(LABEL_WIDTH + SPAN * 3 / 20, abs=0.1)
    assert shade["w"] == pytest.approx(SPAN * 1 / 20, abs=0.1)
    [raised] = chart["raised"]
    assert raised["turn"] == 2 and [b["turn"] for b in chart["bars"] if b["raised"]] == [2]
    assert "抢话 1 处" in chart["desc"] and "提高音量 1 段" in chart["desc"] and "双声道" in chart["desc"]


def test_every_finding_is_marked_at_its_turn_with_a_link_and_a_tooltip():
    findings = [_finding("abuse-a", 2, 10.0), _finding("abuse-b", 2, None, severity="medium", decision="dismissed"),
                _finding("threat-x", 0, 0.5, category="threat"), _finding("off-hours-night", None, None, "off_hours")]
    chart = timeline(_stereo(), findings, rule_title={"abuse-a": "辱骂：提高音量的贬损言语"}.get)
    marks = chart["marks"]
    assert len(marks) == 3 and chart["untimed"] == 1  # the night-call finding has no moment
    by_rule = {m["title"].split("规则 ")[1].split("（")[0]: m for m in marks}
    assert by_rule["abuse-a"]["href"] == by_rule["abuse-b"]["href"] == "#turn-2"
    assert by_rule["abuse-a"]["x"] == by_rule["abuse-b"]["x"] == pytest.approx(LABEL_WIDTH + SPAN * 10 / 20, abs=0.1)
    assert {by_rule["abuse-a"]["row"], by_rule["abuse-b"]["row"]} == {0, 1}  # stacked, not hidden
    assert by_rule["abuse-b"]["decision"] == "dismissed" and by_rule["abuse-b"]["severity"] == "medium"
    assert "辱骂：提高音量的贬损言语" in by_rule["abuse-a"]["title"] and "辱骂侮辱" in by_rule["abuse-a"]["title"]
    assert "威胁恐吓" in by_rule["threat-x"]["title"]
    assert chart["top"] > 2 * chart["mark_row"] - 1  # two rows of marks above the lanes
    assert "违规提示 3 条" in chart["desc"] and "另有 1 条" in chart["desc"]


def test_a_mono_call_whose_roles_are_unknown_gets_a_lane_per_voice():
    call = Call("m", (
        Turn("unknown", "喂", 0.0, 2.0, speaker_source="diarized", voice="A", overtalk=0.5),
        Turn("unknown", "你好", 1.5, 3.0, speaker_source="diarized", voice="B", overtalk=0.5),
        Turn("unknown", "还钱", 3.5, 5.0, speaker_source="diarized", voice="A", overtalk=0.0),
    ), duration=5.0, roles=SpeakerRoles(2, None, 0.0))
    chart = timeline(call, [])
    assert [lane["label"] for lane in chart["lanes"]] == ["未知·A", "未知·B"]
    assert len(chart["overtalk"]) == 1 and "未经人工确认" in chart["source"]
    roles = Call("m", tuple(Turn("collector" if t.voice == "A" else "debtor", t.text, t.start, t.end,
                                 speaker_source="diarized", voice=t.voice, overtalk=t.overtalk) for t in call.turns),
                 duration=5.0, roles=SpeakerRoles(2, "A", 1.0, confirmed_by="rita"))
    chart = timeline(roles, [])
    assert [lane["label"] for lane in chart["lanes"]] == ["催收员", "债务人"] and chart["source"] == "单声道录音，说话人按声音区分"


def test_overlap_the_signals_did_not_measure_is_not_shaded():
    turns = [Turn("collector", "a", 0.0, 2.0, speaker_source="channel", overtalk=0.0),
             Turn("debtor", "b", 1.5, 3.0, speaker_source="channel", overtalk=0.0),
             Turn("collector", "c", 4.0, 6.0), Turn("debtor", "d", 5.0, 7.0), Turn("debtor", "e", 5.5, 5.55)]
    assert overtalk_spans(turns) == [(5.0, 6.0)]  # no signals: the overlap of the turns is the overtalk


def test_a_call_without_turn_times_has_no_timeline():
    assert timeline(Call("t", (Turn("collector", "你这个废物"), Turn("debtor", "好的"))), []) is None
    assert timeline(Call("e", ()), []) is None
