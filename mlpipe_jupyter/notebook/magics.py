"""``%%step`` and ``%pipeline``: build a pipeline from notebook cells, submit it and watch it run.

Settings are traitlets, changeable with ``%config PipelineMagics.default_compute = "local"`` (or in
an IPython profile). Parsing lives in arguments.py; each ``%pipeline`` command is one small method
here. Mistakes (and the package's ``UserError``) surface as one-line ``UsageError`` messages.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
from pathlib import Path

import IPython
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Unicode

from mlpipe_jupyter.errors import PipelineValidationError, UserError, WorkspaceNotFoundError
from mlpipe_jupyter.model.document import FORMAT_VERSION
from mlpipe_jupyter.notebook.arguments import HelpShown, parse_pipeline_line, parse_step_line
from mlpipe_jupyter.notebook.cell_steps import CellStep
from mlpipe_jupyter.notebook.designer import notebook_designer
from mlpipe_jupyter.notebook.designer.sources import notebook_state_changed
from mlpipe_jupyter.notebook.monitor import RunMonitor
from mlpipe_jupyter.notebook.notebook_meta import save_notebook_metadata
from mlpipe_jupyter.notebook.run_history import RunHistory
from mlpipe_jupyter.notebook.state import NotebookPipeline
from mlpipe_jupyter.notebook.text_monitor import TextMonitor
from mlpipe_jupyter.sdk.experiment import Experiment
from mlpipe_jupyter.sdk.pipeline import pipeline_from_dict
from mlpipe_jupyter.sdk.published import running_server_url
from mlpipe_jupyter.sdk.run import Run
from mlpipe_jupyter.sdk.workspace import Workspace
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.tracking.report import run_text


@contextlib.contextmanager
def user_errors():
    """The package's own errors become IPython usage errors: a message, no traceback."""
    try:
        yield
    except HelpShown:
        raise
    except UserError as e:
        raise UsageError(str(e)) from None


def _quiet_help(func):
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HelpShown:
            return None

    wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__
    return wrapper


def current_execution_count(shell) -> int | None:
    """The In[] number of the cell running now: IPython 9 counts it up before running a cell, 8 after."""
    count = getattr(shell, "execution_count", None)
    if not isinstance(count, int):
        return None
    return count - 1 if IPython.version_info >= (9,) else count


def latest_output_path(store, step_name: str, output: str, experiment: str):
    """Where the latest completed run of ``step_name`` (this experiment first) keeps ``output``."""
    digest = store.latest_output_digest(step_name, output, experiment)
    return None if digest is None else store.data_path(digest) / output


@magics_class
class PipelineMagics(Magics):
    """The notebook's pipeline and the magics that edit, submit and show it."""

    default_experiment = Unicode("", help="Experiment for %pipeline submit; empty: the notebook's name.").tag(
        config=True)
    default_compute = Unicode("local", help="Compute target of %%step cells without --compute.").tag(config=True)
    show_monitor = Bool(True, help="Show the live monitor when a run is submitted.").tag(config=True)
    autosave_notebook = Bool(
        False, help="Save the pipeline into the notebook file's metadata after every change, when the kernel "
                    "knows that file. Off by default: an editor that has the notebook open will report that the "
                    "file changed on disk.").tag(config=True)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self._state = None
        self._workspace = None
        self._shown: set = set()  # (run id, execution count) already displayed by a magic

    # -- context ---------------------------------------------------------------------------------------------
    def notebook_path(self) -> Path | None:
        """The notebook file, when the kernel was told (Jupyter Server sets JPY_SESSION_NAME)."""
        name = (self.shell.user_ns.get("__session__") if self.shell else None) or os.environ.get("JPY_SESSION_NAME")
        if not name or not str(name).endswith(".ipynb"):
            return None
        path = Path(name)
        for candidate in (path, Path.cwd() / path, Path.cwd() / path.name):
            if candidate.is_file():
                return candidate.resolve()
        return None

    @property
    def workspace(self):
        if self._workspace is None:
            try:
                self._workspace = Workspace.from_config()
            except WorkspaceNotFoundError:
                self._workspace = Workspace.create("notebook", path=os.getcwd(), exist_ok=True)
        return self._workspace

    @property
    def state(self):
        if self._state is None:
            nb = self.notebook_path()
            self._state = NotebookPipeline(self.workspace, nb.parent if nb else os.getcwd(), nb.name if nb else None)
        return self._state

    def experiment_name(self) -> str:
        if self.default_experiment:
            return self.default_experiment
        nb = self.notebook_path()
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", nb.stem).strip("-_.") if nb else ""
        return stem or "notebook"

    def _widgets(self) -> bool:
        if getattr(self.shell, "kernel", None) is None:
            return False
        import importlib.util

        return importlib.util.find_spec("ipywidgets") is not None

    def _changed(self):
        notebook_state_changed(self.state)  # a displayed designer redraws
        nb = self.notebook_path()
        if self.autosave_notebook and nb is not None:
            save_notebook_metadata(self.state, nb)

    # -- showing runs ------------------------------------------------------------------------------------------
    def present(self, run, wait: bool):
        """The monitor (or text in a terminal); with ``wait``, block until the run ends."""
        from IPython.display import display

        monitor = None
        if self._widgets() and self.show_monitor:
            monitor = RunMonitor(run)
            shown = display(monitor.mimebundle(), raw=True, display_id=True)
            self._shown.add((run.id, self.shell.execution_count))
        elif not self._widgets() and self.show_monitor:
            if wait:
                TextMonitor(run).wait()
            else:
                print(f"Run {run.id} started (experiment '{run.experiment.name}'); "
                      "run.wait_for_completion(show_output=True) follows it.")
        if wait:
            run.wait_for_completion(raise_on_error=False)
            if monitor is not None:
                monitor.sync()
                shown.update(monitor.mimebundle(), raw=True)  # the text summary now says how it ended
            row = run._row
            if row["status"] == Status.FAILED:
                raise UsageError(f"Run {run.id} failed: {row['error']}")

    def display_run(self, run):
        """``display(run)``: the monitor of any run (a text summary without widgets)."""
        key = (run.id, self.shell.execution_count)
        if key in self._shown:  # the magic that returned it has shown it already
            self._shown.discard(key)
            return
        if self._widgets():
            from IPython.display import HTML, display

            if self.show_monitor:
                display(RunMonitor(run))
            else:
                display(HTML(run._repr_html_()))
        else:
            print(run_text(run._store, run.id))

    # -- %%step ------------------------------------------------------------------------------------------------
    @cell_magic
    @_quiet_help
    def step(self, line, cell):
        """%%step NAME [--inputs A B=SOURCE ...] [--outputs C ...] [--param k=v ...] [--compute TARGET]
        [--environment ENV] [--no-reuse] [--cold] [--source-dir DIR] [--run]

        Record this cell as a step of the notebook's pipeline (``%%step -h`` for details)."""
        with user_errors():
            spec, run_now = parse_step_line(line, cell, self.default_compute)
            if spec.compute not in self.workspace.compute_targets:
                known = ", ".join(sorted(self.workspace.compute_targets))
                raise UserError(f"Step '{spec.name}': no compute target named '{spec.compute}' (known: {known}).")
            replaced = spec.name in self.state.steps
            self.state.record(spec, execution_count=current_execution_count(self.shell))
            self._changed()
            if run_now:
                return self.run_single_step(spec.name)
        links = ", ".join(n for n, _ in spec.inputs) or "none"
        print(f"{'Replaced' if replaced else 'Recorded'} step '{spec.name}' (inputs: {links}; "
              f"outputs: {', '.join(spec.outputs) or 'none'}).")
        return None

    def run_single_step(self, name):
        """``--run``: this step alone, now, reading its upstream data from the latest runs."""
        state, ws = self.state, self.workspace
        entry = state.steps[name]
        experiment = self.experiment_name()
        producers = state.producers(skip=name)
        data = dict(entry.data_docs)
        for input_name in entry.spec.linked_inputs:
            path = latest_output_path(ws._store, producers[input_name], input_name, experiment)
            if path is None:
                raise UserError(f"Step '{name}' input '{input_name}' comes from step '{producers[input_name]}', which "
                                "has no completed run yet: submit the pipeline, or run that cell with --run first.")
            data[input_name] = {"kind": "dataset", "dataset_type": "file", "sources": [{"path": str(path)}]}
        doc = {"version": FORMAT_VERSION, "description": f"%%step {name} --run",
               "parameters": dict(entry.param_docs), "data": data, "steps": [entry.step_doc]}
        entry.write_script()
        pipeline = pipeline_from_dict(ws, doc, base_dir=state.notebook_dir)
        run = Experiment(ws, experiment).submit(pipeline, regenerate_outputs=True)
        self.present(run, wait=True)
        return None

    # -- %pipeline ------------------------------------------------------------------------------------------------
    @line_magic
    @_quiet_help
    def pipeline(self, line):
        """%pipeline submit|publish|show|validate|steps|runs|export|load|clear|remove|save-notebook ...

        Work with the notebook's pipeline (``%pipeline -h`` for details)."""
        with user_errors():
            args = parse_pipeline_line(line)
            return getattr(self, "cmd_" + args.command.replace("-", "_"))(args)

    def cmd_submit(self, args):
        pipeline = self.state.build()
        experiment = args.experiment or self.experiment_name()
        run = Experiment(self.workspace, experiment).submit(pipeline, pipeline_parameters=args.params,
                                                            regenerate_outputs=args.regenerate)
        self.present(run, wait=args.wait)
        return run

    def cmd_publish(self, args):
        """Publish the pipeline as ``%pipeline submit`` builds it; the curl example names the token's file,
        never the token."""
        published = self.state.build().publish(name=args.name, description=args.description, version=args.version)
        print(f"Published pipeline '{published.name}' (id {published.id}).")
        print(f"REST endpoint: {published.endpoint}")
        defaults = {n: v for n, v in published.parameters.items() if isinstance(v, (bool, int, float, str))}
        body = json.dumps({"ExperimentName": self.experiment_name(), "ParameterAssignments": defaults})
        token_file = shlex.quote(str(self.workspace.folder / "server.token"))
        print(f"Run it with:\n  curl -X POST {published.endpoint} -H \"Authorization: token $(cat {token_file})\" "
              f"-H \"Content-Type: application/json\" -d {shlex.quote(body)}")
        if running_server_url(self.workspace) is None:
            print(f"No server runs for this workspace yet, so nothing answers there: start one with "
                  f"`mlpipe serve --workspace {shlex.quote(str(self.workspace.path))}` (or start Jupyter in the "
                  "workspace's folder); the endpoint is then on its port.")
        return published

    def cmd_show(self, args):
        if self._widgets():
            from IPython.display import display

            designer = notebook_designer(self)
            if getattr(args, "panel", False):
                designer.open_panel()
                print("The Pipeline Designer opened in a JupyterLab panel.")
            else:
                display(designer)  # the widget, with the pipeline in words for where widgets cannot show
        elif not self.state.steps:
            raise UserError("The pipeline has no steps yet: record cells with %%step NAME first.")
        else:
            self.cmd_steps(args)

    def cmd_validate(self, args):
        pipeline = self.state.build()
        problems = pipeline.validate()
        if problems:
            raise PipelineValidationError(problems)
        print(f"The pipeline is valid ({len(pipeline.steps)} steps: {', '.join(s.name for s in pipeline.steps)}).")

    def cmd_steps(self, args):
        if not self.state.steps:
            print("No steps yet: record cells with %%step NAME.")
            return
        for name, doc in self.state.step_docs().items():
            entry = self.state.steps[name]
            ins = ", ".join(i["data"] for i in doc.get("inputs", []) if isinstance(i, dict) and "data" in i) or "-"
            outs = ", ".join(o["data"] for o in doc.get("outputs", []) if isinstance(o, dict)) or "-"
            origin = "cell" if isinstance(entry, CellStep) else "file"
            reuse = "" if doc.get("allow_reuse", True) else "  no-reuse"
            print(f"{name:<20} in: {ins:<24} out: {outs:<20} on {doc.get('compute_target', 'local')} ({origin}){reuse}")

    def cmd_runs(self, args):
        """The run history table (``RunHistory``), shown wherever the magic is in the cell; plain text
        without widgets."""
        experiment = None if args.all else Experiment(self.workspace, args.experiment or self.experiment_name())
        history = RunHistory(experiment or self.workspace, limit=args.limit, status=args.status)
        if not history.summaries:
            where = "" if experiment is None else f" in experiment {experiment.name!r}"
            print(f"No runs yet{where}{'' if args.status is None else f' with status {args.status}'}.")
        elif self._widgets():
            from IPython.display import display

            display(history.mimebundle(), raw=True)
        else:
            print(history.text())

    def cmd_export(self, args):
        path = Path(args.path)
        path = path if path.is_absolute() else self.state.notebook_dir / path
        pipeline = self.state.build()
        pipeline.save(path)
        print(f"Saved the pipeline ({len(pipeline.steps)} steps) to {args.path}.")

    def cmd_load(self, args):
        self.state.load_file(args.path)
        self._changed()
        print(f"Loaded {len(self.state.steps)} steps from {args.path}: {', '.join(self.state.steps)}.")

    def cmd_clear(self, args):
        self.state.clear()
        self._changed()
        print("The pipeline has no steps now.")

    def cmd_remove(self, args):
        left = self.state.remove(args.step)
        self._changed()
        note = f" Steps {', '.join(left)} now take an input nobody produces." if left else ""
        print(f"Removed step '{args.step}'.{note}")

    def cmd_save_notebook(self, args):
        path = Path(args.path) if args.path else self.notebook_path()
        if path is None:
            raise UserError("This kernel does not know its notebook file; name it: "
                            "%pipeline save-notebook NOTEBOOK.ipynb")
        save_notebook_metadata(self.state, path)
        print(f"Saved the pipeline ({len(self.state.steps)} steps) into the metadata of {path}.")


def _experiment_bundle(experiment, include=None, exclude=None) -> dict:
    return RunHistory(experiment)._repr_mimebundle_()


def load_ipython_extension(ipython):
    magics = PipelineMagics(shell=ipython, parent=ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
    ipython.display_formatter.ipython_display_formatter.for_type(Run, magics.display_run)
    # an Experiment shown as a cell's value: its run history table (text where widgets cannot show)
    ipython.display_formatter.mimebundle_formatter.for_type(Experiment, _experiment_bundle)
    with user_errors():
        magics.workspace  # opened (or created) now, so Workspace.from_config() works in the next cell
    return magics
