"""The designer's widget models, as the browser side (labextension/src) knows them: the canvas, drawn
by cytoscape.js, and the JupyterLab panel that can hold it. State only; behaviour is in controller.py."""
from __future__ import annotations

import ipywidgets as widgets
from traitlets import Bool, Dict, Instance, Int, List, Unicode

MODULE, MODULE_VERSION = "mlpipe-jupyter", "^0.1.0"


class DesignerCanvas(widgets.DOMWidget):
    """The graph view. ``graph`` holds nodes and edges (canvas.graph_elements), ``status`` maps a
    step to ``{"status", "started", "ended"}``; ``selected`` comes back from the browser."""

    _model_name = Unicode("DesignerCanvasModel").tag(sync=True)
    _view_name = Unicode("DesignerCanvasView").tag(sync=True)
    _model_module = Unicode(MODULE).tag(sync=True)
    _view_module = Unicode(MODULE).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    graph = Dict({"nodes": [], "edges": []}).tag(sync=True)
    status = Dict({}).tag(sync=True)
    stale = Dict({}).tag(sync=True)
    selected = List(Unicode()).tag(sync=True)
    link_mode = Bool(False).tag(sync=True)
    layout_request = Int(0).tag(sync=True)
    height = Unicode("460px").tag(sync=True)


class DesignerPanel(widgets.Widget):
    """Opens ``child`` in a JupyterLab main-area panel; each new ``open_request`` opens (or shows) it again."""

    _model_name = Unicode("DesignerPanelModel").tag(sync=True)
    _model_module = Unicode(MODULE).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_module = Unicode(MODULE).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    child = Instance(widgets.DOMWidget).tag(sync=True, **widgets.widget_serialization)
    title = Unicode("Pipeline Designer").tag(sync=True)
    open_request = Int(0).tag(sync=True)

    def request_open(self):
        """(``open`` is taken: ipywidgets opens the widget's comm with it.)"""
        self.open_request = self.open_request + 1
