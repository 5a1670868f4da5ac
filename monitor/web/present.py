"""How things read on the page: Chinese labels, times, highlighted evidence, bar charts
(inline SVG drawn on the server: no script, nothing fetched from outside)."""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime

from monitor import labels, times

CATEGORY_LABELS, SEVERITY_LABELS, SPEAKER_LABELS = labels.CATEGORY_LABELS, labels.SEVERITY_LABELS, labels.SPEAKER_LABELS
UPLOAD_STATUS_LABELS = {"queued": "排队等待", "processing": "正在分析", "done": "分析完成", "failed": "分析失败"}
DECISION_LABELS = {None: "待审核", "confirmed": "已确认违规", "dismissed": "已驳回"}
DIRECTION_LABELS = {"outbound": "催收方打出", "inbound": "债务人打入"}
ORIGIN_LABELS = {"batch": "批量导入", "staff": "人工上传", "debtor": "债务人提交", "api": "接口提交"}
CHANNEL_LABELS = {"left": "左声道", "right": "右声道", "unknown": "不清楚 / 单声道"}
# The keys monitor/reports.py knows (classify_lender); the words a debtor reads.
LENDER_TYPES = {
    "credit_card": "银行信用卡",
    "bank": "银行贷款",
    "consumer_finance": "消费金融公司",
    "online_platform": "网络借贷平台 / 借钱 App",
    "micro_lender": "小额贷款公司",
    "unknown": "不清楚",
}
CALL_STATUS_LABELS = {"transcribed": "已转写，待检查", "done": "已分析", "failed": "无法分析"}


def clock(seconds: float | None) -> str:
    return times.clock(seconds, missing="--:--")


def local_time(value: str | None) -> str:
    """An ISO time as ``2025-03-01 21:30`` (the call's own offset, as stored)."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M")


def json_list(value) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    return json.loads(value or "[]")


def _folded(text: str) -> tuple[str, list[int]]:
    """``text`` without spaces and punctuation, lower-cased, and where each kept
    character came from: matched words are normalised and may differ in those."""
    kept, where = [], []
    for index, char in enumerate(text):
        if char.isspace() or unicodedata.category(char)[0] in "PZS":
            continue
        kept.append(char.lower())
        where.append(index)
    return "".join(kept), where


def locate(text: str, matched: str | None) -> tuple[int, int] | None:
    """Where the words that triggered a rule are in a turn's text, if they are."""
    if not matched:
        return None
    found = text.find(matched)
    if found >= 0:
        return found, found + len(matched)
    folded, where = _folded(text)
    needle, _ = _folded(matched)
    found = folded.find(needle) if needle else -1
    if found < 0:
        return None
    return where[found], where[found + len(needle) - 1] + 1


def highlight(text: str, marks: list[tuple[str | None, str]]) -> list[tuple[str, list[str]]]:
    """Split ``text`` into segments, each with the finding ids whose evidence covers it.
    ``marks`` are (matched words, finding id) pairs."""
    spans = []
    for matched, finding_id in marks:
        place = locate(text, matched)
        if place:
            spans.append((place[0], place[1], finding_id))
    if not spans:
        return [(text, [])]
    cuts = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    segments = []
    for start, end in zip(cuts, cuts[1:]):
        ids = [fid for s, e, fid in spans if s <= start and end <= e]
        if segments and segments[-1][1] == ids:
            segments[-1] = (segments[-1][0] + text[start:end], ids)
        else:
            segments.append((text[start:end], ids))
    return segments


def bars(rows: list[tuple[str, int, int]], width: int = 520, bar_height: int = 22, label_width: int = 150) -> dict:
    """Geometry for a horizontal bar chart: rows of (label, total, confirmed)."""
    top = max((total for _, total, _ in rows), default=0) or 1
    span = width - label_width - 120  # room for the value, e.g. 12（确认 3）
    items = []
    for i, (label, total, confirmed) in enumerate(rows):
        items.append({
            "label": label, "total": total, "confirmed": confirmed, "y": i * (bar_height + 8),
            "w": round(span * total / top, 1), "wc": round(span * confirmed / top, 1),
        })
    return {"items": items, "width": width, "height": max(1, len(rows)) * (bar_height + 8), "bar": bar_height,
            "x0": label_width}


def columns(rows: list[tuple[str, int, int]], height: int = 160, column_width: int = 24, gap: int = 10) -> dict:
    """Geometry for a vertical bar chart (findings per day): rows of (label, total, confirmed)."""
    top = max((total for _, total, _ in rows), default=0) or 1
    pad = 14  # room for the first and last labels
    items = []
    for i, (label, total, confirmed) in enumerate(rows):
        h = round((height - 20) * total / top, 1)
        hc = round((height - 20) * confirmed / top, 1)
        items.append({"label": label, "total": total, "confirmed": confirmed, "x": pad + i * (column_width + gap),
                      "h": h, "hc": hc, "y": height - h, "yc": height - hc})
    return {"items": items, "width": 2 * pad + max(1, len(rows)) * (column_width + gap), "height": height,
            "col": column_width}


def transcript(call, findings) -> list[dict]:
    """A call's turns for the page, each split into highlighted segments where its
    findings' evidence is."""
    marks: dict = {}
    for stored in findings:
        marks.setdefault(stored.finding.turn, []).append((stored.finding.matched, stored.id))
    return [
        {"index": i, "turn": t, "segments": highlight(t.text, marks.get(i, [])), "flagged": i in marks}
        for i, t in enumerate(call.turns)
    ]
