"""The workspace database: one SQLite file in WAL mode, a connection per thread, write transactions,
the schema, and SQLite's failures turned into one clear sentence naming the database."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path

from mlpipe_jupyter.errors import UserError


SCHEMA_VERSION = 7
_BASE_VERSION = 1  # what _SCHEMA makes; _MIGRATIONS bring it up to SCHEMA_VERSION


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


# Version -> the statements that bring a database of the version before up to it. Each runs in one write
# transaction with the new version number, so an interrupted upgrade leaves the older schema, never half.
_MIGRATIONS = {
    2: ("""CREATE TABLE IF NOT EXISTS models(
            name TEXT, version INTEGER, digest TEXT, asset TEXT, description TEXT, tags TEXT, properties TEXT,
            run_id TEXT, details TEXT, created REAL, deleted INTEGER DEFAULT 0, PRIMARY KEY(name, version))""",
        "CREATE INDEX IF NOT EXISTS models_created ON models(created)"),
    3: ("""CREATE TABLE IF NOT EXISTS modules(
            id TEXT PRIMARY KEY, name TEXT UNIQUE, description TEXT, status TEXT, default_version TEXT, created REAL)""",
        """CREATE TABLE IF NOT EXISTS module_versions(
            id TEXT PRIMARY KEY, module_id TEXT, version TEXT, description TEXT, status TEXT, definition TEXT,
            digest TEXT, created REAL, updated REAL)""",
        "CREATE INDEX IF NOT EXISTS module_versions_module ON module_versions(module_id, created)"),
    4: ("""CREATE TABLE IF NOT EXISTS published_pipelines(
            id TEXT PRIMARY KEY, name TEXT, description TEXT, version TEXT, status TEXT,
            continue_on_step_failure INTEGER, document TEXT, created REAL)""",
        """CREATE TABLE IF NOT EXISTS pipeline_endpoints(
            id TEXT PRIMARY KEY, name TEXT UNIQUE, description TEXT, status TEXT, default_version TEXT, created REAL)""",
        """CREATE TABLE IF NOT EXISTS endpoint_versions(
            endpoint_id TEXT, version TEXT, pipeline_id TEXT, created REAL, PRIMARY KEY(endpoint_id, version))""",
        """CREATE TABLE IF NOT EXISTS pipeline_drafts(
            id TEXT PRIMARY KEY, name TEXT, description TEXT, experiment_name TEXT, parameters TEXT, tags TEXT,
            continue_on_step_failure INTEGER, document TEXT, created REAL, updated REAL)"""),
    5: ("""CREATE TABLE IF NOT EXISTS schedules(
            id TEXT PRIMARY KEY, name TEXT, description TEXT, status TEXT, pipeline_id TEXT,
            pipeline_endpoint_id TEXT, experiment_name TEXT, recurrence TEXT, pipeline_parameters TEXT,
            datastore_name TEXT, polling_interval INTEGER, data_path_parameter_name TEXT,
            continue_on_step_failure INTEGER, path_on_datastore TEXT, anchor REAL, next_due REAL, fingerprint TEXT,
            pending TEXT, last_run_id TEXT, last_error TEXT, created REAL, updated REAL)""",),
    # a run queued by a REST call or a schedule, with the request a server starts it from
    6: ("CREATE TABLE IF NOT EXISTS run_requests(run_id TEXT PRIMARY KEY, request TEXT)",),
    # an unregistered dataset a submission used, by the id it got then (what REST bodies name it by)
    7: ("""CREATE TABLE IF NOT EXISTS saved_datasets(
            id TEXT PRIMARY KEY, kind TEXT, definition TEXT, created REAL)""",),
}


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
    "saved_datasets": {"id", "kind", "definition", "created"},
    "compute_targets": {"name", "kind", "config", "created"},
    "environments": {"name", "version", "hash", "definition", "created"},
    "models": {"name", "version", "digest", "asset", "description", "tags", "properties", "run_id", "details",
               "created", "deleted"},
    "modules": {"id", "name", "description", "status", "default_version", "created"},
    "module_versions": {"id", "module_id", "version", "description", "status", "definition", "digest", "created",
                        "updated"},
    "published_pipelines": {"id", "name", "description", "version", "status", "continue_on_step_failure",
                            "document", "created"},
    "pipeline_endpoints": {"id", "name", "description", "status", "default_version", "created"},
    "endpoint_versions": {"endpoint_id", "version", "pipeline_id", "created"},
    "pipeline_drafts": {"id", "name", "description", "experiment_name", "parameters", "tags",
                        "continue_on_step_failure", "document", "created", "updated"},
    "schedules": {"id", "name", "description", "status", "pipeline_id", "pipeline_endpoint_id", "experiment_name",
                  "recurrence", "pipeline_parameters", "datastore_name", "polling_interval",
                  "data_path_parameter_name", "continue_on_step_failure", "path_on_datastore", "anchor", "next_due",
                  "fingerprint", "pending", "last_run_id", "last_error", "created", "updated"},
}


PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


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



class Database:
    """The database part of the store (mixed into ``Store``)."""

    def _open_database(self) -> None:
        self.db_path = self.root / "mlpipe.db"
        self._threads_lock = threading.Lock()
        self._thread_connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._make_database_private()
        self._json_set = None
        self.db.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(_BASE_VERSION),))
        self._migrate()
        self._check_schema()

    def _stored_version(self) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            return int(row["value"])
        except (TypeError, ValueError):
            return None  # _check_schema says what is wrong

    def _migrate(self) -> None:
        """Bring an older database up to SCHEMA_VERSION, one version a transaction; the version is read
        again under the write lock, so two processes opening an old database upgrade it once."""
        version = self._stored_version()
        if version is None or version >= SCHEMA_VERSION:
            return
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.tx() as db:
                if self._stored_version() != target - 1:
                    continue
                for sql in _MIGRATIONS[target]:
                    db.execute(sql)
                db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(target),))

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
            conn = self._connect()
            self._local.conn = conn
            self._keep_for_thread(conn)
        return conn

    def _keep_for_thread(self, conn: sqlite3.Connection) -> None:
        """Note the calling thread's new connection and close those of threads that have ended. A short-lived
        thread (a run's, a step pool's, a follower's) never closes its own, and left to the garbage collector
        each keeps its database file descriptor: SQLite cannot close it while another connection of the
        process holds a lock on the file, and in WAL mode every open connection does."""
        with self._threads_lock:
            for thread in [t for t in self._thread_connections if not t.is_alive()]:
                self._thread_connections.pop(thread).close()
            self._thread_connections[threading.current_thread()] = conn

    def _connect(self) -> sqlite3.Connection:
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
            with self._threads_lock:
                self._thread_connections.pop(threading.current_thread(), None)
            conn.close()
            self._local.conn = None

    def _has_json_set(self) -> bool:
        if self._json_set is None:
            try:
                self.db.execute("SELECT json_set('{}', '$.a', json('1'))").fetchone()
                self._json_set = True
            except StoreError:
                self._json_set = False
        return self._json_set

