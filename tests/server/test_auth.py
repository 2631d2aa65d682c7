"""Auth: sign-up rules, API keys, and the matrix of every route × bad credentials."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from rag_pipeline.server import ServerSettings

from .conftest import World
from .harness import live_server


def _routes(world: World) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(method, path, json body, what another user gets: "404" or "own")."""
    z, k = world.zebra_id, world.knowledge_id
    chat_file = {
        "model": "fake-echo",
        "messages": [{"role": "user", "content": "What does Ziggy eat?"}],
        "files": [{"type": "file", "id": z}],
    }
    chat_kb = {**chat_file, "files": [{"type": "collection", "id": k}]}
    return [
        ("GET", "/api/models", None, "own"),
        ("GET", "/api/models/base", None, "own"),
        ("GET", "/openai/models", None, "own"),
        ("POST", "/api/chat/completions", chat_file, "404"),
        ("POST", "/api/chat/completions", chat_kb, "404"),
        ("GET", "/api/v1/files/", None, "own"),
        ("GET", f"/api/v1/files/{z}", None, "404"),
        ("GET", f"/api/v1/files/{z}/data/content", None, "404"),
        ("GET", f"/api/v1/files/{z}/content", None, "404"),
        ("GET", f"/api/v1/files/{z}/process/status", None, "404"),
        ("DELETE", f"/api/v1/files/{z}", None, "404"),
        ("POST", "/api/v1/knowledge/create", {"name": "mine"}, "own"),
        ("GET", "/api/v1/knowledge/", None, "own"),
        ("GET", f"/api/v1/knowledge/{k}", None, "404"),
        ("GET", f"/api/v1/knowledge/{k}/files", None, "404"),
        ("POST", f"/api/v1/knowledge/{k}/file/add", {"file_id": z}, "404"),
        ("POST", f"/api/v1/knowledge/{k}/file/remove", {"file_id": z}, "404"),
        ("POST", f"/api/v1/knowledge/{k}/files/batch/add", [{"file_id": z}], "404"),
        ("POST", f"/api/v1/knowledge/{k}/update", {"name": "taken"}, "404"),
        ("POST", f"/api/v1/knowledge/{k}/reset", None, "404"),
        ("DELETE", f"/api/v1/knowledge/{k}/delete", None, "404"),
        (
            "POST",
            "/api/v1/retrieval/query/doc",
            {"collection_name": f"file-{z}", "query": "zebra"},
            "404",
        ),
        (
            "POST",
            "/api/v1/retrieval/query/collection",
            {"collection_names": [k], "query": "zebra"},
            "404",
        ),
        ("GET", "/ollama/api/tags", None, "own"),
        ("POST", "/ollama/api/embed", {"model": "llama3.2:3b", "input": ["x"]}, "own"),
        ("GET", "/api/v1/auths/", None, "own"),
        ("GET", "/api/v1/auths/api_key", None, "own"),
        ("GET", "/api/v1/retrieval/config", None, "own"),
        ("GET", "/api/v1/retrieval/embedding", None, "own"),
        ("GET", "/v1/models", None, "own"),
        ("POST", "/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": ["x"]}, "own"),
    ]


def _secrets(world: World) -> list[str]:
    """Strings of the admin's that must never appear in another user's answer."""
    return [world.zebra_id, world.knowledge_id, world.admin.id, "Ziggy", "Test KB", "zebra.txt"]


BAD_TOKENS = {
    "none": None,
    "scheme only": "Bearer",
    "wrong key": "sk-00000000000000000000000000000000",
    "garbage": "not-a-token",
    "foreign jwt": jwt.encode(
        {"id": "x", "exp": 4102444800}, "another-secret-of-at-least-32-bytes!", algorithm="HS256"
    ),
}


@pytest.mark.parametrize("token", list(BAD_TOKENS), ids=list(BAD_TOKENS))
def test_every_route_refuses_missing_or_bad_tokens(world: World, token: str) -> None:
    value = BAD_TOKENS[token]
    headers = {}
    if value == "Bearer":
        headers = {"Authorization": "Bearer"}
    elif value is not None:
        headers = {"Authorization": f"Bearer {value}"}
    for method, path, body, _ in _routes(world):
        response = httpx.request(method, world.url + path, headers=headers, json=body, timeout=30)
        assert response.status_code == 401, (method, path, response.text)
        assert set(response.json()) == {"detail"}
        assert not any(s in response.text for s in _secrets(world)), (method, path)
    upload = httpx.post(
        f"{world.url}/api/v1/files/", headers=headers, files={"file": ("a.txt", b"a")}
    )
    assert upload.status_code == 401


@pytest.mark.parametrize("credential", ["key", "token"])
def test_another_users_objects_are_404_and_never_leak(world: World, credential: str) -> None:
    bob = world.bob
    headers = {"Authorization": f"Bearer {getattr(bob, credential)}"}
    for method, path, body, expect in _routes(world):
        response = httpx.request(method, world.url + path, headers=headers, json=body, timeout=30)
        if expect == "404":
            assert response.status_code == 404, (method, path, response.text)
        elif path == "/api/v1/auths/" and credential == "key":
            assert response.status_code == 403  # an API key is not a human session
        else:
            assert response.status_code == 200, (method, path, response.text)
        assert not any(s in response.text for s in _secrets(world)), (method, path)
    # Nothing of the admin's was touched by those calls.
    admin = world.admin.headers
    assert httpx.get(f"{world.url}/api/v1/files/{world.zebra_id}", headers=admin).status_code == 200
    files = httpx.get(f"{world.url}/api/v1/knowledge/{world.knowledge_id}/files", headers=admin)
    assert world.zebra_id in {f["id"] for f in files.json()["items"]}


def test_admin_sees_other_users_files(world: World) -> None:
    mine = httpx.post(
        f"{world.url}/api/v1/files/",
        headers=world.bob.headers,
        files={"file": ("bob.txt", b"Bob's note.\n", "text/plain")},
    ).json()
    as_admin = httpx.get(f"{world.url}/api/v1/files/{mine['id']}", headers=world.admin.headers)
    assert as_admin.status_code == 200


def test_signup_rules_and_signin(world: World) -> None:
    url = world.url
    duplicate = httpx.post(
        f"{url}/api/v1/auths/signup",
        json={"name": "A", "email": "admin@example.com", "password": "x"},
    )
    assert duplicate.status_code == 400
    wrong = httpx.post(
        f"{url}/api/v1/auths/signin", json={"email": "admin@example.com", "password": "nope"}
    )
    assert wrong.status_code == 400
    ok = httpx.post(
        f"{url}/api/v1/auths/signin",
        json={"email": "Admin@Example.com", "password": "pw-123456"},
    ).json()
    assert ok["role"] == "admin" and ok["token_type"] == "Bearer"
    me = httpx.get(f"{url}/api/v1/auths/", headers={"Authorization": f"Bearer {ok['token']}"})
    assert me.json()["email"] == "admin@example.com"


def test_api_keys_rotate_and_revoke(world: World) -> None:
    url = world.url
    answer = httpx.post(
        f"{url}/api/v1/auths/signup",
        json={"name": "Carol", "email": "carol@example.com", "password": "pw"},
    ).json()
    assert answer["role"] == "user"
    session = {"Authorization": f"Bearer {answer['token']}"}
    first = httpx.post(f"{url}/api/v1/auths/api_key", headers=session).json()["api_key"]
    second = httpx.post(f"{url}/api/v1/auths/api_key", headers=session).json()["api_key"]
    assert first != second and second.startswith("sk-")
    shown = httpx.get(f"{url}/api/v1/auths/api_key", headers=session).json()["api_key"]
    assert second.startswith(shown.rstrip("…")) and shown != second  # stored hashed
    old = httpx.get(f"{url}/api/models", headers={"Authorization": f"Bearer {first}"})
    assert old.status_code == 401
    assert httpx.delete(f"{url}/api/v1/auths/api_key", headers=session).json() is True
    revoked = httpx.get(f"{url}/api/models", headers={"Authorization": f"Bearer {second}"})
    assert revoked.status_code == 401


def test_signup_is_closed_unless_enabled(tmp_path) -> None:
    from rag_pipeline.server import ServerSettings

    from .harness import live_server

    with live_server(ServerSettings(data_dir=tmp_path)) as server:
        first = server.signup("Root", "root@example.com")
        assert first["role"] == "admin"
        second = httpx.post(
            f"{server.url}/api/v1/auths/signup",
            json={"name": "Eve", "email": "eve@example.com", "password": "pw"},
        )
        assert second.status_code == 403


MODEL_MANAGEMENT = [
    ("DELETE", "api/delete", {"model": "llama3.1"}),
    ("POST", "api/pull", {"model": "llama3.1"}),
    ("POST", "api/push", {"model": "llama3.1"}),
    ("POST", "api/create", {"model": "mine", "from": "llama3.1"}),
    ("POST", "api/copy", {"source": "llama3.1", "destination": "x"}),
    ("POST", "api/unload", {"model": "llama3.1"}),
    ("POST", "api/blobs/sha256:00", None),
    # The same calls spelled differently must not slip through.
    ("DELETE", "api//delete/", {"model": "llama3.1"}),
    ("POST", "./api/pull", {"model": "llama3.1"}),
    ("GET", "api/anything-new", None),
]


@pytest.mark.parametrize("credential", ["key", "token"])
def test_model_management_is_admin_only_and_nothing_is_forwarded(
    world: World, credential: str
) -> None:
    headers = {"Authorization": f"Bearer {getattr(world.bob, credential)}"}
    world.upstream.clear()
    for method, path, body in MODEL_MANAGEMENT:
        response = httpx.request(
            method, f"{world.url}/ollama/{path}", headers=headers, json=body, timeout=30
        )
        assert response.status_code == 403, (method, path, response.text)
    assert world.upstream.requests == []
    # Using models stays open to every user.
    used = httpx.post(
        f"{world.url}/ollama/api/embed",
        headers=headers,
        json={"model": "llama3.2:3b", "input": ["x"]},
    )
    assert used.status_code == 200
    # An admin's call is forwarded (the fake upstream answers 404 to unknown paths).
    admin = httpx.post(
        f"{world.url}/ollama/./api//pull/", headers=world.admin.headers, json={"model": "x"}
    )
    assert admin.status_code == 404
    assert [(r["method"], r["path"]) for r in world.upstream.requests[-1:]] == [
        ("POST", "/api/pull")
    ]


def _race_signups(url: str, emails: list[str]) -> list[httpx.Response]:
    from concurrent.futures import ThreadPoolExecutor

    def signup(email: str) -> httpx.Response:
        body = {"name": "racer", "email": email, "password": "pw-123456"}
        return httpx.post(f"{url}/api/v1/auths/signup", json=body, timeout=60)

    with ThreadPoolExecutor(len(emails)) as pool:
        return list(pool.map(signup, emails))


def check_signup_races(settings_for, tmp_path) -> None:
    """Concurrent signups: one first admin, others refused or users; same e-mail is a 400."""

    from .harness import live_server

    closed: ServerSettings = settings_for(tmp_path / "closed", enable_signup=False)
    with live_server(closed) as server:
        answers = _race_signups(server.url, [f"u{n}@example.com" for n in range(20)])
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [403] * 19, [r.text for r in answers]
        assert [r.json()["role"] for r in answers if r.status_code == 200] == ["admin"]

    opened: ServerSettings = settings_for(tmp_path / "open", enable_signup=True)
    with live_server(opened) as server:
        answers = _race_signups(server.url, [f"u{n}@example.com" for n in range(12)])
        assert [r.status_code for r in answers] == [200] * 12
        assert sorted(r.json()["role"] for r in answers) == ["admin"] + ["user"] * 11
        same = _race_signups(server.url, ["same@example.com"] * 10)
        assert sorted(r.status_code for r in same) == [200] + [400] * 9
        refused = [r.json()["detail"] for r in same if r.status_code == 400]
        assert all("already exists" in detail for detail in refused)


def test_signup_races_on_sqlite(tmp_path) -> None:
    from rag_pipeline.server import ServerSettings

    def settings_for(data_dir, **values):
        return ServerSettings(data_dir=data_dir, **values)

    check_signup_races(settings_for, tmp_path)


def test_a_database_from_before_claims_keeps_its_first_admin(tmp_path) -> None:
    from rag_pipeline.server.auth import create_user
    from rag_pipeline.server.db import Claim, Database

    from .old_schema import OLDEST, create_old_database

    # A database made before the claims table, whose first user is its admin.
    url = f"sqlite:///{tmp_path / 'old.db'}"
    root = (
        "INSERT INTO users (id, name, email, role, password_hash, created_at) "
        "VALUES ('root-id', 'Root', 'root@example.com', 'admin', 'x', 1700000000)"
    )
    create_old_database(url, OLDEST, [root])
    reopened = Database(url)
    with reopened.session() as session:
        later = create_user(session, name="Eve", email="eve@example.com", password="pw")
        assert session.get(Claim, "first_user").user_id == "root-id"
    assert later.role == "user"
    reopened.close()


def test_tokens_without_expiry_are_refused_and_the_database_is_private(world: World) -> None:
    import stat

    from rag_pipeline.server.auth import TokenIssuer

    secret = world.server.settings.resolved_jwt_secret()
    forever = jwt.encode({"id": world.admin.id}, secret, algorithm="HS256")
    headers = {"Authorization": f"Bearer {forever}"}
    assert httpx.get(f"{world.url}/api/v1/files/", headers=headers).status_code == 401
    token, _ = TokenIssuer(secret, 60).issue(world.admin.id)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{world.url}/api/v1/files/", headers=headers).status_code == 200
    database = world.server.settings.data_dir / "server.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_another_users_collection_and_a_missing_one_answer_alike(world: World) -> None:
    # No existence oracle: "not yours" and "not there" are the same 404, word for word.
    missing_file, missing_knowledge = str(uuid.uuid4()), str(uuid.uuid4())
    pairs = [
        (f"file-{world.zebra_id}", f"file-{missing_file}"),
        (world.knowledge_id, missing_knowledge),
    ]
    for path in ("query/doc", "query/collection"):
        for theirs, nowhere in pairs:
            answers = []
            for name in (theirs, nowhere):
                body: dict[str, Any] = {"query": "zebra", "collection_name": name}
                if path == "query/collection":
                    body = {"query": "zebra", "collection_names": [name]}
                response = httpx.post(
                    f"{world.url}/api/v1/retrieval/{path}", headers=world.bob.headers, json=body
                )
                answers.append((response.status_code, response.json()["detail"]))
            assert answers[0] == answers[1] == (404, "Collection not found"), (path, answers)


def test_only_admins_create_knowledge_bases_unless_the_switch_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Open WebUI 0.12.4's default (USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS off).
    with live_server(ServerSettings(data_dir=tmp_path / "off", enable_signup=True)) as server:
        root = server.signup("Root", "root@example.com")
        bob = server.signup("Bob", "bob@example.com")
        assert root["permissions"]["workspace"]["knowledge"] is True
        assert bob["permissions"]["workspace"]["knowledge"] is False
        url = f"{server.url}/api/v1/knowledge/create"
        refused = httpx.post(url, headers=_bearer(bob["token"]), json={"name": "mine"})
        assert refused.status_code == 403
        assert "USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS" in refused.json()["detail"]
        made = httpx.post(url, headers=_bearer(root["token"]), json={"name": "admin's"})
        assert made.status_code == 200
    # The switch, under Open WebUI's own name.
    monkeypatch.setenv("USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS", "true")
    with live_server(ServerSettings(data_dir=tmp_path / "on", enable_signup=True)) as server:
        server.signup("Root", "root@example.com")
        bob = server.signup("Bob", "bob@example.com")
        assert bob["permissions"]["workspace"]["knowledge"] is True
        made = httpx.post(
            f"{server.url}/api/v1/knowledge/create",
            headers=_bearer(bob["token"]),
            json={"name": "mine"},
        )
        assert made.status_code == 200, made.text


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
