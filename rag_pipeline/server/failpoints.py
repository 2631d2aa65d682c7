"""Named crash points in the server's multi-step changes, for crash tests.

``RAG_FAILPOINT=knowledge.copy.batch`` makes a server SIGKILL itself the first time a
request reaches that point (``name:3``: the third time), so a test can stop a real server
exactly between two steps of a change (the copy of a file's vectors into a knowledge base,
say) and check what the next start makes of it. Points count only once the server has
started (``arm``): the repairs a start runs are tried by kills at random moments instead.
A hand-written hook (as SQLite's and TiKV's fail points) because the steps are ours: no
library knows where they are. Unset (always, outside tests), a point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "RAG_FAILPOINT"

# Every point, in the order the changes reach them (tests iterate over this list).
POINTS = (
    "knowledge.add.linked",  # link row committed (waiting/copying), no vector copied yet
    "knowledge.copy.batch",  # one batch of a file's vectors upserted into the collection
    "knowledge.copy.done",  # every vector copied, link not yet marked copied
    "knowledge.remove.marked",  # link marked removing, vectors still there
    "knowledge.remove.vectors",  # vectors deleted, link row not yet deleted
    "files.delete.marked",  # file marked deleting, its links removing
    "files.delete.unlinked",  # out of every knowledge base, uploads vectors still there
    "files.delete.vectors",  # uploads vectors and original deleted, row still there
    "knowledge.reset.marked",  # knowledge resetting, links deleted, collection still there
    "knowledge.delete.marked",  # knowledge deleting, collection still there
    "knowledge.delete.dropped",  # collection dropped, row still there
    "processor.completed",  # a file's completion committed, its waiting links not copied
)

_armed = threading.Event()
_lock = threading.Lock()
_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    name, _, count = value.partition(":")
    return name, int(count or 1)


def arm() -> None:
    """Let the points fire from now on (the server has finished starting)."""
    _armed.set()


def reach(name: str) -> None:
    """Mark that a change reached point ``name``; die here if the environment asks to."""
    assert name in POINTS, name
    if not _armed.is_set():
        return
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] == target[1]:
            os.kill(os.getpid(), signal.SIGKILL)
