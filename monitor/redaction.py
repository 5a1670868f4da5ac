"""Personal numbers spoken in a call — resident ID numbers, bank-card numbers, mobile
numbers — masked before a transcript leaves the monitor in an export or a document.

Speech recognition writes digits either as digits (6222 0212 …) or as Chinese numerals
(六二二二…, 幺 for 1, 两 for 2), often split by spaces, commas or dashes; both are
recognised. A run of spoken digits is masked when its length is that of a number we
protect: 18 (ID; the last may be X), 16–19 (bank card), 11 starting 1[3-9] (mobile).
Amounts (三千五百元) never form such runs: 十/百/千/万 end a run.

The ``redact_pii`` setting (MONITOR_REDACT_PII, default 1) turns masking off for
administrators who need the numbers."""

from __future__ import annotations

import re

from monitor import settings

_NUMERALS = {
    "零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "壹": "1", "二": "2", "两": "2", "贰": "2",
    "三": "3", "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6", "陆": "6",
    "七": "7", "柒": "7", "拐": "7", "八": "8", "捌": "8", "九": "9", "玖": "9", "勾": "9",
    **{str(d): str(d) for d in range(10)},
    **{chr(0xFF10 + d): str(d) for d in range(10)},  # full-width digits
}
_DIGIT = "[" + "".join(sorted(set(_NUMERALS))) + "]"
_SEPARATOR = r"[ \u3000\-－—_,，、.。·]"
# A run of digits, single separators allowed between them, optionally ending in X (ID check digit).
_RUN = re.compile(rf"{_DIGIT}(?:{_SEPARATOR}?{_DIGIT})*(?:{_SEPARATOR}?[xX叉])?")

ID_MASK = "〔身份证号已隐去〕"
CARD_MASK = "〔银行卡号已隐去〕"
MOBILE_MASK = "〔手机号已隐去〕"


def _digits(run: str) -> str:
    return "".join(_NUMERALS.get(ch, "X" if ch in "xX叉" else "") for ch in run)


def _kind(digits: str) -> str | None:
    if len(digits) == 18 and digits[:17].isdigit():
        return ID_MASK
    if digits.isdigit() and 16 <= len(digits) <= 19:
        return CARD_MASK
    if digits.isdigit() and len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789":
        return MOBILE_MASK
    return None


def redact(text: str | None) -> str | None:
    """``text`` with every spoken ID, card and mobile number replaced by a label."""
    if not text:
        return text

    def replace(match: re.Match) -> str:
        run = match.group(0)
        # A trailing separator belongs to the sentence, not the number.
        stripped = run.rstrip(" \u3000-－—_,，、.。·")
        kind = _kind(_digits(stripped))
        if kind:
            return kind + run[len(stripped):]
        # A run longer than any protected number may hold one after some other digits:
        # look for an embedded mobile or ID (e.g. 我手机是幺三九…, 编号 … 加卡号).
        return run if len(_digits(stripped)) < 11 else _scan_inside(run)

    return _RUN.sub(replace, text)


def _scan_inside(run: str) -> str:
    digits_at = [i for i, ch in enumerate(run) if ch in _NUMERALS or ch in "xX叉"]
    for size, label in ((18, ID_MASK), (19, CARD_MASK), (17, CARD_MASK), (16, CARD_MASK), (11, MOBILE_MASK)):
        for first in range(0, len(digits_at) - size + 1):
            chosen = digits_at[first:first + size]
            if _kind(_digits("".join(run[i] for i in chosen))) == label:
                start, end = chosen[0], chosen[-1] + 1
                return run[:start] + label + (_scan_inside(run[end:]) if len(digits_at) - first - size >= 11 else run[end:])
    return run


def enabled() -> bool:
    return settings.get("redact_pii").strip().lower() not in ("0", "false", "no", "off", "")


def redact_if_configured(text: str | None) -> str | None:
    """``redact(text)`` unless the redact_pii setting is off."""
    return redact(text) if enabled() else text
