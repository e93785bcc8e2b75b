"""Telling processes apart: ids for runs, and whether the process that ran something still lives."""
from __future__ import annotations

import os
import socket
import time
import uuid


def new_id(prefix: str) -> str:
    """Sortable, unique ids: time first so listings read in order, random tail for two processes."""
    return f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:8]}"


def process_start_time(pid: int) -> str | None:
    """A token that tells a process apart from a later one that got the same pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data.rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "alive"


def process_alive(pid: int | None, start: str | None) -> bool:
    if not pid:
        return False
    now = process_start_time(pid)
    return now is not None and (start is None or now == start or now == "alive")


def hostname() -> str:
    return socket.gethostname()

