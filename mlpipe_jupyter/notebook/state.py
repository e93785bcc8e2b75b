"""The notebook's current pipeline: recorded cells and loaded steps, kept as pipeline-file entries.

Steps link by data name, as in the pipeline file format, so recording a cell again (which replaces
its step) keeps every link to and from it. A ``Pipeline`` is built from this state on demand.
"""
from __future__ import annotations

import os
from pathlib import Path

from mlpipe_jupyter.errors import PipelineValidationError, UserError
from mlpipe_jupyter.model import edits as dm
from mlpipe_jupyter.model.document import FORMAT_VERSION
from mlpipe_jupyter.model.format import read_document
from mlpipe_jupyter.model.names import check_relative_script, check_step_name
from mlpipe_jupyter.notebook.cell_steps import CellSpec, CellStep, check_cell_names, make_cell_step, safe_key
from mlpipe_jupyter.sdk.data import get_dataset
from mlpipe_jupyter.sdk.pipeline import pipeline_from_dict
from mlpipe_jupyter.secrets import MASK, looks_secret


def step_entry(sd, base: Path) -> dict:
    """A step entry of a pipeline file or of notebook metadata, with its source folder made absolute;
    its name and script are checked here, before either is used."""
    if not isinstance(sd, dict) or "name" not in sd or "script" not in sd:
        raise UserError(f"A step entry needs 'name' and 'script' (got {sd!r}).")
    check_step_name(sd["name"])
    check_relative_script(sd["script"], f"Step '{sd['name']}'")
    folder = sd.get("source_directory", ".")
    if not isinstance(folder, str) or "\0" in folder:
        raise UserError(f"Step '{sd['name']}': source_directory must be a folder path (got {folder!r}).")
    return {**sd, "source_directory": str((base / folder).resolve())}


def entry_doc(entry) -> dict:
    """The pipeline-file entry of a step: a recorded cell's, or a loaded step's (which is one)."""
    return entry.step_doc if isinstance(entry, CellStep) else entry


class NotebookPipeline:
    def __init__(self, workspace, notebook_dir, notebook_name: str | None = None):
        self.workspace = workspace
        self.notebook_dir = Path(notebook_dir).resolve()
        self.notebook_name = notebook_name  # file name of the notebook, when known
        self.description = None
        self.steps: dict[str, object] = {}  # name -> CellStep, or a step entry loaded from a file
        self.loaded_data: dict[str, dict] = {}
        self.loaded_params: dict[str, dict] = {}

    @property
    def cells_root(self) -> Path:
        key = safe_key(Path(self.notebook_name).stem) if self.notebook_name else "session"
        return self.workspace.folder / "cells" / key

    # -- what produces what --------------------------------------------------------------------------------
    def step_docs(self, skip: str | None = None) -> dict[str, dict]:
        """step name -> its pipeline-file entry."""
        return {name: entry_doc(entry) for name, entry in self.steps.items() if name != skip}

    def _data_docs(self, skip: str | None = None) -> dict:
        docs = dict(self.loaded_data)
        for name, entry in self.steps.items():
            if name != skip and isinstance(entry, CellStep):
                docs.update(entry.data_docs)
        return docs

    def producers(self, skip: str | None = None) -> dict[str, str]:
        """data name -> the step that writes it."""
        return dm.producers({"steps": list(self.step_docs(skip).values())})

    def consumers_of(self, step_name: str) -> list[str]:
        made = set(dm.output_names(entry_doc(self.steps[step_name])))
        return [name for name, doc in self.step_docs(skip=step_name).items() if made & set(dm.input_names(doc))]

    # -- changes ----------------------------------------------------------------------------------------------
    def record(self, spec: CellSpec, execution_count: int | None = None) -> CellStep:
        """Add or replace the step of a cell (``execution_count``: its In[] number, for tracebacks); every
        problem is a UserError before anything changes."""
        producers = self.producers(skip=spec.name)
        for out in spec.outputs:
            if out in producers:
                raise UserError(f"Step '{spec.name}': output '{out}' is already written by step '{producers[out]}'.")
        for name in spec.linked_inputs:
            if name not in producers:
                known = ", ".join(sorted(producers)) or "none yet"
                raise UserError(f"Step '{spec.name}': input '{name}' is not an output of any recorded step (outputs: "
                                f"{known}). Record its producer first, or give a source: --inputs {name}=PATH.")
        others = self._data_docs(skip=spec.name)
        external = {}
        for name, source in spec.inputs:
            if source is None:
                continue
            doc = self.resolve_source(spec.name, name, source)
            if name in others and others[name] != doc:
                raise UserError(f"Step '{spec.name}': input name '{name}' is already used for other data in this "
                                "pipeline; pick another name.")
            external[name] = doc
        step = make_cell_step(spec, self.cells_root, self.notebook_dir, external, self.workspace)
        step.execution_count = execution_count
        step.write_script()
        self.steps[spec.name] = step  # a replaced step keeps its place
        return step

    def resolve_source(self, step: str, name: str, source: str) -> dict:
        """``NAME=SOURCE``: ``dataset:NAME[:VERSION]``, ``DATASTORE:PATH`` or a path relative to the notebook."""
        what = f"Step '{step}' input '{name}'"
        if source.startswith("dataset:"):
            ds_name, _, version = source[len("dataset:"):].partition(":")
            ds = get_dataset(self.workspace, ds_name, version or "latest")  # unknown names fail now
            return {"kind": "dataset", "dataset_type": ds.kind, "name": ds_name, "version": version or "latest",
                    "sources": []}
        path = (self.notebook_dir / source)
        store_name, sep, store_path = source.partition(":")
        if sep and not path.exists():
            stores = self.workspace.datastores
            if store_name not in stores:
                raise UserError(f"{what}: '{source}' is neither a file nor a path on a datastore (no datastore named "
                                f"'{store_name}'; known: {', '.join(sorted(stores)) or 'none'}).")
            return {"kind": "data_reference", "datastore": store_name, "path": store_path, "mode": "mount"}
        return {"kind": "dataset", "dataset_type": "file", "sources": [{"path": str(path.resolve())}]}

    def remove(self, name: str) -> list[str]:
        """Remove a step; returns the steps left with a dangling input."""
        if name not in self.steps:
            raise UserError(f"The pipeline has no step named '{name}' (steps: {', '.join(self.steps) or 'none'}).")
        users = self.consumers_of(name)
        del self.steps[name]
        return users

    def clear(self):
        self.steps.clear()
        self.loaded_data.clear()
        self.loaded_params.clear()
        self.description = None

    def load_doc(self, doc: dict, base_dir) -> None:
        """Replace the pipeline with a pipeline-file document (source folders relative to ``base_dir``)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
            raise UserError("A pipeline file must be a mapping with a 'steps' list.")
        base = Path(base_dir).resolve()
        entries = [step_entry(sd, base) for sd in doc["steps"]]
        data, params = _sections(doc, "A pipeline file's")
        self.clear()
        self.steps = {entry["name"]: entry for entry in entries}
        self.loaded_data, self.loaded_params = data, params
        self.description = doc.get("description")

    def load_file(self, path) -> None:
        path = Path(path)
        if not path.is_absolute():
            path = self.notebook_dir / path
        doc = read_document(path)
        try:
            self.load_doc(doc, path.parent)
        except UserError as e:
            raise UserError(f"Pipeline file '{path}': {e}") from None

    # -- the pipeline --------------------------------------------------------------------------------------------
    def to_doc(self) -> dict:
        """The pipeline-file document, with absolute source folders."""
        data, params, steps = dict(self.loaded_data), dict(self.loaded_params), []
        for entry in self.steps.values():
            steps.append(entry_doc(entry))
            if isinstance(entry, CellStep):
                data.update(entry.data_docs)
                params.update(entry.param_docs)
        return {"version": FORMAT_VERSION, "description": self.description, "parameters": params, "data": data,
                "steps": steps}

    def dangling(self) -> list[str]:
        return [f"Step '{step}' takes input '{ref}', but no step produces it (a dangling data link)."
                for step, ref in dm.dangling_inputs(self.to_doc())]

    def build(self):
        """A ``Pipeline`` of the current steps, with every cell script written."""
        if not self.steps:
            raise UserError("The pipeline has no steps yet: record cells with %%step NAME first.")
        problems = self.dangling()
        if problems:
            raise PipelineValidationError(problems)
        for entry in self.steps.values():
            if isinstance(entry, CellStep):
                entry.write_script()
        return pipeline_from_dict(self.workspace, self.to_doc(), base_dir=self.notebook_dir)

    # -- notebook metadata -------------------------------------------------------------------------------------
    def to_metadata(self) -> dict:
        """Self-contained: cells by their specs, other steps as pipeline-file entries relative to the notebook."""
        items = []
        for name, entry in self.steps.items():
            if isinstance(entry, CellStep):
                cell = entry.spec.to_dict()
                cell["params"] = {k: MASK if looks_secret(k) else v for k, v in cell["params"].items()}
                items.append({"cell": cell})  # a secret's value stays in the cell, never in the metadata
            else:
                rel = os.path.relpath(entry["source_directory"], self.notebook_dir).replace(os.sep, "/")
                items.append({"step": {**entry, "source_directory": rel}})
        params = {k: {**v, "default": MASK} if looks_secret(k) and isinstance(v, dict) else v
                  for k, v in self.loaded_params.items()}
        return {"version": 1, "description": self.description, "steps": items,
                "data": self.loaded_data, "parameters": params}

    def load_metadata(self, meta: dict) -> None:
        """Replace the pipeline with the one saved in the notebook's metadata.

        Anyone may have written that metadata, so every item is checked (types, then names) before
        any is recorded: a mistake is one UserError naming the notebook and the item, and nothing is
        written."""
        notebook = f"Notebook '{self.notebook_name}'" if self.notebook_name else "The notebook"
        if not isinstance(meta, dict) or not isinstance(meta.get("steps"), list):
            raise UserError(f"{notebook}: its mlpipe metadata has no 'steps' list.")
        data, params = _sections(meta, f"{notebook}: its mlpipe metadata's")
        items = []
        for i, item in enumerate(meta["steps"], 1):
            where = f"{notebook}: item {i} of its mlpipe metadata steps"
            if not isinstance(item, dict) or ("cell" in item) == ("step" in item):
                what = "is not a mapping" if not isinstance(item, dict) else "does not hold exactly one entry"
                raise UserError(f"{where} {what} (got {item!r}); each item holds either 'cell' or 'step'.")
            try:
                if "cell" in item:
                    spec = CellSpec.from_dict(item["cell"])
                    check_cell_names(spec)
                    items.append(spec)
                else:
                    items.append(step_entry(item["step"], self.notebook_dir))
            except UserError as e:
                raise UserError(f"{where}: {e}") from None
        self.clear()
        self.loaded_data, self.loaded_params = data, params
        self.description = meta.get("description")
        for i, item in enumerate(items, 1):
            try:
                if isinstance(item, CellSpec):
                    self.record(item)
                else:
                    self.steps[item["name"]] = item
            except UserError as e:
                raise UserError(f"{notebook}: item {i} of its mlpipe metadata steps: {e}") from None


def _sections(doc: dict, where: str) -> tuple[dict, dict]:
    """The 'data' and 'parameters' mappings of a pipeline document (either may be missing); ``where``
    starts the error message, as in "A pipeline file's"."""
    out = []
    for key in ("data", "parameters"):
        section = doc.get(key) or {}
        if not isinstance(section, dict) or not all(isinstance(v, (dict, type(None))) for v in section.values()):
            raise UserError(f"{where} '{key}' section must be a mapping of names to entries (got {doc.get(key)!r}).")
        out.append(dict(section))
    return out[0], out[1]
