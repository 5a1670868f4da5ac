"""Filters on conversation signals, read from a request: whose raised voice, and at least
how much overtalk or collector talk. The queue takes percentages (what a reviewer reads
on the page: 抢话 20%), the API fractions (what its JSON carries: 0.2); both end as the
store's fractions (monitor.store.queries.call_filter)."""

from __future__ import annotations

import math

RAISED_VOICE_LABELS = {"any": "有人提高音量", "collector": "催收员提高音量"}
# filter → (the queue's percentage field, the API's fraction field, Chinese name)
SHARES = {
    "overtalk_at_least": ("overtalk", "overtalk_at_least", "抢话占比"),
    "collector_share_at_least": ("collector_share", "collector_share_at_least", "催收员说话占比"),
}


class BadSignalFilter(ValueError):
    """A signal filter that cannot be used, said in Chinese (the page) and English (the API)."""

    def __init__(self, chinese: str, english: str):
        super().__init__(english)
        self.chinese, self.english = chinese, english


def signal_filters(args, percent: bool) -> dict:
    """The signal filters in ``args`` as keyword arguments for the store's queue and
    export queries; an empty field is no filter. ``percent``: the shares are given as
    0–100 (the queue's fields), else as 0–1 (the API's)."""
    chosen = {}
    raised = (args.get("raised_voice") or "").strip()
    if raised:
        if raised not in RAISED_VOICE_LABELS:
            raise BadSignalFilter(
                f"“提高音量”只能选：{'、'.join(RAISED_VOICE_LABELS.values())}（收到的是“{raised[:20]}”）。",
                f"raised_voice: one of {', '.join(RAISED_VOICE_LABELS)}, not {raised[:40]!r}")
        chosen["raised_voice"] = raised
    top = 100 if percent else 1
    for name, (page_field, api_field, label) in SHARES.items():
        field = page_field if percent else api_field
        text = (args.get(field) or "").strip()
        if not text:
            continue
        try:
            value = float(text.removesuffix("%") if percent else text)
        except ValueError:
            value = math.nan
        if not 0 <= value <= top:  # also false for nan
            raise BadSignalFilter(
                f"{label}要填 0 到 100 之间的百分数，例如 20 表示至少 20%（收到的是“{text[:20]}”）。",
                f"{field}: a share from 0 to 1, e.g. 0.2 for 20%, not {text[:40]!r}")
        chosen[name] = value / 100 if percent else value
    return chosen


__all__ = ["BadSignalFilter", "RAISED_VOICE_LABELS", "SHARES", "signal_filters"]
