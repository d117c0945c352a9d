"""Writing files: atomically, with the user's umask, one writer at a time per folder.

Every file rnngraph writes goes through here. A file is written to a
temporary name in its own folder and published by one ``os.replace``, so a
reader sees the old file or the new one, never a part; it gets the mode any
other tool's new file would (``0666`` less the umask: ``mkstemp``'s ``0600``
is not kept). Files that belong together (a graph's ``.json`` and ``.npz``)
are written under :func:`folder_lock`, so two processes saving to the same
path leave one of their pairs, not a mix; the reader's side of the promise is
the content hash the ``.json`` records (see :mod:`rnngraph.ir.serialize`).

Examples
--------
>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> p = atomic_write(os.path.join(d, "notes.txt"), "hello")
>>> p.read_text()
'hello'
>>> oct(p.stat().st_mode & 0o777) == oct(0o666 & ~umask())
True
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "cache_folder", "folder_lock", "sha256", "umask"]


def umask() -> int:
    """The process's umask (read from ``/proc`` where it can be: setting it to read it
    back is not safe while other threads create files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``target`` for a tool that writes by name; renamed to
    ``target`` (with the umask's mode) if the block succeeds, removed if it fails.

    ``suffix`` ends the temporary name, for tools that pick a format by extension.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(
    target: str | os.PathLike[str], content: bytes | str | Callable[[IO[bytes]], Any]
) -> Path:
    """Write ``content`` (bytes, text as UTF-8, or a function writing to a binary file)
    to ``target`` atomically; returns the path."""
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        if isinstance(content, str):
            f.write(content.encode())
        elif isinstance(content, bytes | bytearray | memoryview):
            f.write(content)
        else:
            content(f)
    return Path(target)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` on the folder itself: no lock
    file is left behind) while writing files that belong together; where ``flock``
    is missing (Windows) it does nothing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (closing releases the lock)


def sha256(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def cache_folder() -> Path | None:
    """The user's cache folder for rnngraph (tuned plans, built kernels):
    ``$RNNGRAPH_CACHE``, else ``$XDG_CACHE_HOME/rnngraph``, else ``~/.cache/rnngraph``;
    None when there is no home folder to find (a container's user with no passwd entry
    and no ``$HOME``): then nothing is cached, and nothing fails for it.

    >>> import os
    >>> os.environ["RNNGRAPH_CACHE"] = "/tmp/rg-cache"
    >>> str(cache_folder())
    '/tmp/rg-cache'
    >>> del os.environ["RNNGRAPH_CACHE"]
    """
    root = os.environ.get("RNNGRAPH_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "rnngraph"
    try:
        return Path.home() / ".cache" / "rnngraph"
    except (RuntimeError, KeyError):
        return None
