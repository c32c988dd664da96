"""File-system primitives under every write lowdata makes: temporary names that follow the umask, and fsync of
a folder. `io` (atomic writes) and `ledger` (proof of what lowdata wrote) both build on them."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


# tempfile.mkstemp/mkdtemp create 0600/0700 whatever the umask, which made every run file private to its writer;
# these create with 0666/0777 and let the umask decide, as open() and mkdir do.
def make_temp_file(directory: Path, prefix: str, suffix: str = "") -> Path:
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")


def make_temp_dir(directory: Path, prefix: str) -> Path:
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")


def follow_umask(path: Path) -> None:
    """Give a file lowdata wrote the mode open() would have: 0666 less the umask."""
    os.chmod(path, 0o666 & ~current_umask())


def current_umask() -> int:
    try:  # Linux says it without changing it (os.umask can only be read by setting it, racing other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
