"""Predict inputs (plain text lines, CSV or JSON Lines, from a file or standard input) and outputs
(rows as JSON Lines or CSV, to a file or standard output)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TextIO

import pandas as pd

InputFormat = Literal["text", "csv", "jsonl"]
OutputFormat = Literal["jsonl", "csv"]


def _name(path: str) -> str:
    return "standard input" if path == "-" else path


def read_raw(path: str) -> str:
    """The whole input as text: ``path``, or standard input for ``-``."""
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ValueError(f"input file {path} not found; check --input") from None
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{_name(path)} is not UTF-8 text ({e.reason} at byte {e.start})"
        ) from None


def input_format(path: str, given: str | None) -> InputFormat:
    """``given``, else from the file name: ``.csv`` -> csv, ``.jsonl`` -> jsonl, else text."""
    if given:
        return given  # type: ignore[return-value]
    name = path.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    return "jsonl" if name.endswith((".jsonl", ".ndjson")) else "text"


def read_table(path: str) -> pd.DataFrame:
    """A CSV file (or standard input) as a DataFrame; an unreadable or empty file is an error."""
    text = read_raw(path)
    try:
        frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ValueError(f"{_name(path)} is empty: expected a CSV with a header row") from None
    except pd.errors.ParserError as e:
        raise ValueError(
            f"{_name(path)} is not a readable CSV: {' '.join(str(e).split())}"
        ) from None
    return frame


def read_texts(path: str, fmt: InputFormat, what: str, column: str = "text") -> list[str]:
    """One ``what`` per line (text), or the ``column`` of each CSV row / JSON Lines record.

    Every problem (an empty line or cell, a missing column, a malformed record, no input at all)
    raises a one-line ``ValueError`` naming the line or row.
    """
    name = _name(path)
    if fmt == "csv":
        frame = read_table(path)
        if column not in frame.columns:
            raise ValueError(f"{name} has no {column!r} column; columns: {list(frame.columns)}")
        texts = ["" if pd.isna(t) else str(t) for t in frame[column]]
        where = "row {} of column " + repr(column)
    else:
        lines = _lines(read_raw(path))
        if fmt == "jsonl":
            texts = [_record_text(line, i, name, column) for i, line in enumerate(lines, 1)]
        else:
            texts = lines
        where = "line {}"
    if not texts:
        raise ValueError(f"{name} is empty: expected one {what} per line")
    for i, text in enumerate(texts, 1):
        if not text.strip():
            raise ValueError(f"{name}: {where.format(i)} is empty; give one {what} per line")
    return texts


def _lines(text: str) -> list[str]:
    """Lines ended by ``\n`` (``\r\n`` too), the last one with or without it. Only these end a
    line: reviews may hold form feeds or Unicode line separators, which ``str.splitlines`` would
    take for line ends."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _record_text(line: str, lineno: int, name: str, column: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{name}: line {lineno} is not JSON ({e.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get(column), str):
        raise ValueError(f"{name}: line {lineno} has no {column!r} string field")
    return record[column]


def write_rows(rows: Iterable[dict[str, Any]], path: str, fmt: OutputFormat) -> int:
    """Write ``rows`` to ``path`` (standard output for ``-``); returns how many were written.

    CSV cells holding lists are JSON-encoded; the header is the first row's keys.
    """
    out: TextIO = sys.stdout
    if path != "-":
        out = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (or standard output)
    count = 0
    try:
        writer = None
        for row in rows:
            if fmt == "jsonl":
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(
                    {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
                )
            count += 1
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    return count
