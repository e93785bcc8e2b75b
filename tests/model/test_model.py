"""The pipeline document, its graph, its validation and the designer's edits: pure functions on plain
data, tested without files, processes or a kernel."""
from __future__ import annotations

import pytest

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model import edits, graph, validation
from mlpipe_jupyter.model.document import input_items, input_names, new_document, output_names


def step(name, inputs=(), outputs=(), **extra):
    entry = {"name": name, "script": f"{name}.py", "source_directory": "/src", "arguments": [],
             "inputs": [{"data": d} for d in inputs], "outputs": [{"data": d} for d in outputs]}
    return {**entry, **extra}


def chain(n, reverse=False):
    steps = [step(f"s{i}", [f"d{i - 1}"] if i else [], [f"d{i}"]) for i in range(n)]
    data = {f"d{i}": {"kind": "pipeline_data", "is_directory": True} for i in range(n)}
    return new_document(steps[::-1] if reverse else steps, data)


def test_inputs_come_from_inputs_arguments_and_params_each_once():
    s = step("train", ["raw"], ["model"], arguments=["--data", {"data": "raw"}, "--out", {"data": "model"},
                                                      {"data": "extra", "as": "more", "mode": "download"}],
             params={"p": {"data": "third"}, "lr": {"param": "lr"}})
    doc = new_document([s], {"raw": {"kind": "data_reference", "datastore": "x", "mode": "download"}})
    assert input_items(s, doc["data"]) == [("raw", "raw", "download"), ("more", "extra", "download"),
                                           ("third", "third", "mount")]
    assert input_names(s) == ["raw", "extra", "third"] and output_names(s) == ["model"]


def test_graph_of_a_long_chain_in_reverse_order():
    doc = chain(10_000, reverse=True)
    assert graph.producers(doc)["d0"] == "s0"
    assert graph.upstream(doc)["s5"] == ["s4"] and graph.downstream(doc)["s5"] == ["s6"]
    assert len(graph.descendants(doc, "s0")) == 9_999 and len(graph.ancestors(doc, "s9999")) == 9_999
    order = graph.topological_order(graph.step_names(doc), graph.downstream(doc))
    assert order == [f"s{i}" for i in range(10_000)]
    assert graph.find_cycle(graph.step_names(doc), graph.downstream(doc)) is None
    assert validation.problems(doc) == []  # no RecursionError on a reversed chain


def test_find_cycle_and_order():
    assert graph.find_cycle(["a", "b", "c"], {"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]
    assert graph.find_cycle(["a"], {"a": ["a"]}) == ["a", "a"]
    assert graph.topological_order(["c", "a", "b"], {"a": ["b"]}) == ["c", "a", "b"]


def test_every_problem_of_a_document_at_once():
    doc = new_document([step("a", ["y"], ["x"]), step("b", ["x"], ["y"]), step("dup"), step("dup"),
                        step("c", ["nowhere"], ["x"]), step("d", ["x", "x"]),
                        step("bad/name"), step("e", script="../up.py"),
                        step("f", max_run_duration_seconds="soon", environment_variables={"A=B": "1"})],
                       {"nowhere": {"kind": "pipeline_data"}})
    problems = "\n".join(validation.problems(doc))
    for fragment in ("2 steps are named 'dup'", "Data 'x' is written by 2 steps (a, c)",
                     "Step 'c' takes 'nowhere' as input 'nowhere', but no step produces 'nowhere'",
                     "Step 'd' has two inputs named 'x'", "Step name 'bad/name' is not valid",
                     "script '../up.py' must be a relative path", "max_run_duration_seconds must be a positive number",
                     "environment variable name 'A=B' is not valid", "The steps form a cycle: a -> b -> a"):
        assert fragment in problems, fragment
    assert validation.problems(new_document()) == ["The pipeline has no steps."]


def test_edits_refuse_cycles_and_keep_the_document():
    doc = chain(3)
    linked, name = edits.link(doc, "s0", "s2")
    assert name == "s0_out" and "s0_out" in input_names(edits.find(linked, "s2"))
    assert "s0_out" not in input_names(edits.find(doc, "s2"))  # the argument is untouched
    with pytest.raises(UserError, match="cycle"):
        edits.link(doc, "s2", "s0")
    removed = edits.remove_step(doc, "s1")
    assert graph.step_names(removed) == ["s0", "s2"] and input_names(edits.find(removed, "s2")) == []
    subset = edits.subset(doc, "s1", onward=True)
    assert graph.step_names(subset) == ["s0", "s1", "s2"]
    assert [s.get("allow_reuse", True) for s in subset["steps"]] == [True, False, False]
    assert edits.dangling(edits.unlink(doc, "d0", "s1")) == []
