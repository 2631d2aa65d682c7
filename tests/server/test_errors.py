"""One table from library error to HTTP status, walked; and the statuses clients now see."""

from __future__ import annotations

import inspect

import httpx

from rag_pipeline import errors
from rag_pipeline.server.app import ERROR_STATUS, status_for

from .conftest import World


def test_every_library_error_has_its_row() -> None:
    tree = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.RagError)
    }
    assert tree == set(ERROR_STATUS)
    for cls, status in ERROR_STATUS.items():
        error = cls.__new__(cls)  # no constructor arguments needed to read the table
        assert status_for(error) == (502 if cls is errors.UpstreamError else status), cls
    assert status_for(errors.CredentialsError("wrong password")) == 400
    assert status_for(errors.UnsupportedTypeError("a .zip")) == 415
    assert status_for(errors.UpstreamError("slow", status=504)) == 504
    # A subclass without a row of its own answers with its parent's status.
    assert status_for(type("Gone", (errors.NotFoundError,), {})("x")) == 404


def test_library_errors_reach_clients_with_their_status(world: World) -> None:
    headers = world.admin.headers
    knowledge = httpx.post(
        f"{world.url}/api/v1/knowledge/create", headers=headers, json={"name": "Other model"}
    ).json()
    # A collection built with another model: searching it is a conflict, not a crash.
    store = world.server.app.state.pipeline.store
    store.ensure_collection(knowledge["id"], model="another-model", dimension=3)
    mismatch = httpx.post(
        f"{world.url}/api/v1/retrieval/query/collection",
        headers=headers,
        json={"collection_names": [knowledge["id"]], "query": "zebra"},
    )
    assert mismatch.status_code == 409, mismatch.text
    assert "another-model" in mismatch.json()["detail"]
    missing = httpx.post(
        f"{world.url}/api/v1/retrieval/query/doc",
        headers=headers,
        json={"collection_name": "file-no-such-file", "query": "zebra"},
    )
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "Collection not found"},  # as for another user's: no existence oracle
    )
    no_user_message = httpx.post(
        f"{world.url}/api/chat/completions",
        headers=headers,
        json={
            "model": "fake-echo",
            "messages": [{"role": "system", "content": "be brief"}],
            "files": [{"type": "file", "id": world.zebra_id}],
        },
    )
    assert no_user_message.status_code == 400
