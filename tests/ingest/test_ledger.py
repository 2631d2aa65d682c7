"""The ledger: per-source state kept beside a collection, trusted only when it cannot be stale."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from rag_pipeline import Pipeline, Settings
from rag_pipeline.ingest.indexer import _merge_state
from rag_pipeline.ingest.ledger import IdDigest, Ledger
from tests.ingest.test_indexer import (
    KILLABLE_RUN,
    kill_killable,
    run_killable,
    snapshot,
    write_corpus,
)


def ledger_of(pipeline: Pipeline, kb: str = "kb") -> Ledger:
    path = pipeline.store.sidecar(kb, "sources.sqlite")
    assert path is not None
    return Ledger(path)


def ledger_of_folder(data: Path) -> Ledger:
    """The ledger of knowledge base "kb" in a data dir, without opening its store."""
    return Ledger(data / "qdrant-edge" / "kb" / "sources.sqlite")


def plain(state: dict[str, dict[str, Any]]) -> dict[str, tuple]:
    """State per source, comparable: (hashes, sorted ids, chunk counts, quick keys, root)."""
    return {
        source: (
            entry["hashes"],
            sorted(entry["ids"]),
            entry["chunks"],
            entry["stats"],
            entry["root"],
        )
        for source, entry in state.items()
    }


def from_chunks(pipeline: Pipeline, kb: str = "kb") -> dict[str, tuple]:
    """The state as the chunks' payloads give it (what a run reads without a ledger)."""
    state: dict[str, dict[str, Any]] = {}
    fields = ["source", "key", "file_hash", "file_chunks", "file_stat", "root"]
    _merge_state(state, pipeline.store.scroll_payloads(kb, fields))
    return plain(state)


def test_the_ledger_holds_what_the_chunks_say_after_every_kind_of_change(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 6)
    with Pipeline(Settings(data_dir=tmp_path / "data", workers=0), embedder=local_embedder) as p:
        first = p.index(docs, "kb")
        assert len(first.added) == 6
        kept = ledger_of(p).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)
        time.sleep(2.2)  # old enough for quick keys: the next run stores them
        (docs / "doc001.md").write_text("# changed\n\nA new text about tents.\n", "utf-8")
        (docs / "doc002.md").unlink()
        (docs / "new.md").write_text("# new\n\nA file about maps and kayaks.\n", "utf-8")
        os.utime(docs / "doc003.md")  # touched, unchanged: its new key is stored
        second = p.index(docs, "kb")
        assert (second.updated, second.deleted, second.added) == (
            ["doc001.md"],
            ["doc002.md"],
            ["new.md"],
        )
        kept = ledger_of(p).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)
        assert {next(iter(e["stats"])) for e in kept[0].values()} != {None}
        # A second root's files in the same knowledge base are kept apart and listed.
        other = tmp_path / "other"
        other.mkdir()
        for name in ("o1.md", "o2.md"):
            (other / name).write_text(f"# {name}\n\nStoves and ropes, {name}.\n", "utf-8")
        p.index(other, "kb")
        kept = ledger_of(p).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)
        assert {e["root"] for e in kept[0].values()} == {str(docs), str(other)}


def test_a_re_run_with_nothing_changed_trusts_the_ledger_and_leaves_it_as_it_was(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 4)
    time.sleep(2.2)  # old enough for quick keys from the first run on: re-runs are alike
    with Pipeline(Settings(data_dir=tmp_path / "data", workers=0), embedder=local_embedder) as p:
        p.index(docs, "kb")
        path = ledger_of(p).path
        # The state a re-run plans with comes from the ledger: a wrong chunk count there
        # (and only there) is believed, so the file is redone.
        ledger = Ledger(path)
        kept = ledger.load()
        assert kept is not None
        kept[0]["doc000.md"]["chunks"] = {999}
        ledger.save(*kept)
        again = p.index(docs, "kb")
        assert again.updated == ["doc000.md"] and len(again.skipped) == 3
        written = path.stat().st_mtime_ns
        third = p.index(docs, "kb")
        assert len(third.skipped) == 4 and third.chunks_added == 0
        assert path.stat().st_mtime_ns == written  # nothing changed: not rewritten
        # --checksum takes nothing on trust: the ledger is not read either.
        kept = Ledger(path).load()
        assert kept is not None
        kept[0]["doc001.md"]["hashes"] = {"not-its-hash"}
        Ledger(path).save(*kept)
        checked = p.index(docs, "kb", checksum=True)
        assert len(checked.skipped) == 4
        kept = Ledger(path).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)


def test_a_write_the_ledger_was_not_told_of_is_seen(tmp_path: Path, local_embedder) -> None:
    """A server deleting a file's chunks, or an older version writing, goes round the
    ledger: its ids no longer match the collection's, so the chunks are read instead."""
    docs = write_corpus(tmp_path / "docs", 4)
    with Pipeline(Settings(data_dir=tmp_path / "data", workers=0), embedder=local_embedder) as p:
        p.index(docs, "kb")
        assert ledger_of(p).load() is not None
        p.store.delete_where("kb", "source", "doc002.md")
        again = p.index(docs, "kb")
        assert again.updated == ["doc002.md"] or again.added == ["doc002.md"]
        assert len(again.skipped) == 3
        kept = ledger_of(p).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)


def test_a_row_whose_ids_are_wrong_is_found_by_the_digest(tmp_path: Path, local_embedder) -> None:
    """The digest saved is of the rows' own ids: a row kept wrong no longer matches the
    collection's ids, and the next run reads the chunks."""
    docs = write_corpus(tmp_path / "docs", 3)
    with Pipeline(Settings(data_dir=tmp_path / "data", workers=0), embedder=local_embedder) as p:
        p.index(docs, "kb")
        path = ledger_of(p).path
        kept = Ledger(path).load()
        assert kept is not None
        state = kept[0]
        assert str(IdDigest(i for e in state.values() for i in e["ids"])) == kept[1]
        state["doc000.md"]["ids"] = list(state["doc000.md"]["ids"])[1:]
        state["doc000.md"]["chunks"] = {len(state["doc000.md"]["ids"])}
        Ledger(path).save(state, str(IdDigest(i for e in state.values() for i in e["ids"])))
        again = p.index(docs, "kb")
        # Believed, the row would make doc000.md look whole and leave a chunk unlisted.
        assert len(again.skipped) == 3 and again.chunks_added == 0
        kept = Ledger(path).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)


def test_the_digest_follows_adds_and_removes_in_any_order() -> None:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{i}")) for i in range(50)] + ["7", "x y"]
    whole = IdDigest(ids)
    assert str(IdDigest(reversed(ids))) == str(whole)
    partial = IdDigest(ids[:30])
    partial.add(ids[30:])
    assert str(partial) == str(whole)
    partial.remove(ids[:5])
    assert str(partial) == str(IdDigest(ids[5:])) != str(whole)
    assert str(IdDigest.parse(str(whole))) == str(whole)
    assert str(IdDigest([*ids[:-1], "x z"])) != str(whole)


def test_a_run_marks_the_ledger_dirty_before_it_writes(tmp_path: Path, local_embedder) -> None:
    docs = write_corpus(tmp_path / "docs", 3)
    with Pipeline(Settings(data_dir=tmp_path / "data", workers=0), embedder=local_embedder) as p:
        p.index(docs, "kb")
        path = ledger_of(p).path
        assert Ledger(path).load() is not None
        (docs / "doc000.md").write_text("# changed\n\nsomething else\n", "utf-8")
        (docs / "doc001.md").write_text("# changed too\n\nand more\n", "utf-8")
        seen: list[object] = []

        def progress(source: str, status: str) -> None:
            # Heard after a source's chunks are stored: the ledger is not trusted by then.
            if status == "updated":
                seen.append(Ledger(path).load())

        p.index(docs, "kb", progress=progress)
        assert len(seen) == 2 and seen == [None, None]
        assert Ledger(path).load() is not None  # clean again at the end
        # A run that does not know every source (no prune) leaves it dirty.
        (docs / "doc002.md").write_text("# changed three\n\nagain\n", "utf-8")
        p.index(docs / "doc002.md", "kb", prune=False)
        assert Ledger(path).load() is None
        healed = p.index(docs, "kb")
        assert len(healed.skipped) == 3
        kept = Ledger(path).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)


def older_ledger(path: Path) -> None:
    """A clean ledger of an earlier shape (another version's): rows without counts."""
    path.unlink()
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('state', 'clean'), ('version', '1');"
            "CREATE TABLE sources (identity TEXT PRIMARY KEY, root TEXT, hash TEXT,"
            " chunks INTEGER, stat TEXT, ids TEXT NOT NULL);"
        )
    connection.close()


@pytest.mark.parametrize("damage", [b"not a database at all" * 100, b"", older_ledger])
def test_a_damaged_or_older_ledger_is_read_past_and_written_anew(
    tmp_path: Path, local_embedder, damage: Any
) -> None:
    docs = write_corpus(tmp_path / "docs", 3)
    with Pipeline(Settings(data_dir=tmp_path / "data", workers=0), embedder=local_embedder) as p:
        p.index(docs, "kb")
        path = ledger_of(p).path
        if callable(damage):
            damage(path)
        else:
            path.write_bytes(damage)
        (docs / "doc001.md").write_text("# changed\n\nnew words\n", "utf-8")
        again = p.index(docs, "kb")
        assert again.updated == ["doc001.md"] and len(again.skipped) == 2
        kept = Ledger(path).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)


def test_the_ledger_goes_with_its_collection(tmp_path: Path, local_embedder) -> None:
    docs = write_corpus(tmp_path / "docs", 2)
    with Pipeline(Settings(data_dir=tmp_path / "data", workers=0), embedder=local_embedder) as p:
        p.index(docs, "kb")
        path = ledger_of(p).path
        assert path.exists()
        p.store.delete_collection("kb")
        assert not path.exists()
        assert p.store.sidecar("kb", "sources.sqlite") is None
        again = p.index(docs, "kb")
        assert len(again.added) == 2
        kept = ledger_of(p).load()
        assert kept is not None and plain(kept[0]) == from_chunks(p)


def test_a_killed_run_leaves_a_ledger_the_next_run_does_not_trust(tmp_path: Path) -> None:
    """Killed mid-run over a knowledge base that has a clean ledger: the next run reads
    the chunks, finishes what was left, and ends with the points and ledger of a clean
    run."""
    docs = write_corpus(tmp_path / "docs", 40)
    runner = tmp_path / "run.py"
    runner.write_text(KILLABLE_RUN)
    crashed = tmp_path / "crashed"
    assert run_killable(runner, docs, crashed)[:2] == ["done", "40"]
    assert ledger_of_folder(crashed).load() is not None
    for i in range(40):  # every file changes: the next run rewrites them all
        path = docs / f"doc{i:03d}.md"
        path.write_text(path.read_text("utf-8") + f"\nA later line {i}.\n", "utf-8")
    assert kill_killable(runner, docs, crashed, "updated", 3) >= 3
    assert ledger_of_folder(crashed).load() is None  # dirty: the run wrote, then died
    resumed = run_killable(runner, docs, crashed)
    assert resumed[0] == "done" and int(resumed[2]) >= 3  # what was written stays
    assert 0 < int(resumed[3]) < 40  # the rest is done now
    clean = tmp_path / "clean"
    run_killable(runner, docs, clean)
    with Pipeline(Settings(data_dir=crashed)) as a, Pipeline(Settings(data_dir=clean)) as b:
        after_crash, after_clean = snapshot(a, "kb"), snapshot(b, "kb")
        assert {k: v[0] for k, v in after_crash.items()} == {
            k: v[0] for k, v in after_clean.items()
        }
        kept = ledger_of(a).load()
        assert kept is not None and plain(kept[0]) == from_chunks(a)
