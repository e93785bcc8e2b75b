"""Every demo notebook in binder/ runs headless, in a fresh venv installed the way Binder installs."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(900)  # the first run on a machine builds the venv, the front end included
def test_demo_notebooks_execute_without_errors():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "run_notebooks.py"), "--show"], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # what a user reads: the notebooks' outputs, not pip's lines, a kernel's warnings or a widget's repr
    for noise in ("Collecting ", "Downloading ", "Successfully installed", "WARNING", "VBox(children"):
        assert noise not in result.stdout + result.stderr, noise
    assert "What to try next:" in result.stdout
    notebooks = sorted(p.relative_to(REPO / "binder").as_posix() for p in (REPO / "binder").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    assert notebooks, "binder/ has no demo notebooks"
    assert "azureml-getting-started/getting_started.ipynb" in notebooks  # an Azure sample, unchanged
    for name in notebooks:
        assert f"PASS {name}" in result.stdout
