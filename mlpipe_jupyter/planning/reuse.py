"""Reuse keys and their explanations: is this step's earlier result still right, and if not, why not.

A step's manifest lists everything that can change its result: the whole snapshot of its source
directory, its script, arguments and parameter values, the content fingerprint of every input and
its environment. The reuse key is a hash of that manifest. When a key misses, the manifest is
compared with the same step's previous run to say what changed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from mlpipe_jupyter.secrets import looks_secret
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.store import canonical_json, sha256_bytes

KEY_VERSION = 1


# Variables that choose how a step's process starts, never what it computes: left out of the reuse key.
START_SETTING = "MLPIPE_WARM_START"

def reuse_key(manifest: dict) -> str:
    return sha256_bytes(canonical_json({"v": KEY_VERSION, **manifest}))


@dataclass
class Decision:
    key: str
    reuse_from: dict | None  # the completed run row to reuse, or None to run
    reason: str


def decide(store, step_name: str, manifest: dict, experiment: str, allow_reuse: bool, regenerate: bool) -> Decision:
    key = reuse_key(manifest)
    if regenerate:
        return Decision(key, None, "Rerun: regenerate_outputs=True was given at submit.")
    if not allow_reuse:
        return Decision(key, None, f"Rerun: step '{step_name}' has allow_reuse=False.")
    hit = store.find_reusable(key)
    if hit is not None:
        origin = hit["reused_from"] or hit["id"]
        problem = _outputs_problem(store, hit)
        if problem:
            return Decision(key, None, f"Rerun: the outputs of the earlier identical step run {origin} {problem}.")
        return Decision(key, hit, f"Reused: nothing changed since step run {origin} "
                                  f"(snapshot, arguments, parameters, inputs and environment all match).")
    previous = store.latest_step_run(step_name, experiment)
    return Decision(key, None, "Rerun: " + explain_miss(store, previous, manifest))


def _outputs_problem(store, run: dict) -> str | None:
    """Why a run's committed outputs cannot be reused (gone, or changed since their commit), or None.
    A changed output is taken out of use, so no later step reads it either."""
    for name, digest in store.get_outputs(run["id"]).items():
        if not store.data_path(digest).exists():
            return "are no longer in the workspace"
        changes = store.data_changes(digest)
        if changes:
            store.discard_data(digest)
            return (f"were changed after they were committed (output '{name}': "
                    f"{', '.join(repr(c) for c in changes[:3])}{' ...' if len(changes) > 3 else ''}); it was removed")
    return None


def explain_miss(store, previous: dict | None, manifest: dict) -> str:
    if previous is None:
        return "no earlier run of this step to reuse."
    old = previous["details"].get("manifest")
    if not old:
        return f"the earlier run {previous['id']} recorded no manifest."
    changes = diff_manifests(store, old, manifest)
    if not changes:
        if previous["status"] != Status.COMPLETED:
            return (f"the earlier run {previous['id']} with the same inputs ended {previous['status']}; "
                    "only completed runs are reused.")
        return f"the earlier completed run {previous['id']} is no longer available."
    return "; ".join(changes) + f" (compared with step run {previous['id']})."


def _fmt(v):
    text = json.dumps(v, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def diff_manifests(store, old: dict, new: dict) -> list[str]:
    out = []
    if old.get("snapshot") != new.get("snapshot"):
        out.append(_snapshot_changes(store, old.get("snapshot"), new.get("snapshot")))
    if old.get("script") != new.get("script"):
        out.append(f"the script changed from {old.get('script')!r} to {new.get('script')!r}")
    if old.get("arguments") != new.get("arguments"):
        out.append(f"the arguments changed from {_fmt(old.get('arguments'))} to {_fmt(new.get('arguments'))}")
    op, np_ = old.get("parameters", {}), new.get("parameters", {})
    out += _changed_values("parameter", op, np_)
    oi, ni = old.get("inputs", {}), new.get("inputs", {})
    for name in sorted(set(oi) | set(ni)):
        if name not in oi:
            out.append(f"input '{name}' was added")
        elif name not in ni:
            out.append(f"input '{name}' was removed")
        elif oi[name] != ni[name]:
            out.append(f"input '{name}' changed (its content fingerprint differs)")
    if old.get("outputs") != new.get("outputs"):
        out.append(f"the outputs changed from {_fmt(old.get('outputs'))} to {_fmt(new.get('outputs'))}")
    said = {f"AML_PARAMETER_{name}" for name in set(op) | set(np_)}  # said as the parameter's change
    out += _changed_values("environment variable", old.get("env_vars", {}), new.get("env_vars", {}), said)
    out += _changed_values("the environment's variable", old.get("environment_secrets", {}),
                           new.get("environment_secrets", {}))
    if old.get("hash_paths") != new.get("hash_paths"):
        out.append("a file named in hash_paths changed")
    if old.get("interpreter") != new.get("interpreter") and old.get("interpreter") and new.get("interpreter"):
        out.append(f"the Python interpreter changed from {old['interpreter']} to {new['interpreter']}")
    elif old.get("environment") != new.get("environment"):
        out.append("the environment changed")
    if old.get("distributed") != new.get("distributed"):
        out.append(f"the distributed setting changed from {_fmt(old.get('distributed') or 'one process')} to "
                   f"{_fmt(new.get('distributed') or 'one process')}")
    if old.get("compute") != new.get("compute"):
        out.append(f"the compute target changed from {_fmt(old.get('compute'))} to {_fmt(new.get('compute'))}")
    return [c for c in out if c]


def _changed_values(what: str, old: dict, new: dict, skip=()) -> list[str]:
    """"<what> 'name' changed from a to b" for each name whose value differs; a secret's values unsaid."""
    out = []
    for name in sorted((set(old) | set(new)) - set(skip)):
        before, after = old.get(name, "<unset>"), new.get(name, "<unset>")
        if before == after:
            continue
        if looks_secret(name):
            out.append(f"{what} '{name}' changed (a secret: values not shown)")
        else:
            out.append(f"{what} '{name}' changed from {_fmt(before)} to {_fmt(after)}")
    return out


def _snapshot_changes(store, old_digest, new_digest) -> str:
    try:
        old = store.get_json(old_digest)["files"]
        new = store.get_json(new_digest)["files"]
    except (OSError, KeyError, TypeError, ValueError):
        return "the source directory snapshot changed"
    changed = sorted(f for f in set(old) & set(new) if old[f] != new[f])
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    parts = []
    for label, files in (("changed", changed), ("added", added), ("removed", removed)):
        if files:
            shown = ", ".join(f"'{f}'" for f in files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            parts.append(f"{label} {shown}")
    return "source files " + "; ".join(parts) if parts else "the source directory snapshot changed"
