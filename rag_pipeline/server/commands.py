"""``rag serve``, ``rag users create`` and ``rag keys create``: run and set up the server."""

from __future__ import annotations

from typing import Annotated, Any

import typer

users_app = typer.Typer(help="Manage server users (headless setup).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage server API keys (headless setup).", no_args_is_help=True)


def _server_settings() -> Any:
    from pydantic import ValidationError

    from rag_pipeline.server.settings import ServerSettings

    try:
        return ServerSettings()
    except ValidationError as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def _database(settings: Any) -> Any:
    from rag_pipeline.server.db import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(settings.resolved_database_url())


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 3000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the Open WebUI-compatible API (files, knowledge, RAG chat, Ollama proxy)."""
    import uvicorn

    from rag_pipeline.server.app import create_app

    app = create_app(_server_settings())
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@users_app.command("create")
def create_user_command(
    email: Annotated[str, typer.Option(help="the user's email (their login)")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="the password (prompted if omitted)")
    ],
    name: Annotated[str, typer.Option(help="display name")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="make the user an admin")] = False,
) -> None:
    """Create a user; the first user of a server is always an admin."""
    from rag_pipeline.errors import AuthError
    from rag_pipeline.server.auth import create_user

    database = _database(_server_settings())
    try:
        with database.session() as session:
            user = create_user(
                session,
                name=name or email.split("@")[0],
                email=email,
                password=password,
                role="admin" if admin else None,
            )
            typer.echo(f"created {user.role} {user.email} ({user.id})")
    except AuthError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.close()


@keys_app.command("create")
def create_key_command(
    email: Annotated[str, typer.Option(help="the user the key acts as")],
) -> None:
    """Issue an API key for a user and print it (it is stored hashed and shown only once)."""
    from rag_pipeline.server.auth import create_api_key, user_by_email

    database = _database(_server_settings())
    try:
        with database.session() as session:
            user = user_by_email(session, email)
            if user is None:
                typer.echo(f"error: no user with email {email!r}", err=True)
                raise typer.Exit(1)
            typer.echo(create_api_key(session, user.id))
    finally:
        database.close()


def register(app: typer.Typer) -> None:
    """Add the server's commands to the ``rag`` CLI."""
    app.command()(serve)
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")


# -- to move into rag_pipeline.server.auth (the commands hold no SQL of their own) --
