"""Chinese display names shared by the CLI, the web app and the documents."""

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

