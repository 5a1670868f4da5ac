"""Decoding recordings: every supported format, and every way a file is refused.

Files are made at test time: a generated signal (440 Hz left, 660 Hz right) is
encoded with PyAV into each container, so the tests need no fixtures on disk and can
check that the two channels stay apart.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from monitor.speech.audio import SAMPLE_RATE, Recording, load_recording
from monitor.errors import AudioError

LEFT_HZ, RIGHT_HZ = 440.0, 660.0
SECONDS = 2.0

# (file name, encoder, its sample rate, layout); AMR-NB is a mono 8 kHz telephone codec.
FORMATS = [
    ("call.wav", "pcm_s16le", 44_100, "stereo"),
    ("call.mp3", "libmp3lame", 44_100, "stereo"),
    ("call.m4a", "aac", 44_100, "stereo"),
    ("call.aac", "aac", 44_100, "stereo"),
    ("call.amr", "libopencore_amrnb", 8_000, "mono"),
    ("call.ogg", "libopus", 48_000, "stereo"),
    ("call.opus", "libopus", 48_000, "stereo"),
    ("call.flac", "flac", 44_100, "stereo"),
]


def tone(rate: int, seconds: float, freqs: tuple[float, ...]) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)


def encode(path: Path, codec: str, rate: int, signal: np.ndarray, layout: str, **options: str) -> Path:
    """Write ``signal`` (channels × samples, float) to ``path`` with PyAV."""
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, signal.shape[1], frame_size):
            chunk = np.ascontiguousarray(signal[:, start : start + frame_size])
            if stream.codec_context.frame_size and chunk.shape[1] < frame_size:
                chunk = np.pad(chunk, ((0, 0), (0, frame_size - chunk.shape[1])))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


@pytest.fixture
def stereo_wav(tmp_path: Path) -> Path:
    return encode(tmp_path / "call.wav", "pcm_s16le", 44_100, tone(44_100, SECONDS, (LEFT_HZ, RIGHT_HZ)), "stereo")


@pytest.mark.parametrize("name,codec,rate,layout", FORMATS, ids=[f[0].split(".")[1] for f in FORMATS])
def test_decodes_each_format_to_16k_float32(tmp_path: Path, name: str, codec: str, rate: int, layout: str) -> None:
    freqs = (LEFT_HZ, RIGHT_HZ) if layout == "stereo" else (LEFT_HZ,)
    path = encode(tmp_path / name, codec, rate, tone(rate, SECONDS, freqs), layout)

    recording = load_recording(path)

    assert isinstance(recording, Recording)
    assert recording.sample_rate == SAMPLE_RATE
    assert recording.duration == pytest.approx(SECONDS, abs=0.1)
    assert len(recording.channels) == len(freqs)
    for samples, hz in zip(recording.channels, freqs):
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert samples.shape[0] == pytest.approx(recording.duration * SAMPLE_RATE, abs=1)
        # Each channel keeps its own tone: nothing was mixed.
        assert dominant_hz(samples) == pytest.approx(hz, abs=5)
        assert not samples.flags.writeable


def test_sha256_is_of_the_original_bytes(stereo_wav: Path) -> None:
    recording = load_recording(stereo_wav)
    assert recording.sha256 == hashlib.sha256(stereo_wav.read_bytes()).hexdigest()
    assert recording.path == str(stereo_wav)


def test_duration_is_exact_for_pcm(tmp_path: Path) -> None:
    path = encode(tmp_path / "exact.wav", "pcm_s16le", 16_000, tone(16_000, 1.25, (LEFT_HZ,)), "mono")
    assert load_recording(path).duration == pytest.approx(1.25, abs=1e-3)


def test_more_than_two_channels_are_mixed_to_mono(tmp_path: Path) -> None:
    path = encode(tmp_path / "quad.wav", "pcm_s16le", 16_000, tone(16_000, 1.0, (300, 400, 500, 600)), "quad")
    recording = load_recording(path)
    assert len(recording.channels) == 1
    assert recording.source_channels == 4


def test_identical_stereo_channels_collapse_to_one(tmp_path: Path) -> None:
    # A mono call saved as stereo must not be credited to both speakers.
    path = encode(tmp_path / "dual.wav", "pcm_s16le", 16_000, tone(16_000, 1.0, (LEFT_HZ, LEFT_HZ)), "stereo")
    recording = load_recording(path)
    assert len(recording.channels) == 1
    assert recording.source_channels == 2


def test_mono_mix_of_stereo(stereo_wav: Path) -> None:
    recording = load_recording(stereo_wav)
    assert recording.is_stereo
    mixed = recording.mono()
    assert mixed.shape == recording.channels[0].shape
    assert np.allclose(mixed, (recording.channels[0] + recording.channels[1]) / 2, atol=1e-6)


# ---- refusals -----------------------------------------------------------------------


def refused(path: Path, **kwargs) -> AudioError:
    with pytest.raises(AudioError) as caught:
        load_recording(path, **kwargs)
    error = caught.value
    assert error.path == str(path)
    assert str(path) in str(error)  # the message names the file
    return error


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "transcript.wav"
    path.write_text("催收员：您好，我是百川消费金融的客服。\n", encoding="utf-8")
    assert refused(path).reason == "not an audio file (it contains text)"


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(bytes(range(256)) * 8)
    assert "not an audio file" in refused(path).reason


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert refused(path).reason == "empty file (0 bytes)"


def test_missing_file(tmp_path: Path) -> None:
    assert refused(tmp_path / "nowhere.wav").reason == "file not found"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    assert refused(folder).reason == "not a file"


def test_file_without_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "video.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    reason = refused(path).reason
    assert reason.startswith("no audio stream")
    assert "video" in reason


def test_truncated_mp3_is_refused(tmp_path: Path) -> None:
    # The encoder writes a Xing header with the full length, so a cut-off file
    # declares more audio than it holds: refused rather than analysed in part.
    full = encode(tmp_path / "full.mp3", "libmp3lame", 44_100, tone(44_100, 4.0, (LEFT_HZ, RIGHT_HZ)), "stereo")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    reason = refused(cut).reason
    assert reason.startswith("incomplete recording")
    assert "of the declared 0:04.0" in reason


def test_mp3_cut_to_its_first_bytes_decodes_to_nothing(tmp_path: Path) -> None:
    full = encode(tmp_path / "full.mp3", "libmp3lame", 44_100, tone(44_100, 2.0, (LEFT_HZ,)), "mono")
    cut = tmp_path / "stub.mp3"
    cut.write_bytes(full.read_bytes()[:300])
    refused(cut)


def test_truncated_flac_is_refused(tmp_path: Path) -> None:
    full = encode(tmp_path / "full.flac", "flac", 44_100, tone(44_100, 3.0, (LEFT_HZ, RIGHT_HZ)), "stereo")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    reason = refused(cut).reason
    assert reason.startswith(("damaged audio", "incomplete recording"))


def test_truncated_m4a_without_index_is_refused(tmp_path: Path) -> None:
    full = encode(tmp_path / "full.m4a", "aac", 44_100, tone(44_100, 2.0, (LEFT_HZ, RIGHT_HZ)), "stereo")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    refused(cut)


def test_over_long_recording_is_refused_before_decoding(stereo_wav: Path) -> None:
    reason = refused(stereo_wav, max_seconds=1.0).reason
    assert reason.startswith("recording too long: 0:02.0")
    assert "max_seconds=1" in reason


def test_limit_holds_when_the_header_gives_no_length(stereo_wav: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Streams (and lying headers) may declare no length: the decoder counts instead.
    monkeypatch.setattr("monitor.speech.audio._declared_seconds", lambda container, stream: None)
    assert refused(stereo_wav, max_seconds=1.0).reason.startswith("recording too long: over 0:01")
