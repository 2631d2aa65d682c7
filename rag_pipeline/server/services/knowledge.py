"""What happens to a knowledge base: created, filled with files, emptied, deleted — and every
copy of a file's vectors in it, which this service alone writes and removes.

The invariant kept here, **listing ⇔ vectors**: when no change is under way, a knowledge
base's collection holds a file's vectors exactly when the file is listed in it (its link
row is COPYING or COPIED with the file completed: all of them; WAITING: none yet, the file
is still processing). Every change that touches both the database and the collection is
ordered so a crash at any moment leaves an intent that ``repair`` (run at each start)
finishes:

- add: link row written first (WAITING, or COPYING when the file is done), then the
  vectors copied, then the row marked COPIED. Repair copies COPYING rows again (the copy
  is idempotent: point ids derive from the content).
- remove: row marked REMOVING (hidden from listings), vectors deleted, row deleted.
- delete a file: file marked DELETING and its rows REMOVING in one commit, then each
  knowledge base's vectors, the uploads' vectors and the original, the row last.
- reset: links deleted and the knowledge base marked RESETTING in one commit, then the
  collection dropped, then READY. Delete: DELETING (hidden), collection dropped, row last.

Within one process a lock serialises these changes (a copy never interleaves with a
removal of the same vectors). Copies start by writing the row, then checking whether the
file is complete, while processing records completion, then copies the waiting rows: so
whichever of "add" and "completed" comes second sees the other, with no lock between them.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from rag_pipeline.errors import ConfigError, PermissionDeniedError
from rag_pipeline.server import failpoints
from rag_pipeline.server.db import (
    COMPLETED,
    COPIED,
    COPYING,
    DELETING,
    FAILED,
    NO_UPDATE_SYNC,
    READY,
    REMOVING,
    RESETTING,
    WAITING,
    Database,
    FileRecord,
    Knowledge,
    KnowledgeFile,
    now,
)
from rag_pipeline.server.db import User as UserRow
from rag_pipeline.server.ownership import owned_file, owned_knowledge, visible
from rag_pipeline.server.scopes import UPLOADS_COLLECTION
from rag_pipeline.store.base import StoredPoint, VectorStore

log = logging.getLogger(__name__)

_COPY_NAMESPACE = uuid.UUID("0f3c7d8e-2b6a-4c1e-9a57-6e2d4b8f1c03")
_COPY_BATCH = 256


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One local file as a knowledge sync manifest lists it."""

    filename: str  # base name, "readme.md"
    path: str  # folder, "docs/api"; "" for the top
    checksum: str  # SHA-256 of the bytes
    size: int


@dataclass(frozen=True, slots=True)
class Repaired:
    """What ``repair`` finished: changes a crash had cut off."""

    knowledge_deleted: int = 0
    knowledge_reset: int = 0
    files_deleted: int = 0
    links_removed: int = 0
    links_copied: int = 0

    def __bool__(self) -> bool:
        return any(astuple(self))


def _knowledge_point_id(file_id: str, point_id: str, payload: dict[str, Any]) -> str:
    """The id of an upload's chunk in a knowledge collection.

    Derived from the file's extracted-text hash and the chunk's place in it, so a
    knowledge base never holds the same content twice: two uploads of one text (two
    files, both still listed) write the same points, and a chat gets each chunk once.
    It also makes a copy idempotent: copying again after a crash rewrites the same points.
    """
    content_hash, index = payload.get("hash"), payload.get("chunk_index")
    if isinstance(content_hash, str) and isinstance(index, int):
        return str(uuid.uuid5(_COPY_NAMESPACE, f"{content_hash}/{index}"))
    return str(uuid.uuid5(_COPY_NAMESPACE, f"{file_id}/{point_id}"))


class KnowledgeService:
    """Knowledge bases, their files, and the vector copies that go with them."""

    def __init__(
        self, database: Database, store: VectorStore, *, users_may_create: bool = False
    ) -> None:
        self.db = database
        self.store = store
        # Open WebUI's USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS: off, only admins create.
        self.users_may_create = users_may_create
        # Serialises this process's changes of links and vectors (see the module docstring).
        self._lock = threading.RLock()
        self._indexed: set[str] = set()

    def create(
        self, user: UserRow, name: str, description: str, meta: dict[str, Any] | None
    ) -> Knowledge:
        """Create an empty knowledge base (non-admins only where the switch allows it)."""
        if user.role != "admin" and not self.users_may_create:
            raise PermissionDeniedError(
                "Only an admin may create knowledge bases here "
                "(USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS=true lets every user)"
            )
        knowledge = Knowledge(
            id=str(uuid.uuid4()), user_id=user.id, name=name, description=description, meta=meta
        )
        with self.db.session() as session:
            session.add(knowledge)
            session.flush()
        return knowledge

    def list(self, user: UserRow) -> list[tuple[Knowledge, UserRow | None, int]]:
        """The knowledge bases this user may see, each with its owner and file count."""
        with self.db.session() as session:
            counts = dict(
                session.execute(
                    select(KnowledgeFile.knowledge_id, func.count())
                    .where(KnowledgeFile.state != REMOVING)
                    .group_by(KnowledgeFile.knowledge_id)
                ).all()
            )
            query = visible(select(Knowledge), Knowledge, user).order_by(
                Knowledge.updated_at.desc(), Knowledge.id
            )
            return [
                (k, session.get(UserRow, k.user_id), counts.get(k.id, 0))
                for k in session.scalars(query)
            ]

    def get(self, user: UserRow, knowledge_id: str) -> Knowledge:
        """One knowledge base this user may see; NotFoundError otherwise."""
        with self.db.session() as session:
            return owned_knowledge(session, user, knowledge_id)

    def with_files(self, user: UserRow, knowledge_id: str) -> tuple[Knowledge, list[Any]]:
        """A knowledge base and its files, newest link first."""
        with self.db.session() as session:
            return owned_knowledge(session, user, knowledge_id), _files_of(session, knowledge_id)

    def files(
        self, user: UserRow, knowledge_id: str, *, skip: int = 0, limit: int | None = None
    ) -> tuple[Knowledge, list[tuple[Any, UserRow]], int]:
        """A knowledge base's files (``limit`` of them from ``skip``; all by default), each
        with its owner, and how many it holds in all."""
        with self.db.session() as session:
            knowledge = owned_knowledge(session, user, knowledge_id)
            total = session.scalar(
                select(func.count()).where(
                    KnowledgeFile.knowledge_id == knowledge_id, KnowledgeFile.state != REMOVING
                )
            )
            owners: dict[str, UserRow] = {}
            files = []
            for record in _files_of(session, knowledge_id, skip=skip, limit=limit):
                if record.user_id not in owners:
                    owner = session.get(UserRow, record.user_id)
                    assert owner is not None  # files cascade with their user
                    owners[record.user_id] = owner
                files.append((record, owners[record.user_id]))
            return knowledge, files, int(total or 0)

    def add(self, user: UserRow, knowledge_id: str, files: Sequence[tuple[str, str]]) -> None:
        """Add files, each ``(file_id, folder path)``: all are checked, then all linked in one
        commit (or none), then copied now or when their processing completes."""
        with self.db.session() as session:
            owned_knowledge(session, user, knowledge_id)
            for file_id, _ in files:
                record = owned_file(session, user, file_id)
                if record.status == FAILED:
                    raise ConfigError(f"File {record.filename} failed to process: {record.error}")
        self._link(knowledge_id, dict(files))
        self._touch(knowledge_id)

    def remove(self, user: UserRow, knowledge_id: str, file_id: str) -> None:
        """Take a file out of a knowledge base (the file itself stays)."""
        with self.db.session() as session:
            owned_knowledge(session, user, knowledge_id)
            owned_file(session, user, file_id)
        self._unlink(knowledge_id, file_id)

    def update(
        self,
        user: UserRow,
        knowledge_id: str,
        name: str,
        description: str,
        meta: dict[str, Any] | None,
    ) -> None:
        """Rename a knowledge base or change its description and meta."""
        with self.db.session() as session:
            knowledge = owned_knowledge(session, user, knowledge_id)
            knowledge.name = name
            knowledge.description = description
            if meta is not None:
                knowledge.meta = meta
            knowledge.updated_at = now()

    def reset(self, user: UserRow, knowledge_id: str) -> None:
        """Take every file out of a knowledge base and empty its collection."""
        self.get(user, knowledge_id)
        with self._lock:
            with self.db.session() as session:
                session.execute(
                    delete(KnowledgeFile).where(KnowledgeFile.knowledge_id == knowledge_id)
                )
                session.execute(
                    update(Knowledge)
                    .where(Knowledge.id == knowledge_id)
                    .values(state=RESETTING, updated_at=now())
                    .execution_options(**NO_UPDATE_SYNC)
                )
            failpoints.reach("knowledge.reset.marked")
            self._finish_reset(knowledge_id)

    def delete(self, user: UserRow, knowledge_id: str) -> None:
        """Delete a knowledge base and its collection; its files stay."""
        self.get(user, knowledge_id)
        with self._lock:
            with self.db.session() as session:
                session.execute(
                    update(Knowledge)
                    .where(Knowledge.id == knowledge_id)
                    .values(state=DELETING)
                    .execution_options(**NO_UPDATE_SYNC)
                )
            failpoints.reach("knowledge.delete.marked")
            self._finish_delete(knowledge_id)

    def sync_diff(
        self, user: UserRow, knowledge_id: str, manifest: Sequence[ManifestEntry]
    ) -> dict[str, Any]:
        """What a client must upload and remove so the knowledge base matches its manifest.

        Keyed by (folder, file name), compared by the SHA-256 of the bytes, as Open WebUI's
        ``sync/diff``. Folders are kept as a path on each file, not as directory objects,
        so ``mkdir``/``rmdir`` are always empty and ``directory_map`` maps nothing.
        """
        with self.db.session() as session:
            owned_knowledge(session, user, knowledge_id)
            rows = session.execute(
                select(FileRecord.id, FileRecord.filename, FileRecord.file_hash, KnowledgeFile.path)
                .join(KnowledgeFile, KnowledgeFile.file_id == FileRecord.id)
                .where(KnowledgeFile.knowledge_id == knowledge_id, KnowledgeFile.state != REMOVING)
                .order_by(KnowledgeFile.created_at, FileRecord.id)
            ).all()
        stored = {(path, name): (file_id, digest) for file_id, name, digest, path in rows}
        added, modified = [], []
        unmodified = 0
        wanted: set[tuple[str, str]] = set()
        for entry in manifest:
            key = (entry.path, entry.filename)
            wanted.add(key)
            if key not in stored:
                added.append({"filename": entry.filename, "path": entry.path})
            elif stored[key][1] != entry.checksum:
                modified.append(
                    {
                        "filename": entry.filename,
                        "path": entry.path,
                        "stale_file_id": stored[key][0],
                    }
                )
            else:
                unmodified += 1
        deleted = [
            {"file_id": file_id, "filename": key[1]}
            for key, (file_id, _) in stored.items()
            if key not in wanted
        ]
        return {
            "added": added,
            "modified": modified,
            "deleted": deleted,
            "mkdir": [],
            "rmdir": [],
            "unmodified_count": unmodified,
            "directory_map": {},
        }

    def sync_cleanup(self, user: UserRow, knowledge_id: str, file_ids: Sequence[str]) -> None:
        """Take stale files out of a knowledge base; delete those no knowledge base holds.

        Vectors go by file id (twins with the same text keep theirs, see ``_finish_removal``),
        not by content hash as in Open WebUI, where two files with equal text lose each
        other's. Each file goes in one step: a file this knowledge base alone holds is
        deleted (which takes it out of here too), not unlinked first and deleted later.
        """
        self.get(user, knowledge_id)
        for file_id in file_ids:
            with self.db.session() as session:
                link = session.get(KnowledgeFile, (knowledge_id, file_id))
                record = session.get(FileRecord, file_id)
                if link is None or link.state == REMOVING or record is None:
                    continue  # only this knowledge base's files are cleaned up
                elsewhere = session.scalar(
                    select(func.count()).where(
                        KnowledgeFile.file_id == file_id,
                        KnowledgeFile.knowledge_id != knowledge_id,
                        KnowledgeFile.state != REMOVING,
                    )
                )
            if not elsewhere and (record.user_id == user.id or user.role == "admin"):
                self.delete_file(file_id)
            else:
                self._unlink(knowledge_id, file_id)

    # -- files everywhere -------------------------------------------------------------

    def delete_file(self, file_id: str) -> None:
        """Delete a file from every knowledge base, its uploads vectors, original and row
        (the caller checked the user may)."""
        with self._lock:
            with self.db.session() as session:
                marked = session.execute(
                    update(FileRecord)
                    .where(FileRecord.id == file_id)
                    .values(status=DELETING, lease_holder=None, lease_expires=None)
                    .execution_options(**NO_UPDATE_SYNC)
                ).rowcount
                session.execute(
                    update(KnowledgeFile)
                    .where(KnowledgeFile.file_id == file_id)
                    .values(state=REMOVING)
                    .execution_options(**NO_UPDATE_SYNC)
                )
            if not marked:
                return
            failpoints.reach("files.delete.marked")
            self._finish_file_deletion(file_id)

    def file_completed(self, file_id: str) -> None:
        """A file's processing completed: copy it into the knowledge bases waiting for it."""
        with self._lock:
            self._settle(file_id)

    def repair(self) -> Repaired:
        """Finish every change a crash cut off (see the module docstring); at each start.

        Every step is idempotent, so a repair cut off by another crash is simply repeated,
        and a replica repairing what another is still doing does it a second time.
        """
        with self._lock:
            with self.db.session() as session:
                deleting = session.scalars(
                    select(Knowledge.id).where(Knowledge.state == DELETING)
                ).all()
                resetting = session.scalars(
                    select(Knowledge.id).where(Knowledge.state == RESETTING)
                ).all()
                files = session.scalars(
                    select(FileRecord.id).where(FileRecord.status == DELETING)
                ).all()
            for knowledge_id in deleting:
                self._finish_delete(knowledge_id)
            for knowledge_id in resetting:
                self._finish_reset(knowledge_id)
            for file_id in files:
                self._finish_file_deletion(file_id)
            with self.db.session() as session:
                removing = session.execute(
                    select(KnowledgeFile.knowledge_id, KnowledgeFile.file_id).where(
                        KnowledgeFile.state == REMOVING
                    )
                ).all()
            for knowledge_id, file_id in removing:
                self._finish_removal(knowledge_id, file_id)
            with self.db.session() as session:
                unsettled = session.scalars(
                    select(KnowledgeFile.file_id)
                    .join(FileRecord, FileRecord.id == KnowledgeFile.file_id)
                    .where(
                        KnowledgeFile.state.in_((WAITING, COPYING)),
                        FileRecord.status == COMPLETED,
                    )
                    .distinct()
                ).all()
            copied = sum(self._settle(file_id) for file_id in unsettled)
        return Repaired(len(deleting), len(resetting), len(files), len(removing), copied)

    # -- the steps --------------------------------------------------------------------

    def _link(self, knowledge_id: str, paths: dict[str, str]) -> None:
        """Put files (id -> folder path) in a knowledge base in one commit; files already
        there stay as they are."""
        with self._lock:
            with self.db.session() as session:
                states = dict(
                    session.execute(
                        select(KnowledgeFile.file_id, KnowledgeFile.state).where(
                            KnowledgeFile.knowledge_id == knowledge_id,
                            KnowledgeFile.file_id.in_(paths),
                        )
                    ).all()
                )
            for file_id, state in states.items():
                if state == REMOVING:  # a removal a crash cut off: finish it first
                    self._finish_removal(knowledge_id, file_id)
            new = [f for f in paths if states.get(f) in (None, REMOVING)]
            with self.db.session() as session:
                done = set(
                    session.scalars(
                        select(FileRecord.id).where(
                            FileRecord.id.in_(new), FileRecord.status == COMPLETED
                        )
                    )
                )
                for file_id in new:
                    state = COPYING if file_id in done else WAITING
                    session.add(
                        KnowledgeFile(
                            knowledge_id=knowledge_id,
                            file_id=file_id,
                            state=state,
                            path=paths[file_id],
                        )
                    )
            if new:
                failpoints.reach("knowledge.add.linked")
            # Copied now if complete, else when processing completes (already-there files
            # a crash left waiting or copying are settled too).
            for file_id in paths:
                self._settle(file_id, knowledge_id)

    def _settle(self, file_id: str, knowledge_id: str | None = None) -> int:
        """Copy a completed file into its WAITING and COPYING links (or one); how many."""
        with self.db.session() as session:
            record = session.get(FileRecord, file_id)
            if record is None or record.status != COMPLETED:
                return 0
            where = [KnowledgeFile.file_id == file_id, KnowledgeFile.state.in_((WAITING, COPYING))]
            if knowledge_id is not None:
                where.append(KnowledgeFile.knowledge_id == knowledge_id)
            targets = session.scalars(select(KnowledgeFile.knowledge_id).where(*where)).all()
            if not targets:
                return 0
            # The intent first: from here a crash leaves COPYING rows that repair copies.
            session.execute(
                update(KnowledgeFile)
                .where(*where)
                .values(state=COPYING)
                .execution_options(**NO_UPDATE_SYNC)
            )
        for target in targets:
            self._copy(file_id, target)
            failpoints.reach("knowledge.copy.done")
            with self.db.session() as session:
                session.execute(
                    update(KnowledgeFile)
                    .where(
                        KnowledgeFile.knowledge_id == target,
                        KnowledgeFile.file_id == file_id,
                        KnowledgeFile.state == COPYING,
                    )
                    .values(state=COPIED)
                    .execution_options(**NO_UPDATE_SYNC)
                )
        return len(targets)

    def _unlink(self, knowledge_id: str, file_id: str) -> None:
        """Take a file out of a knowledge base: hidden at once, vectors, then the row."""
        with self._lock:
            with self.db.session() as session:
                marked = session.execute(
                    update(KnowledgeFile)
                    .where(
                        KnowledgeFile.knowledge_id == knowledge_id,
                        KnowledgeFile.file_id == file_id,
                    )
                    .values(state=REMOVING)
                    .execution_options(**NO_UPDATE_SYNC)
                ).rowcount
            if marked:
                failpoints.reach("knowledge.remove.marked")
            # Without a row too: vectors an older version left behind go as well.
            self._finish_removal(knowledge_id, file_id)

    def _finish_removal(self, knowledge_id: str, file_id: str) -> None:
        self._remove_vectors(file_id, knowledge_id)
        failpoints.reach("knowledge.remove.vectors")
        with self.db.session() as session:
            record = session.get(FileRecord, file_id)
            content_hash = record.content_hash if record is not None else None
            twins = []
            if content_hash is not None:
                # Files with the same text share their points in a knowledge base (see
                # _knowledge_point_id): the points just removed may have been a twin's too.
                twins = session.scalars(
                    select(FileRecord.id)
                    .join(KnowledgeFile, KnowledgeFile.file_id == FileRecord.id)
                    .where(
                        KnowledgeFile.knowledge_id == knowledge_id,
                        KnowledgeFile.state == COPIED,
                        FileRecord.content_hash == content_hash,
                        FileRecord.id != file_id,
                    )
                    .limit(1)
                ).all()
        for twin in twins:
            self._copy(twin, knowledge_id)
        with self.db.session() as session:
            session.execute(
                delete(KnowledgeFile).where(
                    KnowledgeFile.knowledge_id == knowledge_id,
                    KnowledgeFile.file_id == file_id,
                    KnowledgeFile.state == REMOVING,
                )
            )

    def _finish_file_deletion(self, file_id: str) -> None:
        with self.db.session() as session:
            record = session.get(FileRecord, file_id)
            if record is None:
                return
            original = Path(record.path).parent
            knowledge_ids = session.scalars(
                select(KnowledgeFile.knowledge_id).where(KnowledgeFile.file_id == file_id)
            ).all()
        for knowledge_id in knowledge_ids:
            self._finish_removal(knowledge_id, file_id)
        failpoints.reach("files.delete.unlinked")
        self._remove_vectors(file_id, UPLOADS_COLLECTION)
        shutil.rmtree(original, ignore_errors=True)
        failpoints.reach("files.delete.vectors")
        with self.db.session() as session:
            # Links cascade (a link added while the deletion ran has no vectors: the file
            # was not completed for it).
            session.execute(
                delete(FileRecord).where(FileRecord.id == file_id, FileRecord.status == DELETING)
            )

    def _finish_reset(self, knowledge_id: str) -> None:
        self.store.delete_collection(knowledge_id)
        self._indexed.discard(knowledge_id)
        with self.db.session() as session:
            session.execute(
                update(Knowledge)
                .where(Knowledge.id == knowledge_id, Knowledge.state == RESETTING)
                .values(state=READY)
                .execution_options(**NO_UPDATE_SYNC)
            )

    def _finish_delete(self, knowledge_id: str) -> None:
        self.store.delete_collection(knowledge_id)
        self._indexed.discard(knowledge_id)
        failpoints.reach("knowledge.delete.dropped")
        with self.db.session() as session:
            session.execute(delete(Knowledge).where(Knowledge.id == knowledge_id))

    def _copy(self, file_id: str, knowledge_id: str) -> int:
        """Copy a file's stored points (dense, sparse, payload) into a knowledge collection."""
        store = self.store
        described = store.collection_model(UPLOADS_COLLECTION)
        if described is None:
            return 0
        store.ensure_collection(knowledge_id, model=described[0], dimension=described[1])
        if knowledge_id not in self._indexed:
            store.ensure_payload_index(knowledge_id, "file_id")
            self._indexed.add(knowledge_id)
        batch: list[StoredPoint] = []
        copied = 0
        for point_id, payload, vectors in store.scroll_payloads(
            UPLOADS_COLLECTION, None, with_vectors=True, where={"file_id": file_id}
        ):
            payload.pop("key", None)  # the uploads collection's bookkeeping
            batch.append(
                StoredPoint(
                    id=_knowledge_point_id(file_id, point_id, payload),
                    vector=vectors["dense"],
                    payload=payload,
                    sparse=vectors.get("sparse"),
                )
            )
            if len(batch) >= _COPY_BATCH:
                store.upsert(knowledge_id, batch)
                copied += len(batch)
                batch = []
                failpoints.reach("knowledge.copy.batch")
        store.upsert(knowledge_id, batch)
        return copied + len(batch)

    def _remove_vectors(self, file_id: str, collection: str) -> None:
        if self.store.has_collection(collection):
            self.store.delete_where(collection, "file_id", file_id)

    def _touch(self, knowledge_id: str) -> None:
        with self.db.session() as session:
            knowledge = session.get(Knowledge, knowledge_id)
            if knowledge is not None:
                knowledge.updated_at = now()


# What a listing shows of a file: columns, not ORM objects. Loading 30k FileRecords cost
# 750 ms of a 900 ms listing (cProfile); these rows answer the same attribute names.
_LISTED = (
    FileRecord.id,
    FileRecord.user_id,
    FileRecord.filename,
    FileRecord.content_type,
    FileRecord.size,
    FileRecord.file_hash,
    FileRecord.content_hash,
    FileRecord.status,
    FileRecord.error,
    FileRecord.created_at,
    FileRecord.updated_at,
)


def _files_of(
    session: Session, knowledge_id: str, *, skip: int = 0, limit: int | None = None
) -> list[Any]:
    """A knowledge base's files, newest link first, as rows with ``_LISTED``'s columns
    (listings never show the text: loading it made every add read every file's)."""
    return list(
        session.execute(
            select(*_LISTED)
            .join(KnowledgeFile, KnowledgeFile.file_id == FileRecord.id)
            .where(KnowledgeFile.knowledge_id == knowledge_id, KnowledgeFile.state != REMOVING)
            .order_by(KnowledgeFile.created_at.desc(), FileRecord.id)
            .offset(skip)
            .limit(limit)
        )
    )
