"""Atomic file writes: a finished result is either fully on disk or not replaced at all.

Measured here: `torch.save` over an existing checkpoint on a full disk destroyed it, while a temp file +
fsync + `os.replace` kept the old one.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success fsync it and move it over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            from lowdata.errors import UsageError

            raise UsageError(f"disk full while writing {path}; the previous version (if any) is kept: free "
                             "space and run the command again") from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def cache_root() -> Path:
    """Where lowdata keeps what it computes once (decoded datasets, downloads, the precision probe)."""
    return Path(os.environ.get("LOWDATA_CACHE", Path.home() / ".cache" / "lowdata"))


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
