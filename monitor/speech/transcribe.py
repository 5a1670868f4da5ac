"""Speech recognition: a Transcriber protocol, two Whisper engines, and turn building.

The only module that imports ``faster_whisper`` or ``whisper`` (openai-whisper). Both
are imported lazily, inside the engine that needs them, so the rest of the monitor
(and its unit tests) never pays their import time.

Engines take 16 kHz mono float32 samples and return ``Segment`` values, already
cleaned of Whisper's known hallucinations. ``turns_from_recording`` maps a decoded
recording (one channel per speaker when stereo) onto time-ordered ``Turn`` values.
The recognised text is kept as Whisper wrote it (often traditional characters);
converting to simplified Chinese is the text stage's job.
"""

from __future__ import annotations

import math
import os
import re
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from monitor.speech.audio import SAMPLE_RATE, Recording
from monitor.errors import TranscriptionError, import_optional
from monitor.models import Turn

LANGUAGE = "zh"
ENGINES = ("faster-whisper", "openai-whisper")
DEFAULT_COMPUTE_TYPE = {"faster-whisper": "int8", "openai-whisper": "float32"}
DEVICES = ("auto", "cpu", "cuda")
# On a GPU half precision is what CTranslate2 is fastest at, with Whisper's accuracy.
CUDA_COMPUTE_TYPE = "float16"
# faster-whisper's batched pipeline decodes this many 30-second windows at once on a GPU
# (on the CPU it measured no faster, so the CPU keeps the sequential decoder).
DEFAULT_BATCH_SIZE = 8

# Beam search (5) against greedy (1), base model on sample_audio (bench/asr.py): the
# character error rate fell from 0.12 to 0.10 (faster-whisper float32) and from 0.13
# to 0.10 (openai-whisper); faster-whisper int8 changed little (0.11). It costs
# faster-whisper about 15% in speed, openai-whisper about 3×. A missed word can be a
# missed violation, so accuracy wins; Whisper's own CLI uses 5 too.
BEAM_SIZE = 5
GREEDY_BEAM_SIZE = 1

# Whisper's own thresholds: a window that is probably silence (no_speech_prob high)
# and was decoded with low confidence is dropped; text that compresses too well is a
# repetition loop ("我我我我…").
NO_SPEECH_PROB_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4

# Peak amplitude (full scale 1.0) below which a channel is treated as empty: -80 dBFS.
SILENCE_PEAK = 1e-4

# Lines Whisper invents over silence or noise in Chinese, learnt from subtitled video.
# Simplified and traditional forms both: Whisper base mostly writes traditional.
# A segment containing one of these fragments is dropped ...
HALLUCINATED_FRAGMENTS = (
    "字幕由Amara.org社区提供",
    "字幕由Amara.org社區提供",
    "Amara.org",
    "明镜与点点",
    "明鏡與點點",
    "明镜需要您的支持",
    "明鏡需要您的支持",
    "请不吝点赞",
    "請不吝點贊",
    "請不吝點讚",
    "优优独播剧场",
    "優優獨播劇場",
    "YoYo Television Series Exclusive",
    "字幕志愿者",
    "字幕志願者",
    "中文字幕提供",
    "本字幕由",
    "字幕製作",
    "字幕制作",
    "訂閱我的頻道",
    "订阅我的频道",
)
# ... and a segment that is exactly one of these (punctuation and spaces ignored) too;
# as part of a longer sentence they can be real speech. A bare "谢谢" is left alone:
# people on the phone do say it.
HALLUCINATED_LINES = (
    "谢谢观看",
    "謝謝觀看",
    "谢谢收看",
    "謝謝收看",
    "感谢观看",
    "感謝觀看",
    "请订阅",
    "請訂閱",
    "下集再见",
    "下集再見",
    "我们下期再见",
    "我們下期再見",
)

# A pause this long inside one recognised segment is where the other speaker talked
# (or a new sentence starts): the segment is cut there.
SPLIT_PAUSE_SECONDS = 1.0
# Two segments of one speaker closer than this are one turn: Whisper cuts long
# utterances at its own timestamps, and a rule should see the whole sentence.
MERGE_GAP_SECONDS = 1.0
# Never grow a merged turn beyond this, so evidence keeps a useful time range.
MAX_TURN_SECONDS = 30.0

_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Word:
    """One recognised word with its times (what diarization cuts segments at)."""

    start: float
    end: float
    word: str


@dataclass(frozen=True)
class Segment:
    """One stretch of recognised speech, times in seconds from the start of the samples."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[Word, ...] = ()


@runtime_checkable
class Transcriber(Protocol):
    """Anything that turns 16 kHz mono float32 samples into segments."""

    name: str

    def transcribe(self, samples: np.ndarray) -> list[Segment]: ...


def is_hallucination(segment: Segment) -> bool:
    """True for segments that are Whisper's inventions rather than speech."""
    text = segment.text.strip()
    if not text:
        return True
    if segment.no_speech_prob > NO_SPEECH_PROB_THRESHOLD and segment.avg_logprob < LOGPROB_THRESHOLD:
        return True
    if segment.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
        return True
    if any(fragment in text for fragment in HALLUCINATED_FRAGMENTS):
        return True
    bare = _PUNCTUATION.sub("", text)
    return bare in HALLUCINATED_LINES


def clean_segments(segments: list[Segment]) -> list[Segment]:
    return [s for s in segments if not is_hallucination(s)]


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise TranscriptionError(f"expected one channel of samples, got an array of shape {samples.shape}")
    return samples


def is_silent(samples: np.ndarray) -> bool:
    """Nothing above -80 dBFS: an unused channel, or digital silence.

    Checked before decoding because openai-whisper spends about a minute on three
    seconds of exact zeros (its temperature fallback loops on a flat spectrogram) and
    finds nothing; faster-whisper's VAD would skip it anyway.
    """
    return samples.size == 0 or float(np.max(np.abs(samples))) < SILENCE_PEAK


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2). ``model``: None = packaged base, a folder, or a name.

    A name ("base", "large-v3") is looked up only in the local Hugging Face cache: the
    monitor runs where model hubs are unreachable, so it never tries to download.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        beam_size: int | None = None,
        condition_on_previous_text: bool = False,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        from monitor.speech import model as asr_model

        location = str(asr_model.packaged_model_dir() if model is None else model)
        self.name = f"faster-whisper:{'packaged-base' if model is None else model}:{compute_type}:{device}"
        self.device = device
        self.batch_size = batch_size
        # int8 with greedy decoding measured the same character error rate as beam 5
        # on sample_audio (0.111 / 0.110) at 1.6× the speed; float32 gains from beam 5.
        if beam_size is None:
            beam_size = GREEDY_BEAM_SIZE if compute_type.startswith("int8") else BEAM_SIZE
        self.beam_size = beam_size
        # Off by default: with it on, one misheard line is fed back as context and can
        # start a loop of repeated or invented text on the next window.
        self.condition_on_previous_text = condition_on_previous_text
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel

            self._model = WhisperModel(
                location,
                device=device,
                compute_type=compute_type,
                # On a GPU the CPU threads only feed it: one is enough, and leaves the
                # other cores to the other workers sharing the device.
                cpu_threads=1 if device == "cuda" else (cpu_threads or os.cpu_count() or 1),
                local_files_only=True,
            )
            self._batched = BatchedInferencePipeline(self._model) if device == "cuda" else None
        except Exception as exc:  # any failure inside the library is a load failure
            raise TranscriptionError(f"could not load faster-whisper model {location!r} on {device}: {exc}") from exc

    def transcribe(self, samples: np.ndarray) -> list[Segment]:
        samples = _as_mono_float32(samples)
        if is_silent(samples):
            return []
        # Word times are what keep turns apart: the VAD joins the speech of one channel
        # into a single window, so one Whisper segment can run across the other
        # speaker's turn; its words still carry their real times.
        common = dict(language=LANGUAGE, task="transcribe", beam_size=self.beam_size, vad_filter=True,
                      word_timestamps=True)
        try:
            if self._batched is not None:
                raw, _info = self._batched.transcribe(samples, batch_size=self.batch_size, **common)
            else:
                raw, _info = self._model.transcribe(
                    samples, condition_on_previous_text=self.condition_on_previous_text, **common
                )
            segments = [piece for s in raw for piece in _split_at_pauses(s)]  # decoding happens here
        except Exception as exc:
            raise TranscriptionError(f"faster-whisper failed: {exc}") from exc
        return clean_segments(segments)


def _split_at_pauses(segment) -> list[Segment]:
    """Cut a faster-whisper segment wherever its words pause longer than SPLIT_PAUSE_SECONDS.

    Each piece's avg_logprob is the mean log-probability of its words, so confidence is
    per utterance rather than per 30-second window (which all its segments share).
    """
    words = [w for w in (segment.words or []) if w.word.strip()]
    if not words:
        return [Segment(segment.start, segment.end, segment.text.strip(), segment.avg_logprob,
                        segment.no_speech_prob, segment.compression_ratio)]
    runs = [[words[0]]]
    for previous, word in zip(words, words[1:]):
        if word.start - previous.end > SPLIT_PAUSE_SECONDS:
            runs.append([])
        runs[-1].append(word)
    return [
        Segment(
            start=run[0].start,
            end=run[-1].end,
            text="".join(w.word for w in run).strip(),
            avg_logprob=sum(math.log(max(w.probability, 1e-6)) for w in run) / len(run),
            no_speech_prob=segment.no_speech_prob,
            compression_ratio=segment.compression_ratio,
            words=tuple(Word(float(w.start), float(w.end), w.word) for w in run),
        )
        for run in runs
    ]


class OpenAIWhisperTranscriber:
    """openai-whisper (PyTorch), float32 on the CPU.

    ``model``: None = the packaged base model converted to a checkpoint once; a path to
    a ``.pt`` checkpoint; or a name ("base", "large-v3") found in whisper's download
    cache (``$XDG_CACHE_HOME/whisper``), never downloaded.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        cpu_threads: int | None = None,
        beam_size: int = BEAM_SIZE,
        condition_on_previous_text: bool = False,
    ):
        from monitor.speech import model as asr_model

        self.name = f"openai-whisper:{'packaged-base' if model is None else model}:float32"
        self.beam_size = beam_size
        self.condition_on_previous_text = condition_on_previous_text
        # whisper.transcribe installs key/value-cache hooks on the shared model for the
        # length of a call, so two threads must not transcribe on one model at once.
        self._lock = threading.Lock()
        torch = import_optional("torch", "the openai-whisper engine", "openai")
        whisper = import_optional("whisper", "the openai-whisper engine", "openai")
        try:
            if cpu_threads:
                torch.set_num_threads(cpu_threads)
        except Exception as exc:
            raise TranscriptionError(f"openai-whisper is not usable: {exc}") from exc
        if model is None:
            ct2_dir = asr_model.packaged_model_dir()
            source = str(asr_model.default_openai_checkpoint())
        else:
            ct2_dir = None
            source = _openai_checkpoint_for(model, whisper.available_models())
        try:
            self._model = whisper.load_model(source, device="cpu")
        except Exception as exc:
            raise TranscriptionError(f"could not load openai-whisper model {source!r}: {exc}") from exc
        # openai-whisper reads its tokenizer vocabulary with an open() it never closes
        # (whisper/tokenizer.py, get_encoding). The result is cached, so reading it once
        # here with that ResourceWarning silenced keeps callers that turn warnings into
        # errors (our test suite) working. Same arguments as whisper's own call.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            whisper.tokenizer.get_encoding(
                name="multilingual" if self._model.is_multilingual else "gpt2",
                num_languages=self._model.num_languages,
            )
        if ct2_dir is not None:
            dims = self._model.dims
            heads = asr_model.alignment_heads_dump(ct2_dir, dims.n_text_layer, dims.n_text_head)
            if heads is not None:
                self._model.set_alignment_heads(heads)

    def transcribe(self, samples: np.ndarray) -> list[Segment]:
        # whisper hands the array to torch.from_numpy, which warns on read-only arrays.
        samples = np.array(_as_mono_float32(samples), copy=True)
        if is_silent(samples):
            return []
        try:
            with self._lock:
                result = self._model.transcribe(
                    samples,
                    language=LANGUAGE,
                    task="transcribe",
                    beam_size=self.beam_size,
                    fp16=False,
                    condition_on_previous_text=self.condition_on_previous_text,
                    # No VAD here: Whisper reads each channel's silence too, and its
                    # segment times drift across it. Word times put turns back in place.
                    word_timestamps=True,
                    verbose=None,
                )
            segments = [piece for s in result["segments"] for piece in _split_at_pauses(_OpenAISegment(s))]
        except Exception as exc:
            raise TranscriptionError(f"openai-whisper failed: {exc}") from exc
        return clean_segments(segments)


class _OpenAIWord:
    def __init__(self, word: dict):
        self.word, self.start, self.end, self.probability = word["word"], word["start"], word["end"], word["probability"]


class _OpenAISegment:
    """openai-whisper's segment dict seen through faster-whisper's attribute names."""

    def __init__(self, segment: dict):
        self.start = float(segment["start"])
        self.end = float(segment["end"])
        self.text = segment["text"]
        self.avg_logprob = float(segment["avg_logprob"])
        self.no_speech_prob = float(segment["no_speech_prob"])
        self.compression_ratio = float(segment["compression_ratio"])
        self.words = [_OpenAIWord(w) for w in segment.get("words") or ()]


def _openai_checkpoint_for(model: str | os.PathLike[str], known_names: list[str]) -> str:
    """A checkpoint path, or an official model name already in whisper's cache.

    Names go to ``whisper.load_model`` by name so it checks the file's SHA-256 and sets
    the model's alignment heads; only names already downloaded are accepted, so the
    monitor never starts a download.
    """
    path = Path(model).expanduser()
    if path.is_file():
        return str(path)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper"
    if str(model) in known_names and (cache / f"{model}.pt").is_file():
        return str(model)
    raise TranscriptionError(
        f"openai-whisper model {str(model)!r} is neither a checkpoint file nor in the whisper cache ({cache}); "
        "no download is attempted: copy the .pt file there, pass its path, or omit the model to use the packaged base"
    )


_transcribers: dict[tuple, Transcriber] = {}
_transcribers_lock = threading.Lock()


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can use here (0 without a GPU, a CUDA build or a driver)."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # no CUDA runtime: the library says so by raising on some builds
        return 0


@dataclass(frozen=True)
class DeviceChoice:
    """Where an engine runs, and why (``note`` is shown in a batch summary)."""

    device: str  # cpu | cuda
    requested: str
    note: str = ""


def choose_device(requested: str, engine: str = "faster-whisper", cuda_devices: int | None = None) -> DeviceChoice:
    """Resolve the ``device`` setting: ``auto`` takes CUDA when CTranslate2 sees a device
    and otherwise the CPU (saying so); ``cuda`` without a device is an error that names
    the setting. openai-whisper always runs on the CPU here."""
    if requested not in DEVICES:
        raise TranscriptionError(f"unknown device {requested!r} (setting device / --device); choose one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return DeviceChoice("cpu", requested)
    if engine != "faster-whisper":
        if requested == "cuda":
            raise TranscriptionError(f"device=cuda (setting device / MONITOR_DEVICE / --device): only the faster-whisper "
                                     f"engine runs on a GPU here, not {engine}; use --device cpu or --engine faster-whisper")
        return DeviceChoice("cpu", requested, f"device auto: {engine} runs on the CPU")
    count = cuda_device_count() if cuda_devices is None else cuda_devices
    if count > 0:
        return DeviceChoice("cuda", requested, f"device {requested}: CUDA ({count} device{'s' if count > 1 else ''})")
    if requested == "cuda":
        raise TranscriptionError("device=cuda (setting device / MONITOR_DEVICE / --device) but CTranslate2 sees no CUDA "
                                 "device on this machine; use --device cpu, or auto to fall back to the CPU")
    return DeviceChoice("cpu", requested, "device auto: no CUDA device found, running on the CPU")


def default_compute_type(engine: str, device: str = "cpu") -> str:
    if engine == "faster-whisper" and device == "cuda":
        return CUDA_COMPUTE_TYPE
    return DEFAULT_COMPUTE_TYPE[engine]


def get_transcriber(
    engine: str = "faster-whisper",
    model: str | os.PathLike[str] | None = None,
    compute_type: str | None = None,
    cpu_threads: int | None = None,
    device: str = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Transcriber:
    """One shared transcriber per (engine, model, compute type, threads, device) in this
    process. ``device`` is ``cpu`` or ``cuda`` (resolve ``auto`` with ``choose_device``).

    Loading a model takes seconds and hundreds of megabytes, so a batch and the web
    app's uploads share one instance. Thread-safe: two threads asking for the same
    configuration get the same object, and the model loads once.
    """
    if engine not in ENGINES:
        raise TranscriptionError(f"unknown speech engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if device == "auto":
        device = choose_device(device, engine).device
    if device not in ("cpu", "cuda"):
        raise TranscriptionError(f"unknown device {device!r} (setting device / --device); choose one of {', '.join(DEVICES)}")
    compute_type = compute_type or default_compute_type(engine, device)
    if engine == "openai-whisper" and (compute_type != "float32" or device != "cpu"):
        raise TranscriptionError(f"openai-whisper runs float32 on the CPU, not {compute_type} on {device}")
    key = (engine, None if model is None else str(model), compute_type, cpu_threads, device, batch_size)
    with _transcribers_lock:
        if key not in _transcribers:
            if engine == "faster-whisper":
                on_gpu = {} if device == "cpu" else {"device": device, "batch_size": batch_size}
                _transcribers[key] = FasterWhisperTranscriber(model, compute_type=compute_type, cpu_threads=cpu_threads, **on_gpu)
            else:
                _transcribers[key] = OpenAIWhisperTranscriber(model, cpu_threads=cpu_threads)
        return _transcribers[key]


# --------------------------------------------------------------------------------------
# From a recording to turns
# --------------------------------------------------------------------------------------

COLLECTOR_CHANNELS = ("left", "right")


def turns_from_recording(
    recording: Recording,
    transcriber: Transcriber,
    collector_channel: str = "left",
    diarize: bool = False,
) -> list[Turn]:
    """Transcribe each channel and return the speech as time-ordered turns.

    Stereo: the collector's channel (left by default, the usual recorder convention)
    gives "collector" turns, the other "debtor". Mono: every turn is "unknown"; with
    ``diarize`` each turn also carries its voice (see ``transcribe_with_voices``).
    Adjacent segments of the same known speaker within ``MERGE_GAP_SECONDS`` join into
    one turn; "unknown" segments never join, because a segment boundary in a mixed
    channel is often exactly where the speaker changes.
    """
    return transcribe_with_voices(recording, transcriber, collector_channel, diarize)[0]


def transcribe_with_voices(
    recording: Recording,
    transcriber: Transcriber,
    collector_channel: str = "left",
    diarize: bool = True,
):
    """Turns, plus the diarization of a mono recording (None for stereo, or when
    ``diarize`` is off). Mono turns are cut where the voice changes and carry
    ``voice`` "A"/"B" (speaker still "unknown": the roles are decided from what each
    voice says, in monitor.runs.roles) and ``speaker_source`` "diarized"."""
    if collector_channel not in COLLECTOR_CHANNELS:
        raise ValueError(f"collector_channel must be 'left' or 'right', not {collector_channel!r}")
    if recording.sample_rate != SAMPLE_RATE:
        raise TranscriptionError(f"{recording.path}: expected {SAMPLE_RATE} Hz samples, got {recording.sample_rate}")

    if len(recording.channels) == 2:
        collector_index = COLLECTOR_CHANNELS.index(collector_channel)
        speakers = ["debtor", "debtor"]
        speakers[collector_index] = "collector"
        labelled = [
            (speaker, segment)
            for speaker, samples in zip(speakers, recording.channels)
            for segment in transcriber.transcribe(samples)
        ]
        return [replace(t, speaker_source="channel") for t in merge_segments(labelled)], None
    segments = transcriber.transcribe(recording.mono())
    if not diarize:
        return merge_segments([("unknown", segment) for segment in segments]), None
    from monitor.speech.diarize import diarize as find_voices, split_by_voice

    diarization = find_voices(recording.mono(), recording.sample_rate)
    # Segments of one voice join like a known speaker's (the voice is the key); the
    # turn is then "unknown" with its voice until roles are assigned.
    labelled = [(f"voice:{voice}", segment) for voice, segment in split_by_voice(segments, diarization)]
    turns = [
        replace(t, speaker="unknown", voice=t.speaker.removeprefix("voice:"), speaker_source="diarized")
        for t in merge_segments(labelled)
    ]
    return turns, diarization


def merge_segments(labelled: list[tuple[str, Segment]]) -> list[Turn]:
    """Order (speaker, segment) pairs by time and join a speaker's close segments."""
    ordered = sorted(labelled, key=lambda pair: (pair[1].start, pair[1].end))
    groups: list[tuple[str, list[Segment]]] = []
    for speaker, segment in ordered:
        if groups and _joins(groups[-1], speaker, segment):
            groups[-1][1].append(segment)
        else:
            groups.append((speaker, [segment]))
    return [_turn(speaker, segments) for speaker, segments in groups]


def _joins(group: tuple[str, list[Segment]], speaker: str, segment: Segment) -> bool:
    last_speaker, segments = group
    return (
        speaker == last_speaker
        and speaker != "unknown"
        and segment.start - segments[-1].end <= MERGE_GAP_SECONDS
        and segment.end - segments[0].start <= MAX_TURN_SECONDS
    )


def _turn(speaker: str, segments: list[Segment]) -> Turn:
    text = ""
    for segment in segments:
        text = _join_text(text, segment.text)
    # Confidence: exp of the mean token log-probability, each segment weighted by its
    # text length (a proxy for its token count); a per-token probability in (0, 1].
    weights = [max(len(s.text), 1) for s in segments]
    mean_logprob = sum(w * s.avg_logprob for w, s in zip(weights, segments)) / sum(weights)
    return Turn(
        speaker=speaker,
        text=text,
        start=round(segments[0].start, 3),
        end=round(max(s.end for s in segments), 3),
        confidence=round(min(1.0, math.exp(mean_logprob)), 4),
    )


def _join_text(left: str, right: str) -> str:
    """Chinese runs on without spaces; keep a space only between two Latin words."""
    if not left:
        return right
    if left[-1].isascii() and left[-1].isalnum() and right[:1].isascii() and right[:1].isalnum():
        return f"{left} {right}"
    return left + right
