"""Our answers have the fields a real Open WebUI 0.12.4 answered with (``calls.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import World, upload_text

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "openwebui_recorded"
# Objects whose fields come from the stored chunk or the upstream: ours may say more.
SUPERSETS = {"metadata", "metadatas", "details"}


@pytest.fixture(scope="module")
def calls() -> dict[str, Any]:
    path = RECORDED / "calls.json"
    if not path.is_file():
        pytest.skip("recorded Open WebUI calls (../shared/openwebui_recorded) are not present")
    return {c["name"]: c for c in json.loads(path.read_text(encoding="utf-8"))}


def same_fields(ours: Any, recorded: Any, where: str = "$", superset: bool = False) -> None:
    """Assert that ``ours`` has the recorded fields, recursively (values may differ).

    A recorded object must be an object in ours with the same keys (at least them where
    ``superset``); a recorded list must be a list in ours, not empty where the recorded
    one has items, and every item of ours must have the fields of some recorded item
    (recorded lists may mix shapes, and ours need not keep their order or length).
    """
    if isinstance(recorded, dict):
        assert isinstance(ours, dict), f"{where}: ours is {type(ours).__name__}, recorded dict"
        if superset:
            missing = set(recorded) - set(ours)
            assert not missing, f"{where}: missing {sorted(missing)}"
        else:
            assert set(ours) == set(recorded), (
                f"{where}: ours {sorted(ours)} != recorded {sorted(recorded)}"
            )
        for key in set(ours) & set(recorded):
            same_fields(ours[key], recorded[key], f"{where}.{key}", key in SUPERSETS)
    elif isinstance(recorded, list):
        assert isinstance(ours, list), f"{where}: ours is {type(ours).__name__}, recorded list"
        if not recorded:
            return  # nothing recorded to hold our items against
        assert ours, f"{where}: ours is empty, recorded has {len(recorded)} items"
        for index, item in enumerate(ours):
            failures = []
            for candidate in recorded:
                try:
                    same_fields(item, candidate, f"{where}[{index}]", superset)
                except AssertionError as exc:
                    failures.append(str(exc).split("\n")[0])
                else:
                    break
            else:
                raise AssertionError(" | ".join(dict.fromkeys(failures)))


def test_same_fields_holds_lists_to_the_recorded_items() -> None:
    recorded = {"items": [{"id": "a", "meta": {"name": "x"}}], "tags": []}
    same_fields({"items": [{"id": "b", "meta": {"name": "y"}}] * 2, "tags": ["t"]}, recorded)
    for ours, message in (
        ({"items": [], "tags": []}, r"\$\.items: ours is empty"),
        ({"items": {}, "tags": []}, r"\$\.items: ours is dict"),
        ({"items": [{"id": "b", "meta": {"name": "y"}}, {"id": "c"}], "tags": []}, r"items\[1\]"),
        ({"items": [{"id": "b", "meta": "y"}], "tags": []}, r"items\[0\]\.meta: ours is str"),
    ):
        with pytest.raises(AssertionError, match=message):
            same_fields(ours, recorded)
    mixed = [{"kind": "file", "name": "n"}, {"kind": "dir"}]
    same_fields([{"kind": "dir"}, {"kind": "file", "name": "m"}], mixed)


def _get(world: World, path: str, **kw: Any) -> Any:
    response = httpx.get(world.url + path, headers=world.admin.headers, timeout=30, **kw)
    assert response.status_code == 200, response.text
    return response.json()


def _post(world: World, path: str, body: Any) -> Any:
    response = httpx.post(world.url + path, headers=world.admin.headers, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_auth_shapes(world: World, calls: dict[str, Any]) -> None:
    signin = _post(
        world, "/api/v1/auths/signin", {"email": "admin@example.com", "password": "pw-123456"}
    )
    recorded = dict(calls["signup"]["response"])
    recorded.pop("permissions")  # ours is a smaller, fixed permission set
    signin.pop("permissions")
    same_fields(signin, recorded)
    key = httpx.post(
        f"{world.url}/api/v1/auths/api_key",
        headers={"Authorization": f"Bearer {world.bob.token}"},
    ).json()
    same_fields(key, calls["create_api_key"]["response"])
    world.bob.key = key["api_key"]  # the old key stopped working: later tests use this one
    as_key = httpx.get(f"{world.url}/api/v1/auths/", headers=world.admin.headers)
    assert as_key.status_code == calls["session_user"]["status"] == 403
    assert as_key.json() == calls["session_user"]["response"]


def test_file_shapes(world: World, calls: dict[str, Any]) -> None:
    uploaded = upload_text(world.url, world.admin.key, "shape.txt", "Shapes matter.\n")
    same_fields(uploaded, calls["upload_zebra.txt"]["response"])
    status = _get(world, f"/api/v1/files/{world.zebra_id}/process/status")
    same_fields(status, calls["file_status_after_poll"]["response"])
    same_fields(_get(world, f"/api/v1/files/{world.zebra_id}"), calls["file_get"]["response"])
    same_fields(
        _get(world, f"/api/v1/files/{world.zebra_id}/data/content"),
        calls["file_data_content_pdf"]["response"],
    )
    listing = _get(world, "/api/v1/files/")
    completed = [f for f in listing["items"] if f["data"]["status"] == "completed"]
    same_fields({**listing, "items": completed}, calls["files_list"]["response"])


def test_knowledge_shapes(world: World, calls: dict[str, Any]) -> None:
    created = _post(world, "/api/v1/knowledge/create", {"name": "Shapes", "description": "d"})
    same_fields(created, calls["knowledge_create"]["response"])
    added = _post(world, f"/api/v1/knowledge/{created['id']}/file/add", {"file_id": world.zebra_id})
    same_fields(added, calls["knowledge_file_add_md"]["response"])
    same_fields(
        _get(world, f"/api/v1/knowledge/{created['id']}"), calls["knowledge_get"]["response"]
    )
    same_fields(
        _get(world, f"/api/v1/knowledge/{created['id']}/files"),
        calls["knowledge_files"]["response"],
    )
    same_fields(_get(world, "/api/v1/knowledge/"), calls["knowledge_list"]["response"])


def test_retrieval_shapes(world: World, calls: dict[str, Any]) -> None:
    doc = _post(
        world,
        "/api/v1/retrieval/query/doc",
        {"collection_name": f"file-{world.zebra_id}", "query": "What does the zebra eat?", "k": 2},
    )
    same_fields(doc, calls["retrieval_query_doc"]["response"])
    collection = _post(
        world,
        "/api/v1/retrieval/query/collection",
        {"collection_names": [world.knowledge_id], "query": "Falcon budget", "k": 2},
    )
    same_fields(collection, calls["retrieval_query_collection"]["response"])


def test_retrieval_config_has_every_key_open_webui_answers(
    world: World, calls: dict[str, Any]
) -> None:
    config = _get(world, "/api/v1/retrieval/config")
    settings = world.server.app.state.settings
    # Ours on top of Open WebUI's: what hybrid search means here.
    assert config.pop("SEARCH_MODE") == settings.search_mode
    assert config.pop("HYBRID_FUSION") == settings.fusion
    same_fields(config, calls["retrieval_config"]["response"])
    assert config["TOP_K"] == settings.top_k and config["CHUNK_SIZE"] == settings.chunk_size
    assert config["web"]["ENABLE_WEB_SEARCH"] is False

    def secrets(node: Any, where: str = "$") -> list[str]:
        if isinstance(node, dict):
            return [s for key, value in node.items() for s in secrets(value, f"{where}.{key}")]
        named = where.endswith(("_KEY", "_TOKEN", "_PASSWORD", "_SK"))
        return [where] if named and node not in ("", None) else []

    assert secrets(config) == []
    assert settings.openai_api_key not in json.dumps(config)


def test_chat_and_model_shapes(world: World, calls: dict[str, Any]) -> None:
    for name in ("chat_file", "chat_collection"):
        request = dict(calls[name]["request"])
        ref = request["files"][0]
        ref_id = world.zebra_id if ref["type"] == "file" else world.knowledge_id
        request["files"] = [{"type": ref["type"], "id": ref_id}]
        same_fields(_post(world, "/api/chat/completions", request), calls[name]["response"])
    nomodel = httpx.post(
        f"{world.url}/api/chat/completions",
        headers=world.admin.headers,
        json=calls["chat_nomodel"]["request"],
    )
    assert nomodel.status_code == 400 and nomodel.json() == calls["chat_nomodel"]["response"]
    stream_body = {**calls["chat_file"]["request"], "stream": True}
    stream_body["files"] = [{"type": "file", "id": world.zebra_id}]
    text = httpx.post(
        f"{world.url}/api/chat/completions", headers=world.admin.headers, json=stream_body
    ).text
    recorded = calls["chat_file_stream"]["response"]
    first = json.loads(text.split("\n\n")[0][6:])
    same_fields(first, json.loads(recorded.split("\n\n")[0][6:]))
    models = {m["owned_by"]: m for m in _get(world, "/api/models")["data"]}
    recorded_models = {m["owned_by"]: m for m in calls["models"]["response"]["data"]}
    for owner in ("openai", "ollama"):
        same_fields(models[owner], recorded_models[owner])
    base = {m["owned_by"]: m for m in _get(world, "/api/models/base")["data"]}
    for model in calls["models_base"]["response"]["data"]:
        same_fields(base[model["owned_by"]], model)
    same_fields(_get(world, "/openai/models"), calls["openai_models_proxy"]["response"])
    tags = _get(world, "/ollama/api/tags")
    same_fields(tags, calls["ollama_tags"]["response"])
    same_fields(_get(world, "/ollama/api/version"), calls["ollama_version"]["response"])
    embed = _post(world, "/ollama/api/embed", calls["ollama_embed"]["request"])
    same_fields(embed, calls["ollama_embed"]["response"])
