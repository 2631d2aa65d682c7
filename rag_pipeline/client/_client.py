"""HTTP clients for an Open WebUI-compatible server (``rag serve`` or Open WebUI itself)."""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import os
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from rag_pipeline.errors import AuthError, RagError, RemoteError

DONE_STATES = ("completed", "failed")
# Items asked for per page of a long listing.
PAGE = 1_000


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    message = f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
    message += str(detail)[:500]
    if response.status_code in (401, 403):
        raise AuthError(message)
    raise RemoteError(message, status=response.status_code)


def chat_body(
    model: str,
    messages: str | Sequence[dict[str, Any]],
    *,
    files: Sequence[str] = (),
    collections: Sequence[str] = (),
    stream: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """A ``/api/chat/completions`` body; ``files`` and ``collections`` are ids to ground it in."""
    chat = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    body: dict[str, Any] = {"model": model, "messages": chat, "stream": stream, **options}
    refs = [{"type": "file", "id": f} for f in files]
    refs += [{"type": "collection", "id": c} for c in collections]
    if refs:
        body["files"] = refs
    return body


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data:"):
            data = line[5:].strip()
            if data == "[DONE]":
                return
            if data:
                yield json.loads(data)


def _content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class RagClient:
    """A synchronous client: files, knowledge, chat and embeddings over the Open WebUI API."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        email: str | None = None,
        password: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise RagError(f"server URL must start with http:// or https://: {base_url}")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        if api_key:
            self._http.headers["Authorization"] = f"Bearer {api_key}"
        elif email and password:
            self.signin(email, password)
        else:
            raise AuthError("give an API key, or an email and password to sign in with")

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc
        _raise_for(response)
        return response.json()

    def signin(self, email: str, password: str) -> str:
        """Sign in and use the session token for later calls; return it."""
        answer = self._request(
            "POST", "/api/v1/auths/signin", json={"email": email, "password": password}
        )
        self._http.headers["Authorization"] = f"Bearer {answer['token']}"
        return answer["token"]

    def models(self) -> list[dict[str, Any]]:
        """Every model the server can chat with."""
        return self._request("GET", "/api/models")["data"]

    def upload(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Upload a file; the answer says "pending" — use ``wait`` before relying on it."""
        path = Path(path)
        with path.open("rb") as handle:
            files = {"file": (path.name, handle, _content_type(path))}
            return self._request("POST", "/api/v1/files/", files=files)

    def status(self, file_id: str) -> dict[str, Any]:
        """A file's processing status (``{"status", "error"?}``)."""
        return self._request("GET", f"/api/v1/files/{file_id}/process/status")

    def wait(self, file_id: str, *, timeout: float = 600.0, poll: float = 0.5) -> dict[str, Any]:
        """Poll until a file is completed or failed; return its status (raise on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(file_id)
            if status.get("status") in DONE_STATES:
                return status
            if time.monotonic() > deadline:
                raise RemoteError(f"file {file_id} still {status.get('status')} after {timeout}s")
            time.sleep(poll)

    def upload_and_wait(self, path: str | os.PathLike[str], **wait: Any) -> dict[str, Any]:
        """Upload a file and wait for its processing; return the file object."""
        uploaded = self.upload(path)
        self.wait(uploaded["id"], **wait)
        return self.file(uploaded["id"])

    def file(self, file_id: str) -> dict[str, Any]:
        """One file, with its extracted text once processed."""
        return self._request("GET", f"/api/v1/files/{file_id}")

    def files(self) -> list[dict[str, Any]]:
        """The caller's files (every page of them, without their text)."""
        return self._every_page("/api/v1/files/", {"content": "false"})

    def delete_file(self, file_id: str) -> None:
        """Delete a file and its vectors."""
        self._request("DELETE", f"/api/v1/files/{file_id}")

    def create_knowledge(self, name: str, description: str = "") -> dict[str, Any]:
        """Create a knowledge base."""
        body = {"name": name, "description": description}
        return self._request("POST", "/api/v1/knowledge/create", json=body)

    def knowledge(self) -> list[dict[str, Any]]:
        """The caller's knowledge bases."""
        answer = self._request("GET", "/api/v1/knowledge/")
        return answer["items"] if isinstance(answer, dict) else answer

    def find_knowledge(self, name: str) -> dict[str, Any] | None:
        """The knowledge base called ``name``, if there is one."""
        return next((k for k in self.knowledge() if k.get("name") == name), None)

    def knowledge_files(self, knowledge_id: str) -> list[dict[str, Any]]:
        """The files of a knowledge base (every page of them)."""
        return self._every_page(f"/api/v1/knowledge/{knowledge_id}/files", {})

    def _every_page(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """A listing read page by page. Open WebUI pages its long listings (by 30 or 50,
        and gives non-admins no bigger page); ``rag serve`` gives up to 10,000 a page; an
        older server that ignores paging answers everything on the first page."""
        items: list[dict[str, Any]] = []
        seen: set[Any] = set()
        for page in itertools.count(1):
            answer = self._request("GET", path, params={**params, "page": page, "limit": PAGE})
            if not isinstance(answer, dict):
                return answer  # a bare list: an old server's whole listing
            fresh = [i for i in answer.get("items") or [] if i.get("id") not in seen]
            seen.update(i.get("id") for i in fresh)
            items.extend(fresh)
            # An empty page, every item counted, or a server that repeats its one page.
            if not fresh or len(items) >= int(answer.get("total") or 0):
                break
        return items

    def add_file(self, knowledge_id: str, file_id: str) -> dict[str, Any]:
        """Add a processed file to a knowledge base."""
        path = f"/api/v1/knowledge/{knowledge_id}/file/add"
        return self._request("POST", path, json={"file_id": file_id})

    def add_files(
        self, knowledge_id: str, file_ids: Sequence[str], folders: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Add processed files to a knowledge base in one call (all or none), each in its
        folder (``rag serve`` keeps them; other servers put them at the top)."""
        forms: list[dict[str, str]] = []
        for index, file_id in enumerate(file_ids):
            folder = folders[index] if folders else ""
            forms.append({"file_id": file_id, "path": folder} if folder else {"file_id": file_id})
        path = f"/api/v1/knowledge/{knowledge_id}/files/batch/add"
        return self._request("POST", path, json=forms)

    def sync_diff(
        self, knowledge_id: str, manifest: Sequence[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Open WebUI's knowledge sync diff for a manifest; None if the server has none."""
        path = f"/api/v1/knowledge/{knowledge_id}/sync/diff"
        try:
            return self._request("POST", path, json={"manifest": list(manifest)})
        except RemoteError as exc:
            if exc.status in (404, 405):
                return None
            raise

    def sync_cleanup(self, knowledge_id: str, file_ids: Sequence[str]) -> None:
        """Remove stale files of a knowledge base after a sync."""
        path = f"/api/v1/knowledge/{knowledge_id}/sync/cleanup"
        self._request("POST", path, json={"file_ids": list(file_ids), "dir_ids": []})

    def remove_file(self, knowledge_id: str, file_id: str) -> dict[str, Any]:
        """Take a file out of a knowledge base."""
        path = f"/api/v1/knowledge/{knowledge_id}/file/remove"
        return self._request("POST", path, json={"file_id": file_id})

    def delete_knowledge(self, knowledge_id: str) -> None:
        """Delete a knowledge base (its files stay)."""
        self._request("DELETE", f"/api/v1/knowledge/{knowledge_id}/delete")

    def query(self, collections: Sequence[str], query: str, k: int = 5) -> dict[str, Any]:
        """Retrieve without a model: ``ids``, ``documents``, ``metadatas``, ``distances``."""
        body = {"collection_names": list(collections), "query": query, "k": k}
        return self._request("POST", "/api/v1/retrieval/query/collection", json=body)

    def chat(self, model: str, messages: str | Sequence[dict[str, Any]], **kw: Any) -> Any:
        """A chat completion, grounded in ``files=[ids]`` / ``collections=[ids]`` if given."""
        return self._request("POST", "/api/chat/completions", json=chat_body(model, messages, **kw))

    def chat_stream(
        self, model: str, messages: str | Sequence[dict[str, Any]], **kw: Any
    ) -> Iterator[dict[str, Any]]:
        """Stream a chat: the first event carries ``sources`` when files were given."""
        body = chat_body(model, messages, stream=True, **kw)
        try:
            with self._http.stream("POST", "/api/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                yield from _sse_events(response.iter_lines())
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings through ``/ollama/api/embed``."""
        body = {"model": model, "input": list(texts)}
        return self._request("POST", "/ollama/api/embed", json=body)["embeddings"]

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RagClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRagClient:
    """The asynchronous twin of ``RagClient``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise RagError(f"server URL must start with http:// or https://: {base_url}")
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=headers
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc
        _raise_for(response)
        return response.json()

    async def signin(self, email: str, password: str) -> str:
        """Sign in and use the session token for later calls; return it."""
        answer = await self._request(
            "POST", "/api/v1/auths/signin", json={"email": email, "password": password}
        )
        self._http.headers["Authorization"] = f"Bearer {answer['token']}"
        return answer["token"]

    async def models(self) -> list[dict[str, Any]]:
        """Every model the server can chat with."""
        return (await self._request("GET", "/api/models"))["data"]

    async def upload(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Upload a file (answered "pending"; use ``wait``)."""
        path = Path(path)
        files = {"file": (path.name, path.read_bytes(), _content_type(path))}
        return await self._request("POST", "/api/v1/files/", files=files)

    async def wait(
        self, file_id: str, *, timeout: float = 600.0, poll: float = 0.5
    ) -> dict[str, Any]:
        """Poll until a file is completed or failed; return its status."""
        deadline = time.monotonic() + timeout
        while True:
            status = await self._request("GET", f"/api/v1/files/{file_id}/process/status")
            if status.get("status") in DONE_STATES:
                return status
            if time.monotonic() > deadline:
                raise RemoteError(f"file {file_id} still {status.get('status')} after {timeout}s")
            await asyncio.sleep(poll)

    async def file(self, file_id: str) -> dict[str, Any]:
        """One file, with its extracted text once processed."""
        return await self._request("GET", f"/api/v1/files/{file_id}")

    async def create_knowledge(self, name: str, description: str = "") -> dict[str, Any]:
        """Create a knowledge base."""
        body = {"name": name, "description": description}
        return await self._request("POST", "/api/v1/knowledge/create", json=body)

    async def add_file(self, knowledge_id: str, file_id: str) -> dict[str, Any]:
        """Add a processed file to a knowledge base."""
        path = f"/api/v1/knowledge/{knowledge_id}/file/add"
        return await self._request("POST", path, json={"file_id": file_id})

    async def add_files(self, knowledge_id: str, file_ids: Sequence[str]) -> dict[str, Any]:
        """Add processed files to a knowledge base in one call (all or none)."""
        path = f"/api/v1/knowledge/{knowledge_id}/files/batch/add"
        return await self._request("POST", path, json=[{"file_id": i} for i in file_ids])

    async def remove_file(self, knowledge_id: str, file_id: str) -> dict[str, Any]:
        """Take a file out of a knowledge base."""
        path = f"/api/v1/knowledge/{knowledge_id}/file/remove"
        return await self._request("POST", path, json={"file_id": file_id})

    async def knowledge(self) -> list[dict[str, Any]]:
        """The caller's knowledge bases."""
        answer = await self._request("GET", "/api/v1/knowledge/")
        return answer["items"] if isinstance(answer, dict) else answer

    async def chat(self, model: str, messages: str | Sequence[dict[str, Any]], **kw: Any) -> Any:
        """A chat completion, grounded in ``files=[ids]`` / ``collections=[ids]`` if given."""
        body = chat_body(model, messages, **kw)
        return await self._request("POST", "/api/chat/completions", json=body)

    async def chat_stream(
        self, model: str, messages: str | Sequence[dict[str, Any]], **kw: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream a chat: the first event carries ``sources`` when files were given."""
        body = chat_body(model, messages, stream=True, **kw)
        try:
            async with self._http.stream("POST", "/api/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for(response)
                async for line in response.aiter_lines():
                    for event in _sse_events(iter([line])):
                        yield event
                    if line.strip() == "data: [DONE]":
                        return
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings through ``/ollama/api/embed``."""
        body = {"model": model, "input": list(texts)}
        return (await self._request("POST", "/ollama/api/embed", json=body))["embeddings"]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRagClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
