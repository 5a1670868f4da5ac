"""The call page's timeline: who spoke when, as geometry for an inline SVG drawn on the
server (templates/timeline.html; no script, nothing fetched).

One lane per side: 催收员, 债务人, 未知 (a mono call whose roles are not decided yet gets
one 未知 lane per diarized voice, so the two voices stay apart). Each turn is a bar from
its start to its end and links to the turn in the transcript; overtalk is shaded across
the lanes, a raised-voice turn carries a mark above its bar, and every finding is marked
above the lanes at its turn's time, linking to that turn. A call without turn times
(a typed transcript) has no timeline: ``timeline`` returns None.
"""

from __future__ import annotations

from monitor import labels
# A shorter overlap is turn ends crossing, not overtalk: the signals' own limit.
from monitor.speech.signals import MIN_OVERTALK_SECONDS

from .present import clock as _clock

WIDTH = 1000  # the page scales it to the card's width (viewBox)
LABEL_WIDTH = 84  # room for 未知·A
RIGHT_PAD = 16  # the last tick's label is centred on the right edge
LANE_HEIGHT = 22
LANE_GAP = 8
MARK_ROW = 14  # one row of finding marks; findings of one turn stack in rows
MAX_MARK_ROWS = 4
AXIS_HEIGHT = 24
TICK_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_TICKS = 8

LANE_ORDER = ("collector", "debtor", "unknown")
LANE_LABELS = {"collector": "催收员", "debtor": "债务人", "unknown": "未知"}


def _timed(turn) -> bool:
    return turn.start is not None and turn.end is not None and turn.end > turn.start


def _side(turn) -> str:
    """Who is speaking, as the signals count sides: a diarized turn by its voice."""
    return turn.voice if turn.speaker_source == "diarized" and turn.voice else turn.speaker


def _lane(turn) -> tuple[str, str | None]:
    role = turn.speaker if turn.speaker in LANE_ORDER else "unknown"
    if role == "unknown" and turn.speaker_source == "diarized" and turn.voice:
        return role, turn.voice
    return role, None


def _lane_label(lane: tuple[str, str | None]) -> str:
    role, voice = lane
    return LANE_LABELS[role] + (f"·{voice}" if voice else "")


def overtalk_spans(turns) -> list[tuple[float, float]]:
    """Where turns of two sides overlap in time, merged. The signals measure overtalk per
    turn (seconds), not where it fell: an overlap of two turns is taken as overtalk
    unless the signals measured none on one of them (stereo turn times are looser than
    the channels' speech)."""
    timed = sorted((t for t in turns if _timed(t)), key=lambda t: t.start)
    spans = []
    for k, a in enumerate(timed):
        for b in timed[k + 1:]:
            if b.start >= a.end:
                break  # sorted by start: no later turn reaches back into a
            if _side(a) == _side(b) or any(t.overtalk is not None and t.overtalk <= 0 for t in (a, b)):
                continue
            start, end = b.start, min(a.end, b.end)
            if end - start >= MIN_OVERTALK_SECONDS:
                spans.append((start, end))
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _ticks(duration: float, x) -> list[dict]:
    step = next((s for s in TICK_STEPS if duration / s <= MAX_TICKS), TICK_STEPS[-1])
    return [{"x": x(n * step), "label": _tick_label(n * step)} for n in range(int(duration // step) + 1)]


def _tick_label(seconds: int) -> str:
    """Whole seconds on the axis (0:30, 1:00, 1:00:00): tenths would crowd it."""
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:{rest // 60:02d}" if hours else f"{rest // 60}") + f":{rest % 60:02d}"


def _source_text(call) -> str:
    sources = {t.speaker_source for t in call.turns}
    if "diarized" in sources:
        confirmed = call.roles is not None and call.roles.confirmed_by
        return "单声道录音，说话人按声音区分" + ("" if confirmed else "（未经人工确认）")
    if "channel" in sources:
        return "双声道录音，说话人按声道区分"
    return ""


def _finding_marks(call, findings, x, rule_title) -> tuple[list[dict], int, int]:
    """A mark per finding at its turn's time, the findings of one turn stacked in rows;
    how many findings have no moment (call-level: night call, frequency); how many rows."""
    marks, untimed, stacked = [], 0, {}
    for stored in findings:
        f = stored.finding
        turn = call.turns[f.turn] if f.turn is not None and 0 <= f.turn < len(call.turns) else None
        at = f.start if f.start is not None else (turn.start if turn is not None else None)
        if turn is None or at is None:
            untimed += 1
            continue
        row = min(stacked.get(f.turn, 0), MAX_MARK_ROWS - 1)
        stacked[f.turn] = stacked.get(f.turn, 0) + 1
        title = rule_title(f.rule)
        category = labels.CATEGORY_LABELS.get(f.category, f.category)
        marks.append({
            "x": x(at), "row": row, "cy": row * MARK_ROW + MARK_ROW / 2, "turn": f.turn, "start": at,
            "href": f"#turn-{f.turn}", "severity": f.severity, "decision": stored.decision or "open",
            "title": f"{_clock(at)} {title + ' · ' if title else ''}规则 {f.rule}（{category}，"
                     f"{labels.SEVERITY_LABELS.get(f.severity, f.severity)}）",
        })
    return marks, untimed, min(max(stacked.values(), default=1), MAX_MARK_ROWS)


def _lanes(timed, top: float) -> list[dict]:
    keys = sorted({_lane(t) for _, t in timed}, key=lambda k: (LANE_ORDER.index(k[0]), k[1] or ""))
    return [{"key": k, "label": _lane_label(k), "role": k[0], "y": top + n * (LANE_HEIGHT + LANE_GAP), "turns": 0}
            for n, k in enumerate(keys)]


def _bars(timed, lanes: list[dict], x) -> tuple[list[dict], list[dict]]:
    """A bar per timed turn in its lane (counted there), and a mark above each raised one."""
    lane_of = {lane["key"]: lane for lane in lanes}
    bars, raised = [], []
    for i, turn in timed:
        lane = lane_of[_lane(turn)]
        lane["turns"] += 1
        left, right = x(turn.start), x(turn.end)
        title = f"{lane['label']} {_clock(turn.start)}–{_clock(turn.end)}"
        if turn.raised_voice:
            title += "，提高音量"
        if turn.overtalk:
            title += f"，抢话 {turn.overtalk:.1f} 秒"
        bars.append({"x": left, "w": max(1.0, round(right - left, 1)), "y": lane["y"], "role": lane["role"],
                     "turn": i, "href": f"#turn-{i}", "raised": turn.raised_voice, "title": title})
        if turn.raised_voice:
            middle, y = round((left + right) / 2, 1), lane["y"]
            raised.append({"turn": i, "points": f"{middle - 5},{y - 3} {middle + 5},{y - 3} {middle},{y + 5}",
                           "title": f"{_clock(turn.start)} 提高音量"})
    return bars, raised


def timeline(call, findings, rule_title=lambda rule: None) -> dict | None:
    """The geometry of ``call``'s timeline with ``findings`` (stored findings: ``.id``,
    ``.finding``, ``.decision``) marked, or None when no turn has times. ``rule_title``
    gives a rule's Chinese title for the tooltips (None: the rule id alone)."""
    timed = [(i, t) for i, t in enumerate(call.turns) if _timed(t)]
    if not timed:
        return None
    duration = max([call.duration or 0.0] + [t.end for _, t in timed])
    span = WIDTH - LABEL_WIDTH - RIGHT_PAD

    def x(seconds: float) -> float:
        return round(LABEL_WIDTH + span * min(max(seconds, 0.0), duration) / duration, 1)

    marks, untimed, rows = _finding_marks(call, findings, x, rule_title)
    top = rows * MARK_ROW + 4  # the marks' band sits above the lanes
    lanes = _lanes(timed, top)
    bars, raised = _bars(timed, lanes, x)
    bottom = lanes[-1]["y"] + LANE_HEIGHT
    spans = overtalk_spans(t for _, t in timed)
    shaded = [{"x": x(s), "w": max(1.0, round(x(e) - x(s), 1)), "title": f"抢话 {_clock(s)}–{_clock(e)}（{e - s:.1f} 秒）"}
              for s, e in spans]
    source = _source_text(call)
    desc = (f"{source + '。' if source else ''}时长 {_clock(duration)}。每段话一条横条："
            + "、".join(f"{lane['label']} {lane['turns']} 段" for lane in lanes)
            + f"。抢话 {len(spans)} 处，共 {sum(e - s for s, e in spans):.1f} 秒；提高音量 {len(raised)} 段；"
            + f"违规提示 {len(marks)} 条，标在所在话轮的时间上"
            + (f"；另有 {untimed} 条针对整通电话的提示不在时间轴上" if untimed else "") + "。")
    return {
        "width": WIDTH, "height": bottom + AXIS_HEIGHT, "x0": LABEL_WIDTH, "x1": WIDTH - RIGHT_PAD, "top": top,
        "bottom": bottom, "lane_height": LANE_HEIGHT, "mark_row": MARK_ROW, "lanes": lanes, "bars": bars,
        "overtalk": shaded, "raised": raised, "marks": marks, "ticks": _ticks(duration, x), "duration": duration,
        "source": source, "untimed": untimed, "roles": list(dict.fromkeys(lane["role"] for lane in lanes)),
        "role_labels": LANE_LABELS, "label": f"通话时间轴：谁在什么时候说话（{_clock(duration)}）", "desc": desc,
    }


__all__ = ["timeline", "overtalk_spans"]
