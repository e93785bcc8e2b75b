"""Content fingerprints of files and folders, with a stat cache so unchanged files are not re-read.

A file's digest is remembered against (size, mtime, ctime, inode); a file modified in the last two
seconds is never cached, because a coarse file-system clock could hide a second edit in the same tick.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from mlpipe_jupyter.store import Store, sha256_file

RACY_SECONDS = 2.0


def file_digests(store: Store | None, paths: list[str]) -> dict[str, str]:
    """sha256 of each absolute path, read from disk only when its stat changed since last time."""
    stats = {p: os.stat(p) for p in paths}
    cached = store.cached_digests(paths) if store is not None else {}
    now = time.time()
    out, fresh = {}, []
    for p, st in stats.items():
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        hit = cached.get(p)
        if hit is not None and hit[:4] == key:
            out[p] = hit[4]
            continue
        digest = sha256_file(p)
        out[p] = digest
        if now - st.st_mtime > RACY_SECONDS and now - st.st_ctime > RACY_SECONDS:
            fresh.append((p, *key, digest))
    if store is not None:
        store.remember_digests(fresh)
    return out


def list_files(root: Path) -> list[str]:
    """Every regular file below root, as sorted posix-style relative paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):
                out.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return sorted(out)


def tree_manifest(store: Store | None, root: Path, files: list[str] | None = None) -> dict[str, str]:
    """{relative path: digest} of a folder (or of a single file, keyed by its name)."""
    root = Path(root)
    if root.is_file():
        return {root.name: file_digests(store, [str(root)])[str(root)]}
    files = list_files(root) if files is None else files
    digests = file_digests(store, [str(root / f) for f in files])
    return {f: digests[str(root / f)] for f in files}


def manifest_digest(manifest: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(manifest):
        h.update(rel.encode())
        h.update(b"\0")
        h.update(manifest[rel].encode())
        h.update(b"\n")
    return h.hexdigest()


def path_fingerprint(store: Store | None, path: Path) -> str:
    """One digest for a file or a folder's whole content."""
    return manifest_digest(tree_manifest(store, path))
