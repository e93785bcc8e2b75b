"""Pipeline: a set of steps joined by data links, and its document (model/document.py), both ways.

``Pipeline.to_document()`` is what the planner plans: data listed once by name, folders absolute,
secrets kept for this process. ``pipeline_from_dict`` builds the objects back, for a loaded file, the
designer and the magics. Files keep folders relative to their own folder, so a pipeline folder can
move, and no secret. Nothing here runs anything.
"""
from __future__ import annotations

import os
from pathlib import Path

from mlpipe_jupyter.errors import PipelineValidationError, UserError
from mlpipe_jupyter.model.document import FORMAT_VERSION, PipelineDocument, absolute_from, relative_to
from mlpipe_jupyter.model.format import check_version, for_storage, read_document, write_document
from mlpipe_jupyter.model.names import fit_data_name
from mlpipe_jupyter.planning.planner import document_problems
from mlpipe_jupyter.sdk.data import (AbstractDataset, DataReference, DatasetConsumptionConfig, InputBinding,
                                     OutputFileDatasetConfig, ParameterInput, PipelineData, data_value,
                                     dataset_from_definition, get_dataset)
from mlpipe_jupyter.sdk.datastore import Datastore
from mlpipe_jupyter.model.environment import is_default_environment
from mlpipe_jupyter.sdk.environment import Environment
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.sdk import distributed
from mlpipe_jupyter.sdk.run_config import RunConfiguration
from mlpipe_jupyter.sdk.step import PythonScriptStep, StepSequence, _flatten


class Pipeline:
    """``Pipeline(workspace, steps)``: steps in any order, nested lists or a ``StepSequence``; the steps that
    write what they read, or that they run after, are pulled in."""

    def __init__(self, workspace, steps, description=None, default_datastore=None, default_source_directory=None,
                 resolve_closure=True):
        self.workspace = workspace
        self.description = description
        self.default_datastore = default_datastore
        self._steps: list[PythonScriptStep] = []
        self._listeners = []
        items = steps if isinstance(steps, (list, tuple)) else [steps]
        # (step, step it runs after) from the sequences given here: this pipeline's order, not the steps'
        self._sequence_edges = [e for item in items if isinstance(item, StepSequence) for e in item.edges()]
        seen: set[int] = set()
        for s in _flatten(items):
            if not isinstance(s, PythonScriptStep):
                raise UserError(f"Pipeline steps must be PythonScriptStep objects; got {s!r}.")
            if id(s) not in seen:
                seen.add(id(s))
                self._steps.append(s)
        if resolve_closure:
            self._pull_in_producers()
        self._tell_unnamed_apart()

    # -- structure -------------------------------------------------------------------------------------
    @property
    def steps(self) -> list[PythonScriptStep]:
        return list(self._steps)

    def _pull_in_producers(self):
        """Add the steps that write what the steps read or that they run after, and theirs, each once."""
        seen = {id(s) for s in self._steps}
        i = 0
        while i < len(self._steps):
            step = self._steps[i]
            needed = [data._producer for _, data, _ in step.input_items() if isinstance(data, PipelineData)]
            for other in needed + self.runs_after(step):
                if other is not None and id(other) not in seen:
                    seen.add(id(other))
                    self._steps.append(other)
            i += 1

    def _tell_unnamed_apart(self):
        """Two steps left unnamed with one script (both ``train.py``) become ``train.py`` and ``train.py (2)``.

        Azure keys step runs by node id and allows equal names; here a name keys a step's runs, logs and
        reuse history, so the later ones get a number. Names given by the user are never changed."""
        taken = {s.name for s in self._steps if not s._auto_named}
        for s in self._steps:
            if s._auto_named:
                base = s._default_name
                name, n = base, 1
                while name in taken:
                    n += 1
                    name = f"{base} ({n})"
                if name != s.name:
                    s._rename(name)
                taken.add(name)

    def runs_after(self, step) -> list[PythonScriptStep]:
        """The steps ``step`` runs after without reading their data: its ``run_after`` and this pipeline's
        sequences."""
        found = list(step._run_after) + [earlier for later, earlier in self._sequence_edges if later is step]
        return list({id(s): s for s in found}.values())

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
        ups = {}  # id -> step, in the order the step reads them
        for _, data, _ in step.input_items():
            p = prod.get(id(data))
            if p is not None:
                ups.setdefault(id(p), p)
        return list(ups.values())

    def parameters(self) -> dict:
        found = {}
        for s in self._steps:
            for p in s.parameters_used():
                found.setdefault(p.name, p)
        return found

    # -- checks ------------------------------------------------------------------------------------------
    def validate(self, raise_on_error=False) -> list[str]:
        """Every problem at once (Azure returns a list too); empty when the pipeline can run."""
        problems = document_problems(self.workspace, self.to_document())
        if problems and raise_on_error:
            raise PipelineValidationError(problems)
        return problems

    # -- the document ----------------------------------------------------------------------------------------
    def to_document(self) -> PipelineDocument:
        """The document the planner plans: folders absolute, secrets in place (it stays in this process)."""
        return pipeline_to_document(self)

    def to_dict(self, base_dir=None) -> dict:
        """The document as a file holds it: folders relative to ``base_dir`` (default: here), no secret."""
        return pipeline_to_dict(self, base_dir)

    def save(self, path, format=None) -> None:
        save_pipeline(self, path, format)

    @staticmethod
    def load(workspace, path) -> "Pipeline":
        return load_pipeline(workspace, path)

    @staticmethod
    def from_dict(workspace, data, base_dir=".") -> "Pipeline":
        return pipeline_from_dict(workspace, data, base_dir)

    def designer(self, experiment="designer"):
        """A canvas of this pipeline for the notebook: ``display(pipeline.designer())`` edits it by mouse.

        The one import of an entry point from the SDK: the designer is the notebook layer's, and this
        verb is where notebook users look for it (listed as an exception in the layer contract)."""
        from mlpipe_jupyter.notebook.designer import Designer

        return Designer(self, experiment=experiment)

    def submit(self, experiment_name, **kwargs):
        from mlpipe_jupyter.sdk.experiment import Experiment  # an experiment submits pipelines: a cycle

        return Experiment(self.workspace, experiment_name).submit(self, **kwargs)

    def publish(self, name=None, description=None, version=None, continue_on_step_failure=None):
        """A frozen copy of this pipeline, runnable by id or REST call (sdk/published.py)."""
        from mlpipe_jupyter.sdk.published import publish_pipeline  # published pipelines submit: a cycle

        return publish_pipeline(self, name, description, version, continue_on_step_failure)

    def __repr__(self):
        return f"Pipeline({len(self._steps)} steps: {', '.join(s.name for s in self._steps)})"


def pipeline_to_document(pipeline) -> PipelineDocument:
    """The document of a pipeline, folders absolute and secrets in place (it stays in this process;
    ``model.format.for_storage`` takes them out)."""
    data: dict[str, dict] = {}
    links: dict[str, PipelineData] = {}  # name -> the one intermediate data object saved under it
    params = {name: p.to_dict() for name, p in pipeline.parameters().items()}

    def add(name, obj) -> str:
        """The key data is saved under, once. Intermediate data keeps its name (its producer writes it under
        that name), so two such objects cannot share one. External data read by two steps under one input
        name (``as_named_input("raw_data")`` of two datasets) is saved as ``raw_data``, ``raw_data_2``...;
        each step still reads it as ``raw_data``."""
        d = obj.to_dict()
        if isinstance(obj, PipelineData):
            if name in data and links.get(name) is not obj:
                raise UserError(f"The pipeline uses two different data objects named '{name}'; "
                                "give each its own name so the saved file keeps them apart.")
            data[name] = d
            links[name] = obj
            return name
        key, n = name, 1
        while key in data and data[key] != d:
            n += 1
            key = f"{fit_data_name(name, room=len(f'_{n}'))}_{n}"
        data[key] = d
        return key

    def named(key, name, **extra):
        return {"data": key, **({"as": name} if key != name else {}), **extra}

    def read(spec):
        """How a reading step sees intermediate data as a dataset, when it does."""
        return {"read": dict(spec)} if spec else {}

    def ref(obj):
        if isinstance(obj, PipelineParameter):
            return {"param": obj.name}
        if isinstance(obj, InputBinding):
            add(obj.data.name, obj.data)
            return {"data": obj.data.name, "as": obj.input_name, "mode": obj.mode, **read(obj.read)}
        if isinstance(obj, DatasetConsumptionConfig):
            return named(add(obj.name, obj.dataset), obj.name, mode=obj.mode)
        if isinstance(obj, ParameterInput):  # data a pipeline parameter chooses
            return named(add(obj.name, obj), obj.name, mode=obj.mode)
        if isinstance(obj, PipelineData):
            return named(add(obj.name, obj), obj.name, **read(obj._read))
        if isinstance(obj, DataReference):
            return named(add(obj.name, obj), obj.name)
        if isinstance(obj, AbstractDataset):
            return named(add(obj.name or "dataset", obj), obj.name or "dataset")
        return obj

    steps = []
    for s in pipeline.steps:
        d = {
            "name": s.name,
            "script": s.script_name,
            "source_directory": str(s.source_directory),
            "arguments": [ref(a) for a in s.arguments],
            "inputs": [ref(i) for i in s.inputs],
            "outputs": [ref(o) for o in s.outputs],
            "compute_target": s.compute_target,
            "allow_reuse": s.allow_reuse,
        }
        if s.params:
            d["params"] = {k: ref(v) for k, v in s.params.items()}
        if s.hash_paths:
            d["hash_paths"] = list(s.hash_paths)
        env = s.runconfig.environment
        if not is_default_environment(env):
            d["environment"] = env.to_dict(secrets=True)
        if s.runconfig.max_run_duration_seconds is not None:
            d["max_run_duration_seconds"] = s.runconfig.max_run_duration_seconds
        if getattr(s.runconfig, "environment_variables", None):
            d["environment_variables"] = dict(s.runconfig.environment_variables)
        spread = distributed.document_entry(s.runconfig)
        if spread:
            d["distributed"] = spread
        after = [other.name for other in pipeline.runs_after(s)]
        if after:
            d["run_after"] = after
        if s.position:
            d["position"] = dict(s.position)
        steps.append(d)
    return {"version": FORMAT_VERSION, "description": pipeline.description, "parameters": params,
            "data": data, "steps": steps}


def pipeline_to_dict(pipeline, base_dir=None) -> dict:
    """The pipeline as a file holds it: folders relative to ``base_dir`` (default: here), no secret."""
    return relative_to(for_storage(pipeline_to_document(pipeline)), base_dir or os.getcwd())


def pipeline_from_dict(workspace, doc, base_dir="."):
    """A ``Pipeline`` of SDK objects from a document whose folders are relative to ``base_dir``."""
    check_version(doc, "A pipeline description")
    try:
        return _pipeline_from_dict(workspace, absolute_from(doc, base_dir))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise UserError(f"The pipeline description is malformed ({type(e).__name__}: {e}).") from None


def _pipeline_from_dict(workspace, doc):
    params = {n: PipelineParameter(n, data_value(workspace, (v or {}).get("default")))
              for n, v in (doc.get("parameters") or {}).items()}
    data_docs = doc.get("data") or {}
    data: dict[str, object] = {}

    def datastore(name):
        return Datastore(workspace, name) if name else None

    def make_data(name):
        if name in data:
            return data[name]
        d = data_docs.get(name)
        if d is None:
            raise UserError(f"The pipeline refers to data '{name}', which its 'data' section does not define.")
        kind = d.get("kind")
        if kind == "pipeline_data":
            obj = PipelineData(name, datastore=datastore(d.get("datastore")), is_directory=d.get("is_directory", True))
        elif kind == "output_file_dataset":
            dest = d.get("destination")
            obj = OutputFileDatasetConfig(name, destination=(datastore(dest["datastore"]), dest["path"]) if dest else None)
            if d.get("register_as"):
                obj.register_on_complete(d["register_as"])
        elif kind == "data_reference":
            obj = DataReference(datastore(d["datastore"]), name, d.get("path"), d.get("mode", "mount"))
        elif kind == "dataset":
            if d.get("name") and d.get("version") is not None:
                obj = get_dataset(workspace, d["name"], d["version"])
            else:
                obj = dataset_from_definition(workspace, d, d.get("dataset_type"))
            obj = DatasetConsumptionConfig(name, obj)
        elif kind == "parameter":
            if d.get("param") not in params:
                raise UserError(f"Data '{name}' in the pipeline is chosen by parameter {d.get('param')!r}, which it "
                                "does not define.")
            obj = ParameterInput(params[d["param"]], name)
        else:
            raise UserError(f"Data '{name}' in the pipeline has unknown kind {kind!r}.")
        data[name] = obj
        return obj

    views: dict[tuple, object] = {}  # one object per (data, input name, mode), as in the saved pipeline

    def deref(v):
        if isinstance(v, dict) and "param" in v:
            if v["param"] not in params:
                raise UserError(f"The pipeline refers to parameter '{v['param']}', which it does not define.")
            return params[v["param"]]
        if isinstance(v, dict) and "data" in v:
            obj = make_data(v["data"])
            if isinstance(obj, DatasetConsumptionConfig):  # read under its input name ("as"), saved by its key
                key = (v["data"], v.get("as"), v.get("mode", obj.mode))
                return views.setdefault(key, DatasetConsumptionConfig(key[1] or obj.name, obj.dataset, key[2]))
            if isinstance(obj, ParameterInput):
                key = (v["data"], v.get("as"), v.get("mode", "mount"))
                return views.setdefault(key, ParameterInput(obj.param, key[1] or obj.name, key[2]))
            if ("as" in v or "read" in v) and isinstance(obj, PipelineData):
                key = (v["data"], v.get("as", v["data"]), v.get("mode", "mount"), repr(v.get("read")))
                return views.setdefault(key, InputBinding(obj, key[1], key[2], v.get("read")))
            if "as" in v and isinstance(obj, DataReference):
                key = (v["data"], v["as"], obj.mode)
                return views.setdefault(key, DataReference(obj.datastore, v["as"], obj.path_on_datastore, obj.mode))
            return obj
        return v

    # outputs first, so PipelineData objects know their producer before inputs refer to them
    steps = []
    for sd in doc["steps"]:
        if not isinstance(sd, dict) or "name" not in sd or "script" not in sd:
            raise UserError(f"Each step in a pipeline needs 'name' and 'script'; got {sd!r}.")
        rc = RunConfiguration()
        if sd.get("environment"):
            rc.environment = Environment.from_dict(sd["environment"])
        rc.max_run_duration_seconds = sd.get("max_run_duration_seconds")
        rc.environment_variables = dict(sd.get("environment_variables") or {})
        if sd.get("distributed"):
            distributed.apply(rc, distributed.from_entry(sd["distributed"]))
        step = PythonScriptStep(
            sd["script"], name=sd["name"],
            arguments=[deref(a) for a in sd.get("arguments") or []],
            inputs=[deref(i) for i in sd.get("inputs") or []],
            outputs=[deref(o) for o in sd.get("outputs") or []],
            params={k: deref(v) for k, v in (sd.get("params") or {}).items()},
            compute_target=sd.get("compute_target", "local"),
            runconfig=rc,
            source_directory=sd.get("source_directory", "."),
            allow_reuse=sd.get("allow_reuse", True),
            hash_paths=sd.get("hash_paths"),
        )
        step.position = sd.get("position")
        steps.append(step)
    by_name = {s.name: s for s in steps}
    for sd, step in zip(doc["steps"], steps):
        for other in sd.get("run_after") or []:
            if other not in by_name:
                raise UserError(f"Step '{step.name}' runs after '{other}', which is not a step of this pipeline.")
            step.run_after(by_name[other])
    return Pipeline(workspace, steps, description=doc.get("description"))


def save_pipeline(pipeline, path, format=None) -> None:
    path = Path(path)
    write_document(pipeline_to_dict(pipeline, base_dir=path.parent), path, format)


def load_pipeline(workspace, path):
    path = Path(path)
    doc = read_document(path)
    try:
        return pipeline_from_dict(workspace, doc, base_dir=path.parent)
    except UserError as e:
        raise UserError(f"Pipeline file '{path}': {e}") from None
