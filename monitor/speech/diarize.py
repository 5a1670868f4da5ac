"""Two speakers from one channel: who spoke when in a mono recording.

The only module that imports ``resemblyzer`` (a speaker encoder whose weights ship in
its wheel, so it works offline) and ``webrtcvad``. Steps:

1. voice activity (webrtcvad, 30 ms frames) marks where anyone speaks; speech between
   two pauses is a *stretch* (a line, or part of one);
2. each stretch is embedded by the encoder, in 1.6 s windows every 0.5 s when it is
   longer than a window and whole otherwise; no piece reaches across a pause, so none
   mixes the end of one turn with the start of the next, or takes in the noise between;
3. the stretches are clustered into two groups (spectral clustering on the mean cosine
   similarity between their pieces) and a separation test decides whether there really
   are two voices, comparing only pieces of different stretches: a recording of one
   person must stay one speaker, on a wide-band line or a narrow telephone one;
4. each piece votes for the nearer voice over its frames; short runs are smoothed away
   (nobody changes turns every 200 ms), and each change of voice moves to the longest
   pause near it;
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
# Stretches of speech shorter than this say too little about the voice to be embedded;
# their frames take the voice nearest in time.
MIN_STRETCH_SECONDS = 0.3
# webrtcvad aggressiveness 0–3; 2 keeps quiet syllables without taking in line noise.
VAD_MODE = 2
VAD_FRAME_MS = 30
# Less speech than this (seconds) cannot be told apart into two voices reliably, nor
# fewer stretches than this (each voice must be heard in two of them, see below).
MIN_SPEECH_SECONDS = 3.0
MIN_STRETCHES = 4
# Separation test (``_separation``). Pieces of one stretch share a sentence, and
# overlapping windows share audio, so their likeness says nothing about the voice:
# only pairs from different stretches count. For each voice, the distance between
# the voices over the distance between that voice's own stretches; the smaller of the
# two must reach the threshold, so each voice must be heard alike in at least two
# stretches (one odd line split off is not a second person).
#
# The threshold depends on the line. On a narrow telephone band (8 kHz audio, nothing
# above 4 kHz) the encoder loses much of what tells voices apart, and clusters of one
# voice split by what is said lie further apart than on wide-band audio, so one
# threshold for both would either split one-voice phone calls or miss real pairs.
# Calibrated on mono mixes of the sample calls at three layouts each
# (scripts/make_mono_mixes.py): wide band, two voices 1.17–1.78 and one voice
# ("same_voice") up to 1.08; narrow band, two voices ("phone") 1.11–1.61 and one voice
# ("phone_same_voice") up to 1.17. The sample voices are one synthetic voice with the
# debtor's pitch lowered, so on the narrow band the two ranges meet; two really
# different voices (scripts/make_voice_pair_mixes.py) score 2.0–2.9 on either line.
MIN_SEPARATION = 1.12
MIN_SEPARATION_NARROW_BAND = 1.14
# Narrow band: less than this share of the speech power above NARROW_BAND_HZ (wide-band
# speech has some -15 to -25 dB there, fricatives; a telephone line about -55 dB).
NARROW_BAND_HZ = 4000
NARROW_BAND_DB = -35.0
# After the spectral split a stretch changes group only when its mean similarity to
# the other group's stretches is higher by this much (cosine): on narrow-band audio the
# two means often differ by less than their noise, and following every small
# difference undoes a sound split.
RELINK_MARGIN = 0.02
RELINK_PASSES = 20
MIN_SECOND_VOICE_SHARE = 0.08
MIN_SECOND_VOICE_SECONDS = 1.5
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


def _pieces(speech: np.ndarray) -> list[tuple[int, int, int]]:
    """(stretch number, first frame, end frame) of each piece the encoder embeds.

    A stretch longer than a window is covered by windows every HOP_SECONDS, the last
    one flush with its end; a shorter one (a 喂, a 是我) is one piece as it is."""
    size = int(round(WINDOW_SECONDS / FRAME_SECONDS))
    hop = int(round(HOP_SECONDS / FRAME_SECONDS))
    shortest = int(round(MIN_STRETCH_SECONDS / FRAME_SECONDS))
    pieces = []
    stretch = 0
    for value, start, end in _runs(speech.astype(np.int8)):
        if value != 1 or end - start < shortest:
            continue
        if end - start <= size + hop // 2:
            pieces.append((stretch, start, end))
        else:
            starts = list(range(start, end - size + 1, hop))
            if starts[-1] + size < end - hop // 2:
                starts.append(end - size)
            pieces += [(stretch, s, s + size) for s in starts]
        stretch += 1
    return pieces


def _mel(samples: np.ndarray) -> np.ndarray:
    """The encoder's input: 40 mel bands of power (not log) per 10 ms frame."""
    with _library_warnings_silenced():
        from resemblyzer.audio import wav_to_mel_spectrogram

    return wav_to_mel_spectrogram(np.asarray(samples, dtype=np.float32))


def _embed_pieces(mel: np.ndarray, pieces: list[tuple[int, int, int]]) -> np.ndarray:
    """One unit-length embedding per piece, from the recording's mel frames."""
    import torch

    size = int(round(WINDOW_SECONDS / FRAME_SECONDS))
    embeds = np.zeros((len(pieces), 256), dtype=np.float32)
    full = [i for i, (_, s, e) in enumerate(pieces) if e - s == size and e <= len(mel)]
    encoder = _get_encoder()
    with torch.no_grad(), _encoder_cpu_settings(torch):
        # Whole windows are batched; shorter pieces (each its own length) go one by one.
        for i in range(0, len(full), 64):
            batch = full[i: i + 64]
            mels = np.stack([mel[pieces[k][1]: pieces[k][2]] for k in batch])
            embeds[batch] = encoder(torch.from_numpy(mels)).numpy()
        for k in sorted(set(range(len(pieces))) - set(full)):
            _, s, e = pieces[k]
            embeds[k] = encoder(torch.from_numpy(mel[s: max(e, s + 1)][None])).numpy()[0]
    return embeds


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


def _stretch_sums(embeds: np.ndarray, stretch_of: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stretch, the weighted sum of its pieces' embeddings and the sum of their
    weights. The embeddings have unit length, so the weighted sum of the cosine
    similarities between the pieces of two stretches is the dot product of their sums:
    no matrix over every pair of pieces is needed, however long the call."""
    n = int(stretch_of.max()) + 1
    sums = np.zeros((n, embeds.shape[1]), dtype=np.float64)
    np.add.at(sums, stretch_of, embeds * weights[:, None])
    return sums, np.bincount(stretch_of, weights=weights, minlength=n)


def _cluster_stretches(embeds: np.ndarray, stretch_of: np.ndarray) -> np.ndarray:
    """Two groups of stretches (0/1 per stretch).

    A stretch is one unit, so the windows of one long line cannot pull apart from each
    other; stretches are alike by the mean cosine similarity between their pieces.
    Spectral clustering gives a first split; then each stretch goes to the group whose
    other stretches it is more like, weighted by their number of pieces, when it is
    clearly more like them (RELINK_MARGIN): the spectral split can leave a short
    reply with the voice whose long lines it shares words with."""
    from sklearn.cluster import SpectralClustering

    sums, counts = _stretch_sums(embeds, stretch_of, np.ones(len(embeds)))
    likeness = sums @ sums.T / np.outer(counts, counts)
    # Sharpen: the encoder's cosine similarities all sit in 0.6–1.0.
    affinity = np.exp((np.clip(likeness, 0.0, 1.0) - 1.0) / 0.05)
    np.fill_diagonal(affinity, 1.0)
    model = SpectralClustering(n_clusters=2, affinity="precomputed", random_state=0, assign_labels="discretize")
    groups = model.fit_predict(affinity)
    for _ in range(RELINK_PASSES):
        moved = groups.copy()
        for i in range(len(groups)):
            others = np.arange(len(groups)) != i
            mean = [np.average(likeness[i, others & (groups == k)], weights=counts[others & (groups == k)])
                    if (others & (groups == k)).any() else -1.0 for k in (0, 1)]
            if abs(mean[0] - mean[1]) >= RELINK_MARGIN:
                moved[i] = int(np.argmax(mean))
        if (moved == groups).all() or len(set(moved)) < 2:
            break
        groups = moved
    return groups


def _separation(embeds: np.ndarray, stretch_of: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> float:
    """The smaller, over both voices, of (1 - mean similarity between the voices) over
    (1 - mean similarity between that voice's own stretches); 0 when a voice is heard
    in one stretch only. Only pairs of pieces from different stretches count, each
    weighted by the pieces' lengths."""
    sums, totals = _stretch_sums(embeds, stretch_of, weights)
    similarity = sums @ sums.T  # weighted sums of the similarities, stretch by stretch
    weight = np.outer(totals, totals)
    same_voice = groups[:, None] == groups[None, :]
    between = 1.0 - similarity[~same_voice].sum() / weight[~same_voice].sum()
    ratios = []
    for voice in (0, 1):
        own = same_voice & (groups[:, None] == voice) & ~np.eye(len(groups), dtype=bool)
        if not own.any():
            return 0.0
        within = 1.0 - similarity[own].sum() / weight[own].sum()
        ratios.append(between / max(within, 1e-6))
    return float(min(ratios))


def _narrow_band(mel: np.ndarray, speech: np.ndarray) -> bool:
    """Whether the speech came over a telephone line: almost none of its power lies in
    the mel bands above NARROW_BAND_HZ."""
    import librosa

    n = min(len(mel), len(speech))
    power = mel[:n][speech[:n]].sum(axis=0)
    centres = librosa.mel_frequencies(n_mels=mel.shape[1] + 2, fmax=SAMPLE_RATE / 2)[1:-1]
    share = float(power[centres >= NARROW_BAND_HZ].sum()) / max(float(power.sum()), 1e-20)
    return 10 * np.log10(max(share, 1e-20)) < NARROW_BAND_DB


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
    pieces = _pieces(speech)
    stretches = len({p[0] for p in pieces})
    if stretches < MIN_STRETCHES:
        return Diarization(labels, 1, note=f"only {stretches} stretches of speech long enough to compare voices: "
                                               "treated as one speaker")
    mel = _mel(samples)
    embeds = _embed_pieces(mel, pieces)
    stretch_of = np.array([p[0] for p in pieces])
    weights = np.array([p[2] - p[1] for p in pieces], dtype=np.float64)
    groups = _cluster_stretches(embeds, stretch_of)
    separation = _separation(embeds, stretch_of, groups, weights)
    clusters = groups[stretch_of]
    narrow = _narrow_band(mel, speech)
    needed = MIN_SEPARATION_NARROW_BAND if narrow else MIN_SEPARATION
    votes = _piece_votes(len(speech), pieces, embeds, clusters, weights)
    frame_labels = np.where(speech, np.argmax(votes, axis=1), -1).astype(np.int8)
    # Frames no piece covered (speech bursts shorter than MIN_STRETCH_SECONDS) take the
    # nearest voice in time; smoothing then removes flickers.
    frame_labels = _smooth(_fill_uncovered(frame_labels, votes.sum(axis=1) > 0), int(MIN_RUN_SECONDS / FRAME_SECONDS))
    frame_labels = _snap_changes_to_pauses(frame_labels)
    seconds = [float((frame_labels == k).sum() * FRAME_SECONDS) for k in (0, 1)]
    smaller = min(seconds)
    if separation < needed or smaller < MIN_SECOND_VOICE_SECONDS or smaller / sum(seconds) < MIN_SECOND_VOICE_SHARE:
        line = "narrow-band line, " if narrow else ""
        return Diarization(labels, 1, separation=round(separation, 3),
                           note=f"one voice heard (separation {separation:.2f}, {line}two voices need {needed:.2f}): "
                                "treated as one speaker")
    # Name the voice heard first "A".
    first = frame_labels[frame_labels >= 0][0]
    if first == 1:
        frame_labels = np.where(frame_labels >= 0, 1 - frame_labels, -1).astype(np.int8)
    return Diarization(frame_labels, 2, separation=round(separation, 3))


def _piece_votes(n_frames, pieces, embeds, clusters, weights) -> np.ndarray:
    """Votes per frame for each voice: every piece votes for the voice whose centroid
    is nearer (so a turn taken without a pause can still change voice inside one
    stretch), windows with a triangular weight, since a window knows its centre best."""
    centroids = np.stack([np.average(embeds[clusters == k], axis=0, weights=weights[clusters == k]) for k in (0, 1)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    nearer = np.argmax(embeds @ centroids.T, axis=1)
    votes = np.zeros((n_frames, 2), dtype=np.float32)
    for (_, start, end), voice in zip(pieces, nearer):
        end = min(end, n_frames)
        votes[start:end, voice] += np.bartlett(end - start + 2)[1:-1].astype(np.float32)
    return votes


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
