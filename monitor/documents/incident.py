"""The lender's compliance incident report: only findings a reviewer *confirmed* (a
call without one gets no report), every field the store can answer filled in, the rest
left as 〔待填写〕 for the compliance team."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from monitor import audit
from monitor.audit import Action
from monitor.hashing import file_sha256
from monitor.labels import CATEGORY_LABELS, SEVERITY_LABELS
from monitor.redaction import redact_if_configured
from monitor.store import SEVERITY_RANK, Store, StoredFinding

from .complaint import police_matters
from .facts import CallRecord, ReportError, finding_facts, group_incidents, load_call, sorted_findings
from .formatting import TO_COMPLETE, duration_text, item_numbers, mask, now_local, utc_text, with_zone, years_later

# 《互联网金融逾期债务催收自律公约》 asks for 5 years (信用卡办法: at least 2).
RETENTION_YEARS = 5
DEFAULT_INCIDENT_STATUS = "待调查（open）"
DIRECTION_LABELS = {"outbound": "呼出（催收方拨打）", "inbound": "呼入（债务人来电）"}
# Detail keys of audit entries, as the custody log names them.
_DETAIL_LABELS = {"format": "格式", "kind": "类型", "file": "文件", "sha256": "SHA-256", "reviewer": "审核人",
                  "decision": "决定", "finding": "发现", "assignee": "审核人"}


def _confirmed(store: Store, call_id: str) -> list[tuple[StoredFinding, dict]]:
    """Confirmed findings (latest decision) with that decision's review row. Inactive
    findings count too: a reviewer's confirmation stands even if a later rule change
    stopped raising the finding."""
    return [(s, store.latest_review(s.id)) for s in sorted_findings(store.findings(call_id, active_only=False))
            if s.decision == "confirmed"]


def _calls_to_debtor(store: Store, record: CallRecord) -> tuple[str, str]:
    """Stored calls to the same debtor on the call's local day, and over the 7 local days
    ending that day (this call included; failed recordings not counted)."""
    started = record.started
    if not record.call.debtor_id:
        reason = "无法统计：本通话未记录债务人编号"
        return reason, reason
    if started is None:
        reason = "无法统计：本通话未记录开始时间"
        return reason, reason
    day_start = started.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)
    today = store.count_calls_to_debtor(record.call.debtor_id, day_start, day_end)
    week = store.count_calls_to_debtor(record.call.debtor_id, day_start - timedelta(days=6), day_end)
    return f"{today} 通（含本通）", f"{week} 通（含本通）"


def _custody(store: Store, record: CallRecord) -> list[dict]:
    """Who touched the recording and its findings, from the append-only audit log,
    starting with when the monitor stored it; actions by their Chinese label."""
    events = [{"at": utc_text(record.row["created_at"]), "actor": f"monitor（{record.row['origin'] or '未知来源'}）",
               "action": Action.CALL_STORED.label, "subject": record.call.id, "note": ""}]
    call_id = record.call.id
    for entry in store.audit_log(call_id):
        subject = entry["subject"]
        if subject != call_id and not subject.startswith(call_id + ":"):
            continue  # a longer id that merely starts with this one
        try:
            detail = json.loads(entry["detail"] or "{}")
        except json.JSONDecodeError:
            detail = {"detail": entry["detail"]}
        if not isinstance(detail, dict):
            detail = {"detail": detail}
        note = detail.get("note") or "；".join(
            f"{_DETAIL_LABELS.get(k, k)}：{v}" for k, v in detail.items() if k != "note" and v)
        events.append({"at": utc_text(entry["at"]), "actor": entry["actor"],
                       "action": audit.label(entry["action"]), "subject": subject, "note": note})
    return events


def _file_check(record: CallRecord) -> str:
    source = record.row.get("source")
    if not source or not os.path.isfile(source):
        return f"原始文件不在原存放位置（{source or '未记录路径'}），无法当场复核哈希"
    if file_sha256(source) == record.call.sha256:
        return "已复核：原始文件的 SHA-256 与入库时一致"
    return "不一致：原始文件在入库后被修改或替换，需立即调查"


# The impact rows of an incident report: the question, the category whose confirmed
# findings answer it (None: only a person can), and what such a finding means.
_IMPACT_QUESTIONS = (
    ("是否联系或披露给第三人", "third_party", "是{where}：需核实被联系人身份、人数及披露内容"),
    ("是否涉及弱势群体（老人、病患、未成年人、孕妇等）", None, "需人工核实"),
    ("是否有款项被截留、挪用", "cash_to_collector", "可能{where}：核查债务人是否已向非指定账户付款及金额"),
    ("人身安全与恐吓", "threat", "有威胁言论{where}：评估债务人及家人的安全风险"),
    ("冒充国家机关或律师", "impersonation", "是{where}：冒充国家机关工作人员可能涉嫌《刑法》第二百七十九条；冒充律师见《律师法》第五十五条"),
    ("人格尊严与名誉", "abuse", "有辱骂言论{where}"),
)


def _impact(facts: list[dict], pending: dict[str, int]) -> list[dict]:
    rows = []
    for question, category, meaning in _IMPACT_QUESTIONS:
        numbers = [f["no"] for f in facts if f["category"] == category]
        if category is None:
            assessment = meaning
        elif numbers:
            assessment = meaning.format(where=f"（见发现{item_numbers(numbers)}）")
            if pending.get(category):
                assessment += f"；另有 {pending[category]} 项待审核"
        elif pending.get(category):
            assessment = f"无已确认（{pending[category]} 项待审核）"
        else:
            assessment = "未发现"
        rows.append({"item": question, "assessment": assessment, "to_complete": TO_COMPLETE})
    return rows


def _notifications(categories: set[str], rules: set[str]) -> list[dict]:
    police = police_matters(categories, rules) + (["款项可能被截留"] if "cash_to_collector" in categories else [])
    return [
        {"body": "公安机关（110 / 当地派出所）",
         "suggestion": f"建议评估：已确认{'、'.join(police)}" if police else "一般无需（已确认发现不涉及刑事情形）",
         "decision": TO_COMPLETE, "date": TO_COMPLETE},
        {"body": "监管机构（国家金融监督管理总局派出机构 / 地方金融管理局）",
         "suggestion": "按机构类型和内部报告制度评估", "decision": TO_COMPLETE, "date": TO_COMPLETE},
        {"body": "行业协会（中国银行业协会 / 中国互联网金融协会）",
         "suggestion": "会员机构按自律规则评估", "decision": TO_COMPLETE, "date": TO_COMPLETE},
        {"body": "委托催收机构", "suggestion": "如为外包催收，书面通知并要求整改", "decision": TO_COMPLETE, "date": TO_COMPLETE},
    ]


def _summary(record: CallRecord, facts: list[dict], pending_total: int, calls_today: str, agent: str) -> str:
    started = record.started
    when = f"{started:%Y-%m-%d %H:%M}（当地时间）" if started else "（开始时间未记录）"
    who = record.call.debtor_id or "债务人"
    titles = "；".join(dict.fromkeys(f["title"] for f in facts))
    text = (f"{when}，催收员 {agent} 与 {who} 通话（通话 {record.call.id}，{duration_text(record.call.duration)}）。"
            f"经人工审核确认违规 {len(facts)} 项：{titles}。")
    if calls_today.endswith("（含本通）"):
        text += f"当日致电该债务人 {calls_today}。"
    if pending_total:
        text += f"另有 {pending_total} 项自动发现待审核，未列入本报告。"
    return text


def incident_context(store: Store, call_id: str, incident_id: str | None = None, prepared_by: str | None = None) -> dict:
    """The lender's compliance incident report for one call, parts in the order of
    regulations.md. Lists only findings a reviewer confirmed; raises ReportError when
    there is none. ``prepared_by`` names who generated it (编制人)."""
    record = load_call(store, call_id)
    confirmed = _confirmed(store, call_id)
    if not confirmed:
        raise ReportError(
            f"call {call_id!r} has no confirmed finding: an incident report needs at least one finding "
            "confirmed by a reviewer (review the findings first)"
        )
    facts = []
    for number, (stored, review) in enumerate(confirmed, start=1):
        fact = finding_facts(record, stored, number)
        fact.update(reviewer=review["reviewer"], decided_at=utc_text(review["decided_at"]), note=review["note"] or "",
                    decision="确认违规", quote=redact_if_configured(fact["quote"]),
                    matched=redact_if_configured(fact["matched"]))
        facts.append(fact)
    incidents = group_incidents(facts)
    pending: dict[str, int] = {}
    for stored in store.findings(call_id):
        if stored.decision is None:
            pending[stored.finding.category] = pending.get(stored.finding.category, 0) + 1
    categories = {f["category"] for f in facts}
    rules = {f["rule"] for f in facts}
    severity = max((f["severity"] for f in facts), key=lambda s: SEVERITY_RANK.get(s, -1))
    started = record.started
    today, week = _calls_to_debtor(store, record)
    origin = record.row.get("origin") or "batch"
    retained_from = started or datetime.fromisoformat(record.row["created_at"])
    agent = record.meta("collector_name", "collector_id") or "未知"
    generated = now_local()

    return {
        "kind": "incident",
        "title": "合规事件报告",
        "subtitle": f"催收通话 {record.call.id}",
        "blank": TO_COMPLETE,
        "generated_at": with_zone(generated),
        "prepared_by": prepared_by or TO_COMPLETE,
        "summary": _summary(record, facts, sum(pending.values()), today, agent),
        "header": {
            "incident_id": incident_id or f"INC-{record.call.id}",
            "status": DEFAULT_INCIDENT_STATUS,
            "severity": severity,
            "severity_label": SEVERITY_LABELS.get(severity, severity),
            "detected_at": utc_text(store.first_detected([f["id"] for f in facts])) or TO_COMPLETE,
            "detected_by": record.meta("detected_by") or f"自动监测（{origin}），人工复核确认",
            "rules_version": record.row.get("rules_version") or "未知",
        },
        "call": {
            "id": record.call.id,
            "started_local": with_zone(started, seconds=True) if started else "未记录",
            "duration": duration_text(record.call.duration),
            "direction": DIRECTION_LABELS.get(record.call.direction, record.call.direction or "未记录"),
            "agent": agent,
            "team": record.meta("team") or "未记录",
            "agency": record.meta("agency") or "未记录（如为外包请注明）",
            "account": mask(record.meta("account", "account_number", "contract_number", "card_number")) or "未记录",
            "debtor": record.call.debtor_id or "未记录",
            "other_party": record.meta("other_party") or "债务人本人（通话对象未另行记录）",
            "caller_number": record.meta("caller_number") or "未记录",
            "callee_number": mask(record.meta("callee_number")) or "未记录",
            "calls_that_day": today,
            "calls_last_7_days": week,
        },
        "findings": facts,
        "incidents": incidents,
        "pending": sum(pending.values()),
        "integrity": {
            "sha256": record.call.sha256,
            "recording": record.recording_name,
            "source": record.row.get("source") or "未记录",
            "file_check": _file_check(record),
            "custody": _custody(store, record),
            "retention": f"录音及本报告至少保存 {RETENTION_YEARS} 年（《互联网金融逾期债务催收自律公约（试行）》；"
                         "《商业银行信用卡业务监督管理办法》第六十八条要求至少 2 年）",
            "retain_until": f"{years_later(retained_from, RETENTION_YEARS):%Y-%m-%d}",
        },
        "impact": _impact(facts, pending),
        "root_cause": TO_COMPLETE,
        "containment": TO_COMPLETE,
        "corrective_actions": [{"action": "", "owner": "", "due": ""} for _ in range(3)],
        "notifications": _notifications(categories, rules),
        "sign_offs": [{"role": role} for role in ("合规负责人", "催收团队负责人", "法务负责人")],
        "category_labels": CATEGORY_LABELS,
    }
