"""The designer canvas's graph: the nodes and edges cytoscape.js draws for a pipeline document."""
from __future__ import annotations

from mlpipe_jupyter.model.document import PRODUCED_KINDS, input_names
from mlpipe_jupyter.model.graph import producers

STEP, DATA = "step:", "data:"  # canvas ids: step:NAME, data:NAME (external data), edge:DATA:TARGET


def _missing(ref, data) -> bool:
    return ref not in data or (data.get(ref) or {}).get("kind") in PRODUCED_KINDS


def graph_elements(doc) -> dict:
    """Nodes and edges for the canvas: steps, external data as small source nodes, one edge per data link."""
    prod, data = producers(doc), doc.get("data") or {}
    nodes, edges = [], []
    for s in doc["steps"]:
        nodes.append({"id": STEP + s["name"], "kind": "step", "name": s["name"],
                      "compute": s.get("compute_target") or "local", "position": s.get("position")})
    external: set = set()
    for s in doc["steps"]:
        for ref in input_names(s):
            if ref in prod:
                source = STEP + prod[ref]
            else:
                source = DATA + ref
                if ref not in external:
                    external.add(ref)
                    nodes.append({"id": source, "kind": "data", "name": ref,
                                  "data_kind": "missing" if _missing(ref, data) else data[ref].get("kind"),
                                  "position": None})
            edges.append({"id": f"edge:{ref}:{s['name']}", "source": source, "target": STEP + s["name"],
                          "data": ref, "label": ref if ref in prod else ""})
    return {"nodes": nodes, "edges": edges}
