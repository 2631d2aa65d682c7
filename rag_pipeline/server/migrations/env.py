"""Alembic's environment: migrations run on the connection ``migrations.upgrade`` hands over.

To write a new revision during development, point an alembic.ini's ``script_location`` at
this folder and pass a database at head: ``alembic -x url=sqlite:///dev.db revision
--autogenerate -m "what changes"``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from rag_pipeline.server.db import Base

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("give a database URL: alembic -x url=… (the server needs none)")
    with create_engine(url).connect() as own:
        context.configure(connection=own, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
