"""Everything that is wrong with a pipeline, found before anything runs, each naming its culprit."""
from __future__ import annotations

import math
import os
from collections import defaultdict

from mlpipe_jupyter.sdk.data import PipelineData
from mlpipe_jupyter.model.names import check_env_var_name, check_env_var_value, check_param_name, check_relative_script
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.errors import UserError


def find_cycle(nodes, edges) -> list | None:
    """One cycle as a list of nodes (first repeated at the end), or None. edges: node -> successors.

    Iterative, so a pipeline of thousands of chained steps does not hit Python's recursion limit."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in nodes}
    for root in nodes:
        if color[root] != WHITE:
            continue
        color[root] = GREY
        path = [root]
        stack = [iter(edges.get(root, ()))]
        while stack:
            for m in stack[-1]:
                if color.get(m, BLACK) == GREY:
                    return path[path.index(m):] + [m]
                if color.get(m) == WHITE:
                    color[m] = GREY
                    path.append(m)
                    stack.append(iter(edges.get(m, ())))
                    break
            else:
                color[path.pop()] = BLACK
                stack.pop()
    return None


def topological_order(nodes, edges) -> list:
    """Kahn's order, stable with respect to the given node order."""
    indeg = {n: 0 for n in nodes}
    for n in nodes:
        for m in edges.get(n, ()):
            indeg[m] += 1
    ready = [n for n in nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in edges.get(n, ()):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return order


def _problem(check, *args) -> str | None:
    """The message of a check from core/names.py, or None when the value passes."""
    try:
        check(*args)
    except UserError as e:
        return str(e)
    return None


def _duration_problem(value, where) -> str | None:
    """None (no limit) or a positive number of seconds; anything else would silently mean no limit."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                         and value > 0):
        return None
    return f"{where}: max_run_duration_seconds must be a positive number of seconds or None (got {value!r})."


def _variables_problems(variables, where, numbers) -> list[str]:
    if variables is None:
        return []
    if not isinstance(variables, dict):
        return [f"{where}: environment_variables must be a mapping of names to values (got {variables!r})."]
    found = []
    for name, value in variables.items():
        found.append(_problem(check_env_var_name, name, where) or
                     _problem(check_env_var_value, name, value, where, numbers))
    return found


def _settings_problems(step) -> list[str]:
    """Parameter names, environment variables and the time limit of one step: all reach its process."""
    where = f"Step '{step.name}'"
    rc = step.runconfig
    found = [_duration_problem(getattr(rc, "max_run_duration_seconds", None), where)]
    for key, value in step.params.items():
        found.append(_problem(check_param_name, key, f"{where}: parameter"))
        default = value.default_value if isinstance(value, PipelineParameter) else value
        if isinstance(default, str) and "\0" in default:
            found.append(f"{where}: parameter '{key}' has value {default!r}; a value cannot hold NUL characters.")
    # RunConfiguration's variables are turned into text by the planner; an Environment's are passed as they are
    found += _variables_problems(getattr(rc, "environment_variables", None),
                                 f"{where} (RunConfiguration.environment_variables)", True)
    env = getattr(rc, "environment", None)
    if env is not None:
        found += _variables_problems(getattr(env, "environment_variables", None),
                                     f"{where} (environment '{env.name}')", False)
    return [p for p in found if p]


def validate_pipeline(pipeline) -> list[str]:
    problems: list[str] = []
    steps = pipeline.steps
    if not steps:
        return ["The pipeline has no steps."]

    names = defaultdict(int)
    for s in steps:
        names[s.name] += 1
    for name, count in names.items():
        if count > 1:
            problems.append(f"{count} steps are named '{name}'; step names must be unique.")

    # producers: by object, and by data name (names key outputs in the run history)
    producers_by_name = defaultdict(list)
    for s in steps:
        for out in s.outputs:
            producers_by_name[out.name].append(s.name)
            for other in getattr(out, "_other_producers", []):
                if other.name not in producers_by_name[out.name]:
                    producers_by_name[out.name].append(other.name)
    for data_name, prods in producers_by_name.items():
        if len(prods) > 1:
            problems.append(f"Data '{data_name}' is written by {len(prods)} steps ({', '.join(sorted(prods))}); "
                            "each output must have exactly one producer.")

    producer = pipeline.producers()
    for s in steps:
        for input_name, data, _ in s.input_items():
            if isinstance(data, PipelineData) and id(data) not in producer:
                problems.append(f"Step '{s.name}' takes '{data.name}' as input '{input_name}', but no step "
                                f"produces '{data.name}' (a dangling data link).")
        in_names = [n for n, _, _ in s.input_items()]
        for dup in sorted({n for n in in_names if in_names.count(n) > 1}):
            problems.append(f"Step '{s.name}' has two inputs named '{dup}'.")

    for s in steps:
        problems += _settings_problems(s)
        script_problem = _problem(check_relative_script, s.script_name, f"Step '{s.name}'")
        if script_problem:
            problems.append(script_problem)
        elif not os.path.isdir(s.source_directory):
            problems.append(f"Step '{s.name}': source directory '{s.source_directory}' does not exist.")
        elif not os.path.isfile(os.path.join(s.source_directory, s.script_name)):
            problems.append(f"Step '{s.name}': script '{s.script_name}' not found in '{s.source_directory}'.")
        for hp in s.hash_paths:
            if not os.path.exists(os.path.join(s.source_directory, hp)):
                problems.append(f"Step '{s.name}': hash path '{hp}' not found in '{s.source_directory}'.")

    if pipeline.workspace is not None:
        known = pipeline.workspace.compute_targets
        for s in steps:
            if s.compute_target not in known:
                problems.append(f"Step '{s.name}' names compute target '{s.compute_target}', which the workspace "
                                f"does not have (known: {', '.join(sorted(known))}).")

    by_name = {s.name: s for s in steps}
    edges = {s.name: [] for s in steps}
    for s in steps:
        for up in pipeline.upstream(s, producer):
            edges[up.name].append(s.name)
    cycle = find_cycle(list(by_name), edges)
    if cycle:
        problems.append(f"The steps form a cycle: {' -> '.join(cycle)}.")
    return problems
