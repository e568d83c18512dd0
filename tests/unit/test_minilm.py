"""The torch-free all-MiniLM-L6-v2 gives sentence-transformers' vectors.

The reference vectors were computed once by sentence-transformers on torch
(tests/support/minilm_reference.py says how); torch is not installed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from charterflow.ingest.embeddings import SemanticEmbedder, get_embedder
from charterflow.ingest.minilm import MAX_TOKENS, MiniLM
from charterflow.settings import Settings

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "minilm_reference.json").read_text())


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLM.shared()


def test_vectors_match_sentence_transformers(model: MiniLM) -> None:
    expected = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    got = model.embed(REFERENCE["texts"])
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= 0.999, dict(zip(REFERENCE["texts"], cosines.round(5), strict=True))


def test_batching_and_order_do_not_change_vectors(model: MiniLM) -> None:
    texts = REFERENCE["texts"]
    whole = model.embed(texts)
    reversed_small = model.embed(texts[::-1], batch=3)[::-1]
    assert np.allclose(whole, reversed_small, atol=1e-5)
    assert np.allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)


def test_long_text_is_truncated_like_the_reference(model: MiniLM) -> None:
    assert REFERENCE["max_seq_length"] == MAX_TOKENS
    longest = max(REFERENCE["texts"], key=len)
    assert len(model.tokenizer.encode(longest).ids) == MAX_TOKENS


def test_semantic_is_the_default_embedder() -> None:
    embedder = get_embedder(Settings(_env_file=None, embeddings_provider=None))
    assert isinstance(embedder, SemanticEmbedder)
    related, unrelated = embedder.embed(
        ["How do I change my password?", "The mitochondria is the powerhouse of the cell."]
    )
    (query,) = embedder.embed(["reset a forgotten login credential"])
    assert float(query @ related) > float(query @ unrelated) + 0.2
