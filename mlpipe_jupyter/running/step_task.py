"""One step's lifecycle, on a worker thread of its run: prepare -> start -> stream -> collect -> commit.

The step gets private folders (a copy of its snapshot, its run folder, staged outputs, downloaded
inputs), runs through its compute backend, streams what it prints into its log file and the run's
events, and, only when it succeeded, commits its outputs to their content addresses. A failed,
canceled or killed step commits nothing, so nothing another run could reuse is ever half written.
"""
from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe_jupyter.data.datastore import Datastore
from mlpipe_jupyter.data.fingerprint import manifest_digest
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.planning.planner import StepPlan
from mlpipe_jupyter.planning.snapshot import materialize
from mlpipe_jupyter.running.contract import LOG_ALIASES, LOG_FILE, METRICS_FILE
from mlpipe_jupyter.running.events import EventKind
from mlpipe_jupyter.running.protocol import Job
from mlpipe_jupyter.running.step_files import OutputRejected, collect_run_files, output_digest
from mlpipe_jupyter.running.step_output import LineSplitter, SecretMask
from mlpipe_jupyter.running.tracebacks import step_traceback
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.store import make_writable

ERROR_TAIL_LINES = 20
EMPTY_OUTPUT = manifest_digest({})  # the digest of an output folder holding nothing


@dataclass
class StepResult:
    status: str
    outputs: dict = field(default_factory=dict)  # output name -> digest
    error: str | None = None
    timed_out: bool = False  # stopped by its own max_run_duration_seconds


class StepTask:
    """One step of a run (``run``: its ``RunExecution``), with its inputs' paths (``inputs``)."""

    def __init__(self, run, sp: StepPlan, inputs: dict):
        self.run, self.sp, self.inputs = run, sp, inputs
        self.store = run.store
        self.run_id = run.step_run_ids[sp.name]
        self.scratch: Path | None = None  # its private folders, removed by clean_up once its end is known

    def execute(self) -> StepResult:
        """The step from start to end; whatever goes wrong becomes its failure, never the runner's."""
        sp = self.sp
        try:
            return self._execute()
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, UserError):  # already one clear paragraph naming the step (a full disk too)
                msg = str(e)
            elif isinstance(e, OSError):  # the machine's doing (no space left), not a bug: no traceback
                msg = f"Step '{sp.name}' could not run: {e}"
            else:
                traceback.print_exc()
                msg = f"Step '{sp.name}' could not run: {type(e).__name__}: {e}"
            with contextlib.suppress(Exception):  # the store may be what failed: the run still ends
                self._log_failure(msg)
            with contextlib.suppress(Exception):
                self.run.set_step_status(sp.name, Status.FAILED, ended=time.time(), error=msg)
            return StepResult(Status.FAILED, error=msg)

    def clean_up(self) -> None:
        """Remove the step's private folders (its working copy, staged and downloaded data), once its end
        is recorded and its run told (runner.py's remove_ended_folders): a crash in between leaves them in
        the store's tmp folder, where nothing refers to them."""
        if self.scratch is not None:
            remove_tree(self.scratch)
            self.scratch = None

    def _log_failure(self, msg: str) -> None:
        """A step that failed before (or while) its process started says why in its log, under all of
        its names, as Azure's logs of a failed preparation do: its ``logFiles`` are never empty."""
        log = self.store.run_dir(self.run_id) / LOG_FILE
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as f:
            f.write(f"mlpipe: {msg}\n".encode())
        link_log_names(log.parent.parent)

    def _execute(self) -> StepResult:
        sp = self.sp
        if self.run.cancel_requested:
            error = f"Not run: {sentence(self.run.cancel_reason)}"
            self.run.set_step_status(sp.name, Status.CANCELED, ended=time.time(), error=error)
            return StepResult(Status.CANCELED, error=error)
        run_dir = self.store.run_dir(self.run_id)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        scratch = self.scratch = self.store.staging_dir(f"step-{self.run_id}")
        try:
            status, error, outputs, tail, timed_out, trace = self._run_in(scratch, run_dir)
        finally:
            with contextlib.suppress(OSError):  # a missing alias must not fail a step that ran
                link_log_names(run_dir)
        fields = {"ended": time.time(), "error": error}
        if status == Status.FAILED:
            fields["details"] = {"error_tail": tail, **({"traceback": trace} if trace else {})}
        self.run.set_step_status(sp.name, status, outputs=outputs, **fields)
        return StepResult(status, outputs, error, timed_out=timed_out)

    # -- prepare ---------------------------------------------------------------------------------------------
    def _prepare(self, scratch: Path) -> tuple[Job, dict]:
        """The step's private folders in ``scratch``: its working copy, its run folder (metrics, images,
        uploaded files), staged outputs and downloaded inputs. Returns the job and the staged outputs."""
        sp, inputs = self.sp, self.inputs
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
        datasets = {i.name: {"path": str(inputs[i.name]), "kind": i.dataset_kind, "options": i.dataset_options}
                    for i in sp.inputs if i.dataset_kind}
        run = self.run
        job = Job(run_id=self.run_id, parent_run_id=None if run.single else run.run_id, experiment=run.experiment,
                  step_name=sp.name, script=sp.script, arguments=sp.arguments, env_vars=sp.env_vars,
                  working_dir=work, run_dir=scratch / "run", inputs=inputs,
                  outputs={n: staged[n] / n for n in staged}, environment=sp.environment, input_datasets=datasets,
                  scratch=scratch, workspace_dir=str(run.ws.path), distributed=sp.distributed)
        return job, staged

    # -- start, stream, collect ------------------------------------------------------------------------------
    def _run_in(self, scratch: Path, run_dir: Path):
        """Prepare the step's folders in ``scratch``, run the step, keep its files and commit its outputs.

        Returns (status, error, outputs, last log lines, timed out, the mapped traceback of a failure)."""
        sp, run = self.sp, self.run
        job, staged = self._prepare(scratch)
        backend = run.backends[sp.compute_target]
        timer = None
        log_path = run_dir / LOG_FILE
        tail: list[str] = []
        timed_out = threading.Event()
        status, error, handle, rc = None, None, None, None
        mask = SecretMask(sp.secret_values())
        with open(log_path, "wb", buffering=0) as log:  # readers (mlpipe logs -f) see each chunk
            try:
                handle = backend.start(job)
                raced = run.track(sp.name, handle)  # a cancel that came while the process was starting
                info = handle.process_info() if hasattr(handle, "process_info") else {}
                if getattr(handle, "start_info", None):  # recorded in the same write
                    info = {**info, "details": {"start": handle.start_info}}
                run.set_step_status(sp.name, Status.RUNNING, started=time.time(), **info)
                if raced:
                    handle.cancel()
                if sp.timeout:
                    def on_timeout():
                        timed_out.set()
                        handle.cancel()

                    timer = threading.Timer(sp.timeout, on_timeout)
                    timer.daemon = True
                    timer.start()
                run.metrics.follow(sp.name, self.run_id, job.run_dir / METRICS_FILE,
                                   None if run.single else run.run_id)
                run.remove_ended_folders()  # while the step runs: earlier steps' folders
                splitter = LineSplitter()
                for chunk in handle.chunks():
                    self._log_chunk(log, splitter, mask.feed(chunk), tail)
                self._log_chunk(log, splitter, mask.flush(), tail, last=True)
                rc = handle.wait()
            finally:
                if handle is not None and rc is None:  # the runner failed while the step ran: stop it
                    handle.cancel()
                    handle.wait()
                if timer:
                    timer.cancel()
                if handle is not None:  # what the step wrote elsewhere comes here before it is read
                    backend.collect(job, handle)
                notes = run.metrics.unfollow(self.run_id)
                run.untrack(sp.name)
                left = self._keep_run_files(job, run_dir)
                if left:
                    notes.append("mlpipe: not kept with the run's files: " + "; ".join(left))
                for note in notes:
                    log.write((note + "\n").encode())
        if timed_out.is_set():
            status, error = Status.CANCELED, (f"Step '{sp.name}' exceeded its time limit of "
                                              f"max_run_duration_seconds={sp.timeout} and was stopped.")
        elif run.was_stopped(sp.name):  # even if the script caught the signal and exited 0
            status, error = Status.CANCELED, f"Step '{sp.name}' was stopped: {sentence(run.cancel_reason)}"
        elif rc != 0 and getattr(handle, "error", None):  # the backend knows why (an environment build)
            status, error = Status.FAILED, handle.error
        elif rc != 0:
            last = next((ln for ln in reversed(tail) if ln.strip()), "")
            status, error = Status.FAILED, f"Step '{sp.name}' {exit_description(rc)}" + (f": {last.strip()}" if last else ".")
        changed = self._changed_inputs(backend)
        if changed:
            status, error = Status.FAILED, changed
        models = run.metrics.take_models(self.run_id)  # registered only once the step has succeeded
        outputs = {}
        if status is None:
            try:
                models = self._model_sources(run_dir, models)
                outputs = self._commit_outputs(staged)
                self._register_models(models)
                status = Status.COMPLETED
            except (OutputRejected, OSError, UserError) as e:  # a bad output fails the step, not the runner
                status, error = Status.FAILED, f"Step '{sp.name}': {e}"
        empty = [op.name for op in sp.outputs if op.is_directory and outputs.get(op.name) == EMPTY_OUTPUT]
        if empty:  # allowed, as in Azure, but said where it happens rather than downstream
            self._warn(log_path, [
                f"Step '{sp.name}' wrote nothing to its output '{name}' (an empty folder); the steps that read it "
                "get an empty folder." for name in empty])
        trace = ""
        if status == Status.FAILED and rc not in (0, None):  # read while the working copy's paths are known
            seen = getattr(backend, "working_dir_seen", None)  # a container's path for the same folder
            work_dirs = (str(job.working_dir),) + ((seen,) if seen else ())
            trace = step_traceback(log_path, work_dirs, sp.snapshot.source_dir, sp.script)
        return status, error, outputs, tail, timed_out.is_set(), trace

    def _warn(self, log_path: Path, warnings: list[str]) -> None:
        """A warning about a step: in its log, its events (the monitor shows it) and ``get_details()``."""
        with open(log_path, "ab") as log:
            for text in warnings:
                log.write(f"mlpipe: warning: {text}\n".encode())
                self.run.publish(EventKind.LOG, self.sp.name, line=f"mlpipe: warning: {text}")
        self.store.update_run(self.run_id, details={"warnings": warnings})

    def _log_chunk(self, log, splitter, data: bytes, tail: list, last: bool = False) -> None:
        """Every byte into the log file; lines, cut to a bounded length, into events and the error tail."""
        if data:
            log.write(data)
        lines = splitter.feed(data) + (splitter.flush() if last else [])
        for line in lines:
            tail.append(line)
            if len(tail) > ERROR_TAIL_LINES:
                del tail[0]
            self.run.publish(EventKind.LOG, self.sp.name, line=line)

    @staticmethod
    def _keep_run_files(job: Job, run_dir: Path) -> list[str]:
        """The step's run folder (images, uploaded files), ./outputs and ./logs become part of the run
        history, read as untrusted: links and special files are left behind and named."""
        left = collect_run_files(job.run_dir, run_dir, skip=(METRICS_FILE,))
        for sub in ("outputs", "logs"):
            left += [f"{sub}/{x}" for x in collect_run_files(job.working_dir / sub, run_dir / sub)]
        return left

    # -- commit ----------------------------------------------------------------------------------------------
    def _changed_inputs(self, backend) -> str | None:
        """A step that changed a committed output it read (only possible where inputs are not mounted
        read-only, as on local compute) fails, and that output is taken out of use so its producer
        reruns: nothing another run reuses may differ from what was committed."""
        if getattr(backend, "inputs_read_only", False):
            return None
        sp = self.sp
        for inp in sp.inputs:
            if inp.external is not None or inp.mode == "download":
                continue
            digest = self.run.result_of(inp.upstream).outputs[inp.output]
            changes = self.store.data_changes(digest)
            if changes:
                self.store.discard_data(digest)
                shown = ", ".join(f"'{c}'" for c in changes[:3]) + (" ..." if len(changes) > 3 else "")
                return (f"Step '{sp.name}' changed its input '{inp.name}' ({shown}), the committed output "
                        f"'{inp.output}' of step '{inp.upstream}', which steps must only read. That output was "
                        f"removed, so '{inp.upstream}' runs again next time; write to an output instead.")
        return None

    @staticmethod
    def _model_sources(run_dir: Path, models: list[dict]) -> list[tuple[dict, Path]]:
        """Each model the step asked to register, with its file or folder among the run's kept files;
        a missing one fails the step before anything is committed or registered."""
        root = run_dir.resolve()
        found = []
        for rec in models:
            source = (run_dir / rec["path"]).resolve()
            if not source.is_relative_to(root) or not source.exists():
                raise UserError(f"register_model('{rec['name']}') names '{rec['path']}', which is not among the "
                                "run's files when the step ended; write the model into ./outputs.")
            found.append((rec, source))
        return found

    def _register_models(self, models: list[tuple[dict, Path]]) -> None:
        d_keys = ("model_framework", "model_framework_version", "datasets", "sample_input_dataset",
                  "sample_output_dataset", "resource_configuration")
        for rec, source in models:
            details = {k: rec["details"].get(k) for k in d_keys}
            details.update(experiment_name=self.run.experiment, created_by={"userName": getpass.getuser()})
            self.store.register_model(rec["name"], source, tags=rec["tags"], properties=rec["properties"],
                                      description=rec["description"], run_id=self.run_id, details=details)

    def _commit_outputs(self, staged) -> dict:
        """Every output moves to its content address first; only then are any uploaded or registered,
        so a step that left one output out publishes none of them. They are recorded as the step's
        with its Completed status, in one write."""
        outputs, committed = {}, {}
        for op in self.sp.outputs:
            outputs[op.name] = output_digest(staged[op.name], op.name, op.is_directory)
            committed[op.name] = self.store.commit_directory(staged[op.name], outputs[op.name]) / op.name
        for op in self.sp.outputs:
            if op.destination is not None:
                upload(op.destination[0], committed[op.name], self._destination_path(op))
            if op.register_as:
                self._register_output(op, committed[op.name])
        return outputs

    def _destination_path(self, op):
        return op.destination[1].replace("{run-id}", self.run_id).replace("{output-name}", op.name)

    def _register_output(self, op, committed: Path):
        """``register_on_complete``: a new version of a file dataset where the output was uploaded."""
        if op.destination is None:  # the outputs are recorded only after all are committed, so use the path
            datastore = Datastore(self.run.ws)  # the workspace's default
            target = f"registered/{op.register_as}/{self.run_id}"
            upload(datastore, committed, target)
        else:
            datastore, target = op.destination[0], self._destination_path(op)
        definition = {"kind": "dataset", "dataset_type": "file", "sources": [{"datastore": datastore.name, "path": target}]}
        self.store.register_dataset(op.register_as, "file", definition, None, None, new_version=True)


def link_log_names(run_dir: Path) -> None:
    """The step's log under Azure's names too (code filters ``logFiles`` by them): hard links to the one
    file the runner wrote, copies where a link is refused. One the step uploaded itself is replaced."""
    log = run_dir / LOG_FILE
    if not log.is_file():
        return
    ranks = (run_dir / "user_logs" / "std_log_process_1.txt").exists()  # a distributed step: its rank 0's name
    for alias in LOG_ALIASES + (("user_logs/std_log_process_0.txt",) if ranks else ()):
        dest = run_dir / alias
        dest.parent.mkdir(exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(log, tmp)
        except OSError:
            shutil.copyfile(log, tmp)
        os.replace(tmp, dest)


def sentence(text: str) -> str:
    """A reason ends a message once, with one full stop (reasons come with and without)."""
    return text if text.endswith(".") else text + "."


def upload(datastore, path: Path, target: str) -> None:
    if path.is_dir():
        datastore.put_folder(path, target_path=target, overwrite=True, show_progress=False)
    else:
        datastore.put_files([path], target_path=target, overwrite=True, show_progress=False)


def remove_tree(path: Path) -> None:
    """rmtree that also removes what a script made read-only (say, a copy of a committed input). That is
    made writable only when it is in the way: the walk doing it costs about as much as the removal."""
    try:
        shutil.rmtree(path)
    except OSError:
        with contextlib.suppress(OSError):
            make_writable(path)
        shutil.rmtree(path, ignore_errors=True)


def exit_description(rc: int) -> str:
    """'exited with code 3', or for a negative code the signal that killed it (say, the OOM killer's SIGKILL)."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"was killed by {name} (exit code {rc})"
    return f"exited with code {rc}"
