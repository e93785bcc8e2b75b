"""The designer's controller: applies what the user did on the canvas, in the properties form or the
toolbar to the pipeline it edits (a ``Pipeline`` or the notebook's, see sources.py) through
model/edits.py, which refuses a bad edit before anything changes, then sends the new graph back.
"""
from __future__ import annotations

import contextlib
import html
import os
import threading
from pathlib import Path

import ipywidgets as widgets

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model import edits as dm
from mlpipe_jupyter.model.document import absolute_from, relative_to
from mlpipe_jupyter.notebook.cell_steps import CellSpec
from mlpipe_jupyter.notebook.designer.cellsync import cell_line_changes, kernel_cell_sync
from mlpipe_jupyter.notebook.designer.elements import DATA, OUT, STEP, graph_elements
from mlpipe_jupyter.notebook.designer.properties import PropertiesPanel
from mlpipe_jupyter.notebook.designer.run_view import RunView, clone_run
from mlpipe_jupyter.notebook.designer.sources import NotebookSource, PipelineSource, step_entry_for_file
from mlpipe_jupyter.notebook.designer.widgets import DesignerCanvas, DesignerPanel
from mlpipe_jupyter.planning.forecast import forecast
from mlpipe_jupyter.sdk.experiment import Experiment, plan_with_backends
from mlpipe_jupyter.sdk.pipeline import pipeline_from_dict
from mlpipe_jupyter.sdk.published import PipelineDraft

HISTORY = 50  # edits the designer can undo
_ERROR_COLOR = "var(--jp-error-color1, #c62828)"
_ERROR = f"<span style='color:{_ERROR_COLOR}'>"  # how a refusal starts in the message area


class Designer:
    """A canvas over a pipeline, with its toolbar, properties panel and run details.

    ``Designer(pipeline)`` edits a ``Pipeline`` object; ``Designer.for_notebook(magics)`` edits the
    notebook's recorded pipeline (what ``%pipeline show`` uses)."""

    def __init__(self, pipeline=None, *, source=None, experiment="designer"):
        self.source = source or PipelineSource(pipeline)
        self.workspace = self.source.workspace
        self.experiment = experiment
        self.canvas = DesignerCanvas()
        self.canvas.on_msg(self._on_message)
        self.message = widgets.HTML()
        self.message.add_class("mlpipe-designer-message")
        self.confirm_row = self._confirm_row()
        self.run_view = RunView(self.workspace, self.canvas)
        self.details = self.run_view.details
        self.properties = PropertiesPanel(self)
        self.toolbar = self._toolbar()
        # the form and the run details float over the canvas's right side: opening them never squeezes it
        side = widgets.VBox([self.properties.widget, self._details_card()])
        side.add_class("mlpipe-designer-side")
        body = widgets.Box([self.canvas, side], layout=widgets.Layout(width="100%"))
        body.add_class("mlpipe-designer-body")
        self.widget = widgets.VBox([self.toolbar, body, self.message, self.confirm_row],
                                   layout=widgets.Layout(width="100%"))
        self.widget.add_class("mlpipe-designer")
        self._panel = None
        self._start_history()
        self.source.listen(self._changed_elsewhere)
        self.refresh()
        self.run_view.follow_active(self.experiment)

    @classmethod
    def for_notebook(cls, magics):
        source = NotebookSource(magics.state, on_change=magics._changed, default_compute=magics.default_compute)
        return cls(source=source, experiment=magics.experiment_name())

    @classmethod
    def from_run(cls, run):
        """An editable copy of the pipeline a run ran, showing that run's status."""
        designer = cls(clone_run(run))
        designer.watch(run)
        return designer

    # -- the widget ----------------------------------------------------------------------------------------
    def _details_card(self):
        """The run details with a close button; shown only while they have something to show."""
        close = widgets.Button(description="\u00d7", tooltip="Close the run details")
        close.add_class("mlpipe-designer-close")
        close.on_click(lambda _b: setattr(self.details, "value", ""))
        head = widgets.HBox([widgets.HTML("<b>Run details</b>"), close])
        head.add_class("mlpipe-designer-card-head")
        card = widgets.VBox([head, self.details, self.run_view.metrics], layout=widgets.Layout(display="none"))
        card.add_class("mlpipe-designer-details-card")
        self.details.observe(lambda c: setattr(card.layout, "display", "flex" if c["new"] else "none"), "value")
        return card

    def _button(self, text, icon, handler, css, tooltip="", compact=False):
        """A toolbar button; ``compact`` ones show only their icon (the text stays for screen readers and
        leads the tooltip)."""
        if compact:
            tooltip = f"{text}: {tooltip}" if tooltip else text
        b = widgets.Button(description=text, icon=icon, tooltip=tooltip, layout=widgets.Layout(width="auto"))
        b.add_class(css)
        if compact:
            b.add_class("mlpipe-icon-only")
        b.on_click(lambda _b: self._guarded(handler))
        return b

    def _toolbar(self):
        self.link_toggle = widgets.ToggleButton(description="Link", icon="link", value=False,
                                                tooltip="Drag from one step to another to link them "
                                                        "(or hold Shift while dragging)",
                                                layout=widgets.Layout(width="auto"))
        self.link_toggle.add_class("mlpipe-designer-linkmode")
        widgets.link((self.link_toggle, "value"), (self.canvas, "link_mode"))
        self.add_kind = widgets.Dropdown(options=[("blank script", "blank"), (".py / .ipynb file", "file"),
                                                  ("recorded cell", "cell")], value="blank",
                                         layout=widgets.Layout(width="140px"))
        self.add_kind.add_class("mlpipe-designer-add-kind")
        self.add_text = widgets.Text(placeholder="step name or file path", layout=widgets.Layout(width="170px"))
        self.add_text.add_class("mlpipe-designer-add-text")
        self.draft_name = widgets.Text(placeholder="draft name", layout=widgets.Layout(width="120px"))
        self.draft_name.add_class("mlpipe-designer-draft-name")
        self.draft_pick = widgets.Dropdown(options=[], layout=widgets.Layout(width="160px"))
        self.draft_pick.add_class("mlpipe-designer-draft-pick")
        self._reload_drafts()
        toolbar = widgets.HBox([
            self.add_kind, self.add_text,
            self._button("Add", "plus", self._add_from_toolbar, "mlpipe-designer-add"),
            self._button("Delete", "trash", self.delete_selected, "mlpipe-designer-delete", "Delete the selection",
                         compact=True),
            self.link_toggle,
            self._button("Layout", "sitemap", self.relayout, "mlpipe-designer-layout", "Lay the graph out again",
                         compact=True),
            self._button("Undo", "undo", self.undo, "mlpipe-designer-undo", "Undo the last edit (Ctrl+Z)",
                         compact=True),
            self._button("Redo", "redo", self.redo, "mlpipe-designer-redo", "Redo the edit undone (Ctrl+Shift+Z)",
                         compact=True),
            _gap(),
            self._button("Submit", "play", self.submit, "mlpipe-designer-submit"),
            self._button("Run step", "step-forward", lambda: self.run_selected(False), "mlpipe-designer-run-step",
                         "Run the selected step alone; its inputs come from the latest runs", compact=True),
            self._button("Run from", "fast-forward", lambda: self.run_selected(True), "mlpipe-designer-run-from",
                         "Run the selected step and everything after it", compact=True),
            self._button("Clone run", "clone", self.clone_last_run, "mlpipe-designer-clone",
                         "Make the pipeline of the shown run the editable pipeline", compact=True),
            _gap(),
            self.draft_name,
            self._button("Save as draft", "save", self.save_draft, "mlpipe-designer-save-draft",
                         "Keep the pipeline as a draft of this name in the workspace (saving again updates it)",
                         compact=True),
            self.draft_pick,
            self._button("Open draft", "folder-open", self.open_draft, "mlpipe-designer-open-draft",
                         "Make the chosen draft's pipeline the editable pipeline", compact=True),
        ], layout=widgets.Layout(flex_flow="row wrap", width="100%"))
        toolbar.add_class("mlpipe-designer-toolbar")
        return toolbar

    def _ipython_display_(self):
        from IPython.display import display

        bundle = self.widget._repr_mimebundle_()
        bundle["text/plain"] = self.summary()  # where no widget can show: a console, a headless run
        display(bundle, raw=True)

    def summary(self) -> str:
        """The pipeline in words: each step with the data it reads and writes."""
        steps = self.source.doc().get("steps", [])
        lines = [f"Pipeline designer: {len(steps)} step{'s' if len(steps) != 1 else ''} "
                 "(an editable canvas in JupyterLab)"]
        for step in steps:
            ins = ", ".join(i["data"] for i in step.get("inputs", []) if isinstance(i, dict) and "data" in i)
            outs = ", ".join(o["data"] for o in step.get("outputs", []) if isinstance(o, dict) and "data" in o)
            lines.append(f"  {step.get('name')}: {ins or '-'} -> {outs or '-'}")
        return "\n".join(lines)

    def _guarded(self, action):
        """Run a user's action; a refusal is shown, and a refusal shown earlier goes once an action works."""
        before = self.message.value
        try:
            action()
        except UserError as e:
            self.say(str(e), error=True)
            return
        if self.message.value == before and before.startswith(_ERROR):
            self.message.value = ""

    def say(self, text, error=False):
        color = _ERROR_COLOR if error else "var(--jp-ui-font-color1, #37474f)"  # readable in either theme
        note = "" if error or not self._cell_note else " " + self._cell_note
        self.message.value = f"<span style='color:{color}'>{html.escape(text + note, quote=False)}</span>"

    # -- graph <-> pipeline ----------------------------------------------------------------------------------
    def refresh(self):
        """Send the pipeline's current graph to the canvas (after any change, from anywhere)."""
        doc = self.source.doc()
        self.canvas.graph = graph_elements(doc)
        notes = dm.dangling(doc)
        if notes and not self.message.value.startswith(_ERROR):
            self.say(" ".join(notes))
        self.properties.reload()

    def edit(self, change, renamed=None, report=None, label="edit") -> bool:
        """Apply ``change(doc) -> new doc``; a refused edit leaves the pipeline and the graph as they were.
        An edit that lands can be undone, and is written back to the ``%%step`` lines of cells it changed."""
        try:
            with self._recorded(label, renamed):
                self.source.commit(change(self.source.doc()), renamed=renamed)
        except UserError as e:
            (report or (lambda t: self.say(t, error=True)))(str(e))
            self.refresh()  # puts back what the browser may already show (a drawn edge, a moved node)
            return False
        self.message.value = ""
        if self._cell_note:
            self.say("")
        self.refresh()
        return True

    def _on_message(self, _widget, content, _buffers):
        kind = content.get("event")
        handler = getattr(self, f"_ui_{kind}", None)
        if handler is not None:
            self._guarded(lambda: handler(content))

    def _ui_move(self, m):
        with self._recorded(f"move {m['node']}", graph_changed=False):
            self.source.set_position(m["node"], {"x": round(float(m["x"]), 1), "y": round(float(m["y"]), 1)})
        self.canvas.graph = graph_elements(self.source.doc())

    def _ui_undo(self, _m):
        self.undo()

    def _ui_redo(self, _m):
        self.redo()

    def _ui_link(self, m):
        result = {}

        def change(doc):
            new, result["name"] = dm.link(doc, m["source"], m["target"])
            return new

        if self.edit(change, label=f"linking {m['source']} -> {m['target']}"):
            self.say(f"Linked {m['source']} -> {m['target']} through new data '{result['name']}'.")

    def _ui_delete(self, m):
        self.request_delete(m.get("ids") or [])

    def _ui_open(self, m):
        self.properties.open(m["node"])

    def _ui_tap(self, m):
        if self.run_view.run_id is not None and m.get("kind", "step") == "step":
            self.run_view.show_step(m["node"])

    def _ui_drop(self, m):
        for path in m.get("paths") or []:
            self.add_file(_resolve_dropped(path))

    # -- history, write-back to cells, stale marks -----------------------------------------------------------
    def _start_history(self):
        self._undo: list[dict] = []  # before each edit: what the source held, and the renames the edit made
        self._redo: list[dict] = []
        self._editing = False  # our own change is reaching the listeners (not one made elsewhere)
        self._cell_note = ""
        self._pending_delete: list = []
        self._stale_lock = threading.Lock()
        self._stale_doc = None  # (document or None, epoch) waiting to be planned
        self._stale_epoch = 0  # grows with each edit and each run shown: older forecasts are dropped
        self._stale_worker = None
        self.cell_sync = kernel_cell_sync() if self.source.is_notebook else None
        if self.cell_sync is not None:
            self.cell_sync.listeners.append(self._cells_rewritten)
        self._history_buttons()

    @contextlib.contextmanager
    def _recorded(self, label, renamed=None, graph_changed=True):
        """An undoable change of the source; when it lands, the cells it changed get their new ``%%step``
        line and the steps a submit would rerun are marked."""
        before, specs = self.source.snapshot(), self.source.cell_specs()
        self._cell_note = ""
        self._editing = True
        try:
            yield
        finally:
            self._editing = False
        self._undo = [*self._undo, {"label": label, "state": before, "renamed": renamed or {}}][-HISTORY:]
        self._redo = []
        self._after_change(specs, renamed, graph_changed)

    def _after_change(self, specs_before, renamed, graph_changed=True):
        if self.cell_sync is not None:
            changes = cell_line_changes(specs_before, self.source.cell_specs(), renamed, self.source.default_compute)
            if changes and not self.cell_sync.rewrite(changes):
                lines = "; ".join(line for _, _, line in changes)
                self._cell_note = (f"The step is changed in the kernel, but no notebook page is connected to "
                                   f"rewrite its cell: make its first line {lines}")
        if graph_changed:
            self.mark_stale()
        self._history_buttons()

    def _restore(self, entry, renamed):
        specs = self.source.cell_specs()
        self._cell_note = ""
        self._editing = True
        try:
            self.source.restore(entry["state"])
        finally:
            self._editing = False
        self._after_change(specs, renamed)
        self.refresh()

    def undo(self):
        """Put the pipeline back as it was before the last edit (and the cells' ``%%step`` lines with it)."""
        if not self._undo:
            raise UserError("Nothing to undo.")
        entry = self._undo.pop()
        self._redo.append({**entry, "state": self.source.snapshot()})
        self._restore(entry, {new: old for old, new in entry["renamed"].items()})
        self.say(f"Undid {entry['label']}.")

    def redo(self):
        if not self._redo:
            raise UserError("Nothing to redo.")
        entry = self._redo.pop()
        self._undo.append({**entry, "state": self.source.snapshot()})
        self._restore(entry, entry["renamed"])
        self.say(f"Redid {entry['label']}.")

    def _history_buttons(self):
        for css, stack in (("mlpipe-designer-undo", self._undo), ("mlpipe-designer-redo", self._redo)):
            for b in self.toolbar.children:
                if css in b._dom_classes:
                    b.disabled = not stack

    def _changed_elsewhere(self):
        """A cell recorded again, ``%pipeline remove``, a ``Pipeline`` changed in Python: the history no longer
        describes the pipeline, so it starts again; what would rerun is marked anew."""
        if not self._editing:
            self._undo, self._redo = [], []
            self.mark_stale()
            self._history_buttons()
        self.refresh()

    def mark_stale(self):
        """Mark the steps a submit would rerun now, with the planner's reason (``canvas.stale``). The last
        run's colours stay only on the steps it would reuse: their results still stand; the others go
        neutral. A pipeline that cannot be planned yet (a dangling input) marks nothing and clears them.

        Planning snapshots every step's folder (about 1 ms a step), so it runs on a worker thread and the
        edit answers at once; edits made meanwhile are planned once, the newest (``wait_stale`` waits)."""
        try:
            doc = self.source.build().to_document()
        except UserError:
            doc = None
        with self._stale_lock:
            self._stale_epoch += 1
            self._stale_doc = (doc, self._stale_epoch)
            if self._stale_worker is None:
                self._stale_worker = threading.Thread(target=self._forecast_loop, name="mlpipe-stale", daemon=True)
                self._stale_worker.start()

    def _forecast_loop(self):
        while True:
            with self._stale_lock:
                if self._stale_doc is None:
                    self._stale_worker = None
                    return
                (doc, epoch), self._stale_doc = self._stale_doc, None
            try:
                if doc is None:
                    raise UserError("not plannable")
                plan, _ = plan_with_backends(self.workspace, doc, check=False)
                verdicts = forecast(self.workspace._store, plan, self.experiment)
            except UserError:
                verdicts = {}
            except BaseException:
                with self._stale_lock:  # the next edit starts a new worker
                    self._stale_worker = None
                raise
            with self._stale_lock:
                if epoch != self._stale_epoch:
                    continue  # a newer edit (plan that one instead), or a run shown since
                self.canvas.stale = {n: v.reason.removeprefix("Rerun: ") for n, v in verdicts.items()
                                     if not v.reused}
                self.run_view.keep_only({n for n, v in verdicts.items() if v.reused})

    def wait_stale(self, timeout=60):
        """Until the stale marks describe the latest edit."""
        worker = self._stale_worker
        if worker is not None:
            worker.join(timeout)

    def _cells_rewritten(self, done, missing):
        """The page's answer: which cells got their new first line."""
        if missing:
            self.say(f"No cell of this notebook starts with %%step {', '.join(missing)}: its step is changed in "
                     "the kernel only.", error=True)

    # -- deleting, with a confirmation -----------------------------------------------------------------------
    def _confirm_row(self):
        self.confirm_text = widgets.HTML()
        yes = widgets.Button(description="Delete", icon="trash", layout=widgets.Layout(width="auto"))
        yes.add_class("mlpipe-designer-confirm-delete")
        yes.on_click(lambda _b: self._guarded(self.confirm_delete))
        no = widgets.Button(description="Keep", layout=widgets.Layout(width="auto"))
        no.add_class("mlpipe-designer-keep")
        no.on_click(lambda _b: self._guarded(self.keep))
        row = widgets.HBox([self.confirm_text, yes, no], layout=widgets.Layout(display="none", align_items="center"))
        row.add_class("mlpipe-designer-confirm")
        return row

    def request_delete(self, ids):
        """Delete what ``ids`` names; a step that is linked or recorded from a cell is deleted only after Delete
        is pressed in the confirmation row (any delete can be undone)."""
        steps = [i[len(STEP):] for i in ids if i.startswith(STEP)]
        doc, cells = self.source.doc(), self.source.cell_names()
        prod = dm.producers(doc)
        why = []
        for name in steps:
            if name not in dm.step_names(doc):
                continue
            entry = dm.find(doc, name)
            made = set(dm.output_names(entry))
            readers = [s["name"] for s in doc["steps"] if made & set(dm.input_names(s)) and s["name"] != name]
            feeders = sorted({prod[d] for d in dm.input_names(entry) if d in prod} - {name})
            parts = [f"recorded from a %%step cell (the cell stays)"] if name in cells else []
            if readers or feeders:
                parts.append("linked to " + ", ".join(feeders + readers))
            if parts:
                why.append(f"'{name}' is " + " and ".join(parts))
        if not why:
            self.delete(ids)
            return
        self._pending_delete = list(ids)
        question = f"Delete {', '.join(repr(s) for s in steps)}?"
        self.confirm_text.value = f"<b>{html.escape(question)}</b> {html.escape('; '.join(why))}. Undo brings it back."
        self.confirm_row.layout.display = "flex"

    def confirm_delete(self):
        ids, self._pending_delete = self._pending_delete, []
        self.confirm_row.layout.display = "none"
        self.delete(ids)

    def keep(self):
        self._pending_delete = []
        self.confirm_row.layout.display = "none"
        self.say("Nothing was deleted.")

    # -- actions ---------------------------------------------------------------------------------------------
    def delete(self, ids):
        """Remove steps (``step:NAME``), links (``edge:DATA:TARGET``) and data (``data:NAME``, or the
        ``out:STEP:DATA`` edge that writes it); steps first, each checked. Nothing is left dangling: the
        readers of a removed step's outputs, or of removed data, stop reading them."""
        steps = [i[len(STEP):] for i in ids if i.startswith(STEP)]
        edges = [i.split(":", 2)[1:] for i in ids if i.startswith("edge:")]
        datas = list(dict.fromkeys([i[len(DATA):] for i in ids if i.startswith(DATA)] +
                                   [i.split(":", 2)[2] for i in ids if i.startswith(OUT) and i.count(":") >= 2]))

        def change(doc):
            for name in steps:
                doc = dm.remove_step(doc, name)
            for data_name, target in edges:
                if target in dm.step_names(doc) and data_name in dm.input_names(dm.find(doc, target)):
                    doc = dm.unlink(doc, data_name, target)
            for data_name in datas:
                doc = _drop_data(doc, data_name)
            return doc

        if steps or edges or datas:
            what = ", ".join(steps + [f"link {d} -> {t}" for d, t in edges] + [f"data {d}" for d in datas])
            if self.edit(change, label=f"deleting {what}"):
                many = len(steps) + len(edges) + len(datas) > 1
                self.say(f"Removed {what} (Undo brings {'them' if many else 'it'} back).")

    def delete_selected(self):
        if not self.canvas.selected:
            raise UserError("Select a step or a link on the canvas first.")
        self.request_delete(list(self.canvas.selected))

    def relayout(self):
        """Forget saved positions and lay the graph out left to right again."""
        doc = self.source.doc()
        for s in doc["steps"]:
            s.pop("position", None)
        self.edit(lambda _d: doc, label="the layout")
        self.canvas.layout_request += 1

    def add_file(self, path, name=None):
        entry = step_entry_for_file(path, self.workspace, name)
        if self.edit(lambda doc: dm.add_step(doc, entry), label=f"adding step {entry['name']}"):
            self.say(f"Added step '{entry['name']}' from {Path(path).name}.")

    def add_blank(self, name):
        if not name:
            raise UserError("Type the new step's name first.")
        folder = self.source.base_dir
        script = folder / f"{name}.py"
        entry = {"name": name, "script": script.name, "source_directory": str(folder)}
        if self.edit(lambda doc: dm.add_step(doc, entry), label=f"adding step {name}"):
            if not script.exists():
                script.write_text(f'"""Step {name}."""\nfrom mlpipe_jupyter import Run\n\nrun = Run.get_context()\n'
                                  f'print("step {name}")\n')
            self.say(f"Added step '{name}' with a new script {script.name}.")

    def add_cell(self, name):
        """A recorded ``%%step`` cell: a placeholder cell step, filled in by running ``%%step NAME`` later."""
        if not getattr(self.source, "is_notebook", False):
            raise UserError("Recorded cells belong to the notebook's pipeline: use %pipeline show.")
        if not name:
            raise UserError("Type the new step's name first.")
        if name in self.source.state.steps:
            raise UserError(f"The pipeline already has a step named '{name}'.")
        with self._recorded(f"adding cell step {name}"):
            self.source.state.record(CellSpec(name=name, body=f"print('step {name}: write it with %%step {name}')"))
            self.source._changed()
        self.refresh()
        self.say(f"Added cell step '{name}'; write its code in a cell starting with %%step {name}.")

    def _add_from_toolbar(self):
        text = self.add_text.value.strip()
        {"blank": self.add_blank, "file": self.add_file, "cell": self.add_cell}[self.add_kind.value](text)
        self.add_text.value = ""

    # -- runs ------------------------------------------------------------------------------------------------
    def submit(self, **kwargs):
        run = Experiment(self.workspace, self.experiment).submit(self.source.build(), **kwargs)
        self.watch(run)
        self.say(f"Submitted run {run.id}.")
        return run

    def run_selected(self, onward=False):
        steps = [i[len(STEP):] for i in self.canvas.selected if i.startswith(STEP)]
        if len(steps) != 1:
            raise UserError("Select one step on the canvas first.")
        return self.run_step(steps[0], onward)

    def run_step(self, name, onward=False):
        """Run one step (``onward``: and what follows it); the steps feeding it reuse their latest results."""
        base = self.source.base_dir
        doc = dm.subset(self.source.build().to_dict(base_dir=base), name, onward)
        run = Experiment(self.workspace, self.experiment).submit(pipeline_from_dict(self.workspace, doc, base))
        self.watch(run)
        self.say(f"Running {name}{' and what follows' if onward else ' alone'}: run {run.id}.")
        return run

    def watch(self, run):
        """Show ``run``'s status on the nodes (runs submitted elsewhere show up by themselves); its status
        replaces the stale marks."""
        with self._stale_lock:
            self._stale_epoch += 1
            self.canvas.stale = {}
        self.run_view.watch(run)

    def show_step_run(self, name):
        """The log tail and metrics of ``name`` in the shown run."""
        self.run_view.show_step(name)

    def clone_last_run(self):
        run = self.run_view.current_run()
        steps = self._replace_with(run._row["details"]["pipeline"])
        self.say(f"The pipeline is now a copy of run {run.id}'s ({steps} steps).")

    def _replace_with(self, stored) -> int:
        """Make a stored document (folders relative to the workspace) the edited pipeline; its step count."""
        base = self.workspace.path
        pipeline_from_dict(self.workspace, stored, base)  # refuse a pipeline that no longer loads
        if isinstance(self.source, NotebookSource):
            with self._recorded("replacing the pipeline"):
                self.source.state.load_doc(stored, base)
                self.source._changed()
            self.refresh()
        else:  # the source edits documents relative to its own folder
            doc = relative_to(absolute_from(stored, base), self.source.base_dir)
            self.edit(lambda _d: doc, label="replacing the pipeline")
        return len(stored["steps"])

    # -- drafts ----------------------------------------------------------------------------------------------
    def _reload_drafts(self, select=None):
        drafts = PipelineDraft.list(self.workspace)
        self.draft_pick.options = [(f"{d.name} ({d.id[:8]})", d.id) for d in drafts]
        ids = [d.id for d in drafts]
        self.draft_pick.value = select if select in ids else (ids[0] if ids else None)

    def save_draft(self, name=None):
        """Keep the pipeline as the draft ``name`` (the toolbar's box): a new draft, or that draft updated."""
        name = (name if name is not None else self.draft_name.value).strip()
        if not name:
            raise UserError("Type the draft's name first.")
        pipeline = self.source.build()
        same = [d for d in PipelineDraft.list(self.workspace) if d.name == name]
        if same:
            draft = same[0]
            draft.update(pipeline=pipeline)
        else:
            draft = PipelineDraft.create(self.workspace, pipeline, name, experiment_name=self.experiment)
        self._reload_drafts(select=draft.id)
        self.say(f"{'Updated' if same else 'Saved'} draft '{name}' (id {draft.id}, {len(pipeline.steps)} steps).")
        return draft

    def open_draft(self, draft_id=None):
        """Make a draft's pipeline (the one chosen in the toolbar) the edited pipeline."""
        self._reload_drafts(select=draft_id or self.draft_pick.value)
        if self.draft_pick.value is None:
            raise UserError("The workspace has no pipeline drafts yet: save one first.")
        draft = PipelineDraft.get(self.workspace, draft_id or self.draft_pick.value)
        steps = self._replace_with(draft._row["document"])
        self.draft_name.value = draft.name
        self.say(f"The pipeline is now draft '{draft.name}''s ({steps} steps).")
        return draft

    # -- the JupyterLab panel --------------------------------------------------------------------------------
    def open_panel(self):
        """Show this designer in a dockable "Pipeline Designer" panel of JupyterLab."""
        if self._panel is None:
            self._panel = DesignerPanel(child=self.widget)
        self._panel.request_open()
        return self._panel

    def close(self):
        """Stop following runs and pipeline changes, and close the designer's widgets."""
        self.run_view.close()
        self.source.forget(self._changed_elsewhere)
        if self.cell_sync is not None and self._cells_rewritten in self.cell_sync.listeners:
            self.cell_sync.listeners.remove(self._cells_rewritten)
        if self._panel is not None:
            self._panel.close()
        _close_tree(self.widget)


def _gap():
    """A thin divider between groups of toolbar controls."""
    gap = widgets.Box()
    gap.add_class("mlpipe-toolbar-gap")
    return gap


def _drop_data(doc, name):
    """Data removed from the canvas: its readers stop reading it and its writer stops writing it."""
    for reader in [s["name"] for s in doc["steps"] if name in dm.input_names(s)]:
        doc = dm.unlink(doc, name, reader)
    writer = dm.producers(doc).get(name)
    if writer is not None:
        doc = dm.update_step(doc, writer, {"outputs": [o for o in dm.output_names(dm.find(doc, writer)) if o != name]})
    return doc


def _close_tree(widget):
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _resolve_dropped(path: str) -> Path:
    """A path from JupyterLab's file browser is relative to the server's root; the kernel runs in the
    notebook's folder, which ``JPY_SESSION_NAME`` (the notebook's path from that root) tells."""
    here = Path.cwd()
    candidates = [here / path]
    session = os.environ.get("JPY_SESSION_NAME")
    if session and not os.path.isabs(session):
        depth = len(Path(session).parent.parts)
        root = here.parents[depth - 1] if depth else here
        candidates.insert(0, root / path)
    for c in candidates:
        if c.is_file():
            return c
    return candidates[-1]


def notebook_designer(magics) -> Designer:
    """The kernel's one designer of the notebook's pipeline (``%pipeline show`` shows it again)."""
    designer = getattr(magics, "_designer", None)
    if designer is None or designer.source.state is not magics.state:
        designer = magics._designer = Designer.for_notebook(magics)
    return designer


def open_panel():
    """Open the notebook's designer in the JupyterLab panel (the "Pipeline Designer" command runs this)."""
    from IPython import get_ipython

    ip = get_ipython()
    magics = ip.magics_manager.registry.get("PipelineMagics")
    if magics is None:
        ip.extension_manager.load_extension("mlpipe_jupyter")
        magics = ip.magics_manager.registry["PipelineMagics"]
    return notebook_designer(magics).open_panel()
