"""The module registry: pipeline modules (a name with versions) and their versions, each version a
frozen copy of its source folder in ``modules/<digest>/`` (read-only, content-addressed).

A version runs the files it was published with, as in Azure ML, where publishing uploads a snapshot:
editing the folder afterwards changes nothing until a new version is published. Versions are never
deleted (Azure only disables them), so their files last as long as the workspace.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from mlpipe_jupyter.store.database import _private_dir
from mlpipe_jupyter.store.files import _make_read_only, make_writable
from mlpipe_jupyter.store.models import tree_digest

# never part of a module's files: the workspace itself, version control and caches
_LEFT_OUT = shutil.ignore_patterns(".mlpipe", ".git", "__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache")


def _version_row(row) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    d["definition"] = json.loads(d["definition"] or "{}")
    return d


class Modules:
    """The module part of the store (mixed into ``Store``)."""

    def module_files(self, digest: str) -> Path:
        return self.root / "modules" / digest

    # -- modules ----------------------------------------------------------------------------------------
    def create_module(self, name: str, description: str | None) -> dict | None:
        """A new module with no version; None (nothing written) when the name is taken."""
        module_id = uuid.uuid4().hex
        with self.tx() as db:
            if db.execute("SELECT 1 FROM modules WHERE name=?", (name,)).fetchone():
                return None
            db.execute("INSERT INTO modules(id, name, description, status, default_version, created) "
                       "VALUES(?,?,?,?,?,?)", (module_id, name, description, "Active", None, time.time()))
        return self.module(module_id=module_id)

    def module(self, module_id: str | None = None, name: str | None = None) -> dict | None:
        """{"id", "name", "description", "status", "default_version", "created"} by id or name, or None."""
        column, value = ("id", module_id) if module_id is not None else ("name", name)
        row = self.db.execute(f"SELECT * FROM modules WHERE {column}=?", (value,)).fetchone()
        return None if row is None else dict(row)

    def module_names(self) -> list[str]:
        return [r["name"] for r in self.db.execute("SELECT name FROM modules ORDER BY name")]

    def update_module(self, module_id: str, **fields) -> bool:
        """Set name, description, status or default_version; False when the new name is another module's."""
        allowed = {"name", "description", "status", "default_version"}
        assert set(fields) <= allowed, fields
        with self.tx() as db:
            if "name" in fields and db.execute("SELECT 1 FROM modules WHERE name=? AND id<>?",
                                               (fields["name"], module_id)).fetchone():
                return False
            for column, value in fields.items():
                db.execute(f"UPDATE modules SET {column}=? WHERE id=?", (value, module_id))
        return True

    # -- versions ---------------------------------------------------------------------------------------
    def add_module_version(self, module_id: str, version: str | None, description: str | None, definition: dict,
                           source: Path) -> dict | None:
        """Freeze ``source``'s files and record them as a version; None when ``version`` is already taken."""
        digest = self._put_module_files(Path(source))
        version_id = uuid.uuid4().hex
        now = time.time()
        with self.tx() as db:
            if version is not None and db.execute("SELECT 1 FROM module_versions WHERE module_id=? AND version=?",
                                                  (module_id, version)).fetchone():
                return None
            if not self.module_files(digest).exists():  # cannot happen today (nothing deletes them); cheap to keep
                self._put_module_files(Path(source))
            db.execute("INSERT INTO module_versions(id, module_id, version, description, status, definition, digest, "
                       "created, updated) VALUES(?,?,?,?,?,?,?,?,?)",
                       (version_id, module_id, version, description, "Active", json.dumps(definition), digest,
                        now, now))
        return self.module_version(version_id)

    def module_version(self, version_id: str) -> dict | None:
        return _version_row(self.db.execute("SELECT * FROM module_versions WHERE id=?", (version_id,)).fetchone())

    def module_versions(self, module_id: str) -> list[dict]:
        """A module's versions in the order they were published."""
        rows = self.db.execute("SELECT * FROM module_versions WHERE module_id=? ORDER BY created, rowid", (module_id,))
        return [_version_row(r) for r in rows]

    def update_module_version(self, version_id: str, **fields) -> None:
        """Set description or status; the version counts as updated (Azure's last-updated resolution)."""
        assert set(fields) <= {"description", "status"}, fields
        with self.tx() as db:
            for column, value in fields.items():
                db.execute(f"UPDATE module_versions SET {column}=?, updated=? WHERE id=?", (value, time.time(), version_id))

    def _put_module_files(self, source: Path) -> str:
        _private_dir(self.root / "modules")
        staged = self.root / "tmp" / f"module-{uuid.uuid4().hex}"
        staged.mkdir()
        try:
            files = staged / "files"
            shutil.copytree(source, files, ignore=_LEFT_OUT, copy_function=shutil.copyfile)
            digest = tree_digest(files)
            target = self.module_files(digest)
            if not target.exists():
                _make_read_only(files)
                try:
                    os.rename(files, target)
                except OSError:  # another process published the same files first
                    if not target.exists():
                        raise
            return digest
        finally:
            make_writable(staged)
            shutil.rmtree(staged, ignore_errors=True)
