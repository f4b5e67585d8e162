"""Atomic writes: a killed process never leaves a half-written output behind.

Everything is written to a temporary sibling first and renamed into place with
``os.replace``, which is atomic on POSIX file systems within one directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gansr.errors import GansrError


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    Works for files and for directories: whatever the caller creates at the
    yielded path replaces ``target`` as a whole. On error the temporary is
    removed and ``target`` is left untouched. A folder that cannot hold
    ``target`` (a file in its way, no permission, a read-only file system) is
    a :class:`GansrError` naming ``target``.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        where = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        raise GansrError(f"{target}: cannot write there ({where})") from exc
    staged = tmp / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            # os.replace cannot overwrite a non-empty directory: move the old
            # one aside first so the swap is still a pair of renames.
            old = tmp / (target.name + ".old")
            os.replace(target, old)
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    """Atomically write ``data`` as indented, key-sorted JSON."""
    write_text(target, json.dumps(data, indent=2, sort_keys=True) + "\n")
