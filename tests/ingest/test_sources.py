"""Source items: the quick key a run stores to skip reading an unchanged file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag_pipeline import Document, SourceItem
from rag_pipeline.ingest.sources import RACY_NS


def test_the_quick_key_is_size_times_and_inode_once_the_file_has_settled(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("twelve bytes")
    info = path.stat()
    item = SourceItem.from_file(path, "a.txt")
    settled = max(info.st_mtime_ns, info.st_ctime_ns) + RACY_NS + 1
    assert item.quick_key(now_ns=settled) == (
        f"12:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"
    )
    # Changed within the last RACY_NS: a change in the same clock tick would not show.
    assert item.quick_key(now_ns=settled - 2) is None
    # Appending changes the size and the times.
    with path.open("a") as handle:
        handle.write("!")
    assert item.quick_key(now_ns=settled + 10 * RACY_NS) not in (None, item.quick_key(settled))


def test_no_quick_key_where_there_is_no_file_to_trust(tmp_path: Path) -> None:
    later = 2**62
    assert SourceItem.from_documents("t.txt", [Document(text="x")]).quick_key(later) is None
    path = tmp_path / "a.txt"
    path.write_text("x")
    # A fingerprint given by the caller (a server's upload) is what decides.
    assert SourceItem.from_file(path, "a.txt", fingerprint="f").quick_key(later) is None
    assert SourceItem.from_file(tmp_path / "gone.txt").quick_key(later) is None
    assert SourceItem.from_file(tmp_path).quick_key(later) is None  # a folder


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_gets_no_quick_key(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    assert SourceItem.from_file(tmp_path / "pipe.txt").quick_key(2**62) is None
