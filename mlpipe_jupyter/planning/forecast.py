"""Which steps a submit would rerun now, and why, without running anything: the designer marks them.

The runner decides reuse step by step as upstream outputs appear (reuse.decide). Before a run, a
step's inputs are known only where they come from outside or from a step that would itself be
reused (its outputs are those of the run it reuses); a step fed by a step that reruns is said to
rerun too. The key and the reason of a miss are the runner's own (reuse_key, explain_miss). Read
only: committed outputs are checked for presence, never repaired or discarded.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlpipe_jupyter.planning.planner import Plan
from mlpipe_jupyter.planning.reuse import explain_miss, reuse_key


@dataclass
class Forecast:
    reused: bool
    reason: str


def forecast(store, plan: Plan, experiment: str) -> dict[str, Forecast]:
    """step name -> whether a submit now would reuse it, and the reason in words (plan order)."""
    out: dict[str, Forecast] = {}
    outputs: dict[str, dict] = {}  # outputs of the steps that would be reused
    for name, sp in plan.steps.items():
        fingerprints, fresh = {}, []
        for inp in sp.inputs:
            if inp.external is not None:
                fingerprints[inp.name] = inp.external.fingerprint
            elif inp.output in outputs.get(inp.upstream, {}):
                fingerprints[inp.name] = outputs[inp.upstream][inp.output]
            elif inp.upstream not in fresh:
                fresh.append(inp.upstream)
        if fresh:
            which = ", ".join(f"'{u}'" for u in fresh)
            out[name] = Forecast(False, f"Rerun: upstream step{'s' if len(fresh) > 1 else ''} {which} will rerun, "
                                        "so its input will be new.")
            continue
        if not sp.allow_reuse:
            out[name] = Forecast(False, f"Rerun: step '{name}' has allow_reuse=False.")
            continue
        manifest = sp.manifest(fingerprints)
        hit = store.find_reusable(reuse_key(manifest))
        if hit is not None:
            made = store.get_outputs(hit["id"])
            if all(store.data_path(d).exists() for d in made.values()):
                outputs[name] = made
                out[name] = Forecast(True, f"Reused: nothing changed since step run {hit['reused_from'] or hit['id']}.")
                continue
        previous = store.latest_step_run(name, experiment)
        out[name] = Forecast(False, "Rerun: " + explain_miss(store, previous, manifest))
    return out
