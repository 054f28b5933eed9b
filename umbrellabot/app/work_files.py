"""Where a process keeps the files it works on: its own folder under STATE_DIR/work, so that two
processes on one state (the daemon and a backfill beside it) never touch each other's files."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path


def process_owner() -> str:
    """This process's name in leases and claims: host, pid and a token (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str) -> bool:
    """Whether the process named `owner` is known to have ended: one of this host whose pid
    no longer runs (another host's is left to its lease expiring)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


def private_work_dir(state_dir: Path, owner: str) -> Path:
    """STATE_DIR/work/<pid>-<token>/, after removing what processes that are gone left."""
    root = state_dir / "work"
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root)
    _, pid, token = owner.rsplit(":", 2)
    folder = root / f"{pid}-{token}"
    folder.mkdir(exist_ok=True)
    return folder


def remove_leftovers(root: Path) -> None:
    """The folders of processes that no longer run, and files of versions before private
    folders (a killed process leaves its downloads behind)."""
    for entry in root.iterdir():
        if entry.is_file():
            entry.unlink(missing_ok=True)
            continue
        pid = entry.name.split("-", 1)[0]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
