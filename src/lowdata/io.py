"""Atomic file writes: a finished result is either fully on disk or not replaced at all.

Measured here: `torch.save` over an existing checkpoint on a full disk destroyed it, while a temp file +
fsync + `os.replace` kept the old one.
"""
from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

# re-exported: callers import the primitives from here
from lowdata.files import (current_umask, follow_umask, fsync_dir, fsync_file, make_temp_dir,  # noqa: F401
                           make_temp_file)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success fsync it and move it over `path` in one step. A file already
    at `path` is replaced only when the folder's ledger proves that lowdata wrote it (ledger.py); the new
    content is recorded there."""
    from lowdata.ledger import Ledger, digest, refuse_unproven_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_unproven_file(path)
    ledger = Ledger(path.parent)
    # the suffix kept last: writers that read the format from the name (torch.export: .pt2) accept the temp file
    tmp_path = make_temp_file(path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    try:
        yield tmp_path
        follow_umask(tmp_path)  # writers that recreate the file (safetensors: 0600) lose the mode given here
        fsync_file(tmp_path)
        new = digest(tmp_path)
        ledger.expect(path.name, new)  # a kill between here and settle leaves either content proven
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
        ledger.settle(path.name, new)
    except Exception as err:
        reason = storage_full(err)
        if reason:
            from lowdata.errors import UsageError

            raise UsageError(f"{reason} while writing {path}; the previous version (if any) is kept: free "
                             "space (or raise the limit) and run the command again") from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


STORAGE_FULL = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
                errno.EFBIG: "file too large for the file system or the process's file-size limit (ulimit -f)"}


def storage_full(err: BaseException) -> str | None:
    """Why a write failed for lack of room (disk, quota, file-size limit), or None for any other failure."""
    import re

    if isinstance(err, OSError):
        return STORAGE_FULL.get(err.errno)
    # safetensors reports I/O errors from Rust as text (SafetensorError): "I/O error: File too large (os error 27)"
    found = re.search(r"\(os error (\d+)\)|Os \{ code: (\d+)", str(err))
    return STORAGE_FULL.get(int(found.group(1) or found.group(2))) if found else None


def cache_root() -> Path:
    """Where lowdata keeps what it computes once (decoded datasets, downloads, the precision probe)."""
    return Path(os.environ.get("LOWDATA_CACHE", Path.home() / ".cache" / "lowdata"))


def cached_measurement(path: Path, key: str, measure: Callable[[], float]) -> float:
    """`measure()` rounded to 2 places, kept in the JSON file at `path` under `key` and read from there next
    time (the timed probes: precision, a teacher's memory layout). A read-only cache only costs the measurement
    again."""
    known = read_cache(path)
    if key in known:
        return known[key]
    value = round(measure(), 2)
    # another process may have measured the same key meanwhile: the first answer stays, both runs agree
    return update_cache(path, lambda entries: entries.setdefault(key, value)).get(key, value)


def read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def update_cache(path: Path, change: Callable[[dict], Any]) -> dict:
    """Read the JSON cache at `path`, apply `change` to it and write it back, holding a lock beside it so that two
    processes (study cells finishing at once) do not drop each other's entries. Returns the entries; a cache
    that cannot be written keeps them in memory only."""
    import fcntl

    from lowdata.errors import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(path.name + ".lock"), "a")
    except OSError:
        entries = read_cache(path)
        change(entries)
        return entries
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies holding it
        entries = read_cache(path)
        change(entries)
        try:
            atomic_write_json(path, entries)
        except (OSError, UsageError):  # a full disk or a read-only cache: the next run measures again
            pass
    return entries


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# Readers for what runs leave on disk: any parse or I/O failure becomes one line naming the file and the fix,
# instead of a safetensors (Rust) or JSON stack trace.
def read_json_file(path: str | Path, what: str, fix: str) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise unreadable(path, what, err, fix) from None


def read_safetensors(path: str | Path, what: str, fix: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError, RuntimeError) as err:
        raise unreadable(path, what, err, fix) from None


def unreadable(path: Path, what: str, err: BaseException, fix: str) -> Exception:
    from lowdata.errors import UsageError

    detail = str(err).splitlines()[0][:100] if str(err) else err.__class__.__name__
    return UsageError(f"cannot read {what} {path} ({detail}); {fix}")


def check_writable(path: str | Path, flag: str) -> None:
    """Before any work: `path` can be created or replaced, i.e. its nearest existing ancestor is a writable
    folder (a file on the way, or a read-only folder, is said in one line instead of a traceback at the end)."""
    from lowdata.errors import UsageError

    path = Path(path)
    ancestor = path.parent if not path.exists() else path if path.is_dir() else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a folder; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path}: {ancestor if not path.exists() else path} is not writable; choose a "
                         "writable path or fix its permissions")


def describe_os_error(err: OSError) -> str | None:
    """One line for an OS error about a named file (permissions, a read-only or full disk, a folder where a
    file was expected), or None for errors that are not about the user's files."""
    reasons = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
               errno.EROFS: "read-only file system", errno.EISDIR: "is a folder, not a file",
               errno.ENOTDIR: "a part of the path is a file, not a folder",
               errno.ENAMETOOLONG: "a name in the path is longer than the file system allows (255 bytes)",
               errno.ELOOP: "the path's links form a loop", **STORAGE_FULL}
    if err.filename is None or err.errno not in reasons:
        return None
    name = str(err.filename)
    name = name if len(name) <= 120 else f"{name[:60]}...{name[-57:]}"
    return f"cannot write or read {name}: {reasons[err.errno]}; fix the path or its permissions and run again"


def refuse_foreign_files(folder: Path, flag: str) -> None:
    """Before writing its files into `folder`: every entry there (hidden ones aside, which lowdata leaves alone)
    must be proven lowdata's by the folder's ledger, so a user's folder of photos or notes, or a file of theirs
    under a name lowdata uses, is refused instead of written over."""
    from lowdata.ledger import Ledger

    if folder.is_dir():
        Ledger(folder).refuse_unproven(None, flag)
