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


def test_every_rag_variable_in_compose_is_a_setting() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    rag = compose["services"]["rag"]
    unknown = set(rag["environment"]) - _known_variables()
    assert not unknown, f"docker-compose.yml sets variables no setting reads: {unknown}"
    assert rag["environment"]["RAG_QDRANT_URL"] == "http://qdrant:6333"
    assert "qdrant" in rag["depends_on"] and "ollama" in rag["depends_on"]


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
