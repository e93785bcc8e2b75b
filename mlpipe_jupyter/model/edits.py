"""Edits of a pipeline document, as plain functions: what the designer does by mouse and form.

Every edit returns a new document and never touches its argument, so the designer can check the
result first and keep the pipeline as it was when an edit is refused (a cycle, an output written
twice, a bad name). Links are data names, as in the document; the graph questions (who writes what,
what comes before or after a step) are model/graph.py's, linear in the document's size.
"""
from __future__ import annotations

import copy
import re

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model import graph
from mlpipe_jupyter.model.document import PRODUCED_KINDS, data_ref, input_names, output_names
from mlpipe_jupyter.model.names import DATA_NAME, check_data_name, check_param_name, check_step_name, fit_data_name

EDITABLE = ("name", "script", "source_directory", "arguments", "inputs", "outputs", "params", "compute_target",
            "environment", "allow_reuse")
_ref = data_ref
step_names = graph.step_names
producers = graph.producers


def find(doc, name) -> dict:
    for s in doc["steps"]:
        if s["name"] == name:
            return s
    raise UserError(f"The pipeline has no step named '{name}' (steps: {', '.join(step_names(doc)) or 'none'}).")


def ancestors(doc, name) -> set:
    return graph.ancestors(doc, name)


def descendants(doc, name) -> set:
    return graph.descendants(doc, name)


def problems(doc) -> list[str]:
    """What makes an edit unacceptable: an output written by two steps, two steps of one name, a cycle."""
    found = []
    for name, writers in graph.writers(doc).items():
        if len(writers) > 1:
            found.append(f"Output '{name}' would be written by both '{writers[0]}' and '{writers[1]}'; "
                         "each output name can be written by one step only.")
    names = step_names(doc)
    if len(set(names)) != len(names):
        seen, dup = set(), None
        for n in names:
            if n in seen:
                dup = n
                break
            seen.add(n)
        found.append(f"Two steps would be named '{dup}'; step names must be unique.")
    cycle = graph.find_cycle(names, graph.downstream(doc))
    if cycle:
        found.append("That would make a cycle of data links: " + " -> ".join(cycle) + ".")
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


# -- edits ------------------------------------------------------------------------------------------------------
def _data_name(text, room: int = 0) -> str:
    """A valid data name made from any text, leaving ``room`` characters for a suffix."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return fit_data_name(name if DATA_NAME.match(name) else f"d_{name}", room)


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
    ups = graph.upstream(doc)
    chosen = {name} | (graph.reachable(graph.downstream(doc, ups), name) if onward else set())
    needed = chosen | graph.reachable(ups, chosen)
    new = copy.deepcopy(doc)
    new["steps"] = [s for s in new["steps"] if s["name"] in needed]
    for s in new["steps"]:
        if s["name"] in chosen:
            s["allow_reuse"] = False
    return new
