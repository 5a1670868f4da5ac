"""Spoken personal numbers masked: digits and Chinese numerals, with separators; amounts
and short numbers left alone; the setting turns it off."""

from __future__ import annotations

import pytest

from monitor.redaction import CARD_MASK, ID_MASK, MOBILE_MASK, redact, redact_if_configured


@pytest.mark.parametrize(("text", "expected"), [
    ("身份证号110101199003071234", f"身份证号{ID_MASK}"),
    ("身份证 11010119900307123X 对吧", f"身份证 {ID_MASK} 对吧"),
    ("幺幺零幺零幺幺九九零零三零七幺二三叉", ID_MASK),
    ("卡号6222 0212 3456 7890。", f"卡号{CARD_MASK}。"),
    ("卡号六二二二零二幺二三四五六七八九零幺二三", f"卡号{CARD_MASK}"),
    ("手机13800138000", f"手机{MOBILE_MASK}"),
    ("手机幺三八，零零幺三，八零零零", f"手机{MOBILE_MASK}"),
    ("电话两三八零零幺三八零零零", "电话两三八零零幺三八零零零"),  # 23… is not a mobile number
])
def test_numbers_are_masked(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", ["欠款三千五百元，明天两点前还", "订单号 12345", "工号 A017，座机 021-88886666", "一二三四五"])
def test_other_numbers_stay(text):
    assert redact(text) == text


def test_the_setting_keeps_them_for_administrators(monkeypatch):
    monkeypatch.setenv("MONITOR_REDACT_PII", "0")
    assert redact_if_configured("手机13800138000") == "手机13800138000"
    monkeypatch.setenv("MONITOR_REDACT_PII", "1")
    assert redact_if_configured("手机13800138000") == f"手机{MOBILE_MASK}"
