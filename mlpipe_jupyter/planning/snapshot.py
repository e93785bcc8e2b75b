"""Snapshots of a step's source directory: what ran, kept once per distinct file.

Ignore rules follow Azure ML: ``.amlignore`` (gitignore syntax) wins over ``.gitignore``; the
workspace folder, ``.git`` and Python caches are always left out so they never cause a rerun.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.store import Store
from mlpipe_jupyter.data.fingerprint import file_digests

ALWAYS_IGNORED = [".mlpipe/", ".git/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/", ".pytest_cache/"]
MAX_SNAPSHOT_FILES = 2000
MAX_SNAPSHOT_BYTES = 300 * 1024 * 1024


@dataclass
class Snapshot:
    source_dir: Path
    files: dict[str, str]  # relative path -> blob digest
    digest: str
    git: dict = field(default_factory=dict)


def ignore_spec(source_dir: Path) -> pathspec.PathSpec:
    lines = list(ALWAYS_IGNORED)
    for name in (".amlignore", ".gitignore"):
        f = source_dir / name
        if f.is_file():
            lines += f.read_text(errors="replace").splitlines()
            break
    return pathspec.GitIgnoreSpec.from_lines(lines)


def snapshot_files(source_dir: Path) -> list[str]:
    spec = ignore_spec(source_dir)
    files = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(source_dir):
        rel_dir = os.path.relpath(dirpath, source_dir)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(d for d in dirnames if not spec.match_file(rel_dir + d + "/"))
        for name in filenames:
            rel = rel_dir + name
            full = os.path.join(dirpath, name)
            if spec.match_file(rel) or not os.path.isfile(full):
                continue
            files.append(rel)
            total += os.path.getsize(full)
        if len(files) > MAX_SNAPSHOT_FILES or total > MAX_SNAPSHOT_BYTES:
            raise UserError(
                f"The source directory '{source_dir}' holds more than {MAX_SNAPSHOT_FILES} files or "
                f"{MAX_SNAPSHOT_BYTES // 2**20} MB, too much to snapshot for every run. Point source_directory at "
                "a smaller folder, or list data and build folders in a .amlignore file there (gitignore syntax)."
            )
    return sorted(files)


def take_snapshot(store: Store, source_dir: Path, with_git: bool = True) -> Snapshot:
    """Hash the source directory and keep every file in the blob store (once per content)."""
    source_dir = Path(source_dir).resolve()
    rel_files = snapshot_files(source_dir)
    digests = file_digests(store, [str(source_dir / f) for f in rel_files])
    files = {}
    for rel in rel_files:
        d = digests[str(source_dir / rel)]
        store.put_file(source_dir / rel, d)  # a no-op when that content is stored already
        files[rel] = d
    digest = store.put_json({"files": files})  # the snapshot id names its stored manifest
    return Snapshot(source_dir, files, digest, git_info(source_dir) if with_git else {})


def materialize(store: Store, files: dict[str, str], target: Path) -> None:
    """Write a snapshot out as ordinary files (a step gets its own copy and may scribble on it)."""
    for rel, digest in files.items():
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.blob_path(digest), dest)


def git_info(path: Path) -> dict:
    """Commit, branch and dirty state, when the folder is inside a git work tree."""
    p = path
    while not (p / ".git").exists():
        if p.parent == p:
            return {}
        p = p.parent
    git = shutil.which("git")
    if not git:
        return {}
    try:
        out = subprocess.run(
            [git, "-C", str(path), "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    info = {"repository": str(p), "dirty": False}
    for line in out.stdout.splitlines():
        if line.startswith("# branch.oid "):
            info["commit"] = line.split()[-1]
        elif line.startswith("# branch.head "):
            info["branch"] = line.split()[-1]
        elif not line.startswith("#"):
            info["dirty"] = True
    return info
