"""docker-compose.yml and the Dockerfile stay in step with the settings they configure."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rag_pipeline.server.settings import ServerSettings
from rag_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _known_variables() -> set[str]:
    names = {"ENV"}
    for model in (Settings, ServerSettings):
        names |= {f"RAG_{field.upper()}" for field in model.model_fields}
    return names


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_rag_variable_in_compose_is_a_setting() -> None:
    services = _compose()["services"]
    replicas = [services["rag-1"], services["rag-2"]]
    for rag in replicas:
        unknown = set(rag["environment"]) - _known_variables()
        assert not unknown, f"docker-compose.yml sets variables no setting reads: {unknown}"
        assert rag["environment"]["RAG_QDRANT_URL"] == "http://qdrant:6333"
        assert rag["environment"]["RAG_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert {"qdrant", "postgres", "ollama"} <= set(rag["depends_on"])
        assert "rag-data:/data" in rag["volumes"]  # uploads are read by either replica
    assert [r["environment"]["RAG_REPLICA_ID"] for r in replicas] == ["rag-1", "rag-2"]


def test_both_replicas_are_behind_one_port_and_long_running_services_have_health_checks() -> None:
    services = _compose()["services"]
    proxy = services["proxy"]["command"]
    assert "rag-1:3000" in proxy and "rag-2:3000" in proxy
    assert services["proxy"]["ports"] == ["127.0.0.1:3000:3000"]
    for name in ("qdrant", "postgres", "ollama", "rag-1", "rag-2"):
        assert "test" in services[name]["healthcheck"], name
    assert services["ollama-pull"]["restart"] == "no"


def test_open_webui_profile_uses_rag_for_extraction_embeddings_and_reranking() -> None:
    webui = _compose()["services"]["open-webui"]
    assert webui["profiles"] == ["webui"]
    env = webui["environment"]
    assert env["CONTENT_EXTRACTION_ENGINE"] == "external"
    assert env["EXTERNAL_DOCUMENT_LOADER_URL"] == "http://proxy:3000"
    assert env["RAG_EMBEDDING_ENGINE"] == "openai"
    assert env["RAG_OPENAI_API_BASE_URL"] == "http://proxy:3000/v1"
    assert env["RAG_RERANKING_ENGINE"] == "external"
    assert env["RAG_EXTERNAL_RERANKER_URL"] == "http://proxy:3000/v1/rerank"
    from rag_pipeline.retrieval.signals import SIGNALS_MODEL

    assert env["RAG_RERANKING_MODEL"] == SIGNALS_MODEL


def test_dockerfile_installs_cpu_torch_before_the_package() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    torch = next(i for i, line in enumerate(lines) if "torch==" in line)
    package = next(i for i, line in enumerate(lines) if 'pip install ".[postgres]"' in line)
    assert "whl/cpu" in lines[torch]
    assert torch < package


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_is_valid() -> None:
    result = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
