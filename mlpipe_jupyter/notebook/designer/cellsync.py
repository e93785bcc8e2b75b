"""Designer edits written back to the notebook's ``%%step`` cells, so cells and canvas never disagree.

The kernel knows a cell's step (its spec), not the cell's text; JupyterLab knows the text. After an
edit, the designer renders each changed cell step's ``%%step`` line (arguments.step_cell_line) and
this model-only widget asks the browser side (labextension/src/cellsync.ts) to put it in as the first
line of the cell that records that step. The browser says hello when it has the model, and answers
each request with the names it found. Without a browser (a kernel run by nbclient, an in-process
shell) the recorded steps are edited all the same and the lines wait in ``pending``.
"""
from __future__ import annotations

import ipywidgets as widgets
from traitlets import Unicode

from mlpipe_jupyter.notebook.arguments import step_cell_line
from mlpipe_jupyter.notebook.designer.widgets import MODULE_VERSION

CELLSYNC_MODULE = "mlpipe-jupyter-cellsync"


class CellSync(widgets.Widget):
    """Rewrites first lines of ``%%step`` cells in the notebook that owns this kernel."""

    _model_name = Unicode("CellSyncModel").tag(sync=True)
    _model_module = Unicode(CELLSYNC_MODULE).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_module = Unicode(CELLSYNC_MODULE).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ready = False  # a browser holds the model and answers
        self.pending: dict[str, tuple[str, str]] = {}  # name in the cell now -> (new name, new first line)
        self._sent: dict[int, dict] = {}
        self._next_id = 0
        self.listeners: list = []  # called with (done names, missing names) when the browser answers
        self.on_msg(self._on_msg)

    def rewrite(self, changes: list[tuple[str, str, str]]) -> bool:
        """``changes``: (name in the cell, new name, new first line). True when sent to a browser; False when
        none is connected yet (then they are kept, merged, and sent when one says hello)."""
        for match, new_name, line in changes:
            earlier = next((k for k, (n, _) in self.pending.items() if n == match), None)
            self.pending[earlier if earlier is not None else match] = (new_name, line)
        if self.ready:
            self._flush()
        return self.ready

    def _flush(self):
        if not self.pending:
            return
        self._next_id += 1
        self._sent[self._next_id] = dict(self.pending)
        cells = [{"match": m, "line": line} for m, (_, line) in self.pending.items()]
        self.pending = {}
        self.send({"event": "rewrite", "id": self._next_id, "cells": cells})

    def _on_msg(self, _widget, content, _buffers):
        event = content.get("event")
        if event == "hello":
            self.ready = True
            self._flush()
        elif event == "rewritten":
            self._sent.pop(content.get("id"), None)
            for callback in list(self.listeners):
                callback(list(content.get("done") or []), list(content.get("missing") or []))


_instance: CellSync | None = None


def kernel_cell_sync() -> CellSync:
    """The kernel's one cell sync (every notebook designer of the kernel shares the browser's answer)."""
    global _instance
    if _instance is None:
        _instance = CellSync()
    return _instance


def cell_line_changes(before: dict, after: dict, renamed=None, default_compute="local") -> list[tuple]:
    """(name in the cell, new name, new first line) for each cell step whose ``%%step`` options changed from
    ``before`` to ``after`` (name -> CellSpec); ``renamed`` maps old names to new ones."""
    back = {new: old for old, new in (renamed or {}).items()}
    out = []
    for name, spec in after.items():
        old = before.get(back.get(name, name))
        if old is None:
            continue
        if _options(old) != _options(spec):
            out.append((old.name, spec.name, step_cell_line(spec, default_compute)))
    return out


def _options(spec):
    d = spec.to_dict()
    d.pop("body")
    return d
