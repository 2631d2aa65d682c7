"""Files and knowledge: background processing, status, vector copies, removal and limits."""

from __future__ import annotations

import hashlib
import json

import httpx

from rag_pipeline.server.scopes import UPLOADS_COLLECTION

from .conftest import FALCON, World, upload_text
from .harness import wait_processed


def _store(world: World):
    return world.server.app.state.pipeline.store


def file_points(store, file_id: str, fields=None, *, with_vectors: bool = False) -> list:
    """An upload's points in the shared uploads collection."""
    return list(
        store.scroll_payloads(
            UPLOADS_COLLECTION, fields, with_vectors=with_vectors, where={"file_id": file_id}
        )
    )


def test_upload_answers_pending_then_completes_with_content(world: World) -> None:
    uploaded = upload_text(world.url, world.admin.key, "ziggy.txt", "Ziggy likes jazz.\n")
    assert uploaded["data"] == {"status": "pending"}
    assert uploaded["meta"]["size"] == len("Ziggy likes jazz.\n")
    assert wait_processed(world.url, world.admin.key, uploaded["id"])["status"] == "completed"
    got = httpx.get(f"{world.url}/api/v1/files/{uploaded['id']}", headers=world.admin.headers)
    body = got.json()
    assert body["data"]["content"] == "Ziggy likes jazz."
    assert body["meta"]["collection_name"] == f"file-{uploaded['id']}"
    assert len(file_points(_store(world), uploaded["id"])) == 1
    # One meaning of file_hash: the SHA-256 of the uploaded bytes, on the row and the chunks.
    digest = hashlib.sha256(b"Ziggy likes jazz.\n").hexdigest()
    assert body["meta"]["file_hash"] == digest
    stored = file_points(_store(world), uploaded["id"], ["file_hash"])
    assert {payload["file_hash"] for _, payload, _ in stored} == {digest}


def test_status_stream_sends_events_until_done(world: World) -> None:
    uploaded = upload_text(world.url, world.admin.key, "stream.md", FALCON.replace("42", "43"))
    with httpx.stream(
        "GET",
        f"{world.url}/api/v1/files/{uploaded['id']}/process/status",
        params={"stream": "true"},
        headers=world.admin.headers,
        timeout=60,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in response.iter_lines() if line]
    assert events[-1] == {"status": "completed"}
    assert all(e["status"] in ("pending", "processing", "completed") for e in events)


def test_unreadable_file_fails_with_a_named_error(world: World) -> None:
    response = httpx.post(
        f"{world.url}/api/v1/files/",
        headers=world.admin.headers,
        files={"file": ("broken.pdf", b"this is not a pdf", "application/pdf")},
    )
    status = wait_processed(world.url, world.admin.key, response.json()["id"])
    assert status["status"] == "failed"
    assert "pdf" in status["error"].lower()


def test_too_large_upload_is_413(world: World) -> None:
    response = httpx.post(
        f"{world.url}/api/v1/files/",
        headers=world.admin.headers,
        files={"file": ("big.txt", b"x" * 200_001, "text/plain")},
    )
    assert response.status_code == 413
    assert not any(
        f["filename"] == "big.txt"
        for f in httpx.get(f"{world.url}/api/v1/files/", headers=world.admin.headers).json()[
            "items"
        ]
    )


def test_upload_names_cannot_escape_the_upload_folder(world: World) -> None:
    uploaded = upload_text(world.url, world.admin.key, "../../evil.txt", "evil\n")
    assert uploaded["filename"] == "evil.txt"
    upload_dir = world.server.settings.upload_dir.resolve()
    assert uploaded["path"].startswith(str(upload_dir))


def test_knowledge_copies_vectors_without_reembedding_and_dedupes(world: World) -> None:
    headers = world.admin.headers
    knowledge = httpx.post(
        f"{world.url}/api/v1/knowledge/create", headers=headers, json={"name": "Copy"}
    ).json()
    store = _store(world)
    before = {i: v for i, _, v in file_points(store, world.zebra_id, with_vectors=True)}
    for _ in range(2):
        added = httpx.post(
            f"{world.url}/api/v1/knowledge/{knowledge['id']}/file/add",
            headers=headers,
            json={"file_id": world.zebra_id},
        ).json()
    assert [f["id"] for f in added["files"]] == [world.zebra_id]
    copied = list(store.scroll_payloads(knowledge["id"], None, with_vectors=True))
    assert len(copied) == len(before)  # adding twice duplicates nothing
    # Same vectors as the file's own collection: copied, not re-embedded.
    assert sorted(v["dense"].tolist() for _, _, v in copied) == sorted(
        v["dense"].tolist() for v in before.values()
    )
    assert copied[0][1]["file_id"] == world.zebra_id
    removed = httpx.post(
        f"{world.url}/api/v1/knowledge/{knowledge['id']}/file/remove",
        headers=headers,
        json={"file_id": world.zebra_id},
    ).json()
    assert removed["files"] == []
    assert store.count(knowledge["id"]) == 0
    deleted = httpx.delete(
        f"{world.url}/api/v1/knowledge/{knowledge['id']}/delete", headers=headers
    )
    assert deleted.json() is True
    assert store.collection_info(knowledge["id"]) is None


def test_file_added_while_processing_is_copied_when_done(world: World) -> None:
    headers = world.admin.headers
    knowledge = httpx.post(
        f"{world.url}/api/v1/knowledge/create", headers=headers, json={"name": "Early"}
    ).json()
    uploaded = upload_text(world.url, world.admin.key, "early.txt", "Early birds sing at 5am.\n")
    httpx.post(
        f"{world.url}/api/v1/knowledge/{knowledge['id']}/file/add",
        headers=headers,
        json={"file_id": uploaded["id"]},
    ).raise_for_status()
    assert wait_processed(world.url, world.admin.key, uploaded["id"])["status"] == "completed"
    hits = httpx.post(
        f"{world.url}/api/v1/retrieval/query/collection",
        headers=headers,
        json={"collection_names": [knowledge["id"]], "query": "when do birds sing", "k": 3},
    ).json()
    assert hits["documents"] == [["Early birds sing at 5am."]]


def test_deleting_a_file_removes_its_vectors_everywhere(world: World) -> None:
    headers = world.admin.headers
    uploaded = upload_text(world.url, world.admin.key, "gone.txt", "The gnu is gone.\n")
    assert wait_processed(world.url, world.admin.key, uploaded["id"])["status"] == "completed"
    add = f"{world.url}/api/v1/knowledge/{world.knowledge_id}/file/add"
    httpx.post(add, headers=headers, json={"file_id": uploaded["id"]}).raise_for_status()
    store = _store(world)
    in_kb = [p for _, p, _ in store.scroll_payloads(world.knowledge_id, ["file_id"])]
    assert {"file_id": uploaded["id"]} in in_kb
    response = httpx.delete(f"{world.url}/api/v1/files/{uploaded['id']}", headers=headers)
    assert response.status_code == 200
    in_kb = [p for _, p, _ in store.scroll_payloads(world.knowledge_id, ["file_id"])]
    assert {"file_id": uploaded["id"]} not in in_kb
    assert file_points(store, uploaded["id"]) == []
    gone = httpx.get(f"{world.url}/api/v1/files/{uploaded['id']}", headers=headers)
    assert gone.status_code == 404


def test_retrieval_query_doc_returns_the_chunk(world: World) -> None:
    answer = httpx.post(
        f"{world.url}/api/v1/retrieval/query/doc",
        headers=world.admin.headers,
        json={
            "collection_name": f"file-{world.zebra_id}",
            "query": "What does the zebra eat?",
            "k": 2,
        },
    ).json()
    assert set(answer) == {"ids", "documents", "metadatas", "distances"}
    assert "7 apples" in answer["documents"][0][0]
    assert answer["metadatas"][0][0]["file_id"] == world.zebra_id


def test_knowledge_batch_add_update_and_reset(world: World) -> None:
    headers = world.admin.headers
    base = f"{world.url}/api/v1/knowledge"
    knowledge = httpx.post(f"{base}/create", headers=headers, json={"name": "Batch"}).json()
    other = upload_text(world.url, world.admin.key, "owls.txt", "Owls hunt at night.\n")
    assert wait_processed(world.url, world.admin.key, other["id"])["status"] == "completed"
    ids = [world.zebra_id, other["id"]]
    added = httpx.post(
        f"{base}/{knowledge['id']}/files/batch/add",
        headers=headers,
        json=[{"file_id": i} for i in ids],
    ).json()
    assert sorted(f["id"] for f in added["files"]) == sorted(ids)
    store = _store(world)
    sources = {p["file_id"] for _, p, _ in store.scroll_payloads(knowledge["id"], ["file_id"])}
    assert sources == set(ids)

    updated = httpx.post(
        f"{base}/{knowledge['id']}/update",
        headers=headers,
        json={"name": "Renamed", "description": "night animals"},
    ).json()
    assert (updated["name"], updated["description"]) == ("Renamed", "night animals")
    assert len(updated["files"]) == 2  # renaming keeps the files
    got = httpx.get(f"{base}/{knowledge['id']}", headers=headers).json()
    assert got["name"] == "Renamed"

    reset = httpx.post(f"{base}/{knowledge['id']}/reset", headers=headers).json()
    assert reset["files"] == []
    assert store.collection_info(knowledge["id"]) is None
    # The files themselves and their chunks survive a reset.
    assert len(file_points(store, other["id"])) == 1
    again = httpx.post(
        f"{base}/{knowledge['id']}/file/add", headers=headers, json={"file_id": other["id"]}
    ).json()
    assert [f["id"] for f in again["files"]] == [other["id"]]
    assert store.count(knowledge["id"]) == 1


def test_batch_add_checks_every_file_before_adding_any(world: World) -> None:
    headers = world.admin.headers
    base = f"{world.url}/api/v1/knowledge"
    knowledge = httpx.post(f"{base}/create", headers=headers, json={"name": "Strict"}).json()
    response = httpx.post(
        f"{base}/{knowledge['id']}/files/batch/add",
        headers=headers,
        json=[{"file_id": world.zebra_id}, {"file_id": "no-such-file"}],
    )
    assert response.status_code == 404
    files = httpx.get(f"{base}/{knowledge['id']}/files", headers=headers).json()
    assert files["items"] == []


def test_batch_add_in_several_folders_is_all_or_nothing(world: World) -> None:
    # Bob's own file in one folder, another user's file in another: nothing is added.
    headers = world.bob.headers
    base = f"{world.url}/api/v1/knowledge"
    knowledge = httpx.post(f"{base}/create", headers=headers, json={"name": "Bob's"}).json()
    own = upload_text(world.url, world.bob.key, "bob-notes.txt", "Bob keeps bees.\n")["id"]
    response = httpx.post(
        f"{base}/{knowledge['id']}/files/batch/add",
        headers=headers,
        json=[{"file_id": own, "path": "a"}, {"file_id": world.zebra_id, "path": "b"}],
    )
    assert response.status_code == 404
    files = httpx.get(f"{base}/{knowledge['id']}/files", headers=headers).json()
    assert files["items"] == []
    # Both of his own, in two folders, go in together.
    other = upload_text(world.url, world.bob.key, "bob-more.txt", "Bob sells honey.\n")["id"]
    response = httpx.post(
        f"{base}/{knowledge['id']}/files/batch/add",
        headers=headers,
        json=[{"file_id": own, "path": "a"}, {"file_id": other, "path": "b"}],
    )
    assert response.status_code == 200, response.text
    files = httpx.get(f"{base}/{knowledge['id']}/files", headers=headers).json()
    assert {f["id"] for f in files["items"]} == {own, other}


def test_retrieval_and_embedding_config_report_the_settings_in_force(world: World) -> None:
    headers = world.admin.headers
    config = httpx.get(f"{world.url}/api/v1/retrieval/config", headers=headers).json()
    settings = world.server.app.state.settings
    assert config["TOP_K"] == settings.top_k
    assert config["CHUNK_SIZE"] == settings.chunk_size
    assert config["ENABLE_RAG_HYBRID_SEARCH"] == (settings.search_mode == "hybrid")
    assert "{{CONTEXT}}" in config["RAG_TEMPLATE"]
    assert "pdf" in config["ALLOWED_FILE_EXTENSIONS"]
    embedding = httpx.get(f"{world.url}/api/v1/retrieval/embedding", headers=headers).json()
    assert embedding["RAG_EMBEDDING_MODEL"] == world.server.app.state.pipeline.embedder.model_name
    assert set(embedding) >= {"openai_config", "ollama_config", "RAG_EMBEDDING_BATCH_SIZE"}


def test_one_text_uploaded_twice_is_held_once_per_knowledge_base(world: World) -> None:
    headers = world.admin.headers
    base = f"{world.url}/api/v1/knowledge"
    knowledge = httpx.post(f"{base}/create", headers=headers, json={"name": "Twins"}).json()
    text = "The lighthouse keeper Ines paints the door blue every May.\n"
    twins = [upload_text(world.url, world.admin.key, "ines.txt", text) for _ in range(2)]
    for twin in twins:
        assert wait_processed(world.url, world.admin.key, twin["id"])["status"] == "completed"
    added = httpx.post(
        f"{base}/{knowledge['id']}/files/batch/add",
        headers=headers,
        json=[{"file_id": t["id"]} for t in twins],
    ).json()
    assert len(added["files"]) == 2  # both files are listed …
    store = _store(world)
    assert store.count(knowledge["id"]) == 1  # … but their one chunk is stored once
    hits = httpx.post(
        f"{world.url}/api/v1/retrieval/query/collection",
        headers=headers,
        json={"collection_names": [knowledge["id"]], "query": "what colour is the door", "k": 10},
    ).json()
    assert hits["documents"] == [[text.strip()]]
    # Taking either out leaves the other's text searchable; taking both out empties it.
    for twin, left in zip(twins, (1, 0), strict=True):
        httpx.post(
            f"{base}/{knowledge['id']}/file/remove", headers=headers, json={"file_id": twin["id"]}
        ).raise_for_status()
        assert store.count(knowledge["id"]) == left


def test_sync_diff_and_cleanup_speak_open_webuis_shapes(world: World) -> None:
    headers = world.admin.headers
    base = f"{world.url}/api/v1/knowledge"
    knowledge = httpx.post(f"{base}/create", headers=headers, json={"name": "Sync"}).json()
    text = "Sync test: the heron waits by the weir.\n"
    twins = [upload_text(world.url, world.admin.key, "heron.txt", text) for _ in range(2)]
    for twin in twins:
        assert wait_processed(world.url, world.admin.key, twin["id"])["status"] == "completed"
    httpx.post(
        f"{base}/{knowledge['id']}/files/batch/add",
        headers=headers,
        json=[{"file_id": twins[0]["id"]}, {"file_id": twins[1]["id"], "path": "birds"}],
    ).raise_for_status()
    digest = hashlib.sha256(text.encode()).hexdigest()
    manifest = [
        {"filename": "heron.txt", "path": "", "checksum": digest, "size": len(text)},
        {"filename": "new.md", "path": "notes", "checksum": "0" * 64, "size": 3},
    ]
    diff = httpx.post(
        f"{base}/{knowledge['id']}/sync/diff", headers=headers, json={"manifest": manifest}
    ).json()
    assert set(diff) == {
        "added", "modified", "deleted", "mkdir", "rmdir", "unmodified_count", "directory_map"
    }  # fmt: skip
    assert diff["added"] == [{"filename": "new.md", "path": "notes"}]
    assert diff["unmodified_count"] == 1 and diff["modified"] == []
    assert diff["deleted"] == [{"file_id": twins[1]["id"], "filename": "heron.txt"}]
    changed = [{**manifest[0], "checksum": "f" * 64}]
    modified = httpx.post(
        f"{base}/{knowledge['id']}/sync/diff", headers=headers, json={"manifest": changed}
    ).json()["modified"]
    assert modified == [{"filename": "heron.txt", "path": "", "stale_file_id": twins[0]["id"]}]
    # Cleaning up one twin keeps the other's vectors (Open WebUI deletes by content hash).
    cleaned = httpx.post(
        f"{base}/{knowledge['id']}/sync/cleanup",
        headers=headers,
        json={"file_ids": [twins[1]["id"], world.zebra_id], "dir_ids": []},
    )
    assert cleaned.json() == {"status": True}
    store = _store(world)
    assert store.count(knowledge["id"]) == 1
    listed = httpx.get(f"{base}/{knowledge['id']}/files", headers=headers).json()["items"]
    assert [f["id"] for f in listed] == [twins[0]["id"]]
    # The cleaned-up file was in no other knowledge base: it is gone; zebra was not ours
    # to clean here (not in this knowledge base) and stays.
    gone = httpx.get(f"{world.url}/api/v1/files/{twins[1]['id']}", headers=headers)
    assert gone.status_code == 404
    kept = httpx.get(f"{world.url}/api/v1/files/{world.zebra_id}", headers=headers)
    assert kept.status_code == 200


def test_an_uploaded_scan_is_read_and_found(world: World) -> None:
    import io

    from tests.scanned_pages import page

    image = io.BytesIO()
    page("en", ["The lighthouse keeper logs every passing tanker"]).save(image, "PNG")
    response = httpx.post(
        f"{world.url}/api/v1/files/",
        headers=world.admin.headers,
        files={"file": ("logbook.png", image.getvalue(), "image/png")},
        timeout=30,
    )
    response.raise_for_status()
    file_id = response.json()["id"]
    status = wait_processed(world.url, world.admin.key, file_id)
    assert status["status"] == "completed", status
    found = httpx.post(
        f"{world.url}/api/v1/retrieval/query/doc",
        headers=world.admin.headers,
        json={"collection_name": f"file-{file_id}", "query": "lighthouse keeper tanker"},
        timeout=30,
    ).json()
    assert "lighthouse keeper" in found["documents"][0][0]
    assert found["metadatas"][0][0]["ocr"] is True


def test_knowledge_files_are_paged_as_open_webui_pages_them(world: World) -> None:
    headers = world.admin.headers
    base = f"{world.url}/api/v1/knowledge"
    knowledge = httpx.post(f"{base}/create", headers=headers, json={"name": "Paged"}).json()
    uploaded = [
        upload_text(world.url, world.admin.key, f"page{i}.txt", f"Page note number {i}.\n")
        for i in range(5)
    ]
    for item in uploaded:
        assert wait_processed(world.url, world.admin.key, item["id"])["status"] == "completed"
    ids = [item["id"] for item in uploaded]
    httpx.post(
        f"{base}/{knowledge['id']}/files/batch/add",
        headers=headers,
        json=[{"file_id": i} for i in ids],
    ).raise_for_status()
    url = f"{base}/{knowledge['id']}/files"
    whole = httpx.get(url, headers=headers).json()  # no page asked: every file
    assert whole["total"] == 5 and len(whole["items"]) == 5
    pages = []
    for page in (1, 2, 3, 4):
        got = httpx.get(url, headers=headers, params={"page": page, "limit": 2}).json()
        assert got["total"] == 5
        pages.append([f["id"] for f in got["items"]])
    assert [len(p) for p in pages] == [2, 2, 1, 0]  # an empty page past the end
    # Newest first, each file on exactly one page, in the unpaged order.
    listed = [file_id for page in pages for file_id in page]
    assert listed == [f["id"] for f in whole["items"]]
    assert sorted(listed) == sorted(ids)
    default = httpx.get(url, headers=headers, params={"page": 1}).json()
    assert len(default["items"]) == 5  # 30 a page, as Open WebUI's default
    bad = httpx.get(url, headers=headers, params={"page": 0})
    assert bad.status_code == 422


def test_the_file_listing_is_paged_as_open_webui_pages_it(world: World) -> None:
    headers = world.admin.headers
    url = f"{world.url}/api/v1/files/"
    upload_text(world.url, world.admin.key, "paging-a.txt", "First paging note.\n")
    upload_text(world.url, world.admin.key, "paging-b.txt", "Second paging note.\n")
    whole = httpx.get(url, headers=headers, params={"content": "false"}).json()
    assert whole["total"] == len(whole["items"]) >= 2
    ids = [f["id"] for f in whole["items"]]
    listed: list[str] = []
    for page in range(1, len(ids) + 2):
        got = httpx.get(url, headers=headers, params={"page": page, "limit": 1}).json()
        assert got["total"] == len(ids)
        listed += [f["id"] for f in got["items"]]
    assert listed == ids  # one a page, newest first, then an empty page
    first = httpx.get(url, headers=headers, params={"page": 1}).json()
    assert [f["id"] for f in first["items"]] == ids[:50]  # Open WebUI's 50 a page
