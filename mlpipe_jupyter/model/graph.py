"""The graph of a pipeline document: which step writes which data, who feeds whom, cycles and order.

Every function is iterative and linear in the size of the document, so a pipeline of ten thousand
chained steps, in any order, costs no more than it must (the designer's "Run from", validation and
planning all go through here).
"""
from __future__ import annotations

from collections import deque

from mlpipe_jupyter.model.document import PipelineDocument, input_names, output_names


def step_names(doc: PipelineDocument) -> list[str]:
    return [s["name"] for s in doc.get("steps") or []]


def producers(doc: PipelineDocument) -> dict[str, str]:
    """data name -> the step that writes it (the first, when several do)."""
    out: dict[str, str] = {}
    for s in doc.get("steps") or []:
        for name in output_names(s):
            out.setdefault(name, s["name"])
    return out


def writers(doc: PipelineDocument) -> dict[str, list[str]]:
    """data name -> every step that writes it, in order."""
    out: dict[str, list[str]] = {}
    for s in doc.get("steps") or []:
        for name in output_names(s):
            if s["name"] not in out.setdefault(name, []):
                out[name].append(s["name"])
    return out


def upstream(doc: PipelineDocument) -> dict[str, list[str]]:
    """step -> the steps it waits for: those whose outputs it reads, in the order it names them, then
    those it runs after (``run_after``, an order with no data)."""
    prod = producers(doc)
    out = {}
    for s in doc.get("steps") or []:
        after = s.get("run_after") if isinstance(s.get("run_after"), list) else []  # else validation says so
        ups = [prod.get(name) for name in input_names(s)] + [a for a in after if isinstance(a, str)]
        out[s["name"]] = list(dict.fromkeys(p for p in ups if p is not None and p != s["name"]))
    return out


def downstream(doc: PipelineDocument, ups: dict | None = None) -> dict[str, list[str]]:
    """step -> the steps that read its outputs."""
    ups = upstream(doc) if ups is None else ups
    out: dict[str, list[str]] = {name: [] for name in ups}
    for name, parents in ups.items():
        for p in parents:
            out.setdefault(p, []).append(name)
    return out


def reachable(edges: dict[str, list[str]], start) -> set:
    """Every node reachable from ``start`` (a name or names) along ``edges``, not counting the start."""
    todo = deque([start] if isinstance(start, str) else start)
    seen: set = set()
    while todo:
        for nxt in edges.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def ancestors(doc: PipelineDocument, name: str) -> set:
    return reachable(upstream(doc), name)


def descendants(doc: PipelineDocument, name: str) -> set:
    return reachable(downstream(doc), name)


def find_cycle(nodes, edges) -> list | None:
    """One cycle as a list of nodes (first repeated at the end), or None. edges: node -> successors."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in nodes}
    for root in nodes:
        if color[root] != WHITE:
            continue
        color[root] = GREY
        path = [root]
        on_path = {root: 0}
        stack = [iter(edges.get(root, ()))]
        while stack:
            for m in stack[-1]:
                if color.get(m, BLACK) == GREY:
                    return path[on_path[m]:] + [m]
                if color.get(m) == WHITE:
                    color[m] = GREY
                    on_path[m] = len(path)
                    path.append(m)
                    stack.append(iter(edges.get(m, ())))
                    break
            else:
                done = path.pop()
                del on_path[done]
                color[done] = BLACK
                stack.pop()
    return None


def topological_order(nodes, edges) -> list:
    """Kahn's order, stable with respect to the given node order (nodes in a cycle are left out)."""
    indeg = {n: 0 for n in nodes}
    for n in nodes:
        for m in edges.get(n, ()):
            indeg[m] += 1
    ready = deque(n for n in nodes if indeg[n] == 0)
    order = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for m in edges.get(n, ()):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return order
