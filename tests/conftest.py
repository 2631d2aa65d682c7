"""Shared fixtures: paths to shared test data and the packaged embedding model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One ONNX export of the packaged model serves every test's data dir (it takes ~10 s).
os.environ.setdefault(
    "RAG_MODEL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "rag-pipeline-test-models")
)

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
