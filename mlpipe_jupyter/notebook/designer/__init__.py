"""The pipeline designer: a canvas of the pipeline, edited by mouse, with live run status.

``display(pipeline.designer())`` (or ``%pipeline show``) shows it. The canvas is our own small
ipywidgets DOM widget (``DesignerCanvas``), drawn in the browser by cytoscape.js with the dagre layout
and edgehandles for drawing links; the JupyterLab extension in ``labextension/`` ships that view.
The browser sends what the user did (moved, linked, deleted, opened a step...) as messages; this
side applies them to the pipeline through model/edits.py, which refuses bad edits before
anything changes, and sends the new graph back. Run status travels in one ``status`` trait, set from
the runner's event threads, so a busy kernel never delays it.

Its parts: ``widgets`` (the widget models the browser side knows), ``elements`` (the graph the canvas
draws), ``sources`` (what it edits), ``properties`` (the form of one step), ``run_view`` (the shown
run), ``cellsync`` (edits written back to the ``%%step`` lines of the notebook's cells) and
``controller`` (the ``Designer`` tying them together, with its undo history and stale marks).
"""
from __future__ import annotations

from mlpipe_jupyter.notebook.designer.controller import Designer, notebook_designer, open_panel
from mlpipe_jupyter.notebook.designer.properties import PropertiesPanel
from mlpipe_jupyter.notebook.designer.run_view import RunView, clone_run
from mlpipe_jupyter.notebook.designer.widgets import DesignerCanvas, DesignerPanel

__all__ = ["Designer", "DesignerCanvas", "DesignerPanel", "PropertiesPanel", "RunView", "clone_run",
           "notebook_designer", "open_panel"]
