"""Atomic file replacement: the one way adaptune writes a file that another process may read meanwhile."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

TEMP_PREFIX = ".tmp-"


def replace_atomically(path: str, write: Callable[[str], None], suffix: str) -> None:
    """``write`` a temporary file beside ``path``, then rename it over ``path`` (atomic on POSIX filesystems).

    The temporary name is ``.tmp-<random><suffix>`` in ``path``'s directory, so a reader (or a crash) never sees
    half a file, and a writer that died leaves only a file with that prefix behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Created as any new file is (the umask decides its mode), not private like mkstemp's: a run on shared
    # storage, its report and a shared feature cache are read by others than the user who wrote them.
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}{suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
