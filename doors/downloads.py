"""Streamed downloads shared by the API and the pages."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from flask import Response

from ledger.journal import export as journal_export


def export_download(books: Any) -> Response:
    """The journal export as a streamed download (the API's and the auditor page's): written to a
    temporary file with constant memory, sent in chunks, then removed."""
    fd, path = tempfile.mkstemp(prefix="goldbean-export-", suffix=".jsonl")
    os.close(fd)
    try:
        summary = journal_export.export_journal(books, path)
    except BaseException:
        os.unlink(path)
        raise

    def stream():  # the file, in chunks, then gone
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(256 * 1024):
                    yield chunk
        finally:
            os.unlink(path)

    stamp = books.now().strftime("%Y%m%dT%H%M%SZ")
    resp = Response(stream(), content_type="application/x-ndjson")
    resp.headers["Content-Disposition"] = f'attachment; filename="goldbean-journal-{stamp}.jsonl"'
    resp.headers["X-Export-Sha256"] = summary.sha256
    if summary.read is not None:  # where and as of when the export read the books (a standby lags)
        resp.headers["X-Read-From"] = summary.read.source
        resp.headers["X-Read-As-Of"] = summary.read.as_of.isoformat() if summary.read.as_of else ""
    resp.headers["Content-Length"] = str(os.path.getsize(path))
    return resp


def my_data_download(books: Any, actor: Any, fmt: str = "json") -> Response:
    """A person's own data (``ledger.privacy``) as a JSON or PDF attachment, for the API and the pages."""
    import json

    from ledger import privacy

    data = privacy.my_data(books, actor)
    stamp = books.now().strftime("%Y%m%d")
    if fmt == "pdf":
        resp = Response(privacy.my_data_pdf(data), content_type="application/pdf")
        name = f"goldbean-my-data-{stamp}.pdf"
    else:
        body = json.dumps(data, ensure_ascii=False, indent=1)
        resp = Response(body, content_type="application/json; charset=utf-8")
        name = f"goldbean-my-data-{stamp}.json"
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "no-store"
    return resp
