"""The worker side of a ParallelRunStep: what its step process runs (sdk/parallel_run.py builds the step).

The step's process is the coordinator. It cuts the inputs into mini-batches (so many files of a
FileDataset, about so many bytes of a TabularDataset's files, never across a file), starts worker
processes that each import the entry script and call ``init()`` once, hands each idle worker one
mini-batch for ``run(mini_batch)``, and retries a batch that raised, returned nothing usable, or ran
past ``run_invocation_timeout`` (its worker is killed and replaced). Results are appended in batch
order, so a rerun on the same data writes the same file. Progress and per-batch errors go to the
step log; each worker's prints, ``EntryScript`` log and tracebacks go under ``logs/user/`` as in
Azure ML. Workers talk to the coordinator over a pipe each, so killing one never corrupts the others'.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import logging
import math
import multiprocessing
import os
import re
import sys
import time
import traceback
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path

from mlpipe_jupyter.data.partitions import PartitionFormat, path_on_source
from mlpipe_jupyter.data.tables import read_delimited, read_files
from mlpipe_jupyter.running.contract import INPUT_DATASETS_VAR

NODE = "127.0.0.1"  # one machine: the node folder Azure names by address
DEFAULT_APPEND_ROW_FILE = "parallel_run_step.txt"
SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([kmg]b)?\s*$", re.IGNORECASE)
UNITS = {None: 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}
LOGGING_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PROGRESS_SECONDS = 1.0  # at most one progress line a second, and the last


def parse_size(value) -> int | None:
    """``10``, ``"10"``, ``"10KB"``, ``"1MB"``, ``"1GB"`` as a number (of files, or bytes); None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = SIZE_PATTERN.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) <= 0:
        return None
    return int(match.group(1)) * UNITS[(match.group(2) or "").lower() or None]


def default_process_count() -> int:
    """The cores this process may use (Azure's default for a CPU node)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# -- the entry script's helper ----------------------------------------------------------------------------
class EntryScript:
    """What an entry script asks about its run (``from azureml_user.parallel_run import EntryScript``).

    One instance per process: ``logger`` writes to ``logs/user/entry_script_log/<node>/<process>.log.txt``,
    ``output_dir`` is the step's output folder (write there with output_action='summary_only'),
    ``working_dir`` a scratch folder the processes share. Outside a parallel run it still works, so an
    entry script can be tried by hand."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._set(logging.getLogger("EntryScript"), os.getcwd(), os.getcwd())
        return cls._instance

    def _set(self, logger, output_dir, working_dir):
        self.logger, self.output_dir, self.working_dir = logger, str(output_dir), str(working_dir)


# -- mini-batches -------------------------------------------------------------------------------------------
def _files_below(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(d, f) for d, _, names in os.walk(path, followlinks=True) for f in names)


def mini_batches(inputs: list[dict], size: int) -> list[dict]:
    """Each input is cut on its own: ``size`` files a batch, or for a table about ``size`` bytes of one file."""
    batches = []
    for inp in inputs:
        files = _files_below(inp["path"])
        if inp["kind"] == "file":
            batches += [{"kind": "file", "files": files[i:i + size]} for i in range(0, len(files), size)]
            continue
        for f in files:
            parts = max(1, math.ceil(os.path.getsize(f) / size))
            batches += [{"kind": "tabular", "file": f, "options": inp["options"], "part": i, "parts": parts}
                        for i in range(parts)]
    return batches


def partition_batches(inputs: list[dict], keys: list[str]) -> list[dict]:
    """One mini-batch per partition of each input: its files whose paths give the same values of ``keys``
    (in the order the partitions first come); a file the input's partition_format does not fit is refused."""
    batches = []
    for inp in inputs:
        options = inp["options"]
        fmt = options.get("partition_format")
        if not fmt:
            raise SystemExit(f"ParallelRunStep: input '{inp['name']}' is not a partitioned dataset, so it cannot be "
                             f"cut by partition_keys {keys}.")
        fmt = PartitionFormat(fmt)
        groups: dict[tuple, dict] = {}
        for f in _files_below(inp["path"]):
            rel = os.path.relpath(f, inp["path"]) if os.path.isdir(inp["path"]) else ""
            roots = options.get("partition_roots")
            source = path_on_source(rel, roots) if roots else f
            values = fmt.values(source)
            if values is None:
                if inp["kind"] == "tabular" and os.path.basename(f).startswith(("_", ".")):
                    continue
                raise SystemExit(f"ParallelRunStep: the file '{source}' of input '{inp['name']}' does not fit its "
                                 f"partition_format '{fmt.text}'.")
            if any(k not in values for k in keys):
                raise SystemExit(f"ParallelRunStep: input '{inp['name']}' has no partition key "
                                 f"{next(k for k in keys if k not in values)!r} (its keys: {', '.join(fmt.keys)}).")
            value = {k: values[k] for k in keys}
            batch = groups.setdefault(tuple(str(v) for v in value.values()),
                                      {"kind": inp["kind"], "files": [], "sources": [], "partition": value,
                                       "options": options})
            batch["files"].append(f)
            batch["sources"].append(source)
        batches += groups.values()
    return batches


def describe(batch: dict) -> str:
    if "partition" in batch:
        return "partition " + ", ".join(f"{k}={v}" for k, v in batch["partition"].items())
    if batch["kind"] == "file":
        names = [os.path.basename(f) for f in batch["files"]]
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    part = f" (part {batch['part'] + 1} of {batch['parts']})" if batch["parts"] > 1 else ""
    return os.path.basename(batch["file"]) + part


# -- a worker process ----------------------------------------------------------------------------------------
def _log_file(kind: str, process: str, suffix: str) -> Path:
    path = Path("logs", "user", kind, NODE, f"{process}.{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _worker(conn, process: str, settings: dict) -> None:
    """Import the entry script, call init() once, then run(mini_batch) for each batch the coordinator sends."""
    for fd, kind in ((1, "stdout"), (2, "stderr")):  # the entry script's prints go to its own files, as in Azure
        getattr(sys, kind).flush()
        out = os.open(_log_file(kind, process, f"{kind}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, fd)
        os.close(out)
    logger = logging.getLogger(f"EntryScript.{process}")
    logger.setLevel(settings["logging_level"])
    handler = logging.FileHandler(_log_file("entry_script_log", process, "log.txt"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    EntryScript()._set(logger, settings["output_dir"], settings["working_dir"])
    try:
        module = _import_entry_script(settings["entry_script"])
        if callable(getattr(module, "init", None)):
            module.init()
    except BaseException:  # noqa: BLE001 - whatever it is, the coordinator says it
        _record_error(process, "init()", traceback.format_exc())
        conn.send(("init_failed", traceback.format_exc()))
        return
    conn.send(("ready", None))
    cache = {}
    takes_context = _takes_context(module.run)
    while True:
        task = conn.recv()
        if task is None:
            return
        index, batch = task
        conn.send(("started", index))
        try:
            mini_batch, items = _load(batch, cache)
            if "partition" in batch and takes_context:
                result = module.run(mini_batch, MiniBatchContext(batch, mini_batch))
            else:
                result = module.run(mini_batch)
            done, text = _rows(result, settings["append_row"])
            conn.send(("done", (index, items, done, text)))
        except BaseException:  # noqa: BLE001
            tb = traceback.format_exc()
            _record_error(process, f"run() on mini batch {index} ({describe(batch)})", tb)
            conn.send(("error", (index, tb.strip().splitlines()[-1])))


def _import_entry_script(path: str):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"The entry script '{os.path.basename(path)}' defines no run(mini_batch) function.")
    return module


def _takes_context(run) -> bool:
    """Whether run() has room for a second positional argument, the mini-batch's context."""
    try:
        params = inspect.signature(run).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class MiniBatchContext:
    """What run(mini_batch, mini_batch_context) gets for one partition: ``partition_key_value`` (a dict of
    the partition_keys) and ``dataset``, the partition's part of the input."""

    def __init__(self, batch: dict, mini_batch):
        self.partition_key_value = dict(batch["partition"])
        self.dataset = PartitionData(batch, mini_batch)

    def __repr__(self):
        return f"MiniBatchContext(partition_key_value={self.partition_key_value})"


class PartitionData:
    """One partition of an input dataset: its files (``to_path``) or its rows (``to_pandas_dataframe``)."""

    def __init__(self, batch: dict, mini_batch):
        self._batch, self._mini_batch = batch, mini_batch

    def to_path(self) -> list[str]:
        return list(self._batch["files"])

    def to_pandas_dataframe(self):
        if self._batch["kind"] == "file":
            raise TypeError("A partition of a FileDataset has files, not rows: use to_path().")
        return self._mini_batch.copy()

    def __repr__(self):
        kind = "TabularDataset" if self._batch["kind"] == "tabular" else "FileDataset"
        return f"{kind} partition {self._batch['partition']} ({len(self._batch['files'])} files)"


def _load(batch: dict, cache: dict):
    """(mini_batch, items): file paths, or the batch's rows of its file (the last file read is kept)."""
    if batch["kind"] == "tabular" and "partition" in batch:  # a partition: all its files, with its key columns
        table = read_files(list(zip(batch["files"], batch["sources"])), batch["options"])
        return table, len(table)
    if batch["kind"] == "file":
        return list(batch["files"]), len(batch["files"])
    if cache.get("file") != batch["file"]:
        cache.clear()
        cache.update(file=batch["file"], table=read_delimited([batch["file"]], batch["options"]))
    table = cache["table"]
    start, end = (len(table) * batch["part"]) // batch["parts"], (len(table) * (batch["part"] + 1)) // batch["parts"]
    return table.iloc[start:end].reset_index(drop=True), end - start


def _rows(result, append_row: bool) -> tuple[int, str]:
    """(successful items, text to append): one row per element, a DataFrame's columns space-separated."""
    if hasattr(result, "to_csv") and hasattr(result, "columns"):
        return len(result), result.to_csv(sep=" ", header=False, index=False) if append_row else ""
    if result is None or isinstance(result, (str, bytes, dict)) or not hasattr(result, "__len__"):
        raise TypeError(f"run() must return a list or a pandas DataFrame, one element per item it processed; "
                        f"it returned {type(result).__name__}.")
    return len(result), "".join(f"{row}\n" for row in result) if append_row else ""


def _record_error(process: str, where: str, tb: str) -> None:
    with open(_log_file("error", process, "txt"), "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {where} failed:\n{tb}\n")


# -- the coordinator --------------------------------------------------------------------------------------------
def _init_failure(process: str, tb: str) -> str:
    """The traceback into the step log; the reason the step fails, naming the process and the error."""
    print(tb.rstrip(), flush=True)
    return f"init() of the entry script failed in {process}: {tb.strip().splitlines()[-1]}"


def _last_message(conn):
    """A message a worker sent before it ended, if one is waiting."""
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


class _Slot:
    """One worker process and what it is doing (its generation tells a replaced worker's messages apart)."""

    def __init__(self, ctx, number: int, settings: dict):
        self.name = f"process{number:03d}"
        self.ctx, self.settings = ctx, settings
        self.task = None  # (index, batch) sent and not answered
        self.started = None  # when run() began on it
        self.start()

    def start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, self.name, self.settings), name=self.name, daemon=True)
        self.proc.start()
        child.close()
        self.ready, self.task, self.started = False, None, None

    def kill(self):
        self.proc.kill()
        self.proc.join()
        self.conn.close()


class Coordinator:
    def __init__(self, args, inputs: list[dict]):
        self.args = args
        if args.partition_keys:
            self.batches = partition_batches(inputs, json.loads(args.partition_keys))
        else:
            self.size = parse_size(args.mini_batch_size)
            if self.size is None:
                raise SystemExit(f"ParallelRunStep: mini_batch_size {args.mini_batch_size!r} is not a positive "
                                 "number (of files) or size such as 10KB, 1MB, 1GB.")
            self.batches = mini_batches(inputs, self.size)
        self.pending = deque(range(len(self.batches)))  # batch indexes waiting for a worker
        self.tries = [0] * len(self.batches)
        self.results: dict[int, str] = {}
        self.written = 0
        self.items_done = self.items_failed = self.batches_failed = self.batches_done = 0
        self.last_progress = 0.0
        self.output = Path(args.output) if args.output else None
        self.append_row = args.output_action.lower() == "append_row"
        self.row_file = (self.output / (args.append_row_file_name or DEFAULT_APPEND_ROW_FILE)) if self.append_row else None

    def run(self) -> str | None:
        """Process every batch; the reason the step fails, or None."""
        a = self.args
        processes = int(a.process_count_per_node) if a.process_count_per_node else default_process_count()
        processes = max(1, min(processes, len(self.batches)))
        cut = f"partition_keys={a.partition_keys}" if a.partition_keys else f"mini_batch_size={a.mini_batch_size}"
        print(f"ParallelRunStep: {len(self.batches)} mini batches ({cut}) for "
              f"{a.scoring_module_name} in {processes} worker processes; their prints and logs are in logs/user/.",
              flush=True)
        if self.row_file is not None:
            self.row_file.parent.mkdir(parents=True, exist_ok=True)
            self.row_file.write_text("")
        if not self.batches:
            return None
        working_dir = Path("parallel_run_working_dir").resolve()
        working_dir.mkdir(exist_ok=True)
        settings = {"entry_script": str(Path(a.scoring_module_name).resolve()), "logging_level": a.logging_level.upper(),
                    "append_row": self.append_row, "working_dir": str(working_dir),
                    "output_dir": str(self.output or working_dir)}
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        slots = [_Slot(ctx, i, settings) for i in range(processes)]
        try:
            return self._loop(slots)
        finally:
            for slot in slots:
                if slot.proc.is_alive() and slot.task is None:
                    try:
                        slot.conn.send(None)
                    except OSError:
                        pass
            for slot in slots:
                slot.proc.join(5)
                if slot.proc.is_alive():
                    slot.kill()

    def _kind(self) -> str:
        return self.batches[0]["kind"] if self.batches else "file"

    def _loop(self, slots) -> str | None:
        a = self.args
        timeout, max_try = float(a.run_invocation_timeout), int(a.run_max_try)
        while self.pending or any(s.task for s in slots):
            for slot in slots:
                if slot.ready and slot.task is None and self.pending:
                    index = self.pending.popleft()
                    slot.task, slot.started = (index, self.batches[index]), None
                    slot.conn.send(slot.task)
            live = {s.conn: s for s in slots}
            for conn in wait(list(live), timeout=0.2):
                slot = live[conn]
                try:
                    kind, value = conn.recv()
                except (EOFError, OSError):
                    continue  # it died: seen below
                if kind == "ready":
                    slot.ready = True
                elif kind == "init_failed":
                    return _init_failure(slot.name, value)
                elif kind == "started":
                    slot.started = time.monotonic()
                elif kind == "done":
                    index, items, done, text = value
                    slot.task = None
                    self._finished(index, items, done, text)
                elif kind == "error":
                    index, message = value
                    slot.task = None
                    self._attempt_failed(index, f"raised {message}", max_try)
            now = time.monotonic()
            for slot in slots:
                overdue = slot.task and slot.started is not None and now - slot.started > timeout
                if overdue or not slot.proc.is_alive():
                    if not slot.ready and not overdue:
                        last = _last_message(slot.conn)  # it may have said why just before it ended
                        if last and last[0] == "init_failed":
                            return _init_failure(slot.name, last[1])
                        return f"Worker {slot.name} ended (exit code {slot.proc.exitcode}) before init() returned."
                    task = slot.task
                    slot.kill()
                    if task is not None:
                        why = (f"did not return within run_invocation_timeout={a.run_invocation_timeout}s"
                               if overdue else f"ended its worker process (exit code {slot.proc.exitcode})")
                        self._attempt_failed(task[0], why, max_try)
                    slot.start()
            reason = self._over_threshold(final=False)
            if reason:
                return reason
            self._progress()
        self._progress(final=True)
        return self._over_threshold(final=True)

    def _finished(self, index, items, done, text):
        self.batches_done += 1
        self.items_done += min(done, items)
        if done < items:
            self.items_failed += items - done
            print(f"ParallelRunStep: mini batch {index} ({describe(self.batches[index])}): run() returned "
                  f"{done} results for {items} items; {items - done} count as failed.", flush=True)
        self.results[index] = text
        self._write()

    def _attempt_failed(self, index, why, max_try):
        self.tries[index] += 1
        tries = self.tries[index]
        print(f"ParallelRunStep: mini batch {index} ({describe(self.batches[index])}) failed, try {tries} of "
              f"{max_try}: run() {why}", flush=True)
        with open(Path("logs", "user", "error.txt"), "a") as f:
            f.write(f"mini batch {index} ({describe(self.batches[index])}), try {tries}: run() {why}\n")
        if tries < max_try:
            self.pending.append(index)
            return
        batch = self.batches[index]
        items = len(batch["files"]) if batch["kind"] == "file" else None
        if items is None:  # the rows it held, counted without the worker
            items = _load(batch, {})[1]
        self.batches_failed += 1
        self.items_failed += items
        self.results[index] = ""
        self._write()

    def _write(self):
        """Append finished batches' rows in batch order (a failed batch adds none)."""
        chunks = []
        while self.written in self.results:
            chunks.append(self.results.pop(self.written))
            self.written += 1
        if self.row_file is not None and any(chunks):
            with open(self.row_file, "a") as f:
                f.write("".join(chunks))

    def _over_threshold(self, final: bool) -> str | None:
        a = self.args
        what = "records" if self._kind() == "tabular" else "files"
        if a.error_threshold != -1 and self.items_failed > a.error_threshold:
            return f"{self.items_failed} {what} failed, more than error_threshold={a.error_threshold}."
        limit = a.allowed_failed_count
        if limit is not None and limit != -1 and self.batches_failed > limit:
            return f"{self.batches_failed} mini batches failed, more than allowed_failed_count={limit}."
        if final and a.allowed_failed_percent is not None and self.batches:
            percent = 100.0 * self.batches_failed / len(self.batches)
            if percent > a.allowed_failed_percent:
                return (f"{percent:.1f}% of the mini batches failed, more than "
                        f"allowed_failed_percent={a.allowed_failed_percent}.")
        return None

    def _progress(self, final=False):
        now = time.monotonic()
        if not final and now - self.last_progress < PROGRESS_SECONDS:
            return
        self.last_progress = now
        what = "records" if self._kind() == "tabular" else "files"
        print(f"ParallelRunStep: {self.batches_done + self.batches_failed} of {len(self.batches)} mini batches "
              f"processed ({self.batches_failed} failed); {what}: {self.items_done} succeeded, "
              f"{self.items_failed} failed.", flush=True)

    def summary(self, reason: str | None) -> str:
        what = "records" if self._kind() == "tabular" else "files"
        lines = [f"Mini batches: {len(self.batches)} created, {self.batches_done} succeeded, {self.batches_failed} failed.",
                 f"Items ({what}): {self.items_done} succeeded, {self.items_failed} failed."]
        if self.row_file is not None:
            lines.append(f"Results: {self.row_file.name} in the step's output.")
        lines.append(f"Result: failed: {reason}" if reason else "Result: completed.")
        return "\n".join(lines) + "\n"


# -- the step's entry point ------------------------------------------------------------------------------------
def parse_arguments(argv: list[str]):
    p = argparse.ArgumentParser(prog="ParallelRunStep", add_help=False)
    p.add_argument("--scoring_module_name", required=True)
    p.add_argument("--mini_batch_size")
    p.add_argument("--partition_keys")  # a JSON list: one mini batch per partition
    p.add_argument("--error_threshold", type=int, required=True)
    p.add_argument("--output_action", required=True)
    p.add_argument("--logging_level", default="INFO")
    p.add_argument("--run_invocation_timeout", type=int, default=60)
    p.add_argument("--run_max_try", type=int, default=3)
    p.add_argument("--allowed_failed_count", type=int)
    p.add_argument("--allowed_failed_percent", type=float)
    p.add_argument("--append_row_file_name")
    p.add_argument("--output")
    p.add_argument("--process_count_per_node", type=int)
    args, _ = p.parse_known_args(argv)
    inputs = []  # --input_fds_<n> NAME (files) / --input_ds_<n> NAME (a table), in order
    datasets = json.loads(os.environ.get(INPUT_DATASETS_VAR) or "{}")
    for flag, name in zip(argv, argv[1:]):
        match = re.fullmatch(r"--input_(fds|ds)_\d+", flag)
        if match:
            info = datasets.get(name) or {"path": os.environ[f"AZUREML_DATAREFERENCE_{name}"], "options": {}}
            inputs.append({"name": name, "kind": "file" if match.group(1) == "fds" else "tabular",
                           "path": info["path"], "options": info.get("options") or {}})
    return args, inputs


def main(argv: list[str] | None = None) -> None:
    args, inputs = parse_arguments(sys.argv[1:] if argv is None else argv)
    Path("logs", "user").mkdir(parents=True, exist_ok=True)
    coordinator = Coordinator(args, inputs)
    reason = coordinator.run()
    summary = coordinator.summary(reason)
    Path("logs", "job_progress_overview.txt").write_text(summary)
    print(summary, end="", flush=True)
    if reason:
        print(f"ParallelRunStep failed: {reason}", flush=True)
        raise SystemExit(1)
