"""The pipeline document: the one model every way of defining a pipeline produces and the planner plans.

A document is plain data that serializes to YAML or JSON unchanged (the pipeline file format): data
objects are listed once under ``data`` and referred to by name, so links survive a round trip and
edits are dictionary operations. Its shape, as ``TypedDict`` types::

    {"version": 1, "description": ..., "parameters": {name: {"default": value}},
     "data": {name: DataEntry}, "steps": [StepEntry, ...]}

A step refers to data with ``{"data": name}`` (optionally ``"as"``: the input's name, ``"mode"``:
``mount``/``download``) and to a pipeline parameter with ``{"param": name}``; anything else in its
arguments is a literal. ``run_after`` lists the steps it runs after without reading their data.
Folders are absolute in memory; ``relative_to``/``absolute_from`` convert them for files and the
store (a run keeps its document relative to the workspace).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

FORMAT_VERSION = 1
PRODUCED_KINDS = ("pipeline_data", "output_file_dataset")  # data some step must write
# data that exists before the run; "parameter": a DataPath or dataset a pipeline parameter chooses at submit
EXTERNAL_KINDS = ("data_reference", "dataset", "parameter")


class DataEntry(TypedDict, total=False):
    kind: str  # pipeline_data | output_file_dataset | data_reference | dataset | parameter
    param: str  # parameter: the pipeline parameter whose value (a data description) it is
    is_directory: bool
    datastore: str
    path: str | None
    mode: str
    destination: dict  # output_file_dataset: {"datastore", "path"}
    register_as: str
    dataset_type: str  # dataset: file | tabular
    sources: list
    name: str
    version: Any
    options: dict


class StepEntry(TypedDict, total=False):
    name: str
    script: str
    source_directory: str
    arguments: list
    inputs: list  # [{"data": name, "as": input name, "mode": ..., "read": how it is seen as a dataset}]
    outputs: list  # [{"data": name}]
    run_after: list  # names of steps this one runs after, with no data between them (ordering only)
    params: dict  # name -> {"param": p} | {"data": d} | literal
    compute_target: str
    allow_reuse: bool
    hash_paths: list
    environment: dict
    environment_variables: dict
    max_run_duration_seconds: float
    distributed: dict  # {"kind": "pytorch" | "mpi", "process_count_per_node", "node_count"[, "backend"]}
    position: dict


class PipelineDocument(TypedDict, total=False):
    version: int
    description: str | None
    parameters: dict
    data: dict
    steps: list


def new_document(steps=None, data=None, parameters=None, description=None) -> PipelineDocument:
    return {"version": FORMAT_VERSION, "description": description, "parameters": dict(parameters or {}),
            "data": dict(data or {}), "steps": list(steps or [])}


def data_ref(item) -> str | None:
    """The data name an argument, input or output refers to, or None for a literal."""
    return item.get("data") if isinstance(item, dict) else None


def output_names(step: StepEntry) -> list[str]:
    return [o["data"] for o in step.get("outputs") or [] if isinstance(o, dict) and "data" in o]


def input_items(step: StepEntry, data: dict | None = None) -> list[tuple[str, str, str]]:
    """(input name, data name, mode) for each input of a step, from its inputs and then from the data
    its arguments and params name but does not write, each input name once."""
    outputs = set(output_names(step))
    seen, items = set(), []
    refs = list(step.get("inputs") or []) + list(step.get("arguments") or []) + list((step.get("params") or {}).values())
    for item in refs:
        name = data_ref(item)
        if name is None or name in outputs:
            continue
        entry = (data or {}).get(name) or {}
        default_mode = entry.get("mode", "mount") if entry.get("kind") == "data_reference" else "mount"
        as_name = item.get("as") or name
        if as_name in seen:
            continue
        seen.add(as_name)
        items.append((as_name, name, item.get("mode") or default_mode))
    return items


def input_names(step: StepEntry) -> list[str]:
    """Data names a step reads, each once."""
    return list(dict.fromkeys(name for _, name, _ in input_items(step)))


def input_name_for(step: StepEntry, data_name: str) -> str:
    """The name under which a step reads a data object (its ``as``, else the data's name)."""
    for as_name, name, _ in input_items(step):
        if name == data_name:
            return as_name
    return data_name


def is_directory(doc: PipelineDocument, data_name: str) -> bool:
    return bool(((doc.get("data") or {}).get(data_name) or {}).get("is_directory", True))


def _convert(doc: PipelineDocument, convert) -> PipelineDocument:
    steps = []
    for s in doc.get("steps") or []:
        s = dict(s)
        if "source_directory" in s:
            s["source_directory"] = convert(s["source_directory"])
        steps.append(s)
    return {**doc, "steps": steps}


def relative_to(doc: PipelineDocument, base) -> PipelineDocument:
    """Source folders relative to ``base`` (a pipeline file's folder, or the workspace for the store)."""
    base = os.path.abspath(base)
    return _convert(doc, lambda p: os.path.relpath(p, base).replace(os.sep, "/"))


def absolute_from(doc: PipelineDocument, base) -> PipelineDocument:
    """Source folders made absolute, as they were written relative to ``base``."""
    base = Path(base)
    return _convert(doc, lambda p: str((base / p).resolve()))
