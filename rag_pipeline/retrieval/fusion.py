"""How much each half of a hybrid search is trusted for one query: the adaptive fusion rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rag_pipeline.languages import NO_LETTERS

# "adaptive" decides per query which halves take part (fusion_weights), then fuses with
# DBSF; "dbsf" and "rrf" always fuse both halves.
HybridFusion = Literal["adaptive", "dbsf", "rrf"]
FUSIONS: tuple[HybridFusion, ...] = ("adaptive", "dbsf", "rrf")

# A script must hold this share of a collection's chunks before the sparse half is
# trusted to match it: a few stray quotes in another language are not a corpus.
MIN_SCRIPT_SHARE = 0.02


@dataclass(frozen=True, slots=True)
class HalfWeights:
    """How many times the dense and the sparse half count in one hybrid query (0: left out)."""

    dense: int
    sparse: int
    why: str


def fusion_weights(
    query_script: str,
    model_scripts: frozenset[str] | None,
    collection_mix: Mapping[str, float],
    *,
    dense_leads: bool = False,
) -> HalfWeights:
    """Decide the halves' weights from the query's script, the model's and the collection's.

    ``model_scripts`` None: the embedding model reads every script; an empty
    ``collection_mix``: the collection's languages are unknown (indexed before they were
    recorded), so the sparse half is trusted as before. ``dense_leads``: the model is one
    measured stronger than the sparse half across languages (see ``model_leads``).
    """
    both = (
        HalfWeights(2, 1, "a leading multilingual model: dense counts double")
        if (dense_leads)
        else HalfWeights(1, 1, "both halves read the query")
    )
    if query_script == NO_LETTERS:
        return both
    dense_reads = model_scripts is None or query_script in model_scripts
    sparse_matches = not collection_mix or collection_mix.get(query_script, 0.0) >= MIN_SCRIPT_SHARE
    if dense_reads and sparse_matches:
        return both
    if sparse_matches:
        return HalfWeights(0, 1, f"the embedding model does not read {query_script}")
    if dense_reads:
        return HalfWeights(1, 0, f"the collection holds no {query_script} text to match")
    return HalfWeights(1, 1, "neither half reads the query: both, as best effort")
