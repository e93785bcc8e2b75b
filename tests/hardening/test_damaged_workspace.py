"""A damaged workspace (a corrupted or foreign database, a wrong schema, a damaged config) is one clear
sentence from every command that opens it, never a traceback."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe_jupyter import Workspace

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def garbage_database(folder):
    (folder / "mlpipe.db").write_bytes(b"this is not a database at all\n" * 500)


def database_is_a_folder(folder):
    (folder / "mlpipe.db").unlink()
    (folder / "mlpipe.db").mkdir()


def truncated_database(folder):
    db = folder / "mlpipe.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


def corrupted_pages(folder):
    db = folder / "mlpipe.db"
    data = bytearray(db.read_bytes())
    for i in range(4096, len(data), 7):  # everything after the first page
        data[i] = 0xA5
    db.write_bytes(bytes(data))


def foreign_runs_table(folder):
    _sql(folder, "DROP TABLE runs", "CREATE TABLE runs(id TEXT PRIMARY KEY, something_else TEXT)")


def newer_schema(folder):
    _sql(folder, "UPDATE meta SET value='99' WHERE key='schema_version'")


def unreadable_schema_version(folder):
    _sql(folder, "UPDATE meta SET value='banana' WHERE key='schema_version'")


def config_not_json(folder):
    (folder / "config.json").write_text("{name: oops")


def config_a_list(folder):
    (folder / "config.json").write_text("[1, 2, 3]")


def config_name_not_text(folder):
    (folder / "config.json").write_text(json.dumps({"name": 42}))


def config_is_a_folder(folder):
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()


def config_empty(folder):
    (folder / "config.json").write_text("")


def _sql(folder, *statements):
    with sqlite3.connect(folder / "mlpipe.db") as db:
        for sql in statements:
            db.execute(sql)
    db.close()


DAMAGES = [garbage_database, database_is_a_folder, truncated_database, corrupted_pages, foreign_runs_table,
           newer_schema, unreadable_schema_version, config_not_json, config_a_list, config_name_not_text,
           config_is_a_folder, config_empty]


@pytest.fixture
def finished_workspace(tmp_path):
    ws = Workspace.create("damaged", path=tmp_path / "ws")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print('hello')\n")
    (tmp_path / "p.yaml").write_text(f"steps: [{{name: s, script: s.py, source_directory: {tmp_path / 'src'}}}]\n")
    r = subprocess.run([sys.executable, "-m", "mlpipe_jupyter.cli", "run", str(tmp_path / "p.yaml")],
                       cwd=ws.path, env=ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(ws.folder / "mlpipe.db") as db:  # fold the log into the database file itself
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{ws.folder / 'mlpipe.db'}{suffix}").unlink(missing_ok=True)
    return ws


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__ for d in DAMAGES])
@pytest.mark.parametrize("command", [["runs"], ["run", "p.yaml"]], ids=["runs", "run"])
def test_a_damaged_workspace_is_one_clear_sentence(finished_workspace, damage, command, tmp_path):
    damage(finished_workspace.folder)
    args = [str(tmp_path / a) if a.endswith(".yaml") else a for a in command]
    r = subprocess.run([sys.executable, "-m", "mlpipe_jupyter.cli", *args], cwd=finished_workspace.path, env=ENV,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("mlpipe: error:")]
    assert len(errors) == 1, r.stderr
    assert ("mlpipe.db" in errors[0]) or ("config.json" in errors[0]), errors[0]
