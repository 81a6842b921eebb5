"""The project's user-facing error: a problem the user can fix, shown as one line."""

import os
import sys
from collections.abc import Callable


class SeqLabError(Exception):
    """Bad input, a missing file or a wrong setting: the message names the problem and the fix.

    Entry points print it as one line (``error: ...``) and exit with status 2, without a
    traceback; ``SEQLAB_TRACEBACK=1`` re-raises it instead.
    """


def exit_on_error(entry: Callable[[], object]) -> None:
    """Run ``entry``; a :class:`SeqLabError` ends the process with its one-line message."""
    try:
        entry()
    except SeqLabError as error:
        if os.environ.get("SEQLAB_TRACEBACK") == "1":
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
