"""The workspace's registries in the database: datastores, datasets, compute targets, environments and
experiments, plus the lookups the notebook needs (the latest output of a step).

Everything is serialized before a write transaction starts, so a registry write holds the lock for
its statements only.
"""
from __future__ import annotations

import json
import time


class Registry:
    """The registry part of the store (mixed into ``Store``)."""

    # -- datastores ---------------------------------------------------------------------------------------
    def datastore_names(self) -> list[str]:
        return [r["name"] for r in self.db.execute("SELECT name FROM datastores ORDER BY name")]

    def datastore(self, name: str) -> dict | None:
        """{"name", "kind", "config", "is_default"} of a registered datastore, or None."""
        row = self.db.execute("SELECT * FROM datastores WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        try:
            config = json.loads(row["config"])
        except ValueError:
            config = {}
        return {"name": row["name"], "kind": row["kind"], "config": config, "is_default": bool(row["is_default"])}

    def default_datastore_name(self) -> str | None:
        row = self.db.execute("SELECT name FROM datastores WHERE is_default=1").fetchone()
        return None if row is None else row["name"]

    def register_datastore(self, name: str, kind: str, config: dict, overwrite: bool) -> bool:
        """Record a datastore; False (and nothing written) when the name holds another config and not
        ``overwrite``."""
        stored = json.dumps(config)
        with self.tx() as db:
            row = db.execute("SELECT config FROM datastores WHERE name=?", (name,)).fetchone()
            if row is not None and json.loads(row["config"]) != config and not overwrite:
                return False
            db.execute("INSERT OR REPLACE INTO datastores(name, kind, config, is_default) VALUES(?,?,?,"
                       "COALESCE((SELECT is_default FROM datastores WHERE name=?), 0))", (name, kind, stored, name))
        return True

    def set_default_datastore(self, name: str) -> bool:
        """False when no datastore has that name."""
        with self.tx() as db:
            if db.execute("SELECT 1 FROM datastores WHERE name=?", (name,)).fetchone() is None:
                return False
            db.execute("UPDATE datastores SET is_default = (name = ?)", (name,))
        return True

    # -- datasets -------------------------------------------------------------------------------------------
    def register_dataset(self, name: str, kind: str, definition: dict, description, tags, new_version: bool) -> int | None:
        """The version now holding ``definition``: the latest one when it is the same, a new one when
        ``new_version`` allows; None when the name holds another definition and a new version was not asked."""
        stored, stored_tags = json.dumps(definition), json.dumps(tags or {})
        with self.tx() as db:
            row = db.execute("SELECT version, definition FROM datasets WHERE name=? ORDER BY version DESC LIMIT 1",
                             (name,)).fetchone()
            if row is not None and json.loads(row["definition"]) == definition:
                return row["version"]
            if row is not None and not new_version:
                return None
            version = 1 if row is None else row["version"] + 1
            db.execute("INSERT INTO datasets VALUES(?,?,?,?,?,?,?)",
                       (name, version, kind, stored, description, stored_tags, time.time()))
        return version

    def dataset(self, name: str, version: int | None = None) -> dict | None:
        """{"name", "version", "kind", "definition", "description", "tags", "created"} (the latest version
        by default)."""
        if version is None:
            row = self.db.execute("SELECT * FROM datasets WHERE name=? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
        else:
            row = self.db.execute("SELECT * FROM datasets WHERE name=? AND version=?", (name, version)).fetchone()
        if row is None:
            return None
        return {"name": row["name"], "version": row["version"], "kind": row["kind"],
                "definition": json.loads(row["definition"]), "description": row["description"],
                "tags": json.loads(row["tags"] or "{}"), "created": row["created"]}

    def dataset_versions(self, name: str) -> list[int]:
        return [r["version"] for r in self.db.execute("SELECT version FROM datasets WHERE name=? ORDER BY version",
                                                      (name,))]

    def dataset_names(self) -> list[str]:
        return [r["name"] for r in self.db.execute("SELECT DISTINCT name FROM datasets ORDER BY name")]

    def save_dataset(self, id: str, kind: str, definition: dict) -> None:
        """Keep an unregistered dataset a submission used under its id (the same definition, the same id)."""
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO saved_datasets VALUES(?,?,?,?)",
                       (id, kind, json.dumps(definition), time.time()))

    def saved_dataset(self, id: str) -> dict | None:
        """{"id", "kind", "definition"} of a saved dataset, or None."""
        row = self.db.execute("SELECT * FROM saved_datasets WHERE id=?", (id,)).fetchone()
        return None if row is None else {"id": row["id"], "kind": row["kind"],
                                         "definition": json.loads(row["definition"])}

    # -- compute targets -------------------------------------------------------------------------------------
    def compute_targets(self) -> dict[str, dict]:
        """Registered targets: name -> {"kind", "config"} (the built-in ones are the SDK's to add)."""
        out = {}
        for r in self.db.execute("SELECT name, kind, config FROM compute_targets"):
            try:
                config = json.loads(r["config"])
            except ValueError:
                config = {}
            out[r["name"]] = {"kind": r["kind"], "config": config}
        return out

    def save_compute_target(self, name: str, kind: str, config: dict) -> None:
        stored = json.dumps(config)
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO compute_targets VALUES(?,?,?,?)", (name, kind, stored, time.time()))

    def delete_compute_target(self, name: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM compute_targets WHERE name=?", (name,))

    # -- environments -------------------------------------------------------------------------------------------
    def register_environment(self, name: str, content_hash: str, definition: dict) -> int:
        """The version holding this content: the latest one when its hash is the same, else a new one."""
        with self.tx() as db:
            row = db.execute("SELECT version, hash FROM environments WHERE name=? ORDER BY version DESC LIMIT 1",
                             (name,)).fetchone()
            if row is not None and row["hash"] == content_hash:
                return row["version"]
            version = (row["version"] if row else 0) + 1
            db.execute("INSERT INTO environments VALUES(?,?,?,?,?)",
                       (name, version, content_hash, json.dumps({**definition, "version": str(version)}), time.time()))
        return version

    def environment_definition(self, name: str, version: int | None = None) -> dict | None:
        if version is None:
            row = self.db.execute("SELECT definition FROM environments WHERE name=? ORDER BY version DESC LIMIT 1",
                                  (name,)).fetchone()
        else:
            row = self.db.execute("SELECT definition FROM environments WHERE name=? AND version=?",
                                  (name, version)).fetchone()
        return None if row is None else json.loads(row["definition"])

    def environment_names(self) -> list[str]:
        return [r["name"] for r in self.db.execute("SELECT DISTINCT name FROM environments ORDER BY name")]

    def latest_environment_definitions(self) -> list[dict]:
        rows = self.db.execute("SELECT definition FROM environments e WHERE version = "
                               "(SELECT MAX(version) FROM environments WHERE name = e.name) ORDER BY name")
        return [json.loads(r["definition"]) for r in rows]

    # -- experiments ---------------------------------------------------------------------------------------------
    def experiment_names(self, archived: bool = False) -> list[str]:
        return [r["name"] for r in self.db.execute("SELECT name FROM experiments WHERE archived=? ORDER BY name",
                                                   (1 if archived else 0,))]

    def set_experiment_archived(self, name: str, archived: bool) -> None:
        with self.tx() as db:
            db.execute("UPDATE experiments SET archived=? WHERE name=?", (1 if archived else 0, name))

    def experiment_archived(self, name: str) -> bool:
        row = self.db.execute("SELECT archived FROM experiments WHERE name=?", (name,)).fetchone()
        return bool(row and row["archived"])

    # -- lookups ----------------------------------------------------------------------------------------------------
    def latest_output_digest(self, step_name: str, output: str, experiment: str) -> str | None:
        """The digest of ``output`` of the latest completed run of ``step_name``, this experiment first."""
        row = self.db.execute(
            "SELECT o.digest FROM runs r JOIN outputs o ON o.run_id = r.id WHERE r.kind='step' AND r.name=? "
            "AND r.status='Completed' AND o.name=? ORDER BY (r.experiment=?) DESC, r.created DESC LIMIT 1",
            (step_name, output, experiment)).fetchone()
        return None if row is None else row["digest"]
