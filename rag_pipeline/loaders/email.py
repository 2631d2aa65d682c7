"""E-mail: ``.eml`` through the standard library, Outlook ``.msg`` through extract-msg."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from rag_pipeline.loaders.text import normalize_newlines
from rag_pipeline.types import Document


def load_eml(path: Path, source: str) -> list[Document]:
    """Load an e-mail as one Document: its body (plain text preferred) and text attachments."""
    # policy.default makes the parser return an EmailMessage, which has get_body().
    message = cast(
        EmailMessage, email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    )
    body_part = message.get_body(preferencelist=("plain", "html"))
    parts = []
    is_markdown = False
    if body_part is not None:
        body = _part_text(body_part)
        if body_part.get_content_subtype() == "html":
            from rag_pipeline.loaders.html import html_to_markdown

            body, is_markdown = html_to_markdown(body), True
        parts.append(body)
    for attachment in message.iter_attachments():
        if attachment.get_content_maintype() == "text" and attachment.get_content_subtype() in (
            "plain",
            "markdown",
            "csv",
        ):
            parts.append(_part_text(attachment))
    text = "\n\n".join(normalize_newlines(part) for part in parts if part.strip())
    metadata = _header_metadata(message.get("subject"), message.get("from"), message.get("date"))
    return [Document(text=text, metadata=metadata, markdown=is_markdown)]


def load_msg(path: Path, source: str) -> list[Document]:
    """Load an Outlook message as one Document of its plain-text body."""
    import extract_msg

    message = extract_msg.openMsg(str(path))
    try:
        body = message.body or ""
        is_markdown = False
        if not body.strip() and message.htmlBody:
            from rag_pipeline.loaders.html import decode_html, html_to_markdown

            body, is_markdown = html_to_markdown(decode_html(message.htmlBody)), True
        date = message.date.isoformat() if message.date else None
        metadata = _header_metadata(message.subject, message.sender, date)
    finally:
        message.close()
    return [Document(text=normalize_newlines(body), metadata=metadata, markdown=is_markdown)]


def _part_text(part: EmailMessage) -> str:
    """Return a MIME part's text, tolerating a wrong or missing charset."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else ""


def _header_metadata(subject: Any, sender: Any, date: Any) -> dict[str, Any]:
    """Return the subject (also the title), sender and date that are present."""
    metadata: dict[str, Any] = {}
    if subject and str(subject).strip():
        metadata["title"] = metadata["subject"] = " ".join(str(subject).split())
    if sender:
        metadata["from"] = str(sender)
    if date:
        metadata["date"] = str(date)
    return metadata
