"""Proof, by content, that lowdata wrote a file: checked before lowdata replaces, appends to or removes it.

Every folder lowdata writes files into holds `.lowdata-ledger.json`, which lists each file lowdata wrote there
with the SHA-256 of the content it wrote. While a write is under way the entry holds the old and the new
digest, so a process killed between the two steps still proves either content. A file whose name lowdata uses
but whose content the ledger does not list (a user's `config.yaml`, `results.csv`, an ONNX file of their own,
or a file edited since) is never replaced: the command stops in one line and writes nothing.

A folder is lowdata's when its own ledger proves every entry in it, or when its parent's ledger lists it as one
lowdata made (for another library's files, TensorBoard's, or a checkpoint while it is written).
Names are not proof: a file is judged by its bytes alone.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from lowdata.errors import UsageError
from lowdata.files import follow_umask, fsync_dir, fsync_file, make_temp_file

LEDGER = ".lowdata-ledger.json"
# hidden entries lowdata itself writes: part of a folder's scan (other hidden files are left alone)
HIDDEN_OURS = (".checkpoint.old",)
TITLE = "lowdata ledger: the files lowdata wrote in this folder, with the SHA-256 of their content"


def digest(path: Path) -> str:
    found = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            found.update(block)
    return found.hexdigest()


def shown_names(names: list[str], limit: int = 3) -> str:
    cut = [name if len(name) <= 60 else name[:57] + "..." for name in names[:limit]]
    return ", ".join(cut) + (", ..." if len(names) > limit else "")


class Ledger:
    """The ledger of one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LEDGER

    # -- reading --
    def entries(self) -> dict[str, Any]:
        if not os.path.lexists(self.path):
            return {"title": TITLE, "files": {}, "folders": []}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            data = None
        if not (isinstance(data, dict) and data.get("title") == TITLE and isinstance(data.get("files"), dict)
                and isinstance(data.get("folders"), list)):
            raise UsageError(f"{self.path} is not a ledger lowdata wrote; nothing was written: move it away or "
                             "choose another folder")
        return data

    def proves(self, name: str, entries: dict[str, Any] | None = None) -> bool:
        """Whether the entry `name` of the folder is lowdata's (an absent one is: there is nothing to lose)."""
        target = self.folder / name
        if not os.path.lexists(target):
            return True
        if target.is_symlink():
            return False  # lowdata writes no links
        entries = self.entries() if entries is None else entries
        if target.is_dir():
            return name in entries["folders"] or (os.path.isfile(target / LEDGER) and not Ledger(target).unproven())
        if not target.is_file():
            return False  # a FIFO or a device
        return digest(target) in entries["files"].get(name, [])

    def unproven(self, names: Iterable[str] | None = None) -> list[str]:
        """The entries among `names` (default: every entry of the folder but hidden ones other than lowdata's
        own, which lowdata leaves alone) that exist and are not proven lowdata's."""
        if names is None:
            names = sorted(p.name for p in self.folder.iterdir()
                           if not p.name.startswith(".") or p.name in HIDDEN_OURS) if self.folder.is_dir() else []
        entries = self.entries()
        return [name for name in names if name != LEDGER and not self.proves(name, entries)]

    def refuse_unproven(self, names: Iterable[str] | None = None, flag: str = "--out") -> None:
        """One line, before anything is written, when an entry that would be replaced is not lowdata's."""
        foreign = self.unproven(names)
        if foreign:
            # a folder without a ledger may be a run or study made before lowdata kept them
            older = "" if os.path.lexists(self.path) else \
                f"; if an older lowdata wrote them, `lowdata adopt {self.folder}`"
            raise UsageError(f"{flag} {self.folder} holds {shown_names(foreign)} that lowdata did not write (or "
                             "that changed since); nothing was written: move them away or choose another "
                             f"folder{older}")

    # -- writing --
    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The entries, read under an exclusive lock on the folder (several study workers share a folder); the
        lock is the kernel's (flock), released if the process dies."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # a file system without flock on folders: one writer per folder, as before
                pass
            yield self.entries()
        finally:
            os.close(fd)

    def save(self, entries: dict[str, Any]) -> None:
        """Write the entries (call inside `locked`)."""
        tmp = make_temp_file(self.folder, prefix=".lowdata-ledger.", suffix=".tmp")
        try:
            tmp.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            follow_umask(tmp)
            fsync_file(tmp)
            os.replace(tmp, self.path)
            fsync_dir(self.folder)
        finally:
            tmp.unlink(missing_ok=True)

    def change(self, update: Callable[[dict[str, Any]], None]) -> None:
        with self.locked() as entries:
            update(entries)
            self.save(entries)

    def expect(self, name: str, new: str) -> None:
        """Before `name` is replaced by content of digest `new`: both the old and the new content prove it."""
        self.change(lambda entries: entries["files"].setdefault(name, []).append(new))

    def settle(self, name: str, new: str) -> None:
        """After the replacement: only the new content proves it."""
        self.change(lambda entries: entries["files"].__setitem__(name, [new]))

    def record_files(self) -> None:
        """Record every file of a folder lowdata has just filled itself (a new checkpoint, a new export)."""
        def update(entries: dict[str, Any]) -> None:
            for path in self.folder.iterdir():
                if path.is_file() and not path.is_symlink() and path.name != LEDGER:
                    entries["files"][path.name] = [digest(path)]
        self.change(update)

    def add_folder(self, name: str) -> None:
        self.change(lambda entries: None if name in entries["folders"] else entries["folders"].append(name))

    def forget(self, name: str) -> None:
        def update(entries: dict[str, Any]) -> None:
            entries["files"].pop(name, None)
            entries["folders"] = [folder for folder in entries["folders"] if folder != name]
        self.change(update)

    def append_text(self, name: str, text: str) -> None:
        """Append to a file lowdata wrote (or start it), under the folder's lock."""
        path = self.folder / name
        with self.locked() as entries:
            running = hashlib.sha256()
            if os.path.lexists(path):  # hashed once: the old content's digest is the proof, then runs on
                running.update(path.read_bytes() if path.is_file() and not path.is_symlink() else b"\0not a file")
                if running.hexdigest() not in entries["files"].get(name, []):
                    raise UsageError(f"{path} is not a file lowdata wrote (or it changed since); nothing was "
                                     "appended: move it away or choose another folder")
            running.update(text.encode("utf-8"))
            new = running.hexdigest()
            entries["files"].setdefault(name, []).append(new)
            self.save(entries)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            entries["files"][name] = [new]
            self.save(entries)


def refuse_unproven_file(path: Path, flag: str = "") -> None:
    """One line when the file at `path` exists and lowdata's ledger beside it does not prove it."""
    if not Ledger(path.parent).proves(path.name):
        raise UsageError(f"{flag + ' ' if flag else ''}{path} exists and lowdata did not write it (or it changed "
                         "since lowdata did); nothing was replaced: give a new path, or move the file away")


# Folders other libraries fill (new names each time): `adopt` records them as folders, never their files.
THIRD_PARTY = ("tensorboard", "wandb")


def adopt(root: Path) -> tuple[int, list[Path]]:
    """`lowdata adopt DIR`: the user vouches that the files under `root` are lowdata's (a run or study made before
    lowdata kept ledgers), so each file no ledger lists yet is recorded with its present content. A file a ledger
    lists with other content (changed since lowdata wrote it) is left out and returned. Returns the number of
    files recorded and those left out."""
    recorded, changed = 0, []
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        parts = folder.relative_to(root).parts
        if any(part.startswith(".") and part not in HIDDEN_OURS for part in parts) or \
                any(part in THIRD_PARTY for part in parts[:-1]):
            continue
        ledger = Ledger(folder)
        if folder.name in THIRD_PARTY and folder != root:
            Ledger(folder.parent).add_folder(folder.name)
            continue
        with ledger.locked() as entries:
            for path in sorted(folder.iterdir()):
                if not path.is_file() or path.is_symlink() or path.name == LEDGER or \
                        (path.name.startswith(".") and path.name not in HIDDEN_OURS):
                    continue
                if path.name in entries["files"]:
                    if digest(path) not in entries["files"][path.name]:
                        changed.append(path)
                    continue
                entries["files"][path.name] = [digest(path)]
                recorded += 1
            ledger.save(entries)
    return recorded, changed
