"""Pipeline documents as files (YAML or JSON), and as they may be stored: without secrets.

Reading refuses what could hurt before it is used: a file that cannot be parsed, or YAML whose
aliases expand it far beyond its size (an alias bomb would otherwise expand to gigabytes when the
run stores its document). Writing is atomic. ``for_storage`` replaces every secret value by ``***``
(step environments, run configuration variables, secret-looking parameters), the form a document
takes in files, the store and notebook metadata.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.document import FORMAT_VERSION, PipelineDocument
from mlpipe_jupyter.secrets import MASK, looks_secret, masked_variables

# A document may share parts through YAML aliases, but expanded it may hold at most this many times its
# own size (plus a little): a "billion laughs" file would otherwise expand to gigabytes when stored.
MAX_ALIAS_EXPANSION = 10
MAX_ALIAS_EXTRA_NODES = 10_000


def for_storage(doc: PipelineDocument) -> PipelineDocument:
    """The document with every secret value replaced by ``***`` (names are kept, so a run can ask for them)."""
    params = {name: {**entry, "default": MASK} if looks_secret(name) and isinstance(entry, dict) else entry
              for name, entry in (doc.get("parameters") or {}).items()}
    steps = []
    for s in doc.get("steps") or []:
        s = dict(s)
        if s.get("environment_variables"):
            s["environment_variables"] = masked_variables(s["environment_variables"])
        env = s.get("environment")
        if isinstance(env, dict) and env.get("environment_variables"):
            s["environment"] = {**env, "environment_variables": masked_variables(env["environment_variables"])}
        steps.append(s)
    return {**doc, "parameters": params, "steps": steps}


def check_version(doc, what: str) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise UserError(f"{what} must be a mapping with a 'steps' list.")
    if isinstance(doc.get("version"), int) and doc["version"] > FORMAT_VERSION:
        raise UserError(f"{what} has format version {doc['version']}; this version of mlpipe-jupyter reads up to "
                        f"{FORMAT_VERSION}. Upgrade mlpipe-jupyter to load it.")


def write_document(doc: PipelineDocument, path, format=None) -> None:
    """Write a document (already relative to the file's folder, already for storage), atomically."""
    path = Path(path)
    fmt = format or ("json" if path.suffix == ".json" else "yaml")
    if fmt == "json":
        text = json.dumps(doc, indent=2)
    else:
        import yaml

        text = yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_document(path) -> dict:
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
