"""Open WebUI's paging of long listings: ``page`` (from 1) and ``limit``, with ``total``.

Open WebUI pages every listing that grows with the data (its knowledge base's files by 30,
its files by 50) and answers an empty page past the end. Without ``page`` and ``limit``
we list everything, as older Open WebUI did and our older clients read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# Open WebUI's page sizes (PAGE_ITEM_COUNT of its knowledge router, PAGE_SIZE of files').
KNOWLEDGE_FILES_PAGE = 30
FILES_PAGE = 50
MAX_PAGE = 10_000

PageParam = Annotated[int | None, Query(ge=1, description="page number, from 1")]
LimitParam = Annotated[
    int | None, Query(ge=1, le=MAX_PAGE, description="items a page (default: Open WebUI's)")
]


def window(page: int | None, limit: int | None, default: int) -> tuple[int, int | None]:
    """(rows to skip, rows to return; None: all) for a listing paged by ``default``."""
    if page is None and limit is None:
        return 0, None
    size = limit or default
    return ((page or 1) - 1) * size, size
