"""The audit vocabulary: every action written to the append-only audit log, defined once
with the Chinese label that the audit page and an incident report's chain of custody
show. The store refuses an action that is not here, so a label can never be missing."""

from __future__ import annotations

from enum import Enum


class Action(str, Enum):
    """An audited action; its value is what the ``audit.action`` column holds."""

    def __new__(cls, value: str, label: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    # accounts and sessions
    LOGIN = ("login", "登录")
    LOGIN_FAILED = ("login.failed", "登录失败")
    LOGOUT = ("logout", "退出登录")
    USER_ADDED = ("user.add", "新建账户")
    TOKEN_CREATED = ("token.create", "创建 API 令牌")
    TOKEN_REVOKED = ("token.revoke", "吊销 API 令牌")
    USER_DEACTIVATED = ("user.deactivate", "停用账户")
    USER_ACTIVATED = ("user.activate", "启用账户")
    ROLE_CHANGED = ("user.role", "更改角色")
    PASSWORD_CHANGED = ("user.password", "修改密码")
    PASSWORD_RESET = ("user.password_reset", "管理员重置密码")
    # recordings and calls
    CALL_STORED = ("call.stored", "录音入库，记录 SHA-256")
    UPLOAD_QUEUED = ("upload.queued", "上传录音，等待分析")
    CALL_VIEWED = ("call.view", "查看通话")
    CALL_VIEWED_API = ("api.call.view", "通过 API 查看通话")
    FINDINGS_READ_API = ("api.findings.read", "通过 API 读取违规记录")
    AUDIO_PLAYED = ("call.audio", "播放录音")
    AUDIO_DOWNLOADED = ("call.audio_download", "下载录音")
    CALL_ASSIGNED = ("call.assign", "分配审核人")
    TRANSCRIPTS_SEARCHED = ("transcripts.search", "检索转写文本")
    QUEUE_EXPORTED = ("queue.export", "导出所选通话 (CSV)")
    SECOND_LOOK_REQUESTED = ("finding.second_look", "送交复核")
    DEBTOR_SIDE_TRANSCRIBED = ("call.debtor_side", "补转写对方（债务人）声道")
    ROLES_SET = ("call.roles", "审核人确认或交换说话人角色")
    VOICE_CLAIMED = ("call.voice_claimed", "债务人指认本人声音")
    # decisions
    FINDING_CONFIRMED = ("finding.confirmed", "审核：确认违规")
    FINDING_DISMISSED = ("finding.dismissed", "审核：驳回")
    SUSPECT_CONFIRMED = ("suspect.confirmed", "审核：疑似违规确认为违规")
    SUSPECT_DISMISSED = ("suspect.dismissed", "审核：疑似违规驳回")
    # the risk model
    MODEL_INSTALLED = ("model.installed", "安装重新训练的风险模型")
    MODEL_KEPT = ("model.kept", "新风险模型不优于现有模型，未安装")
    # documents
    INCIDENT_REPORT = ("report.incident", "生成合规事件报告")
    COMPLAINT_LETTER = ("report.complaint", "生成投诉书")
    EVIDENCE_EXPORTED = ("evidence.exported", "导出证据包")
    RECEIPT_VIEWED = ("receipt.view", "债务人查看回执")


def label(action: str) -> str:
    """The Chinese label of a stored action (the raw code for one from a newer version)."""
    try:
        return Action(action).label
    except ValueError:
        return action
