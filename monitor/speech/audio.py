"""Decode a call recording into 16 kHz float32 arrays, one per channel.

The only module that imports PyAV (``av``). Call-centre recorders usually write the
collector on one stereo channel and the debtor on the other, so channels are kept
apart; ``transcribe.turns_from_recording`` turns them into speakers.

Refusal policy: a compliance report must not look complete for audio we never heard,
so a recording that decodes only partly (a cut-off upload, a damaged frame) is refused
rather than analysed with a warning. The user gets a message that says why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from monitor.errors import AudioError
from monitor.hashing import file_sha256

SAMPLE_RATE = 16_000
# Two hours: longer than any collection call we expect, short enough that the
# decoded samples (128 KB per stereo second) stay well under a gigabyte.
DEFAULT_MAX_SECONDS = 2 * 60 * 60
# A complete file decodes to its declared length give or take codec priming and
# padding (tens of milliseconds). Missing more than this means the file was cut off.
TRUNCATION_TOLERANCE_SECONDS = 1.0
# Channels this close (peak absolute difference, full scale = 1.0) are one signal
# written twice: transcribing both would credit every word to both speakers.
DUAL_MONO_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class Recording:
    """A decoded recording. Arrays are read-only; equality is identity.

    ``channels`` has one array for mono audio and two (left, right) for stereo.
    ``source_channels`` is how many channels the file had before any downmix
    (more than two are mixed to mono; identical stereo channels collapse to one).
    """

    path: str
    sha256: str
    duration: float
    channels: tuple[np.ndarray, ...]
    sample_rate: int = SAMPLE_RATE
    source_channels: int = 1

    @property
    def is_stereo(self) -> bool:
        return len(self.channels) == 2

    def mono(self) -> np.ndarray:
        """All channels mixed to one (for engines that take a single signal)."""
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0, dtype=np.float32)


def load_recording(path: str | os.PathLike[str], *, max_seconds: float = DEFAULT_MAX_SECONDS) -> Recording:
    """Decode ``path`` to 16 kHz float32 channels, or raise AudioError saying why not."""
    path = os.fspath(path)
    size = _check_file(path)
    _check_wav_length(path, size)
    sha256 = file_sha256(path)
    try:
        container = av.open(path)
    except av.error.InvalidDataError:
        raise AudioError(path, _unrecognised_reason(path, size)) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioError(path, f"could not be opened as audio ({exc})") from None
    with container:
        channels, source_channels = _decode(path, container, max_seconds)
    channels = _collapse_dual_mono(channels)
    duration = channels[0].shape[0] / SAMPLE_RATE
    for samples in channels:
        samples.flags.writeable = False
    return Recording(
        path=path,
        sha256=sha256,
        duration=duration,
        channels=tuple(channels),
        sample_rate=SAMPLE_RATE,
        source_channels=source_channels,
    )


def _check_file(path: str) -> int:
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    if not os.path.isfile(path):
        raise AudioError(path, "not a file")
    size = os.path.getsize(path)
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return size


def _check_wav_length(path: str, size: int) -> None:
    """A WAV file cut short: its header declares the data chunk's length, but FFmpeg
    takes the length from the file size, so the decoder alone would accept the start of
    a call as the whole call. Compare the two here, as the decoder does for mp3/flac/m4a.
    Streaming writers that leave the length 0 or 0xFFFFFFFF (unknown) are let through."""
    import struct

    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE" or head[:4] == b"RF64":
            return
        byte_rate = None
        while True:
            header = handle.read(8)
            if len(header) < 8:
                return  # no data chunk: the decoder says what is wrong
            chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"fmt ":
                body = handle.read(length + (length & 1))
                if len(body) >= 12:
                    byte_rate = struct.unpack("<I", body[8:12])[0]
                continue
            if chunk == b"data":
                available = size - handle.tell()
                if length in (0, 0xFFFFFFFF) or available >= length:
                    return
                if byte_rate and (length - available) / byte_rate <= TRUNCATION_TOLERANCE_SECONDS:
                    return  # as for other formats: a few missing milliseconds are not a cut
                if byte_rate:
                    detail = f"only {_clock(available / byte_rate)} of the declared {_clock(length / byte_rate)}"
                else:
                    detail = f"only {available} of the declared {length} bytes of audio"
                raise AudioError(path, f"incomplete recording: {detail} is in the file (was the file cut off?)")
            handle.seek(length + (length & 1), os.SEEK_CUR)


def _unrecognised_reason(path: str, size: int) -> str:
    # A transcript saved as .wav is a common mistake: name it so the user knows.
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "not an audio file (it contains text)"
    return f"not an audio file, or a damaged one: the format was not recognised ({size} bytes)"


def _decode(path: str, container: av.container.InputContainer, max_seconds: float) -> tuple[list[np.ndarray], int]:
    if not container.streams.audio:
        other = [s.type for s in container.streams]
        found = f" (it holds only: {', '.join(other)})" if other else ""
        raise AudioError(path, f"no audio stream in the file{found}")
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # FFmpeg knows no decoder for this stream
        codec = getattr(stream, "codec_tag", None) or "unknown"
        raise AudioError(path, f"audio in a format that cannot be decoded (codec {codec}); the file may be damaged")
    source_channels = stream.codec_context.channels or 0
    declared = _declared_seconds(container, stream)
    if declared is not None and declared > max_seconds:
        raise AudioError(path, _too_long(declared, max_seconds))

    # Keep the source layout here and mix more than two channels ourselves: FFmpeg's
    # matrix needs a known layout, and a plain mean works for any channel count.
    resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    decoded_samples = 0
    max_samples = int(max_seconds * SAMPLE_RATE)
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray()
                chunks.append(chunk)
                decoded_samples += chunk.shape[1]
            if decoded_samples > max_samples:
                raise AudioError(path, _too_long(decoded_samples / SAMPLE_RATE, max_seconds, at_least=True))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
            decoded_samples += out.samples
    except av.error.FFmpegError as exc:
        heard = decoded_samples / SAMPLE_RATE
        raise AudioError(
            path,
            f"damaged audio: decoding failed after {_clock(heard)}"
            + (f" of {_clock(declared)}" if declared else "")
            + f" ({exc.strerror or exc})",
        ) from None

    if decoded_samples == 0:
        raise AudioError(path, "no audio could be decoded (the file is damaged or holds no sound)")
    heard = decoded_samples / SAMPLE_RATE
    if declared is not None and declared - heard > TRUNCATION_TOLERANCE_SECONDS:
        raise AudioError(
            path,
            f"incomplete recording: only {_clock(heard)} of the declared {_clock(declared)} "
            "could be decoded (was the file cut off?)",
        )

    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    source_channels = source_channels or samples.shape[0]
    if samples.shape[0] > 2:
        # No collector/debtor convention exists beyond stereo: mix to one voice track.
        return [np.ascontiguousarray(samples.mean(axis=0, dtype=np.float32))], source_channels
    return [np.ascontiguousarray(row) for row in samples], source_channels


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """Length the file's header claims (stream header first, then container), if any."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _collapse_dual_mono(channels: list[np.ndarray]) -> list[np.ndarray]:
    if len(channels) == 2 and np.max(np.abs(channels[0] - channels[1]), initial=0.0) <= DUAL_MONO_TOLERANCE:
        return [channels[0]]
    return channels


def _too_long(seconds: float, max_seconds: float, *, at_least: bool = False) -> str:
    length = ("over " if at_least else "") + _clock(seconds)
    return f"recording too long: {length}, the limit is {_clock(max_seconds)} (max_seconds={max_seconds:g})"


def _clock(seconds: float) -> str:
    """``1:02:03.4`` / ``2:03.4``: readable lengths in messages."""
    seconds = max(0.0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
    return f"{int(minutes)}:{secs:04.1f}"


__all__ = ["DEFAULT_MAX_SECONDS", "SAMPLE_RATE", "Recording", "load_recording"]
