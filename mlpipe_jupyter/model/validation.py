"""What is wrong with a pipeline document on its own, every problem at once, each naming its culprit.

These checks need nothing but the document (no files, no workspace): names, links, settings and
cycles. The planner adds what needs the machine (scripts that exist, known compute targets), and
the designer refuses an edit whose result has a problem here.
"""
from __future__ import annotations

import math
from collections import Counter

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model import graph
from mlpipe_jupyter.model.document import PRODUCED_KINDS, PipelineDocument, data_ref, input_items
from mlpipe_jupyter.model.names import (check_data_name, check_env_var_name, check_env_var_value, check_param_name,
                                        check_relative_script, check_step_name)


def _problem(check, *args) -> str | None:
    """The message of a name check, or None when the value passes."""
    try:
        check(*args)
    except UserError as e:
        return str(e)
    return None


def is_relative_script(script) -> bool:
    return _problem(check_relative_script, script, "") is None


def duration_problem(value, where) -> str | None:
    """None (no limit) or a positive number of seconds; anything else would silently mean no limit."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                         and value > 0):
        return None
    return f"{where}: max_run_duration_seconds must be a positive number of seconds or None (got {value!r})."


DISTRIBUTED_KINDS = ("pytorch", "mpi")


def distributed_problem(entry, where) -> str | None:
    """A step's ``distributed`` entry: a known kind and whole numbers of processes and nodes."""
    if entry is None:
        return None
    if not isinstance(entry, dict) or entry.get("kind") not in DISTRIBUTED_KINDS:
        return (f"{where}: distributed must be a mapping with kind 'pytorch' or 'mpi', process_count_per_node "
                f"and node_count (got {entry!r}).")
    for key in ("process_count_per_node", "node_count"):
        value = entry.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
            return f"{where}: distributed {key} must be a whole number from 1 to 1024 (got {value!r})."
    return None


def variables_problems(variables, where, numbers) -> list[str]:
    if variables is None:
        return []
    if not isinstance(variables, dict):
        return [f"{where}: environment_variables must be a mapping of names to values (got {variables!r})."]
    found = []
    for name, value in variables.items():
        found.append(_problem(check_env_var_name, name, where) or
                     _problem(check_env_var_value, name, value, where, numbers))
    return [p for p in found if p]


def step_problems(doc: PipelineDocument, step: dict) -> list[str]:
    """The name, script, parameters, environment variables and time limit of one step."""
    where = f"Step '{step.get('name')}'"
    found = [_problem(check_step_name, step.get("name")),
             _problem(check_relative_script, step.get("script"), where),
             duration_problem(step.get("max_run_duration_seconds"), where),
             distributed_problem(step.get("distributed"), where)]
    parameters = doc.get("parameters") or {}
    for key, value in (step.get("params") or {}).items():
        found.append(_problem(check_param_name, key, f"{where}: parameter"))
        default = (parameters.get(value["param"]) or {}).get("default") if isinstance(value, dict) and "param" in value \
            else value
        if isinstance(default, str) and "\0" in default:
            found.append(f"{where}: parameter '{key}' has value {default!r}; a value cannot hold NUL characters.")
    # RunConfiguration's variables are turned into text by the planner; an Environment's are passed as they are
    found += variables_problems(step.get("environment_variables"), f"{where} (RunConfiguration.environment_variables)",
                                True)
    env = step.get("environment")
    if isinstance(env, dict):
        found += variables_problems(env.get("environment_variables"), f"{where} (environment '{env.get('name')}')",
                                    False)
    return [p for p in found if p]


def problems(doc: PipelineDocument) -> list[str]:
    """Every problem of the document, in a stable order; empty when it can be planned."""
    steps = doc.get("steps") or []
    if not steps:
        return ["The pipeline has no steps."]
    data = doc.get("data") or {}
    found: list[str] = []
    for name, count in Counter(s.get("name") for s in steps).items():
        if count > 1:  # a name keys a step's runs, logs and reuse history here (Azure keys them by node id)
            found.append(f"{count} steps are named '{name}'; step names must be unique within a pipeline, "
                         "so give each its own name.")
    names = set(graph.step_names(doc))
    for s in steps:
        after = s.get("run_after") or []
        if not isinstance(after, list):
            found.append(f"Step '{s.get('name')}': run_after must be a list of step names (got {after!r}).")
            continue
        for other in after:
            if other == s.get("name"):
                found.append(f"Step '{other}' cannot run after itself.")
            elif not isinstance(other, str) or other not in names:
                found.append(f"Step '{s.get('name')}' runs after {other!r}, which is not a step of this pipeline.")
    for name in data:
        p = _problem(check_data_name, "Data", name)
        if p:
            found.append(p)
    for data_name, writers in graph.writers(doc).items():
        if len(writers) > 1:
            found.append(f"Data '{data_name}' is written by {len(writers)} steps ({', '.join(sorted(writers))}); "
                         "each output must have exactly one producer.")
    producers = graph.producers(doc)
    for s in steps:
        for as_name, name, _ in input_items(s, data):
            produced = name not in data or (data.get(name) or {}).get("kind") in PRODUCED_KINDS
            if produced and name not in producers:
                found.append(f"Step '{s['name']}' takes '{name}' as input '{as_name}', but no step produces "
                             f"'{name}' (a dangling data link).")
        declared = Counter((i.get("as") or data_ref(i)) for i in s.get("inputs") or [] if data_ref(i))
        for dup in sorted(n for n, c in declared.items() if c > 1):
            found.append(f"Step '{s['name']}' has two inputs named '{dup}'.")
    for s in steps:
        found += step_problems(doc, s)
    cycle = graph.find_cycle(graph.step_names(doc), graph.downstream(doc))
    if cycle:
        found.append(f"The steps form a cycle: {' -> '.join(cycle)}.")
    return found
