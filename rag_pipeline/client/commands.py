"""``rag push``: upload folders into a knowledge base on a remote Open WebUI-compatible server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rag_pipeline._cli_output import echo_json, fail, finish, progress_bar, wants_progress


def push(
    paths: Annotated[list[Path], typer.Argument(help="folders or files to push")],
    server: Annotated[str, typer.Option("--server", help="server base URL")],
    knowledge: Annotated[str, typer.Option("--knowledge", "-k", help="knowledge base name")],
    api_key: Annotated[
        Optional[str], typer.Option("--api-key", envvar="RAG_API_KEY", help="an sk- API key")
    ] = None,
    email: Annotated[Optional[str], typer.Option(help="sign in with this email instead")] = None,
    password: Annotated[
        Optional[str], typer.Option(envvar="RAG_PASSWORD", help="password for --email")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for processing")] = 1800.0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Upload files into a remote knowledge base, skipping content it already holds."""
    from rag_pipeline.client._client import RagClient
    from rag_pipeline.client._push import local_files
    from rag_pipeline.client._push import push as run_push
    from rag_pipeline.errors import RagError

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or folder: {', '.join(missing)}")
    try:
        with RagClient(server, api_key, email=email, password=password) as client:
            if wants_progress(as_json):
                report = _push_with_progress(client, paths, knowledge, timeout, local_files)
            else:
                report = run_push(client, paths, knowledge, timeout=timeout)
    except RagError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        echo_json(report.to_dict())
    else:
        files = report.to_dict()["files"]
        typer.echo(
            f"{report.knowledge} ({report.knowledge_id}): {files['added']} added, "
            f"{files['skipped']} skipped, {files['uploaded']} uploaded, "
            f"{files['failed']} failed in {report.seconds:.1f} s"
        )
        for error in report.errors:
            typer.echo(f"failed {error['path']}: {error['error']}")
    raise finish(report.ok)


def _push_with_progress(
    client: Any, paths: list[Path], knowledge: str, timeout: float, local_files: Any
) -> Any:
    from rag_pipeline.client._push import push as run_push

    with progress_bar("pushing", total=len(local_files(paths))) as bar:

        def step(name: str, status: str) -> None:
            # A file counts once: when skipped, added or failed (uploads are halfway).
            bar.advance(f"{status}: {name}", 0 if status == "uploaded" else 1)

        return run_push(client, paths, knowledge, progress=step, timeout=timeout)


def register(app: typer.Typer) -> None:
    """Add ``rag push`` to the ``rag`` CLI."""
    app.command()(push)
