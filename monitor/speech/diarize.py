"""Two speakers from one channel: who spoke when in a mono recording.

The only module that imports ``resemblyzer`` (a speaker encoder whose weights ship in
its wheel, so it works offline) and ``webrtcvad``. Steps:

1. voice activity (webrtcvad, 30 ms frames) marks where anyone speaks;
2. 1.6 s windows every 0.5 s that are mostly speech are embedded by the encoder;
3. the embeddings are clustered into two groups (spectral clustering on cosine
   affinity) and a separation test decides whether there really are two voices: a
   recording of one person must stay one speaker;
4. each 10 ms speech frame takes the vote of the windows that cover it; a stretch of
   speech shorter than a window (a 喂, a 是我) is judged by its own embedding; short
   runs are smoothed away (nobody changes turns every 200 ms), and each change of
   voice moves to the longest pause near it;
5. ``split_by_voice`` cuts Whisper segments where the voice changes, at word times.

Also imported here and only here: scikit-learn (the clustering). torch runs the encoder.

Voices are named ``A`` (the one heard first) and ``B``; which of them is the collector
is decided later from what they say (``monitor.runs.roles``).
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from monitor.models import VOICES
from monitor.speech.audio import SAMPLE_RATE

FRAME_SECONDS = 0.01  # the encoder's mel hop: labels are given per 10 ms
WINDOW_SECONDS = 1.6  # the encoder's partial-utterance length
HOP_SECONDS = 0.5
# A window is embedded when at least this share of it is speech (less: mostly silence,
# the embedding says little about the voice).
MIN_SPEECH_IN_WINDOW = 0.5
# webrtcvad aggressiveness 0–3; 2 keeps quiet syllables without taking in line noise.
VAD_MODE = 2
VAD_FRAME_MS = 30
# Less speech than this (seconds) cannot be told apart into two voices reliably.
MIN_SPEECH_SECONDS = 3.0
MIN_WINDOWS = 6
# Separation test. Two voices: the clusters' centroids lie far apart compared with the
# spread inside each cluster (``_separation``), and each stretch of continuous speech
# falls mostly in one cluster (``_purity``: a person does not change voice mid-sentence,
# while clusters of one voice split by what is said cut across sentences). The product
# of the two must reach MIN_SEPARATION. Calibrated on mono mixes of the sample calls
# (scripts/make_mono_mixes.py): two voices 0.68–1.22 (one phone-line call: 0.49), one
# voice on both sides ("same_voice" set) 0.49–0.62. The sample voices are one
# synthetic voice with pitch lowered for the debtor, so the margin is thin; real voices
# of two people lie further apart.
MIN_SEPARATION = 0.65
MIN_SECOND_VOICE_SHARE = 0.08
MIN_SECOND_VOICE_SECONDS = 1.5
# Stretches of speech between pauses shorter than this are judged by their own
# embedding (see _vote_short_stretches); shorter than the minimum, they say too little.
SHORT_STRETCH_SECONDS = 1.6
MIN_STRETCH_SECONDS = 0.3
# A change of voice moves to a pause (at least MIN_PAUSE_SECONDS without speech) at
# most this far away.
SNAP_SECONDS = 0.5
MIN_PAUSE_SECONDS = 0.1
# Runs of one voice shorter than this are absorbed by their neighbours.
MIN_RUN_SECONDS = 0.4
# Inside one recognised segment, a run of words this short (or a single character)
# keeps the voice of the words around it.
SHORT_WORD_RUN_SECONDS = 0.3


@dataclass(frozen=True, eq=False)
class Diarization:
    """Per 10 ms frame: -1 nobody speaks, 0 voice A, 1 voice B. ``voices`` is how many
    were found (0, 1 or 2); ``note`` says why fewer than two, in words for people."""

    labels: np.ndarray
    voices: int
    separation: float | None = None
    note: str | None = None
    frame_seconds: float = FRAME_SECONDS

    def voice_between(self, start: float, end: float) -> str | None:
        """The voice that speaks most between two times (None: nobody)."""
        counts = self._counts(start, end)
        if counts is None:
            return None
        return VOICES[int(np.argmax(counts))]

    def _counts(self, start: float, end: float) -> np.ndarray | None:
        lo = max(0, int(start / self.frame_seconds))
        hi = min(len(self.labels), max(lo + 1, int(np.ceil(end / self.frame_seconds))))
        span = self.labels[lo:hi]
        counts = np.array([(span == 0).sum(), (span == 1).sum()])
        return counts if counts.sum() else None

    def seconds(self, voice: str) -> float:
        return float((self.labels == VOICES.index(voice)).sum() * self.frame_seconds)

    def speech_mask(self) -> np.ndarray:
        return self.labels >= 0


# -- voice activity ----------------------------------------------------------------------


def speech_frames(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Boolean speech flag per 10 ms frame (webrtcvad on 30 ms frames, spread back)."""
    with _library_warnings_silenced():
        import webrtcvad

    n_frames = int(len(samples) / (sample_rate * FRAME_SECONDS))
    flags = np.zeros(n_frames, dtype=bool)
    if len(samples) == 0 or float(np.max(np.abs(samples))) < 1e-4:
        return flags
    # webrtcvad reads 16-bit PCM; scale quiet recordings up so the detector hears them
    # (it has a fixed energy floor), but never clip.
    peak = float(np.max(np.abs(samples)))
    pcm = np.clip(samples * min(0.9 / peak, 30.0), -1, 1)
    pcm = (pcm * 32767).astype("<i2").tobytes()
    vad = webrtcvad.Vad(VAD_MODE)
    step = int(sample_rate * VAD_FRAME_MS / 1000)
    per = int(VAD_FRAME_MS / 1000 / FRAME_SECONDS)
    for i in range(0, len(samples) - step + 1, step):
        if vad.is_speech(pcm[2 * i: 2 * (i + step)], sample_rate):
            first = i // int(sample_rate * FRAME_SECONDS)
            flags[first: first + per] = True
    # Bridge pauses shorter than 0.2 s inside speech and drop blips shorter than 0.1 s.
    return _drop_short(_fill_short(flags, 20), 10)


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, start, end) for each run of equal values."""
    if len(values) == 0:
        return []
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(values)]])
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def _fill_short(flags: np.ndarray, frames: int) -> np.ndarray:
    out = flags.copy()
    runs = _runs(flags.astype(np.int8))
    for i, (value, s, e) in enumerate(runs):
        if value == 0 and 0 < i < len(runs) - 1 and e - s < frames:
            out[s:e] = True
    return out


def _drop_short(flags: np.ndarray, frames: int) -> np.ndarray:
    out = flags.copy()
    for value, s, e in _runs(flags.astype(np.int8)):
        if value == 1 and e - s < frames:
            out[s:e] = False
    return out


# -- the encoder -------------------------------------------------------------------------

_encoder = None
_encoder_lock = threading.Lock()


@contextmanager
def _library_warnings_silenced():
    """resemblyzer imports scipy.ndimage.morphology and webrtcvad imports
    pkg_resources, both deprecated: their warnings say nothing about our audio, and
    callers that turn warnings into errors (the test suite) must still work."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _get_encoder():
    """One speaker encoder per process (loading it takes about a second)."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            with _library_warnings_silenced():
                from resemblyzer import VoiceEncoder

                _encoder = VoiceEncoder("cpu", verbose=False)
        return _encoder


def _embed_windows(samples: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the mostly-speech windows and each window's first frame."""
    import torch

    with _library_warnings_silenced():
        from resemblyzer.audio import wav_to_mel_spectrogram

    mel = wav_to_mel_spectrogram(np.asarray(samples, dtype=np.float32))
    size = int(round(WINDOW_SECONDS / FRAME_SECONDS))
    hop = int(round(HOP_SECONDS / FRAME_SECONDS))
    n = min(len(mel), len(speech))
    starts = [s for s in range(0, max(0, n - size) + 1, hop) if speech[s: s + size].mean() >= MIN_SPEECH_IN_WINDOW]
    if n >= size and starts and starts[-1] + size < n - hop // 2:
        last = n - size
        if speech[last:].mean() >= MIN_SPEECH_IN_WINDOW:
            starts.append(last)
    if not starts:
        return np.zeros((0, 256), dtype=np.float32), np.zeros(0, dtype=int)
    batch = np.stack([mel[s: s + size] for s in starts])
    encoder = _get_encoder()
    with torch.no_grad(), _encoder_cpu_settings(torch):
        embeds = []
        for i in range(0, len(batch), 64):
            embeds.append(encoder(torch.from_numpy(batch[i: i + 64])).numpy())
    return np.concatenate(embeds), np.array(starts)


@contextmanager
def _encoder_cpu_settings(torch):
    """How the encoder runs, put back afterwards. One thread: its small LSTM batches gain
    nothing from more, and a second thread stalls whenever the machine is busy (the
    Whisper engine's own threads, other workers). Subnormal floats flushed to zero: the
    LSTM state decays into them over silent frames, which the CPU handles many times
    slower; no embedding that matters changes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


# -- clustering --------------------------------------------------------------------------


def _two_clusters(embeds: np.ndarray) -> np.ndarray:
    from sklearn.cluster import SpectralClustering

    affinity = np.clip(embeds @ embeds.T, 0.0, 1.0)
    # Sharpen: the encoder's cosine similarities all sit in 0.6–1.0.
    affinity = np.exp((affinity - 1.0) / 0.05)
    model = SpectralClustering(n_clusters=2, affinity="precomputed", random_state=0, assign_labels="discretize")
    return model.fit_predict(affinity)


def _separation(embeds: np.ndarray, labels: np.ndarray) -> float:
    """Distance between the two centroids over the mean distance to one's own centroid."""
    centroids = [embeds[labels == k].mean(axis=0) for k in (0, 1)]
    centroids = [c / np.linalg.norm(c) for c in centroids]
    between = 1.0 - float(centroids[0] @ centroids[1])
    within = np.mean([1.0 - float(e @ centroids[k]) for e, k in zip(embeds, labels)])
    return between / max(within, 1e-6)


def _purity(speech: np.ndarray, starts: np.ndarray, clusters: np.ndarray) -> float:
    """How much each stretch of continuous speech keeps to one cluster (0.5–1), weighted
    by its number of windows; stretches with a single window say nothing and are left out."""
    size = int(round(WINDOW_SECONDS / FRAME_SECONDS))
    stretch = np.cumsum(np.concatenate([[0], np.diff(speech.astype(np.int8)) == 1]))
    centres = np.minimum(starts + size // 2, len(speech) - 1)
    ids = stretch[centres]
    total = weight = 0.0
    for i in np.unique(ids):
        members = clusters[ids == i]
        if len(members) >= 2:
            share = max(members.mean(), 1 - members.mean())
            total += share * len(members)
            weight += len(members)
    return total / weight if weight else 0.5


def diarize(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Diarization:
    """Who speaks when in one channel of 16 kHz float32 samples. Never raises for
    silence, one voice or very short audio: those give 0 or 1 voices and a note."""
    samples = np.asarray(samples, dtype=np.float32)
    speech = speech_frames(samples, sample_rate)
    labels = np.full(len(speech), -1, dtype=np.int8)
    speech_seconds = float(speech.sum() * FRAME_SECONDS)
    if speech_seconds == 0:
        return Diarization(labels, 0, note="no speech heard: no speakers")
    labels[speech] = 0
    if speech_seconds < MIN_SPEECH_SECONDS:
        return Diarization(labels, 1, note=f"only {speech_seconds:.1f} s of speech: too little to tell two voices apart, "
                                               "treated as one speaker")
    embeds, starts = _embed_windows(samples, speech)
    if len(embeds) < MIN_WINDOWS:
        return Diarization(labels, 1, note=f"only {len(embeds)} stretches of speech long enough to compare voices: "
                                               "treated as one speaker")
    clusters = _two_clusters(embeds)
    separation = _separation(embeds, clusters) * _purity(speech, starts, clusters)
    votes = _frame_votes(len(speech), starts, clusters)
    _vote_short_stretches(votes, samples, speech, embeds, clusters)
    frame_labels = np.where(speech, np.argmax(votes, axis=1), -1).astype(np.int8)
    # Frames no window covered (speech bursts shorter than a window) take the nearest
    # voice in time; smoothing then removes flickers.
    frame_labels = _smooth(_fill_uncovered(frame_labels, votes.sum(axis=1) > 0), int(MIN_RUN_SECONDS / FRAME_SECONDS))
    frame_labels = _snap_changes_to_pauses(frame_labels)
    seconds = [float((frame_labels == k).sum() * FRAME_SECONDS) for k in (0, 1)]
    smaller = min(seconds)
    if separation < MIN_SEPARATION or smaller < MIN_SECOND_VOICE_SECONDS or smaller / sum(seconds) < MIN_SECOND_VOICE_SHARE:
        return Diarization(labels, 1, separation=round(separation, 3),
                           note=f"one voice heard (separation {separation:.2f}, two voices need {MIN_SEPARATION:.2f}): "
                                "treated as one speaker")
    # Name the voice heard first "A".
    first = frame_labels[frame_labels >= 0][0]
    if first == 1:
        frame_labels = np.where(frame_labels >= 0, 1 - frame_labels, -1).astype(np.int8)
    return Diarization(frame_labels, 2, separation=round(separation, 3))


def _frame_votes(n_frames: int, starts: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    size = int(round(WINDOW_SECONDS / FRAME_SECONDS))
    votes = np.zeros((n_frames, 2), dtype=np.float32)
    # A triangular weight: a window knows its centre best.
    weight = np.bartlett(size + 2)[1:-1].astype(np.float32)
    for start, cluster in zip(starts, clusters):
        end = min(n_frames, start + size)
        votes[start:end, cluster] += weight[: end - start]
    return votes


def _vote_short_stretches(votes, samples, speech, embeds, clusters) -> None:
    """Decide each short stretch of speech (a 喂, 是我, 行) from its own embedding.

    Windows are 1.6 s long, so around a short reply they are mostly the other
    speaker's speech and outvote it. A stretch shorter than SHORT_STRETCH_SECONDS is
    embedded alone and given to the nearer cluster centroid, overriding the windows."""
    import torch

    with _library_warnings_silenced():
        from resemblyzer.audio import wav_to_mel_spectrogram

    centroids = np.stack([embeds[clusters == k].mean(axis=0) for k in (0, 1)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    hop = int(SAMPLE_RATE * FRAME_SECONDS)
    stretches = [(s, e) for v, s, e in _runs(speech.astype(np.int8))
                 if v == 1 and MIN_STRETCH_SECONDS <= (e - s) * FRAME_SECONDS < SHORT_STRETCH_SECONDS]
    if not stretches:
        return
    encoder = _get_encoder()
    with torch.no_grad(), _encoder_cpu_settings(torch):
        for s, e in stretches:
            mel = wav_to_mel_spectrogram(np.asarray(samples[s * hop: e * hop], dtype=np.float32))
            embed = encoder(torch.from_numpy(mel[None])).numpy()[0]
            nearer = int(np.argmax(centroids @ embed))
            votes[s:e, nearer] = votes[s:e].sum(axis=1) + 1.0
            votes[s:e, 1 - nearer] = 0.0


def _snap_changes_to_pauses(labels: np.ndarray) -> np.ndarray:
    """Move each change of voice to the longest pause within SNAP_SECONDS.

    People mostly take turns at a pause, but window votes blur a change over a few
    hundred milliseconds, so the last syllable of one turn or the first of the next
    would go to the wrong voice."""
    out = labels.copy()
    reach = int(SNAP_SECONDS / FRAME_SECONDS)
    min_pause = int(MIN_PAUSE_SECONDS / FRAME_SECONDS)
    speech = np.flatnonzero(out >= 0)
    if len(speech) < 2:
        return out
    pauses = [(int(speech[k]), int(speech[k + 1])) for k in range(len(speech) - 1)
              if speech[k + 1] - speech[k] > min_pause]  # (last frame before, first frame after)
    if not pauses:
        return out
    for k in range(1, len(speech)):
        before, after = speech[k - 1], speech[k]
        if out[before] == out[after] or after - before > min_pause:
            continue  # no change here, or it already sits at a pause
        change = int(after)
        # A pause before the change ends near it; one after it starts near it.
        distance = lambda p: change - p[1] if p[1] <= change else p[0] - change  # noqa: E731
        near = [p for p in pauses if distance(p) <= reach]
        if not near:
            continue
        # The longest pause within reach: turns change at real pauses, not between words.
        last, first = max(near, key=lambda p: (p[1] - p[0], -distance(p)))
        old_voice, new_voice = out[before], out[after]
        if first <= change:  # the pause is earlier: the new voice starts after it
            span = out[first:change]
            span[span >= 0] = new_voice
        else:  # the pause is later: the old voice goes on until it
            span = out[change:last + 1]
            span[span >= 0] = old_voice
    return out


def _fill_uncovered(labels: np.ndarray, covered: np.ndarray) -> np.ndarray:
    out = labels.copy()
    known = np.flatnonzero((labels >= 0) & covered)
    if len(known) == 0:
        return out
    for i in np.flatnonzero((labels >= 0) & ~covered):
        j = np.searchsorted(known, i)
        candidates = [known[k] for k in (j - 1, j) if 0 <= k < len(known)]
        out[i] = labels[min(candidates, key=lambda c: abs(c - i))]
    return out


def _smooth(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Give runs of one voice shorter than ``min_frames`` (counting speech only) to the
    voice around them, shortest first."""
    out = labels.copy()
    speech_idx = np.flatnonzero(out >= 0)
    if len(speech_idx) == 0:
        return out
    seq = out[speech_idx].copy()
    while True:
        runs = _runs(seq)
        if len(runs) < 2:
            break
        shortest = min(range(len(runs)), key=lambda i: runs[i][2] - runs[i][1])
        value, s, e = runs[shortest]
        if e - s >= min_frames:
            break
        seq[s:e] = 1 - value
    out[speech_idx] = seq
    return out


# -- cutting recognised segments at voice changes ----------------------------------------


def split_by_voice(segments, diarization: Diarization) -> list[tuple[str, object]]:
    """(voice, segment) pairs: each segment cut where its words change voice.

    ``segments`` are transcribe.Segment values carrying ``words`` (with times); a
    segment without words keeps the voice that speaks most in its time range. Each word
    takes the voice that speaks most during it; a run of words too short to trust (one
    character, or under 0.3 s) joins the longer run beside it.
    """
    from dataclasses import replace

    result = []
    for segment in segments:
        words = list(getattr(segment, "words", ()) or ())
        if diarization.voices < 2 or not words:
            voice = diarization.voice_between(segment.start, segment.end) or VOICES[0]
            result.append((voice if diarization.voices == 2 else VOICES[0], segment))
            continue
        voices = [diarization.voice_between(w.start, w.end) for w in words]
        # Words in a pause of the labels take the voice of the nearest labelled word.
        for i, voice in enumerate(voices):
            if voice is None:
                near = [v for v in voices[i + 1:] + voices[:i][::-1] if v is not None]
                voices[i] = near[0] if near else VOICES[0]
        voices = _absorb_short_runs(voices, words)
        start = 0
        for i in range(1, len(words) + 1):
            if i == len(words) or voices[i] != voices[start]:
                run = words[start:i]
                text = "".join(w.word for w in run).strip()
                if text:
                    result.append((voices[start], replace(
                        segment, start=run[0].start, end=run[-1].end, text=text, words=tuple(run))))
                start = i
    return result


def _absorb_short_runs(voices: list[str], words) -> list[str]:
    voices = list(voices)
    changed = True
    while changed:
        changed = False
        runs = _runs(np.array([VOICES.index(v) for v in voices]))
        for k, (value, s, e) in enumerate(runs):
            chars = sum(len(w.word.strip()) for w in words[s:e])
            seconds = words[e - 1].end - words[s].start
            short = chars <= 1 or seconds < SHORT_WORD_RUN_SECONDS
            if short and len(runs) > 1:
                # Join the neighbour on the side with the longer run.
                left = runs[k - 1] if k > 0 else None
                right = runs[k + 1] if k + 1 < len(runs) else None
                target = max((r for r in (left, right) if r is not None), key=lambda r: r[2] - r[1])
                for i in range(s, e):
                    voices[i] = VOICES[target[0]]
                changed = True
                break
    return voices


__all__ = ["Diarization", "VOICES", "diarize", "speech_frames", "split_by_voice"]
