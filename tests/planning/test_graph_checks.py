"""Graph checks on big and small pipelines, without running anything."""
from mlpipe_jupyter import Pipeline, PipelineData, PythonScriptStep
from mlpipe_jupyter.model.graph import find_cycle


def test_find_cycle():
    assert find_cycle(["a", "b", "c"], {"a": ["b"], "b": ["c"]}) is None
    assert find_cycle(["a", "b", "c"], {"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]
    assert find_cycle(["a"], {"a": ["a"]}) == ["a", "a"]
    assert find_cycle(["a", "b", "c", "d"], {"a": ["b", "c"], "b": ["d"], "c": ["d"]}) is None


def test_a_long_chain_validates(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"s.py": "pass\n"})
    steps, previous = [], None
    for i in range(1500):
        out = PipelineData(f"d{i}")
        steps.append(PythonScriptStep("s.py", name=f"s{i}", source_directory=str(src), outputs=[out],
                                      inputs=[previous] if previous is not None else []))
        previous = out
    assert Pipeline(workspace, [steps[-1]]).validate() == []
