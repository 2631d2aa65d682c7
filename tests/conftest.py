"""Shared fixtures: paths to shared test data and the packaged embedding model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DOCS = REPO / "sample_docs"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("shared test data (../shared/data) is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def local_embedder():
    from rag_pipeline.embedding.local import LocalEmbedder

    return LocalEmbedder()
