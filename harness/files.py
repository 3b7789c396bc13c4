"""Files written whole or not at all, and files read only when they are what they claim: the helpers every
part that writes or reads a file shares (the command line, the reports, the caches, the error contract)."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
import tempfile
import threading
from pathlib import Path

from harness import HarnessError


def probe_writable(directory: Path) -> None:
    """Create and remove a file in `directory`: OSError where nothing can be written there."""
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".harness-probe-"):
        pass


_PARTIAL: set[str] = set()  # temporary files being written now, for remove_partial_files()
_PARTIAL_LOCK = threading.Lock()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file.  The temporary
    name is short (a long output name plus a suffix could pass the 255-byte limit).  A failure to write
    is a HarnessError naming the file and the cause (a full disk, say)."""
    tmp = str(path.parent / f".harness-{secrets.token_hex(6)}.tmp")
    with _PARTIAL_LOCK:  # known before it exists: a signal at any point leaves nothing remove_partial_files misses
        _PARTIAL.add(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        _forget(tmp)
        raise _write_error(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # whole: an ordinary file
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        _forget(tmp)  # only once it is gone: a second signal during the unlink leaves it to remove_partial_files
        if isinstance(error, OSError):
            raise _write_error(path, error) from None
        raise
    _forget(tmp)


def _forget(tmp: str) -> None:
    with _PARTIAL_LOCK:
        _PARTIAL.discard(tmp)


def _write_error(path: Path, error: OSError) -> HarnessError:
    fix = ("free space on that disk or write elsewhere" if error.errno in (errno.ENOSPC, errno.EDQUOT)
           else "check that directory's permissions and space")
    return HarnessError(f"cannot write {path} ({error.strerror}): {fix}")


def remove_partial_files() -> None:
    """Remove the temporary files of writes cut short (by SIGTERM or Ctrl-C in another thread)."""
    with _PARTIAL_LOCK:
        leftovers = list(_PARTIAL)
        _PARTIAL.clear()
    for tmp in leftovers:
        Path(tmp).unlink(missing_ok=True)


def read_regular_file(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of `path` (`what` it should be, for the message), refused with a HarnessError unless it is a
    regular file of at most `limit` bytes: a FIFO would block the reader for ever and a link to /dev/zero
    would be read until memory runs out.  Special files are never opened; a file that grows past the limit
    while it is read is refused too."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise HarnessError(f"{path} is not a regular file (a FIFO, socket, device or folder): give {what}")
        if info.st_size > limit:
            raise HarnessError(f"{path} is too large ({info.st_size} bytes, the limit is {limit}): give {what}")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise HarnessError(f"{path} does not exist (or is a broken link): give {what}") from None
    except OSError as error:
        raise HarnessError(f"cannot read {path} ({error.strerror}): check its permissions") from None
    if len(data) > limit:
        raise HarnessError(f"{path} grew past {limit} bytes while it was read: give {what}")
    return data


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 that manifests, sidecars and cache keys record."""
    return hashlib.sha256(data).hexdigest()


def check_writable(path: Path, option: str) -> None:
    """A file written at the end of a run (--json, --trace): find out before the run, not after every
    overlay, that it cannot be."""
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        probe_writable(path.parent)
    except OSError as error:
        raise HarnessError(f"{option} {path} cannot be written ({error.strerror}): pass {option} a file in a "
                           "directory you can write to") from None
