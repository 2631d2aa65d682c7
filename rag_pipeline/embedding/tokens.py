"""Token ids made away from the embedder: how a model tokenises a document, as plain data.

Extraction workers tokenise each source's texts with a ``TokenSpec`` and the embedding
stage hands the ids to ``embed_token_ids``: on a GPU machine tokenising on the main thread
took longer than the model's arithmetic.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.errors import RagError


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """What makes a document's token ids the embedder's own (plain, picklable data).

    A text becomes ``prefix + text``, mapped through ``char_map`` (a JSON file of
    ``str.translate`` entries, code point -> text), lowercased if ``lowercase``, then
    tokenised by ``tokenizer_file`` and cut at ``max_length`` tokens, special ones included.
    """

    tokenizer_file: str
    max_length: int
    prefix: str = ""
    lowercase: bool = False
    char_map: str | None = None


def load_tokenizer(path: str | Path, max_length: int) -> Any:
    """A ``tokenizers.Tokenizer`` from ``path`` that cuts at ``max_length`` and pads nothing."""
    from tokenizers import Tokenizer

    return cut_at(Tokenizer.from_file(str(path)), max_length)


def cut_at(tokenizer: Any, max_length: int) -> Any:
    """Set ``tokenizer`` to cut texts at ``max_length`` tokens and pad nothing; return it."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def read_char_map(path: str | Path) -> dict[int, str]:
    """A ``str.translate`` table kept as JSON (code point -> text)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {int(codepoint): text for codepoint, text in raw.items()}


def encode_ids(tokenizer: Any, texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's token ids (int32, unpadded), in order."""
    return [np.asarray(e.ids, dtype=np.int32) for e in tokenizer.encode_batch(list(texts))]


class DocumentTokenizer:
    """Tokenise document texts as the embedder of a ``TokenSpec`` does."""

    def __init__(self, spec: TokenSpec) -> None:
        self.spec = spec
        self._tokenizer = load_tokenizer(spec.tokenizer_file, spec.max_length)
        self._table = read_char_map(spec.char_map) if spec.char_map else None

    def __call__(self, texts: Sequence[str]) -> list[np.ndarray]:
        spec = self.spec
        inputs = [spec.prefix + t for t in texts]
        if self._table is not None:
            inputs = [t.translate(self._table) for t in inputs]
        if spec.lowercase:
            inputs = [t.lower() for t in inputs]
        return encode_ids(self._tokenizer, inputs)


# Loading a tokenizer takes 20 ms (MiniLM) to 0.8 s (e5's 250k-token vocabulary): each
# process keeps the few it was asked for.
_loaded: dict[TokenSpec, DocumentTokenizer] = {}
_loaded_lock = threading.Lock()


def document_tokenizer(spec: TokenSpec) -> DocumentTokenizer:
    """This process's tokenizer for ``spec``, loaded on first use (raises if it cannot be)."""
    with _loaded_lock:
        tokenizer = _loaded.get(spec)
        if tokenizer is None:
            tokenizer = _loaded[spec] = DocumentTokenizer(spec)
        return tokenizer


def token_spec_of(embedder: object) -> TokenSpec | None:
    """The ``TokenSpec`` an embedder takes token ids by; None if it takes none (HTTP
    embedders, wrappers) or its model folder cannot be read (its first use says why)."""
    if not callable(getattr(embedder, "embed_token_ids", None)):
        return None
    try:
        spec = getattr(embedder, "token_spec", None)
    except RagError:
        return None
    return spec if isinstance(spec, TokenSpec) else None
