"""Receiving a recording over the web (staff form, debtor portal, API): check it, keep
it, queue it. A refused file leaves nothing behind: no row, no file."""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from monitor.audit import Action
from monitor.speech.audio import load_recording
from monitor.runs.metadata import metadata_to_json
from monitor.errors import AudioError, InputError, MonitorError
from monitor.store import Store

AUDIO_EXTENSIONS = (
    ".wav", ".mp3", ".m4a", ".aac", ".amr", ".ogg", ".oga", ".opus", ".flac", ".wma", ".webm",
    ".3gp", ".mp4", ".caf", ".aif", ".aiff",
)
CHANNELS = ("left", "right", "unknown")
# Decoding a long recording takes memory (about 128 KB per stereo second): check one
# file at a time.
_decoding = threading.Lock()


class Refused(MonitorError):
    """A file not accepted, with a message for the person who sent it (Chinese) and the
    HTTP status to answer with."""

    def __init__(self, message: str, status: int = 415, filename: str | None = None):
        self.message = message
        self.status = status
        self.filename = filename
        super().__init__(message)


@dataclass(frozen=True)
class Received:
    filename: str  # as the sender named it
    path: str  # where it is kept (named by its SHA-256)
    sha256: str
    size: int
    duration: float


_REASONS = (
    ("empty file", "文件是空的（0 字节）"),
    ("not an audio file (it contains text)", "这是一个文字文件，不是录音"),
    ("not an audio file", "无法识别为录音文件，可能不是音频或文件已损坏"),
    ("no audio stream", "文件里没有声音（没有音频轨）"),
    ("recording too long", "录音太长"),
    ("incomplete recording", "录音不完整，文件可能没有传完或被截断"),
    ("damaged audio", "录音文件已损坏，无法完整读取"),
    ("no audio could be decoded", "读不出任何声音，文件可能已损坏"),
)


def explain(reason: str) -> str:
    """A decoder's reason (English) in plain Chinese, with the original kept for staff."""
    for prefix, chinese in _REASONS:
        if reason.startswith(prefix):
            return f"{chinese}（{reason}）"
    return f"无法读取这个录音（{reason}）"


def receive(storage: FileStorage, folder: Path, max_seconds: float) -> Received:
    """Keep ``storage`` under ``folder`` if it is a usable recording; else raise Refused
    and leave nothing behind."""
    original = storage.filename or ""
    name = os.path.basename(original.replace("\\", "/"))
    if not name:
        raise Refused("没有选择文件。", status=400)
    extension = os.path.splitext(name)[1].lower()
    if extension not in AUDIO_EXTENSIONS:
        shown = extension or "（无扩展名）"
        raise Refused(
            f"不接受 {shown} 文件：请上传录音文件（{'、'.join(e[1:] for e in AUDIO_EXTENSIONS[:8])} 等）。", filename=name
        )
    incoming = folder / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    temporary = incoming / f"{secrets.token_hex(16)}{extension}"
    try:
        storage.save(temporary)
        size = temporary.stat().st_size
        with _decoding:
            recording = load_recording(temporary, max_seconds=max_seconds)
        kept = folder / f"{recording.sha256}{extension}"
        if kept.exists():
            temporary.unlink()
        else:
            os.replace(temporary, kept)
        return Received(name, str(kept.resolve()), recording.sha256, size, recording.duration)
    except AudioError as error:
        raise Refused(f"这个文件不能作为录音使用：{explain(error.reason)}", filename=name) from None
    except Refused:
        raise
    except Exception as error:  # a decoder crash must still leave nothing behind
        raise Refused(f"无法读取这个录音（{type(error).__name__}）", filename=name) from None
    finally:
        if temporary.exists():
            temporary.unlink()


def queue_upload(
    store: Store,
    received: Received,
    origin: str,
    submitted_by: str,
    metadata,
    extra: dict,
    collector_channel: str = "left",
    receipt_hash: str | None = None,
) -> str:
    """Add a queued ``uploads`` row for a received file; returns its id."""
    if collector_channel not in CHANNELS:
        raise InputError(f"collector channel must be one of {', '.join(CHANNELS)}")
    upload_id = uuid.uuid4().hex
    store.add_upload(
        {
            "id": upload_id, "origin": origin, "status": "queued", "error": None, "filename": received.filename,
            "path": received.path, "sha256": received.sha256, "size": received.size, "duration": received.duration,
            "collector_channel": collector_channel, "metadata": metadata_to_json(metadata, extra), "call_id": None,
            "submitted_by": submitted_by, "receipt_hash": receipt_hash,
        }
    )
    store.audit(submitted_by, Action.UPLOAD_QUEUED, upload_id, {"origin": origin, "filename": received.filename, "sha256": received.sha256})
    return upload_id


def staff_call_id(filename: str) -> str:
    """A readable call id from an uploaded file's name."""
    stem = secure_filename(os.path.splitext(filename)[0])
    return stem or "upload"
