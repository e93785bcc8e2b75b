"""The runner: executes a plan in background threads, one top-level run at a time per execution.

It owns concurrency and lifecycle only. It asks planning/reuse.py whether a step can be reused,
starts the rest through the compute protocol, and records everything in the store while publishing
events. Outputs are staged and committed only when a step succeeds, so a failed, canceled or killed
step never leaves anything another run could reuse.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe_jupyter.data.datastore import Datastore
from mlpipe_jupyter.data.fingerprint import manifest_digest
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.planning.planner import Plan, StepPlan
from mlpipe_jupyter.planning.reuse import Decision, decide
from mlpipe_jupyter.planning.snapshot import materialize
from mlpipe_jupyter.running import control
from mlpipe_jupyter.running.contract import METRICS_FILE
from mlpipe_jupyter.running.events import Event, EventKind, bus
from mlpipe_jupyter.running.protocol import Job
from mlpipe_jupyter.running.step_files import OutputRejected, collect_run_files, open_regular, output_digest
from mlpipe_jupyter.running.step_output import LineSplitter, SecretMask
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.store import make_writable

LOG_NAME = "logs/std_log.txt"
ERROR_TAIL_LINES = 20

REMOTE_CANCEL_POLL_SECONDS = 0.5


# Steps running per compute target that has a max_concurrency, over every run of this process.
_target_busy: dict[tuple, int] = {}
_target_lock = threading.Lock()


def _claim_slot(key: tuple, limit: int | None) -> bool:
    with _target_lock:
        busy = _target_busy.get(key, 0)
        if limit is not None and busy >= limit:
            return False
        _target_busy[key] = busy + 1
        return True


def _release_slot(key: tuple) -> None:
    with _target_lock:
        _target_busy[key] = max(0, _target_busy.get(key, 0) - 1)


@dataclass
class StepResult:
    status: str
    outputs: dict = field(default_factory=dict)  # output name -> digest
    error: str | None = None
    timed_out: bool = False  # stopped by its own max_run_duration_seconds


class RunExecution:
    """One submitted run: a pipeline run with step runs, or a single script run (``single=True``)."""

    def __init__(self, workspace, plan: Plan, run_id: str, experiment: str, step_run_ids: dict[str, str],
                 backends: dict, regenerate: bool = False, continue_on_step_failure: bool = False,
                 max_concurrency: int | None = None, single: bool = False):
        self.ws = workspace
        self.store = workspace._store
        self.plan = plan
        self.run_id = run_id
        self.experiment = experiment
        self.step_run_ids = step_run_ids
        self.backends = backends
        self.regenerate = regenerate
        self.continue_on_step_failure = continue_on_step_failure
        self.max_concurrency = max(1, max_concurrency or os.cpu_count() or 1)
        self.single = single
        self._target_limits = {name: backend.capacity() for name, backend in backends.items()}
        self.done = threading.Event()
        self._cancel = threading.Event()
        self._cancel_reason = "Canceled by the user."
        self._handles: dict[str, object] = {}
        self._stopped: set[str] = set()  # steps whose process was told to stop; never Completed
        self._handles_lock = threading.Lock()
        self._completions: queue.Queue = queue.Queue()
        self._results: dict[str, StepResult] = {}
        self.outcome: tuple[str, str | None] | None = None  # (status, error) once the run has ended
        self.record_error: str | None = None  # why that end could not be written to the store
        self._thread = threading.Thread(target=self._main, name=f"run-{run_id}")
        self._metrics = _MetricsFollower(self)

    # -- control ---------------------------------------------------------------------------------------
    def start(self):
        control.register(self.run_id, self)
        self._thread.start()

    def cancel(self, reason: str = "Canceled by the user."):
        if self.done.is_set():
            return
        self._cancel_reason = reason
        self._cancel.set()
        with self._handles_lock:
            handles = list(self._handles.values())
            self._stopped.update(self._handles)
        for h in handles:
            threading.Thread(target=h.cancel, daemon=True).start()

    # -- events and status -----------------------------------------------------------------------------
    def _publish(self, event_kind, step=None, **data):
        bus.publish(Event(event_kind, self.run_id, step, self.step_run_ids.get(step) if step else None, data))

    def _set_step_status(self, name, status, **fields):
        self.store.update_run(self.step_run_ids[name], status=status, **fields)
        self._publish(EventKind.STEP_STATUS, name, status=status, **{k: v for k, v in fields.items() if k != "details"})

    # -- main loop ---------------------------------------------------------------------------------------
    def _main(self):
        try:
            if not self.single:
                self.store.update_run(self.run_id, status=Status.RUNNING, started=time.time())
                self._publish(EventKind.RUN_STATUS, status=Status.RUNNING)
            with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"step-{self.run_id[-8:]}") as pool:
                try:
                    self._schedule(pool)
                except BaseException as e:
                    self.cancel(_internal_error(e))  # stop running steps before the pool waits for them
                    raise
            self._finish()
        except BaseException as e:  # noqa: BLE001 - a runner bug or a failing store must still end the run
            if not isinstance(e, (UserError, OSError)):
                traceback.print_exc()
            self._finish(internal_error=_internal_error(e))
        finally:
            self._metrics.close()
            control.unregister(self.run_id)
            self.done.set()

    def _slot_key(self, sp) -> tuple:
        return (str(self.ws.path), sp.compute_target)

    def _schedule(self, pool):
        pending = list(self.plan.steps)
        running: set[str] = set()
        failed_any = False
        next_cancel_check = time.monotonic() + REMOTE_CANCEL_POLL_SECONDS
        while pending or running:
            progressed = True
            waiting_for_target = False  # a step is ready but its compute target is busy with other runs
            while progressed:
                progressed = False
                for name in list(pending):
                    sp = self.plan.steps[name]
                    ups = [self._results.get(u) for u in sp.upstream]
                    if any(u is None for u in ups):
                        continue
                    bad = [u for u, r in zip(sp.upstream, ups) if r.status != Status.COMPLETED]
                    stop = self._cancel.is_set() or (failed_any and not self.continue_on_step_failure)
                    if bad or stop:
                        why = (f"upstream step '{bad[0]}' did not complete" if bad else
                               self._cancel_reason if self._cancel.is_set() else "another step failed")
                        error = f"Not run: {_sentence(why)}"
                        self._results[name] = StepResult(Status.CANCELED, error=error)
                        self._set_step_status(name, Status.CANCELED, ended=time.time(), error=error)
                        pending.remove(name)
                        progressed = True
                        continue
                    if len(running) >= self.max_concurrency:
                        continue
                    if not _claim_slot(self._slot_key(sp), self._target_limits.get(sp.compute_target)):
                        waiting_for_target = True
                        continue
                    try:
                        inputs, fingerprints = self._inputs_of(sp)
                        manifest = sp.manifest(fingerprints)
                        decision = decide(self.store, name, manifest, self.experiment,
                                          sp.allow_reuse and not self.single, self.regenerate)
                    except BaseException:
                        _release_slot(self._slot_key(sp))
                        raise
                    pending.remove(name)
                    progressed = True
                    if decision.reuse_from is not None:
                        _release_slot(self._slot_key(sp))
                        self._results[name] = self._record_reuse(sp, manifest, decision)
                    else:
                        running.add(name)
                        self._set_step_status(name, Status.QUEUED, reuse_key=decision.key, reuse_reason=decision.reason,
                                              details={"manifest": manifest})
                        pool.submit(self._execute_guarded, sp, manifest, decision, inputs)
            if not running and not waiting_for_target:
                break
            if time.monotonic() >= next_cancel_check:
                self._check_remote_cancel()
                next_cancel_check = time.monotonic() + REMOTE_CANCEL_POLL_SECONDS
            try:
                name, result = self._completions.get(timeout=0.05 if waiting_for_target else 0.5)
            except queue.Empty:
                continue
            running.discard(name)
            self._results[name] = result
            if result.status == Status.FAILED or result.timed_out:
                failed_any = True
                if not self.continue_on_step_failure:
                    why = f"step '{name}' " + ("failed" if result.status == Status.FAILED else "exceeded its time limit")
                    self.cancel(why)

    def _check_remote_cancel(self):
        """Another process (the CLI, another kernel) asks for a cancel through the store.

        The details flag survives the runner's own status updates, which could overwrite the status."""
        if self._cancel.is_set():
            return
        row = self.store.get_run(self.run_id)
        if row and (row["status"] == Status.CANCEL_REQUESTED or row["details"].get("cancel_requested")):
            self.cancel("Canceled by the user.")

    def _inputs_of(self, sp: StepPlan):
        paths, fps = {}, {}
        for inp in sp.inputs:
            if inp.external is not None:
                paths[inp.name] = inp.external.path
                fps[inp.name] = inp.external.fingerprint
            else:
                digest = self._results[inp.upstream].outputs[inp.output]
                paths[inp.name] = self.store.data_path(digest) / inp.output
                fps[inp.name] = digest
        return paths, fps

    # -- reuse -------------------------------------------------------------------------------------------
    def _record_reuse(self, sp, manifest, decision: Decision) -> StepResult:
        hit = decision.reuse_from
        origin = hit["reused_from"] or hit["id"]
        outputs = self.store.get_outputs(hit["id"])
        run_id = self.step_run_ids[sp.name]
        now = time.time()
        self.store.record_reused(run_id, outputs, status=Status.COMPLETED, started=now, ended=now,
                                 reuse_key=decision.key, reused_from=origin, reuse_reason=decision.reason,
                                 details={"manifest": manifest, "snapshot": sp.snapshot.digest})
        self._publish(EventKind.STEP_STATUS, sp.name, status=Status.COMPLETED, reused=True, reused_from=origin,
                      reuse_reason=decision.reason)
        return StepResult(Status.COMPLETED, outputs)

    # -- execution ---------------------------------------------------------------------------------------
    def _execute_guarded(self, sp, manifest, decision, inputs):
        result = StepResult(Status.FAILED, error="Internal error")
        try:
            result = self._execute(sp, manifest, decision, inputs)
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, UserError):  # already one clear paragraph naming the step (a full disk too)
                msg = str(e)
            elif isinstance(e, OSError):  # the machine's doing (no space left), not a bug: no traceback
                msg = f"Step '{sp.name}' could not run: {e}"
            else:
                traceback.print_exc()
                msg = f"Step '{sp.name}' could not run: {type(e).__name__}: {e}"
            result = StepResult(Status.FAILED, error=msg)
            with contextlib.suppress(Exception):  # the store may be what failed: the run still ends
                self._set_step_status(sp.name, Status.FAILED, ended=time.time(), error=msg)
        finally:
            _release_slot(self._slot_key(sp))
            self._completions.put((sp.name, result))

    def _execute(self, sp: StepPlan, manifest: dict, decision: Decision, inputs: dict) -> StepResult:
        store = self.store
        run_id = self.step_run_ids[sp.name]
        if self._cancel.is_set():
            error = f"Not run: {_sentence(self._cancel_reason)}"
            self._set_step_status(sp.name, Status.CANCELED, ended=time.time(), error=error)
            return StepResult(Status.CANCELED, error=error)
        run_dir = store.run_dir(run_id)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        scratch = store.staging_dir(f"step-{run_id}")
        try:
            status, error, outputs, tail, timed_out = self._run_in(scratch, sp, run_id, run_dir, inputs)
        finally:
            _remove_tree(scratch)
        fields = {"ended": time.time(), "error": error}
        if status == Status.FAILED:
            fields["details"] = {"error_tail": tail}
        self._set_step_status(sp.name, status, **fields)
        return StepResult(status, outputs, error, timed_out=timed_out)

    def _prepare(self, scratch: Path, sp: StepPlan, run_id: str, inputs: dict) -> tuple[Job, dict]:
        """The step's private folders in ``scratch``: its working copy, its run folder (metrics, images,
        uploaded files), staged outputs and downloaded inputs. Returns the job and the staged outputs."""
        work = scratch / "wd"
        materialize(self.store, sp.snapshot.files, work)
        for sub in ("outputs", "logs"):
            (work / sub).mkdir(exist_ok=True)
        (scratch / "run").mkdir()
        staged = {}
        for op in sp.outputs:
            root = scratch / "out" / op.name
            root.mkdir(parents=True)
            if op.is_directory:
                (root / op.name).mkdir()
            staged[op.name] = root
        for inp in sp.inputs:
            if inp.mode == "download":
                dest = scratch / "in" / inp.name
                src = Path(inputs[inp.name])
                if src.is_dir():  # a writable copy, as Azure's download mode gives; a committed output's
                    # links stay links (they never leave it), external data is followed as before
                    shutil.copytree(src, dest, symlinks=inp.external is None, copy_function=shutil.copyfile)
                    make_writable(dest)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dest)
                inputs = {**inputs, inp.name: dest}
        datasets = {i.name: {"path": str(inputs[i.name]), "kind": i.external.dataset_kind,
                             "options": i.external.dataset_options or {}}
                    for i in sp.inputs if i.external is not None and i.external.dataset_kind}
        job = Job(run_id=run_id, parent_run_id=None if self.single else self.run_id, experiment=self.experiment,
                  step_name=sp.name, script=sp.script, arguments=sp.arguments, env_vars=sp.env_vars,
                  working_dir=work, run_dir=scratch / "run", inputs=inputs,
                  outputs={n: staged[n] / n for n in staged}, environment=sp.environment, input_datasets=datasets,
                  scratch=scratch)
        return job, staged

    def _run_in(self, scratch: Path, sp: StepPlan, run_id: str, run_dir: Path, inputs: dict):
        """Prepare the step's folders in ``scratch``, run the step, keep its files and commit its outputs.

        Returns (status, error, outputs, last log lines, timed out)."""
        job, staged = self._prepare(scratch, sp, run_id, inputs)
        backend = self.backends[sp.compute_target]
        timer = None
        log_path = run_dir / LOG_NAME
        tail: list[str] = []
        timed_out = threading.Event()
        status, error, handle, rc = None, None, None, None
        mask = SecretMask(sp.secret_values())
        with open(log_path, "wb", buffering=0) as log:  # readers (mlpipe logs -f) see each chunk
            try:
                handle = backend.start(job)
                with self._handles_lock:
                    self._handles[sp.name] = handle
                    raced = self._cancel.is_set()  # a cancel that came while the process was starting
                    if raced:
                        self._stopped.add(sp.name)
                info = handle.process_info() if hasattr(handle, "process_info") else {}
                self._set_step_status(sp.name, Status.RUNNING, started=time.time(), **info)
                if raced:
                    handle.cancel()
                if sp.timeout:
                    def on_timeout():
                        timed_out.set()
                        handle.cancel()

                    timer = threading.Timer(sp.timeout, on_timeout)
                    timer.daemon = True
                    timer.start()
                self._metrics.follow(sp.name, run_id, job.run_dir / METRICS_FILE)
                splitter = LineSplitter()
                for chunk in handle.chunks():
                    self._log_chunk(sp.name, log, splitter, mask.feed(chunk), tail)
                self._log_chunk(sp.name, log, splitter, mask.flush(), tail, last=True)
                rc = handle.wait()
            finally:
                if handle is not None and rc is None:  # the runner failed while the step ran: stop it
                    handle.cancel()
                    handle.wait()
                if timer:
                    timer.cancel()
                if handle is not None:  # what the step wrote elsewhere comes here before it is read
                    backend.collect(job, handle)
                notes = self._metrics.unfollow(run_id)
                with self._handles_lock:
                    self._handles.pop(sp.name, None)
                left = self._keep_run_files(job, run_dir)
                if left:
                    notes.append("mlpipe: not kept with the run's files: " + "; ".join(left))
                for note in notes:
                    log.write((note + "\n").encode())
        if timed_out.is_set():
            status, error = Status.CANCELED, (f"Step '{sp.name}' exceeded its time limit of "
                                         f"max_run_duration_seconds={sp.timeout} and was stopped.")
        elif sp.name in self._stopped:  # even if the script caught the signal and exited 0
            status, error = Status.CANCELED, f"Step '{sp.name}' was stopped: {_sentence(self._cancel_reason)}"
        elif rc != 0 and getattr(handle, "error", None):  # the backend knows why (an environment build)
            status, error = Status.FAILED, handle.error
        elif rc != 0:
            last = next((ln for ln in reversed(tail) if ln.strip()), "")
            status, error = Status.FAILED, f"Step '{sp.name}' {_exit_description(rc)}" + (f": {last.strip()}" if last else ".")
        changed = self._changed_inputs(sp, backend)
        if changed:
            status, error = Status.FAILED, changed
        outputs = {}
        if status is None:
            try:
                outputs = self._commit_outputs(sp, staged, run_id)
                status = Status.COMPLETED
            except (OutputRejected, OSError, UserError) as e:  # a bad output fails the step, not the runner
                status, error = Status.FAILED, f"Step '{sp.name}': {e}"
        empty = [op.name for op in sp.outputs if op.is_directory and outputs.get(op.name) == EMPTY_OUTPUT]
        if empty:  # allowed, as in Azure, but said where it happens rather than downstream
            self._warn(sp.name, run_id, log_path, [
                f"Step '{sp.name}' wrote nothing to its output '{name}' (an empty folder); the steps that read it "
                "get an empty folder." for name in empty])
        return status, error, outputs, tail, timed_out.is_set()

    def _warn(self, step: str, run_id: str, log_path: Path, warnings: list[str]) -> None:
        """A warning about a step: in its log, its events (the monitor shows it) and ``get_details()``."""
        with open(log_path, "ab") as log:
            for text in warnings:
                log.write(f"mlpipe: warning: {text}\n".encode())
                self._publish(EventKind.LOG, step, line=f"mlpipe: warning: {text}")
        self.store.update_run(run_id, details={"warnings": warnings})

    def _log_chunk(self, step, log, splitter, data: bytes, tail: list, last: bool = False) -> None:
        """Every byte into the log file; lines, cut to a bounded length, into events and the error tail."""
        if data:
            log.write(data)
        lines = splitter.feed(data) + (splitter.flush() if last else [])
        for line in lines:
            tail.append(line)
            if len(tail) > ERROR_TAIL_LINES:
                del tail[0]
            self._publish(EventKind.LOG, step, line=line)

    def _changed_inputs(self, sp, backend) -> str | None:
        """A step that changed a committed output it read (only possible where inputs are not mounted
        read-only, as on local compute) fails, and that output is taken out of use so its producer
        reruns: nothing another run reuses may differ from what was committed."""
        if getattr(backend, "inputs_read_only", False):
            return None
        for inp in sp.inputs:
            if inp.external is not None or inp.mode == "download":
                continue
            digest = self._results[inp.upstream].outputs[inp.output]
            changes = self.store.data_changes(digest)
            if changes:
                self.store.discard_data(digest)
                shown = ", ".join(f"'{c}'" for c in changes[:3]) + (" ..." if len(changes) > 3 else "")
                return (f"Step '{sp.name}' changed its input '{inp.name}' ({shown}), the committed output "
                        f"'{inp.output}' of step '{inp.upstream}', which steps must only read. That output was "
                        f"removed, so '{inp.upstream}' runs again next time; write to an output instead.")
        return None

    def _commit_outputs(self, sp, staged, run_id) -> dict:
        """Every output moves to its content address first; only then are any uploaded or registered,
        so a step that left one output out publishes none of them."""
        outputs, committed = {}, {}
        for op in sp.outputs:
            outputs[op.name] = output_digest(staged[op.name], op.name, op.is_directory)
            committed[op.name] = self.store.commit_directory(staged[op.name], outputs[op.name]) / op.name
        for op in sp.outputs:
            if op.destination is not None:
                _upload(op.destination[0], committed[op.name], self._destination_path(op, run_id))
            if op.register_as:
                self._register_output(op, run_id, committed[op.name])
        self.store.set_outputs(run_id, outputs)
        return outputs

    def _destination_path(self, op, run_id):
        return op.destination[1].replace("{run-id}", run_id).replace("{output-name}", op.name)

    def _register_output(self, op, run_id, committed: Path):
        """``register_on_complete``: a new version of a file dataset where the output was uploaded."""
        if op.destination is None:  # the outputs are recorded only after all are committed, so use the path
            datastore = Datastore(self.ws)  # the workspace's default
            target = f"registered/{op.register_as}/{run_id}"
            _upload(datastore, committed, target)
        else:
            datastore, target = op.destination[0], self._destination_path(op, run_id)
        definition = {"kind": "dataset", "dataset_type": "file", "sources": [{"datastore": datastore.name, "path": target}]}
        self.store.register_dataset(op.register_as, "file", definition, None, None, new_version=True)

    @staticmethod
    def _keep_run_files(job: Job, run_dir: Path) -> list[str]:
        """The step's run folder (images, uploaded files), ./outputs and ./logs become part of the run
        history, read as untrusted: links and special files are left behind and named."""
        left = collect_run_files(job.run_dir, run_dir, skip=(METRICS_FILE,))
        for sub in ("outputs", "logs"):
            left += [f"{sub}/{x}" for x in collect_run_files(job.working_dir / sub, run_dir / sub)]
        return left

    # -- the end -------------------------------------------------------------------------------------------
    def _finish(self, internal_error: str | None = None):
        """Record how the run ended. The outcome is kept here too: when the store cannot be written (a
        full disk), waiters still learn that the run ended and why, instead of waiting for ever."""
        now = time.time()
        failed = [n for n, r in self._results.items() if r.status == Status.FAILED]
        timed_out = [n for n, r in self._results.items() if r.timed_out]
        if internal_error:
            status, error = Status.FAILED, internal_error
        elif failed:
            status, error = Status.FAILED, self._results[failed[0]].error
        elif timed_out:
            status, error = Status.CANCELED, self._results[timed_out[0]].error
        elif self._cancel.is_set():
            status, error = Status.CANCELED, self._cancel_reason
        else:
            status, error = Status.COMPLETED, None
        if self.single:
            (name,) = self.plan.steps
            result = self._results.get(name)
            if result is not None:
                status, error = result.status, result.error
        self.outcome = (status, error)
        try:
            for name in self.plan.steps:  # anything left (only after an internal error) ends visibly
                if name not in self._results:
                    row = self.store.get_run(self.step_run_ids[name])
                    if row and row["status"] not in (Status.COMPLETED, Status.FAILED, Status.CANCELED):
                        self._set_step_status(name, Status.FAILED, ended=now, error=internal_error or "Not run.")
            if not self.single:
                self.store.update_run(self.run_id, status=status, ended=now, error=error)
                self._publish(EventKind.RUN_STATUS, status=status, error=error)
        except UserError as e:  # the store could not be written: say so wherever someone waits
            self.outcome = (Status.FAILED, f"{error + ' ' if error else ''}The run's end could not be recorded: {e}")
            self.record_error = str(e)
            if not self.single:
                self._publish(EventKind.RUN_STATUS, status=Status.FAILED, error=self.outcome[1])


EMPTY_OUTPUT = manifest_digest({})  # the digest of an output folder holding nothing


def _sentence(text: str) -> str:
    """A reason ends a message once, with one full stop (reasons come with and without)."""
    return text if text.endswith(".") else text + "."


def _upload(datastore, path: Path, target: str) -> None:
    if path.is_dir():
        datastore.put_folder(path, target_path=target, overwrite=True, show_progress=False)
    else:
        datastore.put_files([path], target_path=target, overwrite=True, show_progress=False)


def _remove_tree(path: Path) -> None:
    """rmtree that also removes what a script made read-only (say, a copy of a committed input)."""
    if path.exists():
        try:
            make_writable(path)
        except OSError:
            pass
        shutil.rmtree(path, ignore_errors=True)


def _internal_error(e: BaseException) -> str:
    if isinstance(e, UserError):
        return str(e)
    if isinstance(e, OSError):
        return f"The runner could not go on: {e}"
    return f"Internal error in the runner: {type(e).__name__}: {e}"


def _exit_description(rc: int) -> str:
    """'exited with code 3', or for a negative code the signal that killed it (say, the OOM killer's SIGKILL)."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"was killed by {name} (exit code {rc})"
    return f"exited with code {rc}"


class _MetricsFollower:
    """Tails the JSONL files that running steps' Run.get_context() write, recording metrics and tags as
    they come: one thread per run, started with its first step, rather than one per step."""

    POLL_SECONDS = 0.05

    def __init__(self, execution: RunExecution):
        self.execution = execution
        self._tails: dict[str, _Tail] = {}  # step run id -> its file
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, step: str, run_id: str, path: Path):
        with self._lock:
            self._tails[run_id] = _Tail(step, run_id, path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name=f"metrics-{self.execution.run_id[-8:]}")
                self._thread.start()

    def unfollow(self, run_id: str) -> list[str]:
        """Stop following a step's file after reading what is left, so its metrics are all recorded;
        returns what to say in the step's log about that file."""
        with self._lock:
            tail = self._tails.pop(run_id, None)
        if tail is None:
            return []
        tail.drain(self.execution, final=True)
        return tail.notes

    def close(self):
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self):
        while not self._stop.wait(self.POLL_SECONDS):
            with self._lock:
                tails = list(self._tails.values())
            for tail in tails:
                tail.drain(self.execution)


class _Tail:
    """Reads one step's metrics file as untrusted data: a regular file only (opened without following a
    link, never blocking on a FIFO), at most ``READ_BYTES`` a poll, records of at most ``MAX_RECORD`` bytes
    and ``MAX_BYTES`` in all; anything else is ignored and said once in the step's log."""

    READ_BYTES = 1 << 20
    MAX_RECORD = 1 << 20
    MAX_BYTES = 256 << 20
    KINDS = ("scalar", "list", "row", "table", "image")

    def __init__(self, step: str, run_id: str, path: Path):
        self.step, self.run_id, self.path = step, run_id, path
        self._fd: int | None = None
        self._read = 0
        self._partial = b""
        self._skipping = False  # inside a record longer than MAX_RECORD
        self._refused = False
        self.notes: list[str] = []
        self._lock = threading.Lock()  # the run's follower thread and the step's last read

    def drain(self, execution: RunExecution, final: bool = False):
        with self._lock:
            if self._refused or not self._open(execution):
                return
            while self._read < self.MAX_BYTES:
                data = os.read(self._fd, min(self.READ_BYTES, self.MAX_BYTES - self._read))
                if not data:
                    break
                self._read += len(data)
                self._records(execution, data)
                if not final:
                    break
            if final and self._read >= self.MAX_BYTES:
                self.notes.append(f"mlpipe: the step's {METRICS_FILE} passed {self.MAX_BYTES >> 20} MiB; the rest "
                                  "of its metrics were ignored.")
            if final:
                os.close(self._fd)
                self._fd = None
                self._refused = True

    def _open(self, execution) -> bool:
        if self._fd is not None:
            return True
        self._fd = open_regular(self.path)
        if self._fd is None and os.path.lexists(self.path):
            self._refused = True
            self.notes.append(f"mlpipe: the step's {METRICS_FILE} is not a regular file; its metrics were ignored.")
            execution._publish(EventKind.LOG, self.step, line=self.notes[-1])
        return self._fd is not None

    def _records(self, execution, data: bytes):
        lines = data.split(b"\n")
        lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
        if len(self._partial) > self.MAX_RECORD:
            self._partial, self._skipping = b"", True
        metrics, tags = [], {}
        for raw in lines:
            if self._skipping:  # the rest of an overlong record
                self._skipping = False
                continue
            rec = _record(raw)
            if rec is None:
                continue
            if rec["type"] == "tag":
                tags[rec["key"]] = rec["value"]
            else:
                metrics.append(rec)
        store = execution.store
        if tags:
            store.set_tags(self.run_id, tags)
        if metrics:
            store.add_metrics(self.run_id, metrics)
            for m in metrics:
                execution._publish(EventKind.METRIC, self.step, name=m["name"], kind=m["kind"], value=m["value"])


def _record(raw: bytes) -> dict | None:
    """A metric or tag record as Run.get_context() writes it, or None for anything else."""
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    if rec.get("type") == "tag" and isinstance(rec.get("key"), str) and len(rec["key"]) <= 255:
        return {"type": "tag", "key": rec["key"], "value": str(rec.get("value", ""))}
    if rec.get("type") == "metric" and isinstance(rec.get("name"), str) and len(rec["name"]) <= 255 \
            and rec.get("kind", "scalar") in _Tail.KINDS and "value" in rec:
        ts = rec.get("ts")
        return {"type": "metric", "name": rec["name"], "kind": rec.get("kind", "scalar"), "value": rec["value"],
                "ts": ts if isinstance(ts, (int, float)) else time.time()}
    return None
