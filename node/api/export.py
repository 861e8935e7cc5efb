"""Streamed exports: CSV or a JSON array, written row by row as the rows are read.

Nothing is buffered beyond one chunk, so exporting a long history holds no more memory than a
page; the event loop gets control back between chunks, so block production and other requests
go on while a large export streams.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from enum import StrEnum
from typing import Any

from fastapi.responses import StreamingResponse

_CHUNK_ROWS = 200


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _csv_lines(rows: Iterable[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_csv_value(row.get(column)) for column in columns])
        if count % _CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    chunk = ["["]
    for count, row in enumerate(rows):
        chunk.append(("," if count else "") + "\n" + json.dumps(row, separators=(",", ":")))
        if len(chunk) >= _CHUNK_ROWS:
            yield "".join(chunk)
            chunk = []
    chunk.append("\n]\n")
    yield "".join(chunk)


async def _paced(lines: Iterator[str]) -> AsyncIterator[bytes]:
    for text in lines:
        yield text.encode()
        await asyncio.sleep(0)


def stream(
    rows: Iterable[dict[str, Any]], columns: list[str], export_format: ExportFormat, name: str
) -> StreamingResponse:
    """`rows` as a download named `name` (.csv or .json)."""
    if export_format is ExportFormat.CSV:
        lines, media = _csv_lines(rows, columns), "text/csv"
    else:
        lines, media = _json_lines(rows), "application/json"
    return StreamingResponse(
        _paced(lines),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{export_format.value}"'},
    )
