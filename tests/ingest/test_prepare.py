"""The Preparer tokenises for the embedder when told how; the embedding stage uses its ids
only when they are the embedder's own."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.chunking.splitter import Chunker
from rag_pipeline.embedding import OnnxEmbedder
from rag_pipeline.embedding.tokens import TokenSpec
from rag_pipeline.ingest.indexer import embed_prepared
from rag_pipeline.ingest.prepare import PrepareConfig, Prepared, Preparer
from rag_pipeline.ingest.sources import SourceItem
from rag_pipeline.loaders import LoadLimits
from rag_pipeline.types import Document

BODY = "\n\n".join(
    f"## Part {i}\n\n"
    + " ".join(f"Keep the tents of trip {i}.{j} dry, aired and folded loosely." for j in range(30))
    for i in range(4)
)


def _cache() -> Path:
    return Path(os.environ.get("RAG_MODEL_CACHE_DIR", tempfile.gettempdir()))


@pytest.fixture(scope="module")
def plain() -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=_cache())


@pytest.fixture(scope="module")
def prefixed() -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=_cache(), passage_prefix="passage: ")


def _item(name: str = "notes.md", body: str = BODY) -> SourceItem:
    document = Document(body, {"source": name, "title": "Camping notes"}, markdown=True)
    return SourceItem.from_documents(name, [document])


def _prepare(tokens: TokenSpec | None, item: SourceItem | None = None) -> Prepared:
    preparer = Preparer(Chunker(120, 20), None, LoadLimits(), tokens=tokens)
    prepared = preparer(item or _item(), "fingerprint", "added")
    assert isinstance(prepared, Prepared)
    return prepared


def test_a_token_spec_fills_the_embedders_own_ids(prefixed: OnnxEmbedder) -> None:
    spec = prefixed.token_spec
    prepared = _prepare(spec)
    assert len(prepared.texts) > 3  # several chunks, with the title in front
    assert prepared.tokens == spec
    assert prepared.token_ids is not None and len(prepared.token_ids) == len(prepared.texts)
    own = prefixed._tokenize(["passage: " + t for t in prepared.texts])
    assert [i.tolist() for i in prepared.token_ids] == [i.tolist() for i in own]
    assert all(i.dtype == np.int32 for i in prepared.token_ids)
    # A worker builds its Preparer from the config: the spec goes with it.
    config = PrepareConfig(120, 20, None, LoadLimits(), tokens=spec)
    assert Preparer.from_config(config).tokens == spec


def test_without_a_spec_nothing_is_tokenised(plain: OnnxEmbedder) -> None:
    prepared = _prepare(None)
    assert prepared.token_ids is None and prepared.tokens is None
    assert prepared.texts == _prepare(plain.token_spec).texts


def test_a_tokenizer_that_cannot_load_leaves_the_source_prepared(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not a tokenizer")
    preparer = Preparer(Chunker(120, 20), None, LoadLimits(), tokens=TokenSpec(str(bad), 256))
    first = preparer(_item(), "fingerprint", "added")
    assert isinstance(first, Prepared)
    assert first.token_ids is None and first.tokens is None
    assert first.texts == _prepare(None).texts
    assert preparer.tokens is None  # not tried again for every source
    missing = Preparer(Chunker(120, 20), None, LoadLimits(), tokens=TokenSpec("/nowhere", 256))
    assert missing(_item(), "fingerprint", "added").token_ids is None


def test_the_embedding_stage_uses_ids_only_when_they_are_the_embedders_own(
    plain: OnnxEmbedder, prefixed: OnnxEmbedder
) -> None:
    # Texts that no longer say what the ids say show which of the two was embedded.
    made = _prepare(prefixed.token_spec)
    assert made.token_ids is not None
    ids_vectors = prefixed.embed_token_ids(made.token_ids)
    made.texts = ["something else entirely"] * len(made.texts)
    text_vectors = prefixed.embed_documents(made.texts)
    assert not np.allclose(ids_vectors, text_vectors, atol=1e-3)
    dimension = prefixed.dimension
    # Its own spec: the ids.
    used = embed_prepared(prefixed, [made], dimension, "kb")
    assert np.allclose(used, ids_vectors, atol=1e-6)
    # Another model's (here another prefix): the texts.
    used = embed_prepared(plain, [made], dimension, "kb")
    assert np.allclose(used, plain.embed_documents(made.texts), atol=1e-6)
    # One source of the batch without ids: all of it by texts.
    other = _prepare(None, _item("other.md", "A short note about lanterns."))
    used = embed_prepared(prefixed, [made, other], dimension, "kb")
    assert np.allclose(used, prefixed.embed_documents(made.texts + other.texts), atol=1e-6)
