"""The request guard: no body is read before auth, and every body is capped while it streams."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from rag_pipeline.server import ServerSettings

from .conftest import World
from .harness import LiveServer, live_server


def _send_head_of_body(url: str, head: str, sent: bytes) -> tuple[int, bytes]:
    """Send request headers and the first bytes of a much larger body; return the answer.

    If the server waited for the whole body before answering, the read below would time
    out: an answer proves it decided on the headers alone.
    """
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + sent)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest


@pytest.mark.parametrize("token", ["", "Authorization: Bearer sk-not-a-key\r\n"])
def test_anonymous_json_body_is_refused_before_it_is_read(world: World, token: str) -> None:
    declared = 200 * 1024 * 1024
    head = (
        "POST /api/v1/knowledge/create HTTP/1.1\r\nHost: x\r\n"
        f"{token}Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    status, _ = _send_head_of_body(world.url, head, b'{"name": "' + b"a" * 65536)
    assert status == 401


def test_anonymous_upload_is_refused_before_it_is_spooled(world: World) -> None:
    uploads = world.server.settings.upload_dir
    before = set(uploads.iterdir())
    boundary = "b0undary"
    head = (
        "POST /api/v1/files/ HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {150 * 1024 * 1024}\r\n\r\n"
    )
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + b"x" * 65536
    status, _ = _send_head_of_body(world.url, head, part)
    assert status == 401
    assert set(uploads.iterdir()) == before


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    settings = ServerSettings(
        data_dir=tmp_path_factory.mktemp("limits"),
        max_request_bytes=64 * 1024,
        max_file_bytes=100_000,
    )
    with live_server(settings) as server:
        token = server.signup("Root", "root@example.com")["token"]
        yield server, server.api_key(token)


def _chunks(size: int, block: int = 16 * 1024) -> Iterator[bytes]:
    yield b'{"name": "'
    for _ in range(size // block):
        yield b"a" * block
    yield b'"}'


def test_json_bodies_past_the_request_limit_are_413(small_limits: tuple[LiveServer, str]) -> None:
    server, key = small_limits
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    url = f"{server.url}/api/v1/knowledge/create"
    fits = httpx.post(url, headers=headers, json={"name": "a" * 200})
    assert fits.status_code == 200
    declared = httpx.post(url, headers=headers, content=b'{"name": "' + b"a" * 70_000 + b'"}')
    assert declared.status_code == 413
    # Without a Content-Length (chunked), the limit holds while the body streams in.
    streamed = httpx.post(url, headers=headers, content=_chunks(200_000))
    assert streamed.status_code == 413
    # Routes anyone may call are capped too.
    signup = httpx.post(
        f"{server.url}/api/v1/auths/signup",
        json={"name": "x" * 100_000, "email": "a@b.c", "password": "p"},
    )
    assert signup.status_code == 413
    listed = httpx.get(f"{server.url}/api/v1/knowledge/", headers=headers).json()
    assert [k["name"] for k in listed["items"]] == ["a" * 200]


def test_uploads_past_the_file_limit_are_413_and_leave_nothing(
    small_limits: tuple[LiveServer, str],
) -> None:
    server, key = small_limits
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{server.url}/api/v1/files/"
    uploads: Path = server.settings.upload_dir
    before = set(uploads.iterdir())
    too_big = httpx.post(url, headers=headers, files={"file": ("big.txt", b"x" * 150_000)})
    assert too_big.status_code == 413
    # Just over the file limit but inside the multipart allowance: the route's own check.
    just_over = httpx.post(url, headers=headers, files={"file": ("big.txt", b"x" * 100_001)})
    assert just_over.status_code == 413
    assert set(uploads.iterdir()) == before
    # An upload larger than the JSON limit but within the file limit is fine.
    ok = httpx.post(url, headers=headers, files={"file": ("ok.txt", b"word " * 16_000)})
    assert ok.status_code == 200, ok.text


def test_the_guards_public_paths_are_the_routes_without_auth(tmp_path: Path) -> None:
    from rag_pipeline.server import create_app
    from rag_pipeline.server.guard import PUBLIC_PATHS, UPLOAD_PATHS

    schema = create_app(ServerSettings(data_dir=tmp_path, env="dev")).openapi()
    public = {
        path
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if not operation.get("security")
    }
    assert public == PUBLIC_PATHS - {"/openapi.json", "/docs"}
    # Uploads: a multipart file field, or the raw bytes of a file (PUT /process).
    upload_types = {"multipart/form-data", "application/octet-stream"}
    uploads = {
        path
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if upload_types & set(operation.get("requestBody", {}).get("content", {}))
    }
    assert uploads == UPLOAD_PATHS
    assert {"/api/v1/files/", "/process"} <= uploads


def test_a_sync_manifest_may_be_larger_than_other_bodies(
    small_limits: tuple[LiveServer, str],
) -> None:
    server, key = small_limits
    headers = {"Authorization": f"Bearer {key}"}
    base = f"{server.url}/api/v1/knowledge"
    knowledge = httpx.post(f"{base}/create", headers=headers, json={"name": "Sync"}).json()
    # ~1,000 files: past the 64 KiB request limit, as a large knowledge base's manifest is.
    manifest = [
        {"filename": f"file-{i:05d}.txt", "path": "notes", "checksum": f"{i:064x}", "size": i}
        for i in range(1_000)
    ]
    body = {"manifest": manifest}
    assert len(json.dumps(body)) > 64 * 1024
    diff = httpx.post(f"{base}/{knowledge['id']}/sync/diff", headers=headers, json=body)
    assert diff.status_code == 200, diff.text
    assert len(diff.json()["added"]) == 1_000
    # The same size elsewhere is still refused.
    other = httpx.post(f"{base}/create", headers=headers, json={"name": "x" * 70_000})
    assert other.status_code == 413
