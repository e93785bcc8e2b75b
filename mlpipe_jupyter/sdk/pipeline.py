"""Pipeline: a set of steps joined by data links. Plain data; nothing here runs anything."""
from __future__ import annotations

from mlpipe_jupyter.errors import PipelineValidationError, UserError
from mlpipe_jupyter.sdk.data import PipelineData
from mlpipe_jupyter.sdk.step import PythonScriptStep


def _flatten(steps):
    for s in steps:
        if isinstance(s, (list, tuple)):
            yield from _flatten(s)
        else:
            yield s


class Pipeline:
    """``Pipeline(workspace, steps)``: steps in any order or nested lists; producers of inputs are pulled in."""

    def __init__(self, workspace, steps, description=None, default_datastore=None, default_source_directory=None,
                 resolve_closure=True):
        self.workspace = workspace
        self.description = description
        self.default_datastore = default_datastore
        self._steps: list[PythonScriptStep] = []
        self._listeners = []
        for s in _flatten(steps):
            if not isinstance(s, PythonScriptStep):
                raise UserError(f"Pipeline steps must be PythonScriptStep objects; got {s!r}.")
            self._append(s)
        if resolve_closure:
            self._pull_in_producers()

    # -- structure -------------------------------------------------------------------------------------
    @property
    def steps(self) -> list[PythonScriptStep]:
        return list(self._steps)

    def _append(self, step):
        if not any(step is s for s in self._steps):
            self._steps.append(step)

    def _pull_in_producers(self):
        i = 0
        while i < len(self._steps):
            for _, data, _ in self._steps[i].input_items():
                if isinstance(data, PipelineData) and data._producer is not None:
                    self._append(data._producer)
            i += 1

    def add_step(self, step: PythonScriptStep) -> None:
        """Add or replace (by name) a step; listeners such as the designer are told."""
        for i, s in enumerate(self._steps):
            if s.name == step.name:
                self._steps[i] = step
                break
        else:
            self._steps.append(step)
        self._pull_in_producers()
        self._notify("add_step", step.name)

    def remove_step(self, name: str) -> PythonScriptStep:
        step = self.find_step(name)
        self._steps.remove(step)
        self._notify("remove_step", name)
        return step

    def find_step(self, name: str) -> PythonScriptStep:
        for s in self._steps:
            if s.name == name:
                return s
        raise UserError(f"The pipeline has no step named '{name}' (steps: {', '.join(s.name for s in self._steps) or 'none'}).")

    def observe(self, callback):
        """callback(event, step_name) after each structural change."""
        self._listeners.append(callback)

    def _notify(self, event, name):
        for cb in list(self._listeners):
            cb(event, name)

    def producers(self) -> dict[int, PythonScriptStep]:
        """id(data object) -> the step that writes it."""
        return {id(o): s for s in self._steps for o in s.outputs}

    def upstream(self, step, producers: dict | None = None) -> list[PythonScriptStep]:
        """Steps whose outputs ``step`` reads; pass ``producers()`` when asking for many steps."""
        prod = self.producers() if producers is None else producers
        ups = []
        for _, data, _ in step.input_items():
            p = prod.get(id(data))
            if p is not None and p not in ups:
                ups.append(p)
        return ups

    def parameters(self) -> dict:
        found = {}
        for s in self._steps:
            for p in s.parameters_used():
                found.setdefault(p.name, p)
        return found

    # -- checks ------------------------------------------------------------------------------------------
    def validate(self, raise_on_error=False) -> list[str]:
        """Every problem at once (Azure returns a list too); empty when the pipeline can run."""
        from mlpipe_jupyter.planning.validation import validate_pipeline

        problems = validate_pipeline(self)
        if problems and raise_on_error:
            raise PipelineValidationError(problems)
        return problems

    # -- format --------------------------------------------------------------------------------------------
    def to_dict(self, base_dir=None) -> dict:
        from mlpipe_jupyter.sdk.pipeline_format import pipeline_to_dict

        return pipeline_to_dict(self, base_dir)

    def save(self, path, format=None) -> None:
        from mlpipe_jupyter.sdk.pipeline_format import save_pipeline

        save_pipeline(self, path, format)

    @staticmethod
    def load(workspace, path) -> "Pipeline":
        from mlpipe_jupyter.sdk.pipeline_format import load_pipeline

        return load_pipeline(workspace, path)

    @staticmethod
    def from_dict(workspace, data, base_dir=".") -> "Pipeline":
        from mlpipe_jupyter.sdk.pipeline_format import pipeline_from_dict

        return pipeline_from_dict(workspace, data, base_dir)

    def designer(self, experiment="designer"):
        """A canvas of this pipeline for the notebook: ``display(pipeline.designer())`` edits it by mouse."""
        from mlpipe_jupyter.notebook.designer import Designer

        return Designer(self, experiment=experiment)

    def submit(self, experiment_name, **kwargs):
        from mlpipe_jupyter.sdk.experiment import Experiment

        return Experiment(self.workspace, experiment_name).submit(self, **kwargs)

    def __repr__(self):
        return f"Pipeline({len(self._steps)} steps: {', '.join(s.name for s in self._steps)})"
