"""Token counting with tiktoken's cl100k_base, loaded offline."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

from rag_pipeline.errors import ConfigError

# The environment is process-wide: two threads loading at once (a server's processing
# threads) would each set and delete the variable under the other (seen: KeyError).
_LOAD_LOCK = threading.Lock()
_ENCODINGS: dict[str, Any] = {}


def get_encoding(name: str = "cl100k_base") -> Any:
    """Return a tiktoken encoding, read from the BPE files llama-index-core ships."""
    encoding = _ENCODINGS.get(name)
    if encoding is None:  # only the first load of each name takes the lock
        with _LOAD_LOCK:
            encoding = _ENCODINGS.get(name) or _load_encoding(name)
            _ENCODINGS[name] = encoding
    return encoding


def _load_encoding(name: str) -> Any:
    import tiktoken

    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return tiktoken.get_encoding(name)
    # tiktoken would download the BPE file; llama-index-core ships it, so point the
    # cache there for the one call that reads it and leave the environment as it was.
    # find_spec locates the package without importing it (that import costs 1.2 s).
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("cl100k_base needs llama-index-core's packaged BPE file")
    cache = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        return tiktoken.get_encoding(name)
    finally:
        del os.environ["TIKTOKEN_CACHE_DIR"]


def count_tokens(text: str) -> int:
    """Return the number of cl100k_base tokens in ``text``."""
    return len(get_encoding().encode(text, disallowed_special=()))
