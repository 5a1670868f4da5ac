"""One table of settings, read from the environment, shared by the CLI and the web app.

Each setting has a name, the environment variable that sets it, a default and a help
text; `monitor settings` prints them all and a test checks each is documented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str
    help: str


SETTINGS = (
    Setting("rules_dir", "MONITOR_RULES", "", "Folder of rule files; empty means the rules/ folder shipped with the monitor."),
    Setting("db", "MONITOR_DB", "monitor.db", "SQLite database file of the call store (relative to the working folder)."),
    Setting("filename_pattern", "MONITOR_FILENAME_PATTERN", "",
            "Regex with named groups (call_id, started_at, collector_id, debtor_id, direction) read from recording file names."),
    Setting("model_dir", "MONITOR_MODEL_DIR", "", "Where the packaged Whisper model is assembled and cached; empty means the user's data folder."),
    Setting("instance_dir", "MONITOR_INSTANCE", "instance", "Web app instance folder: settings.py, the generated secret key, uploads/."),
    Setting("max_upload_mb", "MONITOR_MAX_UPLOAD_MB", "50", "Largest recording the web app accepts, in MB."),
    Setting("login_rate_limit", "MONITOR_LOGIN_RATE_LIMIT", "5 per minute", "Login attempts allowed per client address."),
    Setting("submit_rate_limit", "MONITOR_SUBMIT_RATE_LIMIT", "10 per hour", "Debtor portal submissions allowed per client address."),
    Setting("proxy_hops", "MONITOR_PROXY_HOPS", "0", "Reverse proxies in front of the app (so rate limits see the real client)."),
    Setting("risk_model", "MONITOR_RISK_MODEL", "",
            "Risk-model file for suspected lines; empty means the one `monitor learn` installed in the instance folder, else the shipped model."),
    Setting("timezone", "MONITOR_TIMEZONE", "Asia/Shanghai", "Time zone of call start times given without a UTC offset."),
    Setting("redact_pii", "MONITOR_REDACT_PII", "1",
            "1: mask ID, bank-card and mobile numbers spoken in calls in exports and documents; 0 keeps them (administrators)."),
    Setting("debtor_side", "MONITOR_DEBTOR_SIDE", "when-flagged",
            "Batch: transcribe a stereo call's debtor channel always, when-flagged (only when the collector's may hold "
            "a finding; otherwise on demand) or never. Uploads, debtor submissions and analyze use always."),
    Setting("device", "MONITOR_DEVICE", "auto",
            "Where speech recognition runs: auto (CUDA when CTranslate2 sees a GPU, else the CPU), cpu or cuda."),
    Setting("batch_size", "MONITOR_BATCH_SIZE", "8", "Windows faster-whisper decodes at once on a GPU (its batched pipeline)."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str) -> str:
    """The value of a setting: its environment variable if set, else its default."""
    setting = _BY_NAME[name]
    return os.environ.get(setting.env, setting.default)
