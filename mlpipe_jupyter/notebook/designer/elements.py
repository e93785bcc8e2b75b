"""The designer canvas's graph: the nodes and edges cytoscape.js draws for a pipeline document.

Data objects are nodes of their own between the steps (as Kedro-Viz draws them), so a data name is
never an edge label lost behind another edge: producer -> data node -> each consumer.
"""
from __future__ import annotations

from mlpipe_jupyter.model.document import PRODUCED_KINDS, input_names, output_names
from mlpipe_jupyter.model.graph import producers

# canvas ids: step:NAME, data:NAME; edge:DATA:TARGET (data read by a step), out:STEP:DATA (data written)
STEP, DATA, OUT = "step:", "data:", "out:"


def _missing(ref, data) -> bool:
    return ref not in data or (data.get(ref) or {}).get("kind") in PRODUCED_KINDS


def graph_elements(doc) -> dict:
    """Steps first (in the pipeline's order), then one node per data object: each output, and each
    input no step writes (external data, or ``missing`` when nothing provides it)."""
    prod, data = producers(doc), doc.get("data") or {}
    nodes, edges, shown = [], [], {}
    for s in doc["steps"]:
        nodes.append({"id": STEP + s["name"], "kind": "step", "name": s["name"],
                      "compute": s.get("compute_target") or "local", "position": s.get("position")})

    def data_node(ref):
        if ref not in shown:
            if ref in prod:
                kind = (data.get(ref) or {}).get("kind") or "pipeline_data"
            else:
                kind = "missing" if _missing(ref, data) else data[ref].get("kind")
            shown[ref] = {"id": DATA + ref, "kind": "data", "name": ref, "data_kind": kind,
                          "produced": ref in prod, "position": None}
        return DATA + ref

    for s in doc["steps"]:
        for ref in output_names(s):
            edges.append({"id": f"{OUT}{s['name']}:{ref}", "source": STEP + s["name"], "target": data_node(ref),
                          "data": ref, "label": ""})
        for ref in input_names(s):
            edges.append({"id": f"edge:{ref}:{s['name']}", "source": data_node(ref), "target": STEP + s["name"],
                          "data": ref, "label": ""})
    return {"nodes": nodes + list(shown.values()), "edges": edges}
