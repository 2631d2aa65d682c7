"""The ledger: one row per source a collection holds, kept beside it for re-runs.

A re-run of ``rag index DIR`` needs, per file, what the last run stored: its fingerprint,
its chunk count, its quick key, the root it was indexed from and its point ids. Read from
the chunks themselves that means every chunk's payload, text included: at 100k files
(185k chunks, ~560 MB of payload) 3.5-4.7 s in a new process, most of the re-run
(benchmarks/RESULTS.md, "Re-runs of 100k files"). The ledger holds the same state as
100k small rows in an SQLite file in the collection's folder.

It is a copy, so it is trusted only when it cannot be stale (our own idea; Git's index is
the model: a cache of the tree's state, checked cheaply against it):
- a run marks it dirty (committed) before its first write to the collection, and marks
  it clean, with the rows it changed, only after the run's writes are flushed; a run
  that crashes, or one that does not know every source (a server's upload,
  ``prune=False``), leaves it dirty;
- it is trusted only if the digest of the collection's point ids (a scroll without
  payloads: 0.6 s at 185k points) is the digest of the ids its rows list, so a write it
  was not told of (a server deleting a file, an older version of this library) or a row
  kept wrong is seen, and the state is read from the chunks as before and the ledger
  written again.
A chunk's id is derived from its source, position and text (``chunking.splitter``), so a
changed chunk is a changed id.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

log = logging.getLogger(__name__)

# Bumped when the rows change shape: a ledger of another version is not read.
VERSION = "3"
_MASK = (1 << 128) - 1
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
# Made anew by every save, so a ledger of another version is replaced, never misread.
_SOURCES = """
CREATE TABLE sources (
    identity TEXT PRIMARY KEY,
    root TEXT,
    hash TEXT,
    chunks INTEGER,
    stat TEXT,
    count INTEGER NOT NULL,
    ids TEXT NOT NULL
)
"""


class IdDigest:
    """A digest of a set of point ids that a change updates without the rest: their
    number and the sum of their 128-bit values (a UUID's own; any other id's BLAKE2b).

    Saved with the ledger from its own rows' ids and compared, at the next run, with the
    digest of the ids the collection holds: a row whose ids are wrong, or a write the
    ledger was not told of, makes them differ. A sum, not a hash of the sorted ids, so a
    run that changes 10 files of 100k updates it by those files alone.
    """

    __slots__ = ("count", "total")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self.count = 0
        self.total = 0
        self.add(ids)

    @staticmethod
    def _value(point_id: str) -> int:
        if len(point_id) == 36:
            try:
                return int(point_id.replace("-", ""), 16)
            except ValueError:
                pass
        return int.from_bytes(hashlib.blake2b(point_id.encode(), digest_size=16).digest())

    def add(self, ids: Iterable[str]) -> None:
        for point_id in ids:
            self.count += 1
            self.total = (self.total + self._value(point_id)) & _MASK

    def remove(self, ids: Iterable[str]) -> None:
        for point_id in ids:
            self.count -= 1
            self.total = (self.total - self._value(point_id)) & _MASK

    def __str__(self) -> str:
        return f"{self.count}:{self.total:032x}"

    @classmethod
    def parse(cls, text: str) -> IdDigest:
        """The digest ``str`` gave."""
        digest = cls()
        count, total = text.split(":")
        digest.count, digest.total = int(count), int(total, 16)
        return digest


class StoredIds(Sequence[str]):
    """A source's point ids as the ledger holds them, split only when used: a re-run
    that changes nothing needs only their number (splitting all 185k cost 0.56 s)."""

    __slots__ = ("_count", "_ids", "_text")

    def __init__(self, text: str, count: int) -> None:
        self._text = text
        self._count = count
        self._ids: list[str] | None = None

    def _list(self) -> list[str]:
        if self._ids is None:
            self._ids = self._text.split()
        return self._ids

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._list()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())


def _single(values: set[Any]) -> Any:
    """A set's one value; None for a mix (a run cut off mid-file: the file is done again)."""
    return next(iter(values)) if len(values) == 1 else None


class Ledger:
    """The per-source state of one collection, in an SQLite file beside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._dirty = False  # marked dirty by this object since it last saved

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute(_META)
        return connection

    def load(self) -> tuple[dict[str, dict[str, Any]], str] | None:
        """The sources' state and the digest of the point ids it lists (``IdDigest``),
        or None: no ledger, a dirty or unreadable one."""
        if not self.path.exists():
            return None
        try:
            connection = self._connect()
            try:
                meta = dict(connection.execute("SELECT key, value FROM meta"))
                if meta.get("state") != "clean" or meta.get("version") != VERSION:
                    return None
                rows = connection.execute(
                    "SELECT identity, root, hash, chunks, stat, count, ids FROM sources"
                )
                state = {
                    identity: {
                        "hashes": {file_hash},
                        "ids": StoredIds(ids, count),
                        "chunks": {chunks},
                        "stats": {stat},
                        "root": root,
                    }
                    for identity, root, file_hash, chunks, stat, count, ids in rows
                }
                return state, meta["ids"]
            finally:
                connection.close()
        except sqlite3.Error as exc:  # a damaged file is only a cache: read the chunks
            log.warning("ignoring the source ledger %s: %s", self.path, exc)
            return None

    def mark_dirty(self) -> None:
        """Record, durably, that the collection is changing (before the first write)."""
        if self._dirty or not self.path.exists():
            return
        try:
            connection = self._connect()
            try:
                connection.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('state', 'dirty')"
                )
            finally:
                connection.close()
        except sqlite3.Error:
            # Unwritable: it must not be trusted again, so it goes (it is only a cache).
            self.path.unlink(missing_ok=True)
        self._dirty = True

    def save(
        self,
        state: Mapping[str, Mapping[str, Any]],
        digest: str,
        *,
        changed: Iterable[str] | None = None,
        removed: Iterable[str] = (),
    ) -> None:
        """Write ``state`` (whose point ids have the digest ``digest``) and mark the ledger
        clean, in one transaction: every row, or with ``changed`` only the rows of those
        sources (and ``removed`` ones deleted) over a ledger that was clean when the run
        read it."""
        names: Iterable[str] = state if changed is None else changed
        rows: Iterable[tuple[Any, ...]] = (
            (
                identity,
                item.get("root"),
                _single(item["hashes"]),
                _single(item["chunks"]),
                _single(item["stats"]),
                len(item["ids"]),
                " ".join(item["ids"]),
            )
            for identity in names
            if (item := state.get(identity)) is not None
        )
        try:
            connection = self._connect()
        except sqlite3.Error:
            # Not a database (damaged, or something else's file): start a new one.
            self.path.unlink(missing_ok=True)
            try:
                connection = self._connect()
            except sqlite3.Error as exc:
                log.warning("cannot write the source ledger %s: %s", self.path, exc)
                return
        try:
            connection.execute("BEGIN IMMEDIATE")
            if changed is None:
                connection.execute("DROP TABLE IF EXISTS sources")
                connection.execute(_SOURCES)
            connection.executemany(
                "DELETE FROM sources WHERE identity = ?", ((r,) for r in removed)
            )
            connection.executemany(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            connection.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("state", "clean"), ("version", VERSION), ("ids", digest)],
            )
            connection.execute("COMMIT")
            self._dirty = False
        except sqlite3.Error as exc:
            log.warning("cannot write the source ledger %s: %s", self.path, exc)
            connection.close()
            self.path.unlink(missing_ok=True)
            return
        connection.close()

    def discard(self) -> None:
        """Forget the ledger (its collection changed in a way it cannot follow)."""
        self.path.unlink(missing_ok=True)
