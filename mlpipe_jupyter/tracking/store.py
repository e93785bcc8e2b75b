"""The embedded store: one SQLite database (WAL) for history plus content-addressed files.

Everything that observes runs reads from here, so every write goes through this module.
Layout of the workspace folder (``.mlpipe/``)::

    mlpipe.db          runs, metrics, outputs, datastores, datasets, file-hash cache
    objects/ab/cdef..  content-addressed blobs (snapshot files, manifests)
    data/<digest>/     committed step outputs, one read-only directory per content digest
    runs/<run_id>/     per-run files: logs/, outputs/, metrics.jsonl
    tmp/               staging area; a step's outputs are renamed out of here only on success
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS experiments(name TEXT PRIMARY KEY, created REAL, archived INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS runs(
    id TEXT PRIMARY KEY, experiment TEXT, kind TEXT, parent_id TEXT, name TEXT,
    status TEXT, created REAL, started REAL, ended REAL, error TEXT,
    reuse_key TEXT, reused_from TEXT, reuse_reason TEXT,
    runner_pid INTEGER, runner_start TEXT, host TEXT,
    pgid INTEGER, pgid_start TEXT,
    details TEXT DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_reuse ON runs(reuse_key, status, ended);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_id);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs(experiment, created);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name, kind, ended);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE TABLE IF NOT EXISTS outputs(run_id TEXT, name TEXT, digest TEXT, PRIMARY KEY(run_id, name));
CREATE TABLE IF NOT EXISTS metrics(run_id TEXT, seq INTEGER, name TEXT, kind TEXT, value TEXT, ts REAL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, seq);
CREATE TABLE IF NOT EXISTS tags(run_id TEXT, key TEXT, value TEXT, PRIMARY KEY(run_id, key));
CREATE TABLE IF NOT EXISTS file_hashes(
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER, digest TEXT);
CREATE TABLE IF NOT EXISTS datastores(name TEXT PRIMARY KEY, kind TEXT, config TEXT, is_default INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS datasets(
    name TEXT, version INTEGER, kind TEXT, definition TEXT, description TEXT, tags TEXT, created REAL,
    PRIMARY KEY(name, version));
CREATE TABLE IF NOT EXISTS compute_targets(name TEXT PRIMARY KEY, kind TEXT, config TEXT, created REAL);
CREATE TABLE IF NOT EXISTS environments(
    name TEXT, version INTEGER, hash TEXT, definition TEXT, created REAL, PRIMARY KEY(name, version));
"""

ACTIVE_STATUSES = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing", "CancelRequested")
FINAL_STATUSES = ("Completed", "Failed", "Canceled")


def new_id(prefix: str) -> str:
    """Sortable, unique ids: time first so listings read in order, random tail for two processes."""
    return f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:8]}"


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


class Store:
    """Thread-safe access to one workspace's database and files (one SQLite connection per thread)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        for sub in ("objects", "data", "runs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "mlpipe.db"
        self._local = threading.local()
        self.db.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))

    # -- database ---------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def tx(self):
        """A write transaction; IMMEDIATE so two processes never deadlock upgrading a read lock."""
        db = self.db
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

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
        """Move a finished output directory to its content address, atomically; read-only after."""
        target = self.data_path(digest)
        if target.exists():
            make_writable(staged)
            shutil.rmtree(staged, ignore_errors=True)
            return target
        _make_read_only(staged)
        try:
            os.rename(staged, target)
        except OSError:  # another process committed the same content first
            if not target.exists():
                raise
            make_writable(staged)
            shutil.rmtree(staged, ignore_errors=True)
        return target

    # -- run folders ---------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    # -- runs ------------------------------------------------------------------------------------
    def insert_runs(self, rows: list[dict]) -> None:
        """Many runs in one transaction: a 200-step reuse must not pay 200 fsyncs."""
        with self.tx() as db:
            for fields in rows:
                fields.setdefault("created", time.time())
                if "details" in fields:
                    fields["details"] = json.dumps(fields["details"], default=str)
                cols = ", ".join(fields)
                marks = ", ".join("?" for _ in fields)
                db.execute(f"INSERT INTO runs({cols}) VALUES({marks})", tuple(fields.values()))

    def update_run(self, run_id: str, details: dict | None = None, **fields) -> None:
        with self.tx() as db:
            if details:
                row = db.execute("SELECT details FROM runs WHERE id=?", (run_id,)).fetchone()
                merged = json.loads(row["details"] or "{}") if row else {}
                merged.update(details)
                fields["details"] = json.dumps(merged, default=str)
            if fields:
                sets = ", ".join(f"{k}=?" for k in fields)
                db.execute(f"UPDATE runs SET {sets} WHERE id=?", (*fields.values(), run_id))

    def request_cancel(self, run_id: str) -> bool:
        """Ask a run's runner, maybe in another process, to cancel it. Checked and set in one transaction,
        so a run that has just ended is never put back to CancelRequested; False when it had ended."""
        with self.tx() as db:
            row = db.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None or row["status"] in FINAL_STATUSES:
                return False
            self.update_run(run_id, status="CancelRequested", details={"cancel_requested": True})
        return True

    def get_run(self, run_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return _row(row)

    def child_runs(self, parent_id: str) -> list[dict]:
        rows = self.db.execute("SELECT * FROM runs WHERE parent_id=? ORDER BY created, rowid", (parent_id,))
        return [_row(r) for r in rows]

    def find_reusable(self, reuse_key: str) -> dict | None:
        row = self.db.execute(
            "SELECT * FROM runs WHERE reuse_key=? AND status='Completed' ORDER BY ended DESC LIMIT 1",
            (reuse_key,),
        ).fetchone()
        return _row(row)

    def latest_step_run(self, step_name: str, experiment: str | None) -> dict | None:
        """The run to compare against when explaining a cache miss: same step, same experiment first."""
        for exp_clause, args in ((" AND experiment=?", (experiment,)), ("", ())):
            row = self.db.execute(
                "SELECT * FROM runs WHERE kind='step' AND name=? AND reuse_key IS NOT NULL "
                f"AND status IN ('Completed','Failed','Canceled'){exp_clause} ORDER BY created DESC LIMIT 1",
                (step_name, *args),
            ).fetchone()
            if row is not None:
                return _row(row)
        return None

    def list_runs(self, experiment: str | None = None, kinds=("pipeline", "script"), limit: int | None = None):
        q = f"SELECT * FROM runs WHERE kind IN ({','.join('?' for _ in kinds)})"
        args: list = list(kinds)
        if experiment:
            q += " AND experiment=?"
            args.append(experiment)
        q += " ORDER BY created DESC, rowid DESC"
        if limit:
            q += f" LIMIT {int(limit)}"
        return [_row(r) for r in self.db.execute(q, args)]

    # -- outputs -----------------------------------------------------------------------------------
    def set_outputs(self, run_id: str, outputs: dict[str, str]) -> None:
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO outputs VALUES(?,?,?)", [(run_id, k, v) for k, v in outputs.items()])

    def get_outputs(self, run_id: str) -> dict[str, str]:
        return {r["name"]: r["digest"] for r in self.db.execute("SELECT name, digest FROM outputs WHERE run_id=?", (run_id,))}

    # -- metrics and tags ---------------------------------------------------------------------------
    def add_metrics(self, run_id: str, records: list[dict]) -> None:
        if not records:
            return
        with self.tx() as db:
            start = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]
            db.executemany(
                "INSERT INTO metrics VALUES(?,?,?,?,?,?)",
                [(run_id, start + i, r["name"], r.get("kind", "scalar"), json.dumps(r["value"], default=str),
                  r.get("ts", time.time())) for i, r in enumerate(records)],
            )

    def get_metric_records(self, run_id: str) -> list[dict]:
        rows = self.db.execute("SELECT name, kind, value, ts FROM metrics WHERE run_id=? ORDER BY seq", (run_id,))
        return [{"name": r["name"], "kind": r["kind"], "value": json.loads(r["value"]), "ts": r["ts"]} for r in rows]

    def set_tags(self, run_id: str, tags: dict) -> None:
        if tags:
            with self.tx() as db:
                db.executemany("INSERT OR REPLACE INTO tags VALUES(?,?,?)", [(run_id, k, str(v)) for k, v in tags.items()])

    def get_tags(self, run_id: str) -> dict:
        return {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM tags WHERE run_id=?", (run_id,))}

    # -- file hash cache ------------------------------------------------------------------------------
    def cached_digests(self, paths: list[str]) -> dict[str, tuple]:
        out = {}
        db = self.db
        for i in range(0, len(paths), 500):
            chunk = paths[i:i + 500]
            q = f"SELECT * FROM file_hashes WHERE path IN ({','.join('?' for _ in chunk)})"
            for r in db.execute(q, chunk):
                out[r["path"]] = (r["size"], r["mtime_ns"], r["ctime_ns"], r["ino"], r["digest"])
        return out

    def remember_digests(self, rows: list[tuple]) -> None:
        if rows:
            with self.tx() as db:
                db.executemany("INSERT OR REPLACE INTO file_hashes VALUES(?,?,?,?,?,?)", rows)

    # -- experiments -----------------------------------------------------------------------------------
    def ensure_experiment(self, name: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO experiments(name, created) VALUES(?, ?)", (name, time.time()))

    # -- crash recovery ---------------------------------------------------------------------------------
    def recover_orphans(self) -> list[str]:
        """Mark runs whose runner process died as Failed and kill what they left running.

        Called whenever a workspace is opened, so a kernel restart or ``kill -9`` never leaves a run
        that claims to be Running forever. Completed step runs of such a run stay reusable.
        """
        import signal

        active = ",".join(f"'{s}'" for s in ACTIVE_STATUSES)
        rows = [_row(r) for r in self.db.execute(f"SELECT * FROM runs WHERE status IN ({active})")]
        dead_runners = {}
        for r in rows:
            if r["parent_id"] is None and r["runner_pid"] and r["host"] == hostname():
                if not process_alive(r["runner_pid"], r["runner_start"]):
                    dead_runners[r["id"]] = r
        if not dead_runners:
            return []
        reason = "The process that ran this run (pid {pid}) ended before the run finished (kernel restart or kill)."
        now = time.time()
        recovered = []
        for r in rows:
            top = r["id"] if r["parent_id"] is None else r["parent_id"]
            if top not in dead_runners:
                continue
            if r["pgid"] and process_alive(r["pgid"], r["pgid_start"]):
                with contextlib.suppress(OSError):
                    os.killpg(r["pgid"], signal.SIGKILL)
            msg = reason.format(pid=dead_runners[top]["runner_pid"])
            status = "Failed" if r["status"] in ("Running", "Preparing", "Finalizing") or r["id"] == top else "Canceled"
            self.update_run(r["id"], status=status, ended=now, error=msg if status == "Failed" else "Not run: " + msg)
            recovered.append(r["id"])
            self._remove_staging(r["id"])
        return recovered

    def _remove_staging(self, run_id: str) -> None:
        """The half-written outputs and working copy a killed step left in tmp/; nothing refers to them."""
        for leftover in (self.root / "tmp").glob(f"step-{run_id}-*"):
            make_writable(leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _row(row) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    d["details"] = json.loads(d.get("details") or "{}")
    return d


def hostname() -> str:
    import socket

    return socket.gethostname()


def _make_read_only(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode & ~0o222)
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        os.chmod(dirpath, os.stat(dirpath).st_mode & ~0o222)


def make_writable(path: Path) -> None:
    """Owner may write (and enter) everything below path; symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o700)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o600)
