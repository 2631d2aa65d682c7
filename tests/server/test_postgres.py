"""The server on PostgreSQL (RAG_DATABASE_URL): a real cluster started for the test."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings

from .conftest import ZEBRA, upload_text
from .harness import live_server, wait_processed


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg")
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    data = root / "data"
    # PostgreSQL refuses to run as root; run the throwaway cluster as nobody.
    as_user: list[str] = []
    if os.geteuid() == 0:
        root.chmod(0o755)
        data.mkdir()
        shutil.chown(data, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "rag"], **run
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    # -l sends the server's output to a file: without it the postmaster inherits our
    # capture pipes and subprocess.run waits for their EOF for as long as it lives.
    log = data / "server.log"
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-l", str(log), "-o", options, "-w", "start"], **run)
    try:
        yield f"postgresql+psycopg://rag@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_server_keeps_its_metadata_in_postgres_across_restarts(
    postgres_url: str, tmp_path: Path, local_embedder
) -> None:
    import psycopg

    settings = ServerSettings(data_dir=tmp_path, database_url=postgres_url, enable_signup=True)
    with (
        Pipeline(settings, embedder=local_embedder) as pipeline,
        live_server(settings, pipeline) as server,
    ):
        token = server.signup("Admin", "admin@example.com")["token"]
        key = server.api_key(token)
        headers = {"Authorization": f"Bearer {key}"}
        uploaded = upload_text(server.url, key, "zebra.txt", ZEBRA)
        assert wait_processed(server.url, key, uploaded["id"])["status"] == "completed"
        knowledge = httpx.post(
            f"{server.url}/api/v1/knowledge/create", headers=headers, json={"name": "PG"}
        ).json()
        httpx.post(
            f"{server.url}/api/v1/knowledge/{knowledge['id']}/file/add",
            headers=headers,
            json={"file_id": uploaded["id"]},
        ).raise_for_status()

    with psycopg.connect(postgres_url.replace("+psycopg", "")) as connection:
        rows = connection.execute("select id, status from files").fetchall()
        links = connection.execute("select knowledge_id, file_id from knowledge_files").fetchall()
    assert rows == [(uploaded["id"], "completed")]
    assert links == [(knowledge["id"], uploaded["id"])]
    assert not (tmp_path / "server.db").exists()  # nothing went to the SQLite default

    # A new server process on the same database and data dir sees everything.
    with (
        Pipeline(settings, embedder=local_embedder) as pipeline,
        live_server(settings, pipeline) as server,
    ):
        headers = {"Authorization": f"Bearer {key}"}
        files = httpx.get(f"{server.url}/api/v1/knowledge/{knowledge['id']}/files", headers=headers)
        assert [f["id"] for f in files.json()["items"]] == [uploaded["id"]]
        hits = httpx.post(
            f"{server.url}/api/v1/retrieval/query/collection",
            headers=headers,
            json={"collection_names": [knowledge["id"]], "query": "what does Ziggy eat?"},
        ).json()
        assert "7 apples" in hits["documents"][0][0]


def test_signup_races_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    from .test_auth import check_signup_races

    admin_url = postgres_url.replace("+psycopg", "")
    names = iter(range(100))

    def settings_for(data_dir: Path, **values: object) -> ServerSettings:
        database = f"race{next(names)}"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"create database {database}")
        url = postgres_url.rsplit("/", 1)[0] + "/" + database
        return ServerSettings(data_dir=data_dir, database_url=url, **values)

    check_signup_races(settings_for, tmp_path)
