"""The designer's edits as plain functions on pipeline-file documents (see core/pipeline_format.py).

Every edit returns a new document and never touches its argument, so the designer can check the
result first and keep the pipeline as it was when an edit is refused (a cycle, an output written
twice, a bad name). The canvas graph is also derived from a document here, which keeps all of this
testable without a browser or a kernel.
"""
from __future__ import annotations

import copy
import re

from mlpipe_jupyter.sdk.data import fit_name
from mlpipe_jupyter.model.names import DATA_NAME, check_data_name, check_param_name, check_step_name
from mlpipe_jupyter.errors import UserError

STEP, DATA = "step:", "data:"
PRODUCED_KINDS = ("pipeline_data", "output_file_dataset")  # data some step must write
EDITABLE = ("name", "script", "source_directory", "arguments", "inputs", "outputs", "params", "compute_target",
            "environment", "allow_reuse")


# -- reading a document -------------------------------------------------------------------------------------
def _ref(item):
    return item.get("data") if isinstance(item, dict) else None


def step_names(doc) -> list[str]:
    return [s["name"] for s in doc["steps"]]


def find(doc, name) -> dict:
    for s in doc["steps"]:
        if s["name"] == name:
            return s
    raise UserError(f"The pipeline has no step named '{name}' (steps: {', '.join(step_names(doc)) or 'none'}).")


def input_names(entry) -> list[str]:
    """Data a step reads, from its inputs and its arguments, each once."""
    names = []
    for item in list(entry.get("inputs") or []) + list(entry.get("arguments") or []):
        ref = _ref(item)
        if ref is not None and ref not in names and ref not in output_names(entry):
            names.append(ref)
    return names


def output_names(entry) -> list[str]:
    return [o["data"] for o in entry.get("outputs") or [] if isinstance(o, dict) and "data" in o]


def producers(doc) -> dict[str, str]:
    """data name -> the step that writes it (the first, when several do)."""
    out = {}
    for s in doc["steps"]:
        for name in output_names(s):
            out.setdefault(name, s["name"])
    return out


def upstream_map(doc) -> dict[str, set]:
    prod = producers(doc)
    return {s["name"]: {prod[d] for d in input_names(s) if d in prod} for s in doc["steps"]}


def ancestors(doc, name) -> set:
    ups, seen, todo = upstream_map(doc), set(), [name]
    while todo:
        for up in ups.get(todo.pop(), ()):
            if up not in seen:
                seen.add(up)
                todo.append(up)
    return seen


def descendants(doc, name) -> set:
    return {s for s in step_names(doc) if name in ancestors(doc, s)}


def problems(doc) -> list[str]:
    """What makes an edit unacceptable: an output written by two steps, a cycle of data links."""
    found, writer = [], {}
    for s in doc["steps"]:
        for name in output_names(s):
            if name in writer and writer[name] != s["name"]:
                found.append(f"Output '{name}' would be written by both '{writer[name]}' and '{s['name']}'; "
                             "each output name can be written by one step only.")
            writer.setdefault(name, s["name"])
    names = step_names(doc)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        found.append(f"Two steps would be named '{dup[0]}'; step names must be unique.")
    ups = upstream_map(doc)
    state: dict[str, int] = {}

    def visit(n, path):
        state[n] = 1
        for up in sorted(ups.get(n, ())):
            if state.get(up) == 1:
                loop = path[path.index(up):] + [up] if up in path else [up, n]
                found.append("That would make a cycle of data links: " + " -> ".join(reversed(loop)) + ".")
                return True
            if up not in state and visit(up, path + [up]):
                return True
        state[n] = 2
        return False

    for n in names:
        if n not in state and visit(n, [n]):
            break
    return found


def _missing(ref, data) -> bool:
    """True when data nobody writes cannot come from elsewhere: undefined, or intermediate data."""
    return ref not in data or (data.get(ref) or {}).get("kind") in PRODUCED_KINDS


def dangling_inputs(doc) -> list[tuple[str, str]]:
    """(step, data name) for each input nobody provides."""
    prod, data = producers(doc), doc.get("data") or {}
    return [(s["name"], ref) for s in doc["steps"] for ref in input_names(s) if ref not in prod and _missing(ref, data)]


def dangling(doc) -> list[str]:
    """Inputs nobody provides: allowed while editing, shown as warnings; submitting refuses them."""
    return [f"Step '{step}' reads '{ref}', which no step writes." for step, ref in dangling_inputs(doc)]


def check(doc) -> dict:
    found = problems(doc)
    if found:
        raise UserError(" ".join(found))
    return doc


# -- the canvas graph -----------------------------------------------------------------------------------------
def graph_elements(doc) -> dict:
    """Nodes and edges for the canvas: steps, external data as small source nodes, one edge per data link."""
    prod, data = producers(doc), doc.get("data") or {}
    nodes, edges = [], []
    for s in doc["steps"]:
        nodes.append({"id": STEP + s["name"], "kind": "step", "name": s["name"],
                      "compute": s.get("compute_target") or "local", "position": s.get("position")})
    external = []
    for s in doc["steps"]:
        for ref in input_names(s):
            if ref in prod:
                source = STEP + prod[ref]
            else:
                source = DATA + ref
                if ref not in external:
                    external.append(ref)
                    nodes.append({"id": source, "kind": "data", "name": ref,
                                  "data_kind": "missing" if _missing(ref, data) else data[ref].get("kind"),
                                  "position": None})
            edges.append({"id": f"edge:{ref}:{s['name']}", "source": source, "target": STEP + s["name"],
                          "data": ref, "label": ref if ref in prod else ""})
    return {"nodes": nodes, "edges": edges}


# -- edits ------------------------------------------------------------------------------------------------------
def _data_name(text, room: int = 0) -> str:
    """A valid data name made from any text, leaving ``room`` characters for a suffix."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return fit_name(name if DATA_NAME.match(name) else f"d_{name}", room)


def _taken(doc) -> set:
    taken = set(doc.get("data") or {})
    for s in doc["steps"]:
        taken.update(output_names(s))
        taken.update(input_names(s))
    return taken


def move(doc, name, position) -> dict:
    new = copy.deepcopy(doc)
    find(new, name)["position"] = {"x": round(float(position["x"]), 1), "y": round(float(position["y"]), 1)}
    return new


def link(doc, source, target) -> tuple[dict, str]:
    """A new output ``<source>_out`` of ``source``, read by ``target``; refused when it makes a cycle."""
    if source == target:
        raise UserError(f"A step cannot feed itself: '{source}' -> '{source}'.")
    prod = producers(doc)
    if any(prod.get(d) == source for d in input_names(find(doc, target))):
        raise UserError(f"'{source}' already feeds '{target}'.")
    find(doc, source)
    if target in ancestors(doc, source):
        raise UserError(f"Linking '{source}' -> '{target}' would make a cycle: '{target}' already feeds '{source}'.")
    base = _data_name(f"{source}_out", room=len("_9999"))
    name, i, taken = base, 2, _taken(doc)
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    new = copy.deepcopy(doc)
    new.setdefault("data", {})[name] = {"kind": "pipeline_data", "is_directory": True}
    find(new, source).setdefault("outputs", []).append({"data": name})
    find(new, target).setdefault("inputs", []).append({"data": name})
    return check(new), name


def _drop_refs(entry, data_name):
    """Remove a data input from a step, with a ``--flag`` argument that named it."""
    entry["inputs"] = [i for i in entry.get("inputs") or [] if _ref(i) != data_name]
    args, kept = list(entry.get("arguments") or []), []
    for a in args:
        if _ref(a) == data_name:
            if kept and isinstance(kept[-1], str) and kept[-1].startswith("--"):
                kept.pop()
            continue
        kept.append(a)
    entry["arguments"] = kept


def _prune_data(doc):
    """Forget intermediate data nobody writes or reads any more."""
    used = set()
    for s in doc["steps"]:
        used.update(input_names(s))
        used.update(output_names(s))
    data = doc.get("data") or {}
    for name in [n for n, d in data.items() if n not in used and d.get("kind") in PRODUCED_KINDS]:
        del data[name]


def unlink(doc, data_name, target) -> dict:
    new = copy.deepcopy(doc)
    entry = find(new, target)
    if data_name not in input_names(entry):
        raise UserError(f"Step '{target}' does not read '{data_name}'.")
    _drop_refs(entry, data_name)
    _prune_data(new)
    return new


def remove_step(doc, name) -> dict:
    """The step goes with its links: steps that read its outputs stop reading them."""
    new = copy.deepcopy(doc)
    entry = find(new, name)
    new["steps"] = [s for s in new["steps"] if s["name"] != name]
    for data_name in output_names(entry):
        for other in new["steps"]:
            if data_name in input_names(other):
                _drop_refs(other, data_name)
    _prune_data(new)
    return new


def add_step(doc, entry) -> dict:
    check_step_name(entry.get("name"))
    if entry["name"] in step_names(doc):
        raise UserError(f"The pipeline already has a step named '{entry['name']}'.")
    new = copy.deepcopy(doc)
    full = {"arguments": [], "inputs": [], "outputs": [], "compute_target": "local", "allow_reuse": True}
    full.update(copy.deepcopy(entry))
    new["steps"].append(full)
    return check(new)


def update_step(doc, name, changes: dict) -> dict:
    """Apply properties-panel edits (any of ``EDITABLE``); data names link steps as in the file format."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise UserError(f"Unknown step properties: {', '.join(sorted(unknown))}.")
    new = copy.deepcopy(doc)
    entry = find(new, name)
    data = new.setdefault("data", {})
    if "name" in changes and changes["name"] != name:
        new_name = changes["name"]
        check_step_name(new_name)
        if new_name in step_names(new):
            raise UserError(f"The pipeline already has a step named '{new_name}'.")
        entry["name"] = new_name
    for key in ("script", "source_directory"):
        if key in changes:
            if not str(changes[key]).strip():
                raise UserError(f"Step '{name}': the {key.replace('_', ' ')} cannot be empty.")
            entry[key] = str(changes[key]).strip()
    if "compute_target" in changes:
        entry["compute_target"] = changes["compute_target"] or "local"
    if "allow_reuse" in changes:
        entry["allow_reuse"] = bool(changes["allow_reuse"])
    if "environment" in changes:
        if changes["environment"]:
            entry["environment"] = changes["environment"]
        else:
            entry.pop("environment", None)
    if "arguments" in changes:
        entry["arguments"] = list(changes["arguments"])
    if "outputs" in changes:
        outs = list(changes["outputs"])
        for out in outs:
            check_data_name("Output", out)
            if outs.count(out) > 1:
                raise UserError(f"Step '{name}' lists output '{out}' twice.")
            kind = (data.get(out) or {}).get("kind")
            if kind is not None and kind not in PRODUCED_KINDS:
                raise UserError(f"'{out}' is external data of this pipeline; an output needs a name of its own.")
        entry["outputs"] = [{"data": o} for o in outs]
        for out in outs:
            data.setdefault(out, {"kind": "pipeline_data", "is_directory": True})
    if "inputs" in changes:
        known = set(data) | set(producers(new))
        wanted = list(changes["inputs"])
        for ref in wanted:
            if ref in output_names(entry):
                raise UserError(f"Step '{name}' cannot read its own output '{ref}'.")
            if ref not in known:
                raise UserError(f"Step '{name}': no data named '{ref}' in this pipeline; draw a link from the step "
                                "that writes it, or add that output to a step first.")
        kept = [i for i in entry.get("inputs") or [] if _ref(i) in wanted]
        have = [_ref(i) for i in kept]
        entry["inputs"] = kept + [{"data": r} for r in wanted if r not in have]
        entry["arguments"] = [a for a in entry.get("arguments") or [] if _ref(a) is None or _ref(a) in wanted
                              or _ref(a) in output_names(entry)]
    if "params" in changes:
        params = new.setdefault("parameters", {})
        entry["params"] = {}
        for key, value in dict(changes["params"]).items():
            check_param_name(key)
            params[key] = {"default": value}
            entry["params"][key] = {"param": key}
    _prune_data(new)
    return check(new)


def subset(doc, name, onward=False) -> dict:
    """The document to run one step (``onward``: it and everything downstream), with what they read.

    The chosen steps are forced to run; the steps that only feed them keep their reuse, so their
    results come from the latest run that made them."""
    find(doc, name)
    chosen = {name} | (descendants(doc, name) if onward else set())
    needed = set(chosen)
    for n in chosen:
        needed |= ancestors(doc, n)
    new = copy.deepcopy(doc)
    new["steps"] = [s for s in new["steps"] if s["name"] in needed]
    for s in new["steps"]:
        if s["name"] in chosen:
            s["allow_reuse"] = False
    return new
