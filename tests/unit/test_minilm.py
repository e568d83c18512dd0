"""The torch-free all-MiniLM-L6-v2 gives sentence-transformers' vectors.

The reference vectors were computed once by sentence-transformers on torch
(tests/support/minilm_reference.py says how); torch is not installed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from charterflow.retrieval.embedders import SemanticEmbedder, get_embedder
from charterflow.retrieval.minilm import MAX_TOKENS, MiniLM, export, exported_dir
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


def test_the_exported_float16_model_gives_the_reference_vectors(
    model: MiniLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the app image runs: the graph exported at build time with float16 weights."""
    export(tmp_path / "minilm")
    assert (tmp_path / "minilm" / "model.onnx").stat().st_size < 50_000_000  # float32: ~90 MB
    monkeypatch.setenv("CHARTERFLOW_MODEL_DIR", str(tmp_path / "minilm"))
    assert exported_dir() == tmp_path / "minilm"
    exported = MiniLM(threads=1)
    expected = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    got = exported.embed(REFERENCE["texts"])
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= 0.999, dict(zip(REFERENCE["texts"], cosines.round(5), strict=True))
    assert np.sum(got * model.embed(REFERENCE["texts"]), axis=1).min() >= 0.9999


def test_no_exported_model_means_the_packaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARTERFLOW_MODEL_DIR", str(tmp_path / "absent"))
    assert exported_dir() is None
