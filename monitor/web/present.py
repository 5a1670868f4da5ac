"""How things read on the page: Chinese labels, times, highlighted evidence, bar charts
(inline SVG drawn on the server: no script, nothing fetched from outside)."""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

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


ZONE_NAMES = {"Asia/Shanghai": "北京时间", "Asia/Chongqing": "北京时间", "Asia/Hong_Kong": "香港时间",
              "Asia/Taipei": "台北时间", "UTC": "UTC"}


def zone_label(zone: ZoneInfo | None = None) -> str:
    """How the deployment's time zone is named next to a time (北京时间, or its name)."""
    zone = zone or times.local_zone()
    return ZONE_NAMES.get(zone.key, zone.key)


def local_time(value: str | None, zone: ZoneInfo | None = None) -> str:
    """An ISO time as ``2025-03-01 21:30`` in the deployment's time zone (a stored time
    without an offset is UTC, as the store writes them)."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone or times.local_zone()).strftime("%Y-%m-%d %H:%M")


def percent(share: float | None) -> str:
    """A share from 0 to 1 as ``23%`` (empty when the call has no signals)."""
    return "" if share is None else f"{share * 100:.0f}%"


def mask(value: str | None) -> str:
    """A phone or ID number with its middle hidden (``138****5678``,
    ``110101********1234``): what a reviewer sees in lists and exports."""
    if not value:
        return ""
    text = str(value)
    if len(text) <= 4:
        return "*" * len(text)
    keep_start = 6 if len(text) >= 15 else 3  # an ID number keeps its region code
    keep_start = min(keep_start, max(1, len(text) - 4 - 1))
    return text[:keep_start] + "*" * (len(text) - keep_start - 4) + text[-4:]


def by_sentence(findings) -> list[dict]:
    """Findings grouped per sentence (turn): one sentence that breaks several rules is
    one card listing every rule, in the order of the findings. Call-level findings
    (no turn) each stand alone."""
    groups: dict = {}
    for stored in findings:
        turn = stored.finding.turn
        key = ("turn", turn) if turn is not None else ("call", stored.id)
        groups.setdefault(key, []).append(stored)
    cards = []
    for members in groups.values():
        first = members[0].finding
        severities = [m.finding.severity for m in members]
        cards.append({
            "turn": first.turn, "start": first.start, "matched": first.matched, "members": members,
            "severity": max(severities, key=lambda s: SEVERITY_ORDER.get(s, -1)),
            "categories": list(dict.fromkeys(m.finding.category for m in members)),
            "clauses": list(dict.fromkeys(c for m in members for c in m.finding.legal_basis)),
        })
    return cards


SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def marked(snippet: str, start: str = "\x01", end: str = "\x02") -> list[tuple[str, bool]]:
    """A search snippet with the index's highlight marks as (text, is_hit) pieces."""
    pieces, hit = [], False
    for part in snippet.replace(end, start).split(start):
        if part:
            pieces.append((part, hit))
        hit = not hit
    return pieces


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


def rate_bars(rows: list[tuple], width: int = 560, bar_height: int = 22, label_width: int = 150) -> dict:
    """Geometry for a horizontal chart of rates per 100 calls: rows of (label, rate,
    calls, findings, link to the filtered queue or None)."""
    top = max((r[1] for r in rows), default=0) or 1
    span = width - label_width - 150  # room for the value, e.g. 12.5 / 百通（840 通）
    items = [{"label": label, "rate": value, "calls": calls, "findings": findings, "href": href,
              "y": i * (bar_height + 8), "w": round(span * value / top, 1)}
             for i, (label, value, calls, findings, href) in enumerate(rows)]
    return {"items": items, "width": width, "height": max(1, len(rows)) * (bar_height + 8), "bar": bar_height,
            "x0": label_width}


def columns(rows: list[tuple[str, int, int]], height: int = 160, column_width: int = 24, gap: int = 10,
            links: list[str] | None = None) -> dict:
    """Geometry for a vertical bar chart (findings per day): rows of (label, total,
    confirmed). Past a month the labels would overlap: only every week's (Mondays' when
    the labels are dates) and the last are shown, turned to read upwards."""
    top = max((total for _, total, _ in rows), default=0) or 1
    pad = 14  # room for the first and last labels
    every = 1 if len(rows) <= 31 else 7
    items = []
    for i, (label, total, confirmed) in enumerate(rows):
        h = round((height - 20) * total / top, 1)
        hc = round((height - 20) * confirmed / top, 1)
        shown = every == 1 or i % every == 0 or i == len(rows) - 1
        items.append({"label": label if shown else "", "title": label, "total": total, "confirmed": confirmed,
                      "x": pad + i * (column_width + gap), "h": h, "hc": hc, "y": height - h, "yc": height - hc,
                      "href": links[i] if links else None})
    return {"items": items, "width": 2 * pad + max(1, len(rows)) * (column_width + gap), "height": height,
            "col": column_width, "rotate": every > 1}


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


DETAIL_KEYS = {
    "ip": "IP", "role": "角色", "label": "用途", "note": "备注", "reviewer": "审核员", "format": "格式",
    "range": "范围", "origin": "来源", "filename": "文件", "sha256": "SHA-256", "kind": "类型", "file": "文件",
    "reason": "理由", "first_decision": "第一次决定", "from": "原来", "to": "改为", "token": "令牌", "calls": "通话数",
    "q": "检索词", "speaker": "说话人", "since": "开始日期", "until": "结束日期", "collector": "催收员",
    "call_id": "通话",
}


def detail_text(detail: str | None) -> str:
    """An audit entry's detail (stored as JSON) as readable text: 备注：… ；审核员：…"""
    try:
        data = json.loads(detail or "{}")
    except ValueError:
        return detail or ""
    if not isinstance(data, dict):
        return str(data)
    parts = []
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        value = {"confirmed": "确认违规", "dismissed": "驳回", "admin": "管理员", "reviewer": "审核员"}.get(value, value) \
            if isinstance(value, str) else value
        parts.append(f"{DETAIL_KEYS.get(key, key)}：{value}")
    return "；".join(parts)
