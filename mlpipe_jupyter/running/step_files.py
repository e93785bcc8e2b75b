"""What a step wrote is untrusted data: read it without following links, regular files only.

A step, above all one in a container, controls every name in the folders it may write: its run
folder, ``./outputs``, ``./logs`` and its outputs. It can leave a symbolic link to a host path, a FIFO
or a device where the runner expects a file. So everything here walks those folders through file
descriptors opened with ``O_NOFOLLOW``, looks at each entry with ``lstat`` and touches regular files
and real folders only. This runs after the step has ended (and every process it started with it),
so nothing can swap an entry between the check and the use.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path

from mlpipe_jupyter.data.fingerprint import manifest_digest

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class OutputRejected(Exception):
    """An output holds something that cannot be committed (a special file, a link leaving it)."""


def open_regular(path, dir_fd=None) -> int | None:
    """A read descriptor of a regular file that is not a link, or None (a FIFO never blocks this)."""
    try:
        fd = os.open(path, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _entries(dir_fd: int):
    """(name, lstat) of each entry of an open folder."""
    with os.scandir(dir_fd) as it:
        names = [e.name for e in it]
    for name in sorted(names):
        try:
            yield name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue


def _walk(dir_fd: int, rel: str = ""):
    """(folder fd, name, relative path, lstat) of every entry below an open folder, depth first.

    Sub-folders are opened with O_NOFOLLOW relative to their parent, so a link is never entered."""
    for name, st in _entries(dir_fd):
        path = f"{rel}{name}"
        yield dir_fd, name, path, st
        if stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                yield from _walk(sub, path + "/")
            finally:
                os.close(sub)


def _open_root(path: Path) -> int | None:
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError:
        return None


def collect_run_files(src: Path, dest: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Move the regular files below ``src`` (a folder the step wrote) into ``dest`` (the runner's own run
    history folder), keeping relative paths and never replacing a file already there. Returns what was
    left behind (links, special files), for the step's log."""
    root = _open_root(src)
    if root is None:
        return [] if not os.path.lexists(src) else [f"{src.name} (not a folder)"]
    left = []
    try:
        for dir_fd, name, rel, st in _walk(root):
            if rel in skip:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                left.append(f"{rel} ({_kind(st.st_mode)})")
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                continue
            try:
                os.rename(name, target, src_dir_fd=dir_fd)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                _copy_regular(dir_fd, name, target)
    finally:
        os.close(root)
    return left


def _copy_regular(dir_fd: int, name: str, target: Path) -> None:
    fd = open_regular(name, dir_fd)
    if fd is None:
        return
    with os.fdopen(fd, "rb") as src, open(target, "xb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link, not followed"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def output_digest(staged_root: Path, name: str, is_directory: bool) -> str:
    """The content digest of a staged output (``staged_root/name``), after checking it can be committed.

    A directory output holds regular files, folders, and relative links that stay inside it (kept as
    links, fingerprinted by their target). Anything else (an absolute link, a link leaving the output,
    a FIFO, socket or device) refuses the output, naming the entry: committed outputs are read by
    later steps and copied into their containers, so no link may lead them to a host file."""
    root = _open_root(staged_root)
    if root is None:
        raise OutputRejected("its staging folder is gone.")
    try:
        try:
            st = os.stat(name, dir_fd=root, follow_symlinks=False)
        except FileNotFoundError:
            raise OutputRejected(f"the step did not write its output '{name}' (a "
                                 f"{'folder' if is_directory else 'file'} at the path it was given).") from None
        if not is_directory:
            if not stat.S_ISREG(st.st_mode):
                raise OutputRejected(f"output '{name}' should be a regular file, but it is {_kind(st.st_mode)}.")
            return manifest_digest({name: _file_digest(root, name)})
        if not stat.S_ISDIR(st.st_mode):
            raise OutputRejected(f"output '{name}' should be a folder, but it is {_kind(st.st_mode)}.")
        top = os.open(name, _DIR_FLAGS, dir_fd=root)
        try:
            return manifest_digest(_tree_manifest(top, staged_root / name, name))
        finally:
            os.close(top)
    finally:
        os.close(root)


def _tree_manifest(top: int, top_path: Path, name: str) -> dict[str, str]:
    manifest = {}
    real_top = os.path.realpath(top_path)
    for dir_fd, entry, rel, st in _walk(top, name + "/"):  # keys as the output's folder lists them
        if stat.S_ISDIR(st.st_mode):
            continue
        if stat.S_ISREG(st.st_mode):
            manifest[rel] = _file_digest(dir_fd, entry)
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(entry, dir_fd=dir_fd)
            resolved = os.path.realpath(os.path.join(top_path.parent, rel))
            inside = resolved == real_top or resolved.startswith(real_top.rstrip("/") + "/")
            if os.path.isabs(target) or not inside:
                raise OutputRejected(f"output '{name}' holds '{rel}', a symbolic link to '{target}' that leads "
                                     "outside the output; only relative links within an output are kept. Copy the "
                                     "file into the output instead.")
            manifest[rel] = "symlink:" + hashlib.sha256(target.encode()).hexdigest()
        else:
            raise OutputRejected(f"output '{name}' holds '{rel}', {_kind(st.st_mode)}; outputs hold regular files, "
                                 "folders and relative links only.")
    return manifest


def _file_digest(dir_fd: int, name: str) -> str:
    fd = open_regular(name, dir_fd)
    if fd is None:
        raise OutputRejected(f"'{name}' changed while it was read.")
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give a folder and everything below it to uid:gid without following links (for a container that
    runs as another user than this root process, and to take its files back afterwards)."""
    root = _open_root(path)
    if root is None:
        return
    try:
        os.chown(root, uid, gid)
        for dir_fd, name, _rel, _st in _walk(root):
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.close(root)
