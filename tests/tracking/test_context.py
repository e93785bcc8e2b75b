"""Run.get_context() in a script started outside any run: an offline run that prints."""
import subprocess
import sys

import pytest

from mlpipe_jupyter.sdk import context

SCRIPT = """
from mlpipe_jupyter import Run
run = Run.get_context()
print("id", run.id)
run.log("acc", 0.9)
run.log("acc", 0.95)
run.log_list("xs", [1, 2])
run.log_row("table", a=1, b=2)
run.tag("k", "v")
run.upload_file("x.txt", __file__)
print("metrics", sorted(run.get_metrics()))
print("datasets", run.input_datasets)
print("parent", run.parent)
"""


@pytest.fixture
def offline(monkeypatch):
    for var in ("MLPIPE_RUN_DIR", "AZUREML_RUN_ID", "MLPIPE_INPUT_DATASETS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(context, "_context", None)


def test_offline_run_in_a_plain_script(tmp_path, offline):
    script = tmp_path / "plain.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "id OfflineRun_" in out
    assert "Attempted to log scalar metric acc" in out and "0.95" in out
    assert "metrics ['acc', 'table', 'xs']" in out
    assert "datasets {}" in out and "parent None" in out
    assert list(tmp_path.iterdir()) == [script]  # nothing written next to the script


def test_offline_run_in_this_process(offline, capsys):
    from mlpipe_jupyter import Run

    run = Run.get_context()
    assert Run.get_context() is run
    assert repr(run).endswith("Type: OfflineRun)")
    run.log("loss", 0.5)
    assert "Attempted to log scalar metric loss" in capsys.readouterr().out
    assert run.get_metrics() == {"loss": 0.5}
    assert run.get_metrics("other") == {}
    with pytest.raises(RuntimeError, match="outside a run"):
        Run.get_context(allow_offline=False)
