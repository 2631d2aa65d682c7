"""Alembic migrations of the server's metadata, applied by ``Database`` when a server starts.

The scripts live beside this module (``env.py``, ``versions/``) and are configured here in
code, so a server needs no ``alembic.ini``. Every start takes a lock first (a PostgreSQL
advisory lock; SQLite's write lock), so replicas starting together upgrade once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rag_pipeline import __version__
from rag_pipeline.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

SCRIPTS = Path(__file__).resolve().parent
# Any constant shared by every replica; "rag-pipeline schema" as two int4s.
_ADVISORY_LOCK = (0x7261672D, 0x73636865)


def _config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for our scripts, handing over ``connection`` to env.py."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this rag-pipeline knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the baseline always exists
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a new database or one from before Alembic."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the head revision, or refuse one that a newer version upgraded.

    A database made before migrations (tables, no ``alembic_version``) runs the baseline,
    which creates only what it lacks and adds what older versions did not have.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config())
    known = {script.revision for script in scripts.walk_revisions()}
    with engine.connect() as connection:
        _lock(connection)
        current = MigrationContext.configure(connection).get_current_heads()
        unknown = [revision for revision in current if revision not in known]
        if unknown:
            connection.rollback()
            where = engine.url.render_as_string(hide_password=True)
            raise ConfigError(
                f"the database {where} is at schema revision {', '.join(unknown)}, which "
                f"rag-pipeline {__version__} does not know: a newer rag-pipeline has upgraded "
                "it. Upgrade rag-pipeline on this server to the version the other servers run "
                "(pip install -U rag-pipeline); the database cannot be used by an older one."
            )
        if set(current) != {scripts.get_current_head()}:
            command.upgrade(_config(connection), "head")
        connection.commit()


def _lock(connection: Connection) -> None:
    """Hold the migration lock until the connection's transaction ends."""
    name = connection.dialect.name
    if name == "postgresql":
        from sqlalchemy import text

        connection.execute(
            text("SELECT pg_advisory_xact_lock(:a, :b)"),
            {"a": _ADVISORY_LOCK[0], "b": _ADVISORY_LOCK[1]},
        )
    elif name == "sqlite":
        # The write lock up front: a second process waits (busy timeout) instead of racing
        # to create the same tables, and the DDL joins the transaction (pysqlite would
        # otherwise run each DDL statement on its own).
        connection.exec_driver_sql("BEGIN IMMEDIATE")
