"""What a designer edits: a ``Pipeline`` object, or the notebook's pipeline that ``%%step`` records.

Both are read as a pipeline-file document and take back an edited document, so every edit is
written once (model/edits.py) and checked before it lands. ``listen`` tells the designer about
changes made elsewhere (Python calls, magics), so a displayed canvas follows them.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import weakref
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.edits import _data_name
from mlpipe_jupyter.notebook.cell_steps import CellStep, make_cell_step
from mlpipe_jupyter.sdk.pipeline import pipeline_from_dict


class PipelineSource:
    """A ``Pipeline`` object, changed in place: the caller's ``pipeline`` is what the canvas shows and edits.

    Moves set ``step.position``; other edits rebuild the steps from the edited document (look steps
    up again with ``pipeline.find_step`` after editing on the canvas)."""

    is_notebook = False

    def __init__(self, pipeline, base_dir=None):
        self.pipeline = pipeline
        self.workspace = pipeline.workspace
        self.base_dir = Path(base_dir or os.getcwd()).resolve()
        self._listeners: list = []
        self._quiet = False
        pipeline.observe(self._changed_elsewhere)

    def _changed_elsewhere(self, event, name):
        if not self._quiet:
            for cb in list(self._listeners):
                cb()

    def listen(self, callback):
        self._listeners.append(callback)

    def forget(self, callback):
        """Undo ``listen``; the last listener gone, the pipeline stops calling this source."""
        self._listeners.remove(callback)
        if not self._listeners and self._changed_elsewhere in self.pipeline._listeners:
            self.pipeline._listeners.remove(self._changed_elsewhere)

    def doc(self) -> dict:
        return self.pipeline.to_dict(base_dir=self.base_dir)

    def cell_names(self) -> set:
        return set()

    def commit(self, new_doc: dict, renamed=None) -> None:
        fresh = pipeline_from_dict(self.workspace, new_doc, base_dir=self.base_dir)
        self.pipeline._steps[:] = fresh.steps
        self.pipeline.description = fresh.description
        self._quiet = True
        try:
            self.pipeline._notify("designer", None)
        finally:
            self._quiet = False

    def set_position(self, name: str, position: dict) -> None:
        self.pipeline.find_step(name).position = dict(position)

    def snapshot(self):
        """What ``restore`` puts back (the designer's undo history keeps these)."""
        return self.doc()

    def restore(self, snapshot) -> None:
        self.commit(copy.deepcopy(snapshot))

    def cell_specs(self) -> dict:
        return {}

    def build(self):
        return self.pipeline


class NotebookSource:
    """The notebook's recorded pipeline (``NotebookPipeline``); recorded cells stay cells.

    An edit of a cell step changes its ``%%step`` options (outputs, inputs, compute, reuse...) and
    regenerates its script, as re-recording the cell with those options would."""

    is_notebook = True

    def __init__(self, state, on_change=None, default_compute="local"):
        self.state = state
        self.workspace = state.workspace
        self.base_dir = state.notebook_dir
        self.on_change = on_change
        self.default_compute = default_compute  # what a %%step line without --compute means
        self._listeners: list = []
        self.positions: dict[str, dict] = {}  # cell steps lose their entry on re-recording; positions stay
        _notebook_sources.setdefault(id(state), []).append(weakref.ref(self))

    def listen(self, callback):
        self._listeners.append(callback)

    def forget(self, callback):
        self._listeners.remove(callback)

    def changed_elsewhere(self):
        for cb in list(self._listeners):
            cb()

    def cell_names(self) -> set:
        return {n for n, e in self.state.steps.items() if isinstance(e, CellStep)}

    def doc(self) -> dict:
        doc = self.state.to_doc()
        for entry, (name, kept) in zip(doc["steps"], self.state.steps.items()):
            if isinstance(kept, CellStep) and name in self.positions:
                entry["position"] = dict(self.positions[name])
        return copy.deepcopy(doc)

    def set_position(self, name: str, position: dict) -> None:
        entry = self.state.steps[name]
        if isinstance(entry, CellStep):
            self.positions[name] = dict(position)
            entry.step_doc["position"] = dict(position)
        else:
            entry["position"] = dict(position)
        self._changed()

    def _changed(self):
        if self.on_change is not None:
            self.on_change()

    def cell_specs(self) -> dict:
        """step name -> CellSpec of each recorded cell."""
        return {n: e.spec for n, e in self.state.steps.items() if isinstance(e, CellStep)}

    def snapshot(self):
        """The whole recorded state, cells as cells: a document alone would turn an undeleted cell into a script."""
        s = self.state
        return copy.deepcopy({"steps": s.steps, "data": s.loaded_data, "params": s.loaded_params,
                              "description": s.description, "positions": self.positions})

    def restore(self, snapshot) -> None:
        snap, s = copy.deepcopy(snapshot), self.state
        s.steps, s.loaded_data, s.loaded_params = snap["steps"], snap["data"], snap["params"]
        s.description, self.positions = snap["description"], snap["positions"]
        for step in s.steps.values():
            if isinstance(step, CellStep):
                step.write_script()
        self._changed()

    def commit(self, new_doc: dict, renamed=None) -> None:
        """Rebuild the state from ``new_doc``; cell steps (found through ``renamed``) become cell steps again."""
        renamed = renamed or {}
        back = {new: old for old, new in renamed.items()}
        state, data = self.state, new_doc.get("data") or {}
        params = new_doc.get("parameters") or {}
        steps, cell_data, cell_params = {}, set(), set()
        for entry in new_doc["steps"]:
            name = entry["name"]
            old = state.steps.get(back.get(name, name))
            if isinstance(old, CellStep):
                spec = self._spec_for(old, entry, params)
                external = {n: data[n] for n, src in spec.inputs if src is not None and n in data}
                step = make_cell_step(spec, state.cells_root, state.notebook_dir, external, state.workspace)
                if entry.get("position"):
                    step.step_doc["position"] = dict(entry["position"])
                    self.positions[name] = dict(entry["position"])
                else:  # laid out again: the layout places it
                    self.positions.pop(name, None)
                steps[name] = step
                cell_data.update(step.data_docs)
                cell_params.update(step.param_docs)
            else:
                steps[name] = copy.deepcopy(entry)
        for step in steps.values():
            if isinstance(step, CellStep):
                step.write_script()
        state.steps = steps
        state.loaded_data = {k: v for k, v in data.items() if k not in cell_data}
        state.loaded_params = {k: v for k, v in params.items() if k not in cell_params}
        state.description = new_doc.get("description")
        self._changed()

    def _spec_for(self, old, entry, params):
        """The ``%%step`` options a cell step's edited entry stands for."""
        spec = old.spec
        sources = {n: src for n, src in spec.inputs if src is not None}
        outputs = [o["data"] for o in entry.get("outputs") or []]
        inputs = []
        for item in entry.get("inputs") or []:
            ref = item.get("data") if isinstance(item, dict) else None
            if ref is not None and ref not in [n for n, _ in inputs]:
                inputs.append([ref, sources.get(ref)])
        new_params = {k: (params.get(k) or {}).get("default", spec.params.get(k)) for k in entry.get("params") or {}}
        env = entry.get("environment")
        if isinstance(env, dict):
            env = spec.environment if env.get("name") == spec.environment else env.get("name")
        return dataclasses.replace(spec, name=entry["name"], outputs=outputs, inputs=inputs, params=new_params,
                                   compute=entry.get("compute_target") or "local", environment=env or None,
                                   allow_reuse=bool(entry.get("allow_reuse", True)))

    def build(self):
        return self.state.build()


_notebook_sources: dict[int, list] = {}


def notebook_state_changed(state) -> None:
    """The magics changed the notebook's pipeline: every designer showing it redraws."""
    for ref in list(_notebook_sources.get(id(state), [])):
        source = ref()
        if source is not None:
            source.changed_elsewhere()


def step_entry_for_file(path, workspace, name=None) -> dict:
    """A step entry for an existing ``.py`` script, or for a notebook (its code cells become a script)."""

    path = Path(path).resolve()
    if not path.is_file():
        raise UserError(f"No file '{path}'.")
    stem = _data_name(path.stem)
    name = name or stem
    if path.suffix == ".py":
        return {"name": name, "script": path.name, "source_directory": str(path.parent)}
    if path.suffix == ".ipynb":
        folder = workspace.folder / "designer" / "notebooks" / name
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / f"{stem}.py"
        script.write_text(notebook_script(path))
        return {"name": name, "script": script.name, "source_directory": str(folder)}
    raise UserError(f"'{path.name}' is neither a .py script nor a .ipynb notebook.")


def notebook_script(path) -> str:
    """The code cells of a notebook as one script; IPython-only lines (magics, shell escapes) are kept as comments."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    parts = [f"# Generated from the code cells of {Path(path).name}.\n"
             f"import os, sys\nsys.path.insert(1, {str(Path(path).resolve().parent)!r})\n"]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [("# " + ln) if ln.lstrip().startswith(("%", "!")) else ln for ln in cell.source.splitlines()]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
