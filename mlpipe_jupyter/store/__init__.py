"""The embedded store: one SQLite database (WAL) for history plus content-addressed files.

Everything that observes runs reads from here, so every write goes through this module.
Layout of the workspace folder (``.mlpipe/``)::

    mlpipe.db          runs, metrics, outputs, datastores, datasets, file-hash cache
    objects/ab/cdef..  content-addressed blobs (snapshot files, manifests)
    data/<digest>/     committed step outputs, one read-only directory per content digest
    runs/<run_id>/     per-run files: logs/, outputs/, metrics.jsonl
    tmp/               staging area; a step's outputs are renamed out of here only on success
    secret.key         per-workspace key that fingerprints secrets for reuse without storing them

The folder is private to its user (0700, database and key 0600) whatever the umask: runs can hold
data and parameters other users of the machine must not read.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import tempfile
import threading
import time
import uuid
from pathlib import Path

from mlpipe_jupyter.errors import UserError

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

# The columns every table must have; a database without them was damaged or written by something else.
_REQUIRED_COLUMNS = {
    "meta": {"key", "value"},
    "runs": {"id", "experiment", "kind", "parent_id", "name", "status", "created", "started", "ended", "error",
             "reuse_key", "reused_from", "reuse_reason", "runner_pid", "runner_start", "host", "pgid", "pgid_start",
             "details"},
    "outputs": {"run_id", "name", "digest"},
    "metrics": {"run_id", "seq", "name", "kind", "value", "ts"},
    "tags": {"run_id", "key", "value"},
    "file_hashes": {"path", "size", "mtime_ns", "ctime_ns", "ino", "digest"},
    "datastores": {"name", "kind", "config", "is_default"},
    "datasets": {"name", "version", "kind", "definition", "description", "tags", "created"},
    "compute_targets": {"name", "kind", "config", "created"},
    "environments": {"name", "version", "hash", "definition", "created"},
}
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
SEAL_NAME = ".mlpipe-seal.json"  # beside a committed output: what its files looked like when committed

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


class StoreError(UserError):
    """The workspace database could not be read or written: damaged, full disk, locked or read-only."""


def store_error(db_path, error: sqlite3.Error) -> StoreError:
    """One sentence for what SQLite reports, naming the database and what to do."""
    text = str(error)
    low = text.lower()
    if "full" in low:
        what = (f"The disk of workspace database '{db_path}' is full ({text}); the run history could not be "
                "written. Free some space; nothing half-written is reused.")
    elif "locked" in low or "busy" in low:
        what = (f"The workspace database '{db_path}' stayed locked by another process ({text}); try again when "
                "that process has finished writing.")
    elif "readonly" in low or "read-only" in low:
        what = f"The workspace database '{db_path}' is read-only ({text}); make it writable by its owner."
    elif isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError) \
            or any(w in low for w in ("not a database", "malformed", "no such table", "no such column",
                                      "has no column", "corrupt", "unable to open")):
        what = (f"The workspace database '{db_path}' is damaged ({text}). Move it aside to start a new history, "
                "or restore a backup; run logs and files in the workspace's runs/ folder stay readable.")
    else:
        what = f"The workspace database '{db_path}' could not be used: {text}."
    return StoreError(what)


def _reported(method):
    """The method, with SQLite's failures turned into one clear StoreError naming the database."""
    def call(self, *args):
        try:
            return method(self, *args)
        except sqlite3.Error as e:
            raise store_error(getattr(self, "connection", self).db_path, e) from None

    return call


class _Cursor(sqlite3.Cursor):
    """Reports SQLite failures as one clear StoreError, also while rows are fetched."""

    execute = _reported(sqlite3.Cursor.execute)
    executemany = _reported(sqlite3.Cursor.executemany)
    __next__ = _reported(sqlite3.Cursor.__next__)
    fetchone = _reported(sqlite3.Cursor.fetchone)
    fetchall = _reported(sqlite3.Cursor.fetchall)


class _Connection(sqlite3.Connection):
    db_path = ""

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def execute(self, sql, parameters=()):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq):
        return self.cursor().executemany(sql, seq)

    executescript = _reported(sqlite3.Connection.executescript)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)


class Store:
    """Thread-safe access to one workspace's database and files (one SQLite connection per thread)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        _private_dir(self.root)
        for sub in ("objects", "data", "runs", "tmp"):
            _private_dir(self.root / sub)
        self.db_path = self.root / "mlpipe.db"
        self._make_database_private()
        self._local = threading.local()
        self._json_set = None
        self.db.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._check_schema()

    def _make_database_private(self) -> None:
        """SQLite gives its -wal and -shm files the mode of the database file, so that file comes first, 0600."""
        if self.db_path.is_dir():
            raise StoreError(f"The workspace database '{self.db_path}' is a folder, not a database file.")
        try:
            os.close(os.open(self.db_path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, PRIVATE_FILE))
        except OSError as e:
            raise StoreError(f"The workspace database '{self.db_path}' cannot be opened: {e.strerror or e}.") from None
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.db_path}{suffix}", PRIVATE_FILE)

    def _check_schema(self) -> None:
        """A database of a newer version, or one missing our columns, is one clear error at open."""
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(row["value"])
        except (TypeError, ValueError):
            raise StoreError(f"The workspace database '{self.db_path}' is damaged (its schema version "
                             f"{None if row is None else row['value']!r} is not a number).") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"The workspace database '{self.db_path}' was written by a newer mlpipe-jupyter "
                             f"(schema {version}; this version reads up to {SCHEMA_VERSION}). Upgrade mlpipe-jupyter.")
        for table, columns in _REQUIRED_COLUMNS.items():
            have = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            missing = sorted(columns - have)
            if missing:
                raise StoreError(f"The workspace database '{self.db_path}' is damaged: table '{table}' lacks "
                                 f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)}. Move it aside to "
                                 "start a new history, or restore a backup.")

    # -- database ---------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None, check_same_thread=False,
                                       factory=_Connection)
            except sqlite3.Error as e:
                raise store_error(self.db_path, e) from None
            conn.db_path = str(self.db_path)
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
            if db.in_transaction:  # a failed write (a full disk) may have ended it already
                with contextlib.suppress(StoreError):
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

    # -- runs ------------------------------------------------------------------------------------
    def insert_runs(self, rows: list[dict]) -> None:
        """Many runs in one transaction: a 200-step reuse must not pay 200 fsyncs. Everything is serialized
        before the write lock is taken, so a huge pipeline document never holds the workspace locked."""
        prepared = []
        for fields in rows:
            fields = dict(fields)
            fields.setdefault("created", time.time())
            if "details" in fields:
                fields["details"] = json.dumps(fields["details"], default=str)
            prepared.append((f"INSERT INTO runs({', '.join(fields)}) VALUES({', '.join('?' for _ in fields)})",
                             tuple(fields.values())))
        with self.tx() as db:
            for sql, values in prepared:
                db.execute(sql, values)

    def update_run(self, run_id: str, details: dict | None = None, **fields) -> None:
        """Set columns and merge ``details`` keys (shallow). The merge happens inside SQLite, so the write
        lock is held for one statement, whatever the size of what is stored."""
        sets, values = [f"{k}=?" for k in fields], list(fields.values())
        if details and not self._has_json_set():  # an SQLite without JSON functions: merge here
            with self.tx() as db:
                row = db.execute("SELECT details FROM runs WHERE id=?", (run_id,)).fetchone()
                merged = json.loads(row["details"] or "{}") if row else {}
                merged.update(details)
                db.execute(f"UPDATE runs SET {', '.join([*sets, 'details=?'])} WHERE id=?",
                           (*values, json.dumps(merged, default=str), run_id))
            return
        if details:
            paths = []
            for key, value in details.items():
                if not re.fullmatch(r"[A-Za-z0-9_]+", key):
                    raise ValueError(f"details key {key!r} is not a plain name")
                paths.append(f"'$.{key}', json(?)")
                values.append(json.dumps(value, default=str))
            sets.append(f"details=json_set(COALESCE(details, '{{}}'), {', '.join(paths)})")
        if not sets:
            return
        with self.tx() as db:
            db.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id=?", (*values, run_id))

    def _has_json_set(self) -> bool:
        if self._json_set is None:
            try:
                self.db.execute("SELECT json_set('{}', '$.a', json('1'))").fetchone()
                self._json_set = True
            except StoreError:
                self._json_set = False
        return self._json_set

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

    # -- crash recovery ---------------------------------------------------------------------------------
    def recover_orphans(self) -> list[dict]:
        """Mark runs whose runner process died as Failed and kill what they left running; returns their rows.

        Called whenever a workspace is opened, so a kernel restart or ``kill -9`` never leaves a run
        that claims to be Running forever. Completed step runs of such a run stay reusable. What ran
        elsewhere than in a local process (a container) is the caller's to remove, from the rows.
        """
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
            recovered.append(r)
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
    try:
        d["details"] = json.loads(d.get("details") or "{}")
    except ValueError:  # a damaged row must not hide the rest of the history
        d["details"] = {"damaged": True}
    return d


def hostname() -> str:
    return socket.gethostname()


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
