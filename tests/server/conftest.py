"""Fixtures: one fake upstream and one live server (uvicorn, loopback) per test session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings

from .harness import FakeUpstream, LiveServer, fake_upstream, live_server, wait_processed

ZEBRA = (
    "The zebra named Ziggy lives in Lisbon and eats 7 apples every Tuesday.\n"
    "Ziggy's favourite colour is teal.\n"
)
FALCON = (
    "# Project Falcon\n\nFalcon launches on 2031-05-04.\n\n"
    "## Budget\n\nThe budget of Project Falcon is 42 million euros.\n"
)


@dataclass
class Account:
    """A user of the live server: id, session token and API key."""

    id: str
    token: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class World:
    """The live server, its upstream, two users, and a file and knowledge base of the admin's."""

    server: LiveServer
    upstream: FakeUpstream
    admin: Account
    bob: Account
    zebra_id: str
    falcon_id: str
    knowledge_id: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with fake_upstream() as state:
        yield state


def upload_text(url: str, key: str, name: str, text: str) -> dict:
    """Upload a text file through the API."""
    response = httpx.post(
        f"{url}/api/v1/files/",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": (name, text.encode("utf-8"), "text/plain")},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="session")
def world(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, local_embedder
) -> Iterator[World]:
    settings = ServerSettings(
        data_dir=tmp_path_factory.mktemp("server"),
        openai_api_base_url=upstream.openai_url,
        openai_api_key="sk-fake",
        ollama_base_url=upstream.url,
        enable_signup=True,
        user_knowledge_access=True,  # Bob makes knowledge bases of his own here
        max_file_bytes=200_000,
        upstream_timeout=1.5,
        models_cache_seconds=0,
    )
    with (
        Pipeline(settings, embedder=local_embedder) as pipeline,
        live_server(settings, pipeline) as server,
    ):
        accounts = []
        for name in ("Admin", "Bob"):
            answer = server.signup(name, f"{name.lower()}@example.com")
            accounts.append(Account(answer["id"], answer["token"], server.api_key(answer["token"])))
        admin, bob = accounts
        zebra = upload_text(server.url, admin.key, "zebra.txt", ZEBRA)
        falcon = upload_text(server.url, admin.key, "notes.md", FALCON)
        for file_id in (zebra["id"], falcon["id"]):
            assert wait_processed(server.url, admin.key, file_id)["status"] == "completed"
        knowledge = httpx.post(
            f"{server.url}/api/v1/knowledge/create",
            headers=admin.headers,
            json={"name": "Test KB", "description": "KB for tests"},
        ).json()
        for file_id in (zebra["id"], falcon["id"]):
            httpx.post(
                f"{server.url}/api/v1/knowledge/{knowledge['id']}/file/add",
                headers=admin.headers,
                json={"file_id": file_id},
            ).raise_for_status()
        yield World(server, upstream, admin, bob, zebra["id"], falcon["id"], knowledge["id"])


@pytest.fixture
def tmp_text(tmp_path: Path) -> Path:
    path = tmp_path / "zebra.txt"
    path.write_text(ZEBRA, encoding="utf-8")
    return path
