"""Fixtures: a fresh server database, on SQLite and on the throwaway PostgreSQL cluster."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .test_postgres import postgres_url

__all__ = ["database_url", "fresh_postgres_url", "postgres_url"]


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """A new, empty database on the test's PostgreSQL cluster."""
    import psycopg

    name = f"db_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))
