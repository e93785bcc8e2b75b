"""The pipeline file format (YAML or JSON), shared by the SDK, the designer, the magics and the CLI.

Data objects are listed once under ``data`` and referred to by name from steps, so links survive a
round trip. Source directories are stored relative to the file's folder, so a pipeline folder can move.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.secrets import MASK, looks_secret, masked_variables
from mlpipe_jupyter.sdk.data import (AbstractDataset, DataReference, DatasetConsumptionConfig, InputBinding, OutputFileDatasetConfig,
                   PipelineData)
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.sdk.run_config import RunConfiguration

if TYPE_CHECKING:
    from mlpipe_jupyter.sdk.pipeline import Pipeline

FORMAT_VERSION = 1
# A document may share parts through YAML aliases, but expanded it may hold at most this many times its
# own size (plus a little): a "billion laughs" file would otherwise expand to gigabytes when stored.
MAX_ALIAS_EXPANSION = 10
MAX_ALIAS_EXTRA_NODES = 10_000


def pipeline_to_dict(pipeline, base_dir=None) -> dict:
    base = Path(base_dir or os.getcwd()).resolve()
    data: dict[str, dict] = {}
    links: dict[str, PipelineData] = {}  # name -> the one intermediate data object saved under it
    params = {name: {"default": MASK} if looks_secret(name) else p.to_dict()
              for name, p in pipeline.parameters().items()}  # a secret's value is never saved

    def add(name, obj):
        """Data is saved once by name; two different things under one name would merge on loading."""
        d = obj.to_dict()
        if name in data and (data[name] != d or (isinstance(obj, PipelineData) and links.get(name) is not obj)):
            raise UserError(f"The pipeline uses two different data objects named '{name}'; "
                            "give each its own name so the saved file keeps them apart.")
        data[name] = d
        if isinstance(obj, PipelineData):
            links[name] = obj

    def ref(obj):
        if isinstance(obj, PipelineParameter):
            return {"param": obj.name}
        if isinstance(obj, InputBinding):
            add(obj.data.name, obj.data)
            return {"data": obj.data.name, "as": obj.input_name, "mode": obj.mode}
        if isinstance(obj, DatasetConsumptionConfig):
            add(obj.name, obj.dataset)
            return {"data": obj.name, "mode": obj.mode}
        if isinstance(obj, (PipelineData, DataReference)):
            add(obj.name, obj)
            return {"data": obj.name}
        if isinstance(obj, AbstractDataset):
            key = obj.name or "dataset"
            add(key, obj)
            return {"data": key}
        return obj

    steps = []
    for s in pipeline.steps:
        rel = os.path.relpath(s.source_directory, base)
        d = {
            "name": s.name,
            "script": s.script_name,
            "source_directory": rel.replace(os.sep, "/"),
            "arguments": [ref(a) for a in s.arguments],
            "inputs": [ref(i) for i in s.inputs],
            "outputs": [ref(o) for o in s.outputs],
            "compute_target": s.compute_target,
            "allow_reuse": s.allow_reuse,
        }
        if s.params:
            d["params"] = {k: ref(v) for k, v in s.params.items()}
        if s.hash_paths:
            d["hash_paths"] = list(s.hash_paths)
        env = s.runconfig.environment
        if env is not None and env.name != "user-managed":
            d["environment"] = env.to_dict()
        if s.runconfig.max_run_duration_seconds:
            d["max_run_duration_seconds"] = s.runconfig.max_run_duration_seconds
        if getattr(s.runconfig, "environment_variables", None):
            d["environment_variables"] = masked_variables(s.runconfig.environment_variables)
        if s.position:
            d["position"] = dict(s.position)
        steps.append(d)
    out = {"version": FORMAT_VERSION, "description": pipeline.description, "parameters": params,
           "data": data, "steps": steps}
    return out


def pipeline_from_dict(workspace, doc, base_dir=".") -> "Pipeline":
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise UserError("A pipeline description must be a mapping with a 'steps' list.")
    if isinstance(doc.get("version"), int) and doc["version"] > FORMAT_VERSION:
        raise UserError(f"The pipeline description has format version {doc['version']}; this version of "
                        f"mlpipe-jupyter reads up to {FORMAT_VERSION}. Upgrade mlpipe-jupyter to load it.")
    try:
        return _pipeline_from_dict(workspace, doc, base_dir)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise UserError(f"The pipeline description is malformed ({type(e).__name__}: {e}).") from None


def _pipeline_from_dict(workspace, doc, base_dir):
    from mlpipe_jupyter.data.datasets import dataset_from_definition, get_dataset
    from mlpipe_jupyter.data.datastore import Datastore
    from mlpipe_jupyter.sdk.environment import Environment
    from mlpipe_jupyter.sdk.pipeline import Pipeline
    from mlpipe_jupyter.sdk.step import PythonScriptStep

    base = Path(base_dir).resolve()
    params = {n: PipelineParameter(n, (v or {}).get("default")) for n, v in (doc.get("parameters") or {}).items()}
    data_docs = doc.get("data") or {}
    data: dict[str, object] = {}

    def datastore(name):
        return Datastore(workspace, name) if name else None

    def make_data(name):
        if name in data:
            return data[name]
        d = data_docs.get(name)
        if d is None:
            raise UserError(f"The pipeline refers to data '{name}', which its 'data' section does not define.")
        kind = d.get("kind")
        if kind == "pipeline_data":
            obj = PipelineData(name, datastore=datastore(d.get("datastore")), is_directory=d.get("is_directory", True))
        elif kind == "output_file_dataset":
            dest = d.get("destination")
            obj = OutputFileDatasetConfig(name, destination=(datastore(dest["datastore"]), dest["path"]) if dest else None)
            if d.get("register_as"):
                obj.register_on_complete(d["register_as"])
        elif kind == "data_reference":
            obj = DataReference(datastore(d["datastore"]), name, d.get("path"), d.get("mode", "mount"))
        elif kind == "dataset":
            if d.get("name") and d.get("version") is not None:
                obj = get_dataset(workspace, d["name"], d["version"])
            else:
                obj = dataset_from_definition(workspace, d, d.get("dataset_type"))
            obj = DatasetConsumptionConfig(name, obj)
        else:
            raise UserError(f"Data '{name}' in the pipeline has unknown kind {kind!r}.")
        data[name] = obj
        return obj

    views: dict[tuple, object] = {}  # one object per (data, input name, mode), as in the saved pipeline

    def deref(v):
        if isinstance(v, dict) and "param" in v:
            if v["param"] not in params:
                raise UserError(f"The pipeline refers to parameter '{v['param']}', which it does not define.")
            return params[v["param"]]
        if isinstance(v, dict) and "data" in v:
            obj = make_data(v["data"])
            if isinstance(obj, DatasetConsumptionConfig):
                key = (v["data"], None, v.get("mode", obj.mode))
                return views.setdefault(key, DatasetConsumptionConfig(obj.name, obj.dataset, key[2]))
            if "as" in v and isinstance(obj, PipelineData):
                key = (v["data"], v["as"], v.get("mode", "mount"))
                return views.setdefault(key, InputBinding(obj, key[1], key[2]))
            return obj
        return v

    # outputs first, so PipelineData objects know their producer before inputs refer to them
    steps = []
    for sd in doc["steps"]:
        if not isinstance(sd, dict) or "name" not in sd or "script" not in sd:
            raise UserError(f"Each step in a pipeline needs 'name' and 'script'; got {sd!r}.")
        rc = RunConfiguration()
        if sd.get("environment"):
            rc.environment = Environment.from_dict(sd["environment"])
        rc.max_run_duration_seconds = sd.get("max_run_duration_seconds")
        rc.environment_variables = dict(sd.get("environment_variables") or {})
        step = PythonScriptStep(
            sd["script"], name=sd["name"],
            arguments=[deref(a) for a in sd.get("arguments") or []],
            inputs=[deref(i) for i in sd.get("inputs") or []],
            outputs=[deref(o) for o in sd.get("outputs") or []],
            params={k: deref(v) for k, v in (sd.get("params") or {}).items()},
            compute_target=sd.get("compute_target", "local"),
            runconfig=rc,
            source_directory=str(base / sd.get("source_directory", ".")),
            allow_reuse=sd.get("allow_reuse", True),
            hash_paths=sd.get("hash_paths"),
        )
        step.position = sd.get("position")
        steps.append(step)
    return Pipeline(workspace, steps, description=doc.get("description"))


def save_pipeline(pipeline, path, format=None) -> None:
    path = Path(path)
    doc = pipeline_to_dict(pipeline, base_dir=path.parent)
    fmt = format or ("json" if path.suffix == ".json" else "yaml")
    if fmt == "json":
        text = json.dumps(doc, indent=2)
    else:
        import yaml

        text = yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_pipeline_document(path) -> dict:
    """The parsed YAML/JSON of a pipeline file; a missing or unparsable file is one clear UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Pipeline file '{path}' does not exist.")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            return json.loads(text)
        import yaml

        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when present: 20x faster
    except Exception as e:  # noqa: BLE001 - any parse error becomes one clear message
        raise UserError(f"Pipeline file '{path}' could not be parsed: {e}") from None
    check_expansion(doc, f"Pipeline file '{path}'")
    return doc


def check_expansion(doc, what: str) -> None:
    """Refuse a document whose aliases make it expand far beyond its own size, or refer to themselves.

    YAML aliases share one object between places. Counting the document as written (each shared object
    once, each place that refers to it once) and as expanded (each shared object at every place), with
    the size of each shared object remembered, tells both without expanding anything."""
    if not isinstance(doc, (dict, list)):
        return
    expanded: dict[int, int] = {}  # id of a finished container -> its expanded size
    written = 1
    active = {id(doc)}
    stack = [(doc, iter(_children(doc)), [1])]  # iterative: a deep document must not hit the recursion limit
    while stack:
        obj, it, total = stack[-1]
        for child in it:
            written += 1
            if not isinstance(child, (dict, list)):
                total[0] += 1
            elif id(child) in active:
                raise UserError(f"{what} refers to itself through a YAML alias; a pipeline file must be a tree.")
            elif id(child) in expanded:
                total[0] += expanded[id(child)]
            else:
                active.add(id(child))
                stack.append((child, iter(_children(child)), [1]))
                break
        else:
            stack.pop()
            active.discard(id(obj))
            expanded[id(obj)] = total[0]
            if stack:
                stack[-1][2][0] += total[0]
    if expanded[id(doc)] > MAX_ALIAS_EXPANSION * written + MAX_ALIAS_EXTRA_NODES:
        raise UserError(f"{what} uses YAML aliases that expand it to {expanded[id(doc)]:,} values, more than "
                        f"{MAX_ALIAS_EXPANSION} times the {written:,} it holds (an alias bomb?); nothing was "
                        "stored or run. Write the repeated parts out, or share less.")


def _children(obj) -> list:
    return [*obj.keys(), *obj.values()] if isinstance(obj, dict) else list(obj)


def load_pipeline(workspace, path) -> "Pipeline":
    path = Path(path)
    doc = read_pipeline_document(path)
    try:
        return pipeline_from_dict(workspace, doc, base_dir=path.parent)
    except UserError as e:
        raise UserError(f"Pipeline file '{path}': {e}") from None
