"""The model registry: each registration of a name is a new version, its files copied into
``models/<digest>/<asset>`` (read-only, content-addressed, so equal registrations share one copy).

Models live in their own folder, not among committed outputs (``data/``): nothing that discards or
cleans up outputs can touch them, and they last as long as the workspace. A deleted version keeps its
row (marked deleted) so its number is never given out again, as in Azure.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from mlpipe_jupyter.store.files import _make_read_only, make_writable, sha256_file


def tree_digest(root: Path) -> str:
    """One digest for a file or folder: its name, every relative path and every file's content."""
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        rel = root.name if f == root else f"{root.name}/{f.relative_to(root).as_posix()}"
        h.update(f"{rel}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def _model_row(row) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    for key in ("tags", "properties", "details"):
        d[key] = json.loads(d[key] or "{}")
    return d


class Models:
    """The model part of the store (mixed into ``Store``)."""

    def model_dir(self, digest: str) -> Path:
        return self.root / "models" / digest

    def model_path(self, row: dict) -> Path:
        """Where a registered model's file or folder is (read-only)."""
        return self.model_dir(row["digest"]) / row["asset"]

    def register_model(self, name: str, source: Path, *, tags: dict, properties: dict, description: str | None,
                       run_id: str | None, details: dict) -> dict:
        """Copy ``source`` (a file or folder) into the registry and record it as the next version of ``name``."""
        source = Path(source)
        digest = self._put_model_files(source)
        stored = (json.dumps(tags), json.dumps(properties), json.dumps(details, default=str))
        with self.tx() as db:
            if not self.model_dir(digest).exists():  # a delete of the same content took it meanwhile
                self._put_model_files(source)
            row = db.execute("SELECT MAX(version) AS v FROM models WHERE name=?", (name,)).fetchone()
            version = (row["v"] or 0) + 1
            db.execute("INSERT INTO models(name, version, digest, asset, description, tags, properties, run_id, "
                       "details, created) VALUES(?,?,?,?,?,?,?,?,?,?)",
                       (name, version, digest, source.name, description, *stored[:2], run_id, stored[2], time.time()))
        return self.model(name, version)

    def _put_model_files(self, source: Path) -> str:
        digest = tree_digest(source)
        target = self.model_dir(digest)
        if target.exists():
            return digest
        staged = self.root / "tmp" / f"model-{uuid.uuid4().hex}"
        staged.mkdir()
        try:
            if source.is_dir():
                shutil.copytree(source, staged / source.name, copy_function=shutil.copyfile)
            else:
                shutil.copyfile(source, staged / source.name)
            _make_read_only(staged)
            try:
                os.rename(staged, target)
            except OSError:  # another process registered the same content first
                if not target.exists():
                    raise
        finally:
            if staged.exists():
                make_writable(staged)
                shutil.rmtree(staged, ignore_errors=True)
        return digest

    def model(self, name: str, version: int | None = None) -> dict | None:
        """A registered model (the latest version by default), or None."""
        if version is None:
            row = self.db.execute("SELECT * FROM models WHERE name=? AND deleted=0 ORDER BY version DESC LIMIT 1",
                                  (name,)).fetchone()
        else:
            row = self.db.execute("SELECT * FROM models WHERE name=? AND version=? AND deleted=0",
                                  (name, version)).fetchone()
        return _model_row(row)

    def models(self, name: str | None = None, run_id: str | None = None, latest: bool = False) -> list[dict]:
        """Registered models, newest first; ``latest``: only each name's highest version."""
        where, values = ["deleted=0"], []
        if name is not None:
            where.append("name=?")
            values.append(name)
        if run_id is not None:
            where.append("run_id=?")
            values.append(run_id)
        if latest:
            where.append("version = (SELECT MAX(version) FROM models m WHERE m.name = models.name AND m.deleted=0)")
        rows = self.db.execute(f"SELECT * FROM models WHERE {' AND '.join(where)} ORDER BY created DESC, "
                               "version DESC", values)
        return [_model_row(r) for r in rows]

    def model_versions(self, name: str) -> list[int]:
        return [r["version"] for r in self.db.execute(
            "SELECT version FROM models WHERE name=? AND deleted=0 ORDER BY version", (name,))]

    def update_model(self, name: str, version: int, tags: dict | None = None, properties: dict | None = None,
                     description: str | None = None) -> None:
        sets, values = [], []
        for column, value in (("tags", tags), ("properties", properties)):
            if value is not None:
                sets.append(f"{column}=?")
                values.append(json.dumps(value))
        if description is not None:
            sets.append("description=?")
            values.append(description)
        if sets:
            with self.tx() as db:
                db.execute(f"UPDATE models SET {', '.join(sets)} WHERE name=? AND version=?", (*values, name, version))

    def delete_model(self, name: str, version: int) -> None:
        """Mark the version deleted; its files go once no other registered version shares them."""
        with self.tx() as db:
            row = db.execute("SELECT digest FROM models WHERE name=? AND version=?", (name, version)).fetchone()
            if row is None:
                return
            db.execute("UPDATE models SET deleted=1 WHERE name=? AND version=?", (name, version))
            if db.execute("SELECT 1 FROM models WHERE digest=? AND deleted=0", (row["digest"],)).fetchone():
                return
            aside = self.root / "tmp" / f"deleted-model-{uuid.uuid4().hex}"
            try:  # under the write lock: a registration of the same content waits, then copies it again
                os.rename(self.model_dir(row["digest"]), aside)
            except OSError:
                return
        make_writable(aside)
        shutil.rmtree(aside, ignore_errors=True)
