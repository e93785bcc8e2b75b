"""The store's files: content-addressed blobs, committed outputs (read-only, sealed), run folders, the
staging area and the workspace's secret key.

Files a step wrote are moved in by the runner after checking them (running/step_files.py); here they
are made read-only and sealed: the seal (the stat of every entry) is how a later change of a committed
output, even by root, is noticed before it is reused.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path

from mlpipe_jupyter.store.database import PRIVATE_FILE


SEAL_NAME = ".mlpipe-seal.json"  # beside a committed output: what its files looked like when committed


def sha256_file(path, bufsize=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def _real_dir(path) -> bool:
    """True for a directory that is not a symbolic link: never chmod or walk through a link."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _make_read_only(path: Path) -> None:
    """Files r--r--r-- (r-x when executable), folders r-x: nobody writes a committed output by accident,
    and a container step running as another user can still read it (the workspace folder is 0700)."""
    if not _real_dir(path):
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                os.chmod(p, 0o555 if st.st_mode & 0o100 else 0o444)
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        os.chmod(dirpath, 0o555)


def _seal(root: Path) -> dict:
    """relative path -> [type, size, mtime_ns, ctime_ns, inode, mode, links] of everything below root (not
    root itself, which the commit renames, nor the seal): any write, even by root, changes ctime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel_dir == "." and name.startswith(SEAL_NAME):
                continue
            st = os.lstat(os.path.join(dirpath, name))
            out[rel] = [stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                        stat.S_IMODE(st.st_mode), st.st_nlink]
    return out


def _same_entry(old, new) -> bool:
    """Unchanged, or only linked once more or less (a step hard-linking its input into its output changes
    the input's ctime and link count, not its content)."""
    if old == new or old is None or new is None:
        return old == new
    return old[:3] == new[:3] and old[4:6] == new[4:6] and old[6] != new[6]


def make_writable(path: Path) -> None:
    """Owner may write (and enter) everything below path; symbolic links are never followed."""
    if not _real_dir(path):
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, os.lstat(dirpath).st_mode | 0o700)
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                os.chmod(p, st.st_mode | 0o600)



class Files:
    """The file part of the store (mixed into ``Store``)."""

    # -- blobs --------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "objects" / digest[:2] / digest[2:]

    def put_file(self, path, digest: str | None = None) -> str:
        """Copy a file into the blob store once; returns its digest."""
        digest = digest or sha256_file(path)
        self._put_blob(digest, lambda tmp: shutil.copyfile(path, tmp))
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        self._put_blob(digest, lambda tmp: tmp.write_bytes(data))
        return digest

    def _put_blob(self, digest: str, write) -> None:
        """Write a blob under a private name and rename it into place, so readers never see half a blob."""
        target = self.blob_path(digest)
        if target.exists():
            return
        target.parent.mkdir(exist_ok=True)
        tmp = self.root / "tmp" / f"blob-{uuid.uuid4().hex}"
        write(tmp)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)

    def put_json(self, obj) -> str:
        return self.put_bytes(canonical_json(obj))

    def get_json(self, digest: str):
        return json.loads(self.blob_path(digest).read_bytes())

    # -- committed output directories ---------------------------------------------------------
    def data_path(self, digest: str) -> Path:
        return self.root / "data" / digest

    def staging_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix + "-", dir=self.root / "tmp"))

    def commit_directory(self, staged: Path, digest: str) -> Path:
        """Move a finished output directory to its content address, atomically; read-only after.

        A seal (the stat of every entry, taken once read-only) goes in with it, so a later change of the
        committed files (a local step writing into its input, even as root) is noticed before reuse."""
        target = self.data_path(digest)
        if target.exists():
            make_writable(staged)
            shutil.rmtree(staged, ignore_errors=True)
            return target
        _make_read_only(staged)
        seal = _seal(staged)
        tmp = staged / (SEAL_NAME + ".tmp")
        tmp.write_text(json.dumps(seal))
        os.chmod(tmp, 0o444)
        os.replace(tmp, staged / SEAL_NAME)
        os.chmod(staged, 0o555)
        try:
            os.rename(staged, target)
        except OSError:  # another process committed the same content first
            if not target.exists():
                raise
            make_writable(staged)
            shutil.rmtree(staged, ignore_errors=True)
        return target

    def data_changes(self, digest: str) -> list[str]:
        """What changed in a committed output since its commit (empty: intact). Outputs committed before
        seals existed cannot be checked and count as intact."""
        root = self.data_path(digest)
        try:
            seal = json.loads((root / SEAL_NAME).read_text())
        except FileNotFoundError:
            return [] if root.is_dir() else ["the folder is gone"]
        except (OSError, ValueError):
            return ["its seal is unreadable"]
        now = _seal(root)
        return sorted(p for p in set(seal) | set(now) if not _same_entry(seal.get(p), now.get(p)))

    def discard_data(self, digest: str) -> None:
        """Take a damaged committed output out of use: renamed away at once, then deleted."""
        root = self.data_path(digest)
        aside = self.root / "tmp" / f"damaged-{digest[:16]}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(root, aside)
        except OSError:
            return
        make_writable(aside)
        shutil.rmtree(aside, ignore_errors=True)

    # -- run folders ---------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def _remove_staging(self, run_id: str) -> None:
        """The half-written outputs and working copy a killed step left in tmp/; nothing refers to them."""
        for leftover in (self.root / "tmp").glob(f"step-{run_id}-*"):
            make_writable(leftover)
            shutil.rmtree(leftover, ignore_errors=True)

    # -- secrets ----------------------------------------------------------------------------------------
    def secret_digest(self, value) -> str:
        """A keyed fingerprint of a secret value: reuse notices that it changed, while what is stored
        cannot be checked against guesses without this workspace's private key."""
        return "hmac-sha256:" + hmac.new(self._secret_key(), str(value).encode(), "sha256").hexdigest()[:32]

    def _secret_key(self) -> bytes:
        path = self.root / "secret.key"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        tmp = self.root / "tmp" / f"secret-{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        try:
            os.link(tmp, path)  # fails when another process made the key first; theirs is kept
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return path.read_bytes()

