"""Count how often files are opened, through CPython's audit events: `open` is raised by every `open()`, `io.open`,
`os.open` and the readers built on them (hashing, nibabel, pandas), so a count is what the code really did."""

import contextlib
import os
import sys
from collections import Counter

_active: list[Counter] = []


def _count_open(event: str, args: tuple) -> None:
    if event == "open" and _active and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        for counter in _active:
            counter[path] += 1


sys.addaudithook(_count_open)  # hooks cannot be removed: it counts only inside `count_opens`


@contextlib.contextmanager
def count_opens():
    """Within the block, a `Counter` of absolute path -> times opened in this process."""
    counter = Counter()
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)
