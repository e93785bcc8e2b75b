"""Experiment: a named group of runs; ``submit`` plans, records and starts a run in the background."""
from __future__ import annotations

import getpass
import os
import re
import time
from pathlib import Path

from mlpipe_jupyter.compute import backends_for, check_plan
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.document import relative_to
from mlpipe_jupyter.model.format import for_storage
from mlpipe_jupyter.planning.planner import make_plan
from mlpipe_jupyter.planning.snapshot import take_snapshot
from mlpipe_jupyter.running.runner import RunExecution
from mlpipe_jupyter.sdk.data import save_datasets
from mlpipe_jupyter.sdk.parameters import parameter_values
from mlpipe_jupyter.sdk.pipeline import Pipeline
from mlpipe_jupyter.sdk.run import PipelineRun, Run
from mlpipe_jupyter.sdk.run_config import ScriptRunConfig
from mlpipe_jupyter.sdk.step import PythonScriptStep
from mlpipe_jupyter.secrets import MASK, looks_secret
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.store import hostname, new_id, process_start_time

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


class Experiment:
    def __init__(self, workspace, name, _create_in_cloud=True, **kwargs):
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserError(f"Experiment name {name!r} is not valid: start with a letter or digit, then letters, "
                            "digits, '_', '.' or '-'.")
        self.workspace = workspace
        self.name = name

    def submit(self, config, tags=None, regenerate_outputs=False, pipeline_parameters=None,
               continue_on_step_failure=False, max_concurrency=None, _queued_id=None, **kwargs):
        """Start ``config`` (a Pipeline or a ScriptRunConfig) and return its run at once (``_queued_id``: as
        the queued run of that id, which a server has claimed; None if it was canceled since).

        Everything is checked first: an invalid pipeline raises and leaves no run behind. The run
        keeps the pipeline's document relative to the workspace, without secrets.
        """
        if hasattr(config, "_submit_to"):  # a PublishedPipeline or a PipelineEndpoint (sdk/published.py)
            return config._submit_to(self, pipeline_parameters, kwargs.get("pipeline_version"), tags)
        ws = self.workspace
        store = ws._store
        single = isinstance(config, ScriptRunConfig)
        if single:
            doc = _script_pipeline(ws, config).to_document()
        elif isinstance(config, Pipeline):
            if config.workspace is not None and config.workspace.path != ws.path:
                raise UserError("The pipeline belongs to another workspace than this experiment.")
            doc = config.to_document()
        else:
            raise UserError(f"Experiment.submit takes a Pipeline or a ScriptRunConfig, not {type(config).__name__}.")
        # a DataPath or dataset given for a parameter is planned and kept as its description
        plan, backends = plan_with_backends(ws, doc, parameter_values(pipeline_parameters))
        save_datasets(ws, pipeline_parameters)

        store.ensure_experiment(self.name)
        now = time.time()
        run_id = _queued_id or new_id("run")
        if single:
            (step_name,) = plan.steps
            sp = plan.steps[step_name]
            step_run_ids = {step_name: run_id}
            rows = [dict(id=run_id, experiment=self.name, kind="script", parent_id=None, name=step_name,
                         status=Status.NOT_STARTED, created=now, details=_step_details(sp))]
        else:
            step_run_ids = {name: new_id("step") for name in plan.steps}
            first = next(iter(plan.steps.values()))
            rows = [dict(id=run_id, experiment=self.name, kind="pipeline", parent_id=None,
                         name=config.description or self.name, status=Status.NOT_STARTED, created=now,
                         details={"parameters": _masked_parameters(plan.parameters), "git": first.snapshot.git,
                                  "submitted_by": submitted_by(),
                                  "pipeline": relative_to(for_storage(doc), ws.path),
                                  "regenerate_outputs": bool(regenerate_outputs)})]
            for i, (name, sp) in enumerate(plan.steps.items()):
                rows.append(dict(id=step_run_ids[name], experiment=self.name, kind="step", parent_id=run_id,
                                 name=name, status=Status.NOT_STARTED, created=now + i * 1e-6,
                                 details={**_step_details(sp), "upstream": sp.upstream}))
        # the runner's identity goes in with the rows, so a crash right after this is still recoverable
        rows[0].update(runner_pid=os.getpid(), runner_start=process_start_time(os.getpid()), host=hostname())
        if _queued_id is None:
            store.insert_runs(rows)
        elif not store.start_queued_run(rows):
            return None
        store.set_tags(run_id, tags or {})
        execution = RunExecution(ws, plan, run_id, self.name, step_run_ids, backends,
                                 regenerate=regenerate_outputs, continue_on_step_failure=continue_on_step_failure,
                                 max_concurrency=max_concurrency, single=single)
        execution.start()
        return Run(self, run_id) if single else PipelineRun(self, run_id)

    def start_logging(self, *args, snapshot_directory=None, outputs=None, display_name=None, **kwargs):
        """An interactive run in this experiment's history, Running until ``complete()`` or ``fail()`` (or
        the end of a ``with`` block). ``outputs`` (default ``./outputs``; False for none) is the folder kept
        with the run when it ends; ``snapshot_directory`` (default none) is snapshotted now."""
        if args:
            raise UserError("Experiment.start_logging takes keyword arguments only "
                            "(snapshot_directory=, outputs=, display_name=).")
        store = self.workspace._store
        details = {"interactive": True, "submitted_by": submitted_by(), "compute_target": "local",
                   "outputs_dir": None if outputs is False else os.path.abspath(outputs or "outputs")}
        if snapshot_directory is not None:
            if not os.path.isdir(snapshot_directory):
                raise UserError(f"start_logging: snapshot_directory '{snapshot_directory}' is not a folder.")
            snapshot = take_snapshot(store, Path(snapshot_directory))
            details.update(snapshot=snapshot.digest, git=snapshot.git)
        store.ensure_experiment(self.name)
        run_id = new_id("run")
        now = time.time()
        store.insert_runs([dict(id=run_id, experiment=self.name, kind="script", parent_id=None,
                                name=display_name or self.name, status=Status.RUNNING, created=now, started=now,
                                details=details, runner_pid=os.getpid(),
                                runner_start=process_start_time(os.getpid()), host=hostname())])
        return Run(self, run_id)

    def get_runs(self, type=None, tags=None, properties=None, include_children=False):
        """The experiment's runs, latest first; ``tags``/``properties`` filter by a key or a dict of values."""
        return Run.list(self, type=type, tags=tags, properties=properties, include_children=include_children)

    def archive(self):
        self.workspace._store.set_experiment_archived(self.name, True)

    def reactivate(self, new_name=None):
        self.workspace._store.set_experiment_archived(self.name, False)

    @property
    def archived_time(self):
        return self.workspace._store.experiment_archived(self.name)

    def __repr__(self):
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"


def plan_with_backends(workspace, doc, pipeline_parameters=None, check=True):
    """The plan of a document and the backends of its compute targets: each target's identity enters the
    steps' reuse keys, and each backend checks its steps before anything runs (unless not ``check``)."""
    known = workspace.compute_targets
    names = [s.get("compute_target") or "local" for s in doc.get("steps") or []]
    backends = backends_for(workspace, [n for n in names if n in known])  # unknown ones: validation says so
    plan = make_plan(workspace, doc, pipeline_parameters, {n: b.identity() for n, b in backends.items()})
    if check:
        check_plan(backends, plan)
    return plan, backends


def _script_pipeline(workspace, config) -> Pipeline:
    """A ScriptRunConfig as a one-step pipeline (its data objects in arguments work as in a step)."""
    if not config.script:
        raise UserError("ScriptRunConfig needs a script.")
    base = os.path.splitext(os.path.basename(config.script))[0]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", base).lstrip(".-") or "script"  # any file name makes a run name
    step = PythonScriptStep(config.script, name=name, arguments=config.arguments, compute_target=config.compute_target,
                            runconfig=config.run_config, source_directory=config.source_directory, allow_reuse=False)
    return Pipeline(workspace, [step])


def _step_details(sp) -> dict:
    """What a step run records about its step plan (an environment's secrets keep their names only, a
    secret parameter in its arguments is masked, a data path is named as Azure names it)."""
    return {"script": sp.script, "snapshot": sp.snapshot.digest, "git": sp.snapshot.git,
            "compute_target": sp.compute_target, "environment": sp.environment.to_dict(),
            "arguments": _shown_arguments(sp), "submitted_by": submitted_by(),
            "inputs": [{"name": i.name, "mode": i.mode, "dataset": i.external.description,
                        "dataset_kind": i.external.dataset_kind}
                       for i in sp.inputs if i.external is not None and i.external.dataset_kind],
            "outputs": [o.name for o in sp.outputs]}


def _shown_arguments(sp) -> list[str]:
    shown = []
    templates = sp.argument_template if len(sp.argument_template) == len(sp.arguments) else [None] * len(sp.arguments)
    for value, template in zip(sp.arguments, templates):
        if not isinstance(value, str):
            shown.append(f"$AZUREML_DATAREFERENCE_{value.name}")
        elif isinstance(template, str) and template.startswith("<param:") and looks_secret(template[7:-1]):
            shown.append(MASK)
        else:
            shown.append(value)
    return shown


def submitted_by() -> str:
    """Who submits: the operating system user (Azure records the signed-in user)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return str(os.getuid())


def _masked_parameters(parameters: dict) -> dict:
    return {k: MASK if looks_secret(k) else v for k, v in parameters.items()}
