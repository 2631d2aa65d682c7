"""How much each half of a hybrid search is trusted for one query: the adaptive fusion rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from rag_pipeline.languages import NO_LETTERS

# "adaptive" decides per query which halves take part (fusion_weights), then fuses with
# DBSF; "dbsf" and "rrf" always fuse both halves.
HybridFusion = Literal["adaptive", "dbsf", "rrf"]
FUSIONS: tuple[HybridFusion, ...] = ("adaptive", "dbsf", "rrf")

# A script must hold this share of a collection's chunks before the sparse half is
# trusted to match it: a few stray quotes in another language are not a corpus.
MIN_SCRIPT_SHARE = 0.02
# A collection is one of several languages when scripts other than the query's hold at
# least this share of its chunks: a question may then be about text in another language.
MIXED_SHARE = 0.2
# In such a collection, with a dense model that reads all of it, a sparse hit takes part
# only if it scores at least this much per query term: a same-language hit that matches
# only a word or two of a question asked about other-language text scores far less
# (measured: benchmarks/RESULTS.md, issue 13, "mixed collections").
SPARSE_FLOOR_PER_TERM = 1.5


@dataclass(frozen=True, slots=True)
class HalfWeights:
    """How many times the dense and the sparse half count in one hybrid query (0: left out)."""

    dense: int
    sparse: int
    why: str
    # Sparse hits scoring under this times the query's distinct terms are left out.
    sparse_floor: float = 0.0


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
        others = 1.0 - collection_mix.get(query_script, 1.0)
        if model_scripts is None and others >= MIXED_SHARE:
            return replace(
                both,
                why=f"{both.why}; a collection of several languages: weak sparse hits left out",
                sparse_floor=SPARSE_FLOOR_PER_TERM,
            )
        return both
    if sparse_matches:
        return HalfWeights(0, 1, f"the embedding model does not read {query_script}")
    if dense_reads:
        return HalfWeights(1, 0, f"the collection holds no {query_script} text to match")
    return HalfWeights(1, 1, "neither half reads the query: both, as best effort")
