"""The runner: executes a plan in background threads, one top-level run at a time per execution.

This module is the scheduling loop: which step may start (its upstream steps completed, a slot free
on its compute target), whether it is reused (planning/reuse.py decides), cancellation (from this
process or, through the store, from another), and how the run ends. One step's own lifecycle is a
``StepTask`` (step_task.py), what running steps log is followed by ``MetricsFollower`` (metrics.py),
and control.py is how waiting and cancelling reach a run from anywhere. Everything is recorded in the
store and published as events.
"""
from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.planning.planner import Plan, StepPlan
from mlpipe_jupyter.planning.reuse import Decision, decide
from mlpipe_jupyter.running import control
from mlpipe_jupyter.running.events import Event, EventKind, bus
from mlpipe_jupyter.running.metrics import MetricsFollower
from mlpipe_jupyter.running.step_task import StepResult, StepTask, sentence
from mlpipe_jupyter.status import FINAL_STATUSES, Status

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
        self.cancel_reason = "Canceled by the user."
        self._handles: dict[str, object] = {}
        self._stopped: set[str] = set()  # steps whose process was told to stop; never Completed
        self._handles_lock = threading.Lock()
        self._completions: queue.Queue = queue.Queue()
        self._results: dict[str, StepResult] = {}
        self._ended_tasks: list[StepTask] = []  # whose folders are left to remove (remove_ended_folders)
        self._ended_lock = threading.Lock()
        self.outcome: tuple[str, str | None] | None = None  # (status, error) once the run has ended
        self.record_error: str | None = None  # why that end could not be written to the store
        self._thread = threading.Thread(target=self._main, name=f"run-{run_id}")
        self.metrics = MetricsFollower(self.store, self.publish, run_id[-8:])

    # -- control ---------------------------------------------------------------------------------------
    def start(self):
        control.register(self.run_id, self)
        self._thread.start()

    def cancel(self, reason: str = "Canceled by the user."):
        if self.done.is_set():
            return
        self.cancel_reason = reason
        self._cancel.set()
        with self._handles_lock:
            handles = list(self._handles.values())
            self._stopped.update(self._handles)
        for h in handles:
            threading.Thread(target=h.cancel, daemon=True).start()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    # -- what a step task asks of its run ---------------------------------------------------------------
    def track(self, name: str, handle) -> bool:
        """A step's process started: a cancel stops it from now on. True when a cancel came first."""
        with self._handles_lock:
            self._handles[name] = handle
            raced = self._cancel.is_set()
            if raced:
                self._stopped.add(name)
        return raced

    def untrack(self, name: str) -> None:
        with self._handles_lock:
            self._handles.pop(name, None)

    def was_stopped(self, name: str) -> bool:
        """Whether the step's process was told to stop (it then never counts as Completed)."""
        return name in self._stopped

    def result_of(self, name: str) -> StepResult:
        return self._results[name]

    def _run_step(self, task: StepTask) -> None:
        """A worker thread: one step, then its slot is free and the loop hears how it ended. Its folders
        are removed later (``remove_ended_folders``)."""
        result = StepResult(Status.FAILED, error="Internal error")
        try:
            result = task.execute()
        finally:
            _release_slot(self._slot_key(task.sp))
            with self._ended_lock:
                self._ended_tasks.append(task)
            self._completions.put((task.sp.name, result))

    def remove_ended_folders(self) -> None:
        """Remove the private folders of the steps that have ended: called by a step task once its own
        process runs (its thread would only wait for it) and at the run's end, so the removal is never
        on the path from one step's end to the next step's start."""
        with self._ended_lock:
            tasks, self._ended_tasks = self._ended_tasks, []
        for task in tasks:
            task.clean_up()

    # -- events and status -----------------------------------------------------------------------------
    def publish(self, event_kind, step=None, **data):
        bus.publish(Event(event_kind, self.run_id, step, self.step_run_ids.get(step) if step else None, data))

    def set_step_status(self, name, status, outputs: dict | None = None, **fields):
        """One commit per status: a step's outputs and the end of its open child runs go with it."""
        with self.store.tx():
            if outputs:
                self.store.set_outputs(self.step_run_ids[name], outputs)
            self.store.update_run(self.step_run_ids[name], status=status, **fields)
            if status in FINAL_STATUSES:  # child runs the step's script left open end with it
                self.store.end_open_children(self.step_run_ids[name], status)
        self.publish(EventKind.STEP_STATUS, name, status=status, **{k: v for k, v in fields.items() if k != "details"})

    # -- main loop ---------------------------------------------------------------------------------------
    def _main(self):
        try:
            if not self.single:
                self.store.update_run(self.run_id, status=Status.RUNNING, started=time.time())
                self.publish(EventKind.RUN_STATUS, status=Status.RUNNING)
            with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"step-{self.run_id[-8:]}") as pool:
                try:
                    self._schedule(pool)
                except BaseException as e:
                    self.cancel(internal_error(e))  # stop running steps before the pool waits for them
                    raise
            self._finish()
        except BaseException as e:  # noqa: BLE001 - a runner bug or a failing store must still end the run
            if not isinstance(e, (UserError, OSError)):
                traceback.print_exc()
            self._finish(internal_error=internal_error(e))
        finally:
            self.metrics.close()
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
                               self.cancel_reason if self._cancel.is_set() else "another step failed")
                        error = f"Not run: {sentence(why)}"
                        self._results[name] = StepResult(Status.CANCELED, error=error)
                        self.set_step_status(name, Status.CANCELED, ended=time.time(), error=error)
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
                        self.set_step_status(name, Status.QUEUED, reuse_key=decision.key, reuse_reason=decision.reason,
                                              details={"manifest": manifest})
                        pool.submit(self._run_step, StepTask(self, sp, inputs))
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
        self.publish(EventKind.STEP_STATUS, sp.name, status=Status.COMPLETED, reused=True, reused_from=origin,
                      reuse_reason=decision.reason)
        return StepResult(Status.COMPLETED, outputs)

    # -- the end -------------------------------------------------------------------------------------------
    def _finish(self, internal_error: str | None = None):
        """Record how the run ended. The outcome is kept here too: when the store cannot be written (a
        full disk), waiters still learn that the run ended and why, instead of waiting for ever."""
        self.remove_ended_folders()  # the steps have all ended (the pool waited for them)
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
            status, error = Status.CANCELED, self.cancel_reason
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
                        self.set_step_status(name, Status.FAILED, ended=now, error=internal_error or "Not run.")
            if not self.single:
                self.store.update_run(self.run_id, status=status, ended=now, error=error)
                self.publish(EventKind.RUN_STATUS, status=status, error=error)
        except UserError as e:  # the store could not be written: say so wherever someone waits
            self.outcome = (Status.FAILED, f"{error + ' ' if error else ''}The run's end could not be recorded: {e}")
            self.record_error = str(e)
            if not self.single:
                self.publish(EventKind.RUN_STATUS, status=Status.FAILED, error=self.outcome[1])


def internal_error(e: BaseException) -> str:
    """What the run says when the runner itself could not go on."""
    if isinstance(e, UserError):
        return str(e)
    if isinstance(e, OSError):
        return f"The runner could not go on: {e}"
    return f"Internal error in the runner: {type(e).__name__}: {e}"
