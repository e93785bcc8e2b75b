"""`%load_ext mlpipe_jupyter` turns on the azureml import paths in a notebook."""
from __future__ import annotations

import sys

from mlpipe_jupyter import compat


def test_load_ext_enables_the_layer_in_a_notebook(ip, monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != compat.IMPORT_ROOT])
    for name in [m for m in sys.modules if m == "azureml" or m.startswith("azureml.")]:
        monkeypatch.delitem(sys.modules, name)
    import mlpipe_jupyter

    mlpipe_jupyter.load_ipython_extension(ip)
    ip.run("from azureml.core import Experiment as E\nimport mlpipe_jupyter\nassert E is mlpipe_jupyter.Experiment")


def test_run_details_shows_the_live_monitor_in_a_kernel(tmp_path):
    """An Azure notebook's `RunDetails(run).show()`, unchanged: in a real kernel it displays the monitor."""
    from nbhelpers import errors, execute, make_notebook

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text("from azureml.core import Run\nRun.get_context().log('x', 1)\n")
    path = tmp_path / "details.ipynb"
    make_notebook(path, [
        "%load_ext mlpipe_jupyter",
        """
        from azureml.core import Workspace, Experiment
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep
        from azureml.widgets import RunDetails
        ws = Workspace.from_config()
        run = Experiment(ws, "details").submit(Pipeline(ws, [PythonScriptStep("hello.py", source_directory="src")]))
        details = RunDetails(run)
        details.show()
        run.wait_for_completion()
        """,
        "print(type(details.monitor).__name__, sorted(details.monitor.rows), run.get_status())",
    ])
    nb = execute(path)
    assert not any(errors(c) for c in nb.cells)
    shown = [o for o in nb.cells[1].outputs if o.output_type == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]["data"]
    assert nb.cells[2].outputs[0].text.strip() == "RunMonitor ['hello.py'] Completed"
