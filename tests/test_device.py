"""Where speech recognition runs: the ``device`` setting resolved with the CPU alone, and
the CUDA path itself where a GPU is present (skipped cleanly otherwise)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from monitor.errors import TranscriptionError
from monitor.runs.executor import LocalExecutor
from monitor.runs.pipeline import AsrOptions
from monitor.speech import transcribe
from monitor.speech.transcribe import choose_device, cuda_device_count, default_compute_type

from .conftest import REPO

HAS_CUDA = cuda_device_count() > 0


def test_auto_takes_cuda_when_ctranslate2_sees_a_device_and_says_when_it_falls_back():
    assert choose_device("auto", cuda_devices=1).device == "cuda"
    fallback = choose_device("auto", cuda_devices=0)
    assert fallback.device == "cpu" and "no CUDA device found, running on the CPU" in fallback.note
    assert choose_device("cpu", cuda_devices=4) == transcribe.DeviceChoice("cpu", "cpu")
    assert choose_device("cuda", cuda_devices=2).device == "cuda"


def test_cuda_without_a_device_is_an_error_that_names_the_setting():
    with pytest.raises(TranscriptionError, match=r"device=cuda \(setting device / MONITOR_DEVICE / --device\)"):
        choose_device("cuda", cuda_devices=0)
    with pytest.raises(TranscriptionError, match="unknown device 'gpu'"):
        choose_device("gpu")
    # openai-whisper stays on the CPU: auto says so, cuda is refused.
    assert choose_device("auto", "openai-whisper", cuda_devices=1).device == "cpu"
    with pytest.raises(TranscriptionError, match="only the faster-whisper engine runs on a GPU"):
        choose_device("cuda", "openai-whisper", cuda_devices=1)


def test_cuda_means_float16_and_the_batched_pipeline(monkeypatch):
    made = []

    class Recorder:
        def __init__(self, model, compute_type, cpu_threads, **on_gpu):
            made.append((compute_type, cpu_threads, on_gpu))
            self.name = "recorder"

    monkeypatch.setattr(transcribe, "FasterWhisperTranscriber", Recorder)
    monkeypatch.setattr(transcribe, "_transcribers", {})
    transcribe.get_transcriber("faster-whisper", None, None, 2, "cuda", 16)
    transcribe.get_transcriber("faster-whisper", None, None, 2, "cpu")
    assert made == [("float16", 2, {"device": "cuda", "batch_size": 16}), ("int8", 2, {})]
    assert default_compute_type("faster-whisper", "cuda") == "float16"
    assert default_compute_type("openai-whisper", "cpu") == "float32"


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA device")
def test_a_pool_asked_for_cuda_without_a_gpu_refuses_before_starting_workers():
    with pytest.raises(TranscriptionError, match="setting device"):
        LocalExecutor(2, AsrOptions(device="cuda"))
    pool = LocalExecutor(2, AsrOptions(device="auto"))
    assert pool.options.device == "cpu" and "running on the CPU" in pool.device_note


@pytest.mark.slow
@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA device")
def test_batch_with_device_cuda_fails_with_a_clear_message(tmp_path):
    (tmp_path / "night").mkdir()
    done = subprocess.run([sys.executable, "-m", "monitor", "batch", str(tmp_path / "night"), "--device", "cuda",
                           "--db", str(tmp_path / "m.db")], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "device=cuda (setting device / MONITOR_DEVICE / --device)" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device (CTranslate2 sees none)")
def test_cuda_transcribes_a_sample_with_float16_and_the_batched_pipeline():
    from monitor.runs.pipeline import transcribe_part

    options = AsrOptions(device="cuda")
    heard = transcribe_part(REPO / "sample_audio" / "abuse_threat.wav", options)
    model = transcribe.get_transcriber("faster-whisper", None, None, None, "cuda", options.batch_size)
    assert model.name.endswith(":float16:cuda") and model._batched is not None
    assert {t.speaker for t in heard.call.turns} == {"collector", "debtor"}
    assert sum(len(t.text) for t in heard.call.turns) > 20
