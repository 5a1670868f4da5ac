"""Chinese display names and time formatting shared by the CLI, the web app and the reports."""

CATEGORY_LABELS = {
    "abuse": "辱骂侮辱",
    "threat": "威胁恐吓",
    "third_party": "骚扰第三方",
    "cash_to_collector": "要求私下付款",
    "impersonation": "冒充公检法或律师",
    "off_hours": "非规定时段催收",
    "call_frequency": "频繁致电",
}
SEVERITY_LABELS = {"low": "低", "medium": "中", "high": "高", "critical": "严重"}
SPEAKER_LABELS = {"collector": "催收员", "debtor": "债务人", "unknown": "未知说话人"}


def clock(seconds: float | None, missing: str = "—") -> str:
    """Seconds into the recording as ``mm:ss.s`` (``h:mm:ss.s`` past an hour)."""
    if seconds is None:
        return missing
    seconds = max(0.0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
    return f"{int(minutes):02d}:{secs:04.1f}"
