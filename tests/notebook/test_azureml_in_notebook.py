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
