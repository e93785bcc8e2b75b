"""Published pipelines, pipeline endpoints and drafts, and the frozen source folders published pipelines run.

A published pipeline keeps its document and, for each step, a read-only copy of the snapshot it was
published with in ``published/<snapshot digest>/``: editing the notebook or the scripts later changes
nothing, as in Azure ML. A draft keeps only its document: it is meant to be edited.
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

_JSON = ("document", "tags", "parameters")


def _row(row) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    for key in _JSON:
        if key in d:
            d[key] = json.loads(d[key] or "null")
    if "continue_on_step_failure" in d and d["continue_on_step_failure"] is not None:
        d["continue_on_step_failure"] = bool(d["continue_on_step_failure"])
    return d


class Published:
    """The published-pipeline part of the store (mixed into ``Store``)."""

    # -- frozen sources ---------------------------------------------------------------------------------
    def frozen_source(self, files: dict[str, str], digest: str) -> Path:
        """The read-only folder holding snapshot ``digest`` (relative path -> blob digest), made once."""
        _private_dir(self.root / "published")
        target = self.root / "published" / digest
        if target.exists():
            return target
        staged = self.root / "tmp" / f"published-{uuid.uuid4().hex}"
        try:
            for rel, blob in files.items():
                dest = staged / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.blob_path(blob), dest)
            staged.mkdir(exist_ok=True)
            _make_read_only(staged)
            try:
                os.rename(staged, target)
            except OSError:  # another process froze the same snapshot first
                if not target.exists():
                    raise
        finally:
            if staged.exists():
                make_writable(staged)
                shutil.rmtree(staged, ignore_errors=True)
        return target

    # -- published pipelines ----------------------------------------------------------------------------
    def add_published_pipeline(self, name, description, version, continue_on_step_failure, document) -> dict:
        pid = str(uuid.uuid4())
        with self.tx() as db:
            db.execute("INSERT INTO published_pipelines(id, name, description, version, status, "
                       "continue_on_step_failure, document, created) VALUES(?,?,?,?,?,?,?,?)",
                       (pid, name, description, version, "Active",
                        None if continue_on_step_failure is None else int(bool(continue_on_step_failure)),
                        json.dumps(document), time.time()))
        return self.published_pipeline(pid)

    def published_pipeline(self, pipeline_id: str) -> dict | None:
        return _row(self.db.execute("SELECT * FROM published_pipelines WHERE id=?", (pipeline_id,)).fetchone())

    def published_pipelines(self, active_only: bool = True) -> list[dict]:
        """Newest first."""
        sql = "SELECT * FROM published_pipelines" + (" WHERE status='Active'" if active_only else "")
        return [_row(r) for r in self.db.execute(sql + " ORDER BY created DESC, rowid DESC")]

    def set_published_status(self, pipeline_id: str, status: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE published_pipelines SET status=? WHERE id=?", (status, pipeline_id))

    # -- endpoints --------------------------------------------------------------------------------------
    def add_endpoint(self, name, description, pipeline_id) -> dict | None:
        """A new endpoint whose version "0" (its default) is ``pipeline_id``; None when the name is taken."""
        eid = str(uuid.uuid4())
        now = time.time()
        with self.tx() as db:
            if db.execute("SELECT 1 FROM pipeline_endpoints WHERE name=?", (name,)).fetchone():
                return None
            db.execute("INSERT INTO pipeline_endpoints(id, name, description, status, default_version, created) "
                       "VALUES(?,?,?,?,?,?)", (eid, name, description, "Active", "0", now))
            db.execute("INSERT INTO endpoint_versions(endpoint_id, version, pipeline_id, created) VALUES(?,?,?,?)",
                       (eid, "0", pipeline_id, now))
        return self.endpoint(endpoint_id=eid)

    def endpoint(self, endpoint_id=None, name=None) -> dict | None:
        column, value = ("id", endpoint_id) if endpoint_id is not None else ("name", name)
        return _row(self.db.execute(f"SELECT * FROM pipeline_endpoints WHERE {column}=?", (value,)).fetchone())

    def endpoints(self, active_only: bool = True) -> list[dict]:
        sql = "SELECT * FROM pipeline_endpoints" + (" WHERE status='Active'" if active_only else "")
        return [_row(r) for r in self.db.execute(sql + " ORDER BY created DESC, rowid DESC")]

    def update_endpoint(self, endpoint_id: str, **fields) -> bool:
        """Set name, description, status or default_version; False when the new name is another's."""
        assert set(fields) <= {"name", "description", "status", "default_version"}, fields
        with self.tx() as db:
            if "name" in fields and db.execute("SELECT 1 FROM pipeline_endpoints WHERE name=? AND id<>?",
                                               (fields["name"], endpoint_id)).fetchone():
                return False
            for column, value in fields.items():
                db.execute(f"UPDATE pipeline_endpoints SET {column}=? WHERE id=?", (value, endpoint_id))
        return True

    def add_endpoint_version(self, endpoint_id: str, pipeline_id: str, make_default: bool = False) -> str:
        """The next version number ("0", "1", ...) now naming ``pipeline_id``."""
        with self.tx() as db:
            n = db.execute("SELECT COUNT(*) FROM endpoint_versions WHERE endpoint_id=?", (endpoint_id,)).fetchone()[0]
            version = str(n)
            db.execute("INSERT INTO endpoint_versions(endpoint_id, version, pipeline_id, created) VALUES(?,?,?,?)",
                       (endpoint_id, version, pipeline_id, time.time()))
            if make_default:
                db.execute("UPDATE pipeline_endpoints SET default_version=? WHERE id=?", (version, endpoint_id))
        return version

    def endpoint_versions(self, endpoint_id: str) -> list[dict]:
        """[{"version", "pipeline_id"}] in the order they were added."""
        rows = self.db.execute("SELECT version, pipeline_id FROM endpoint_versions WHERE endpoint_id=? "
                               "ORDER BY created, rowid", (endpoint_id,))
        return [dict(r) for r in rows]

    # -- drafts -----------------------------------------------------------------------------------------
    def add_draft(self, **fields) -> dict:
        did = str(uuid.uuid4())
        now = time.time()
        with self.tx() as db:
            db.execute("INSERT INTO pipeline_drafts(id, name, description, experiment_name, parameters, tags, "
                       "continue_on_step_failure, document, created, updated) VALUES(?,?,?,?,?,?,?,?,?,?)",
                       (did, fields["name"], fields.get("description"), fields.get("experiment_name"),
                        json.dumps(fields.get("parameters") or {}), json.dumps(fields.get("tags") or {}),
                        int(bool(fields.get("continue_on_step_failure"))), json.dumps(fields["document"]), now, now))
        return self.draft(did)

    def draft(self, draft_id: str) -> dict | None:
        return _row(self.db.execute("SELECT * FROM pipeline_drafts WHERE id=?", (draft_id,)).fetchone())

    def drafts(self) -> list[dict]:
        return [_row(r) for r in self.db.execute("SELECT * FROM pipeline_drafts ORDER BY created DESC, rowid DESC")]

    def update_draft(self, draft_id: str, **fields) -> None:
        allowed = {"name", "description", "experiment_name", "parameters", "tags", "continue_on_step_failure",
                   "document"}
        assert set(fields) <= allowed, fields
        with self.tx() as db:
            for column, value in fields.items():
                if column in _JSON:
                    value = json.dumps(value)
                elif column == "continue_on_step_failure":
                    value = int(bool(value))
                db.execute(f"UPDATE pipeline_drafts SET {column}=?, updated=? WHERE id=?",
                           (value, time.time(), draft_id))

    def delete_draft(self, draft_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM pipeline_drafts WHERE id=?", (draft_id,))
