"""Rewrites the benchmark block of ``docs/performance.md`` from a run's summary.

The block sits between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``; everything outside
the markers (the method) is left as written. A full ``python -m bench.run`` calls
:func:`rewrite` with the table :func:`bench.report.markdown` makes, the run's date and commit.
"""

import datetime
import subprocess
from pathlib import Path

from bench.report import markdown

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def commit(repo: Path = DOC.parents[1]) -> str:
    """Short hash of ``HEAD``, ``+ local changes`` when tracked files differ; ``unknown`` outside
    a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + local changes" if dirty else "")


def today() -> str:
    """The date in UTC, ``YYYY-MM-DD``."""
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def block(table: str, date: str, commit: str) -> str:
    """The marked block: who wrote it, when, at which commit, then ``table``."""
    return "\n".join(
        [
            BEGIN,
            "<!-- written by `python -m bench.run` (a full run); edits here are overwritten -->",
            f"`python -m bench.run` on {date}, commit `{commit}`.",
            "",
            table.rstrip("\n"),
            END,
        ]
    )


def _span(doc: Path) -> tuple[str, int, int]:
    """``doc``'s text and the block's start and end; a one-line error when it has none."""
    text = doc.read_text() if doc.is_file() else ""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{doc} has no {BEGIN} ... {END} block; add the two markers to it")
    return text, start, end + len(END)


def check(doc: Path = DOC) -> None:
    """Raise the error :func:`rewrite` would, before a run that ends by rewriting ``doc``."""
    _span(doc)


def rewrite(head: dict, results: dict, doc: Path = DOC, date: str = "", sha: str = "") -> None:
    """Replace the marked block of ``doc`` with the summary table of ``head`` / ``results``.

    Args:
        head: The summary of :func:`bench.report.summary`.
        results: Each benchmark's report, by name (for the memory row and the timing table).
        doc: The Markdown file holding the markers.
        date: The run's date; default today (UTC).
        sha: The run's commit; default :func:`commit`.
    """
    text, start, end = _span(doc)
    new = block(markdown(head, results), date or today(), sha or commit())
    doc.write_text(text[:start] + new + text[end:])
