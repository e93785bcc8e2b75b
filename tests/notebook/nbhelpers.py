"""Helpers for notebook tests: notebooks built with nbformat and executed by nbclient in a real IPython kernel."""
from __future__ import annotations

import textwrap
from pathlib import Path

import nbclient
import nbformat
from nbformat.v4 import new_code_cell, new_notebook


def make_notebook(path: Path, cells: list[str]):
    nb = new_notebook(cells=[new_code_cell(textwrap.dedent(c).strip("\n")) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return nb


def execute(path: Path, allow_errors=False):
    """Run the notebook file in a kernel whose working folder is the notebook's; returns the executed notebook."""
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def stream(cell, name="stdout") -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def errors(cell) -> list:
    return [o for o in cell.outputs if o.output_type == "error"]


def by_tag(nb, marker: str):
    """The cell whose source starts with ``marker`` (a ``# comment`` or magic line)."""
    found = [c for c in nb.cells if c.source.startswith(marker)]
    assert len(found) == 1, f"{len(found)} cells start with {marker!r}"
    return found[0]


def last_json(cell):
    """The JSON document a report cell printed on its last line."""
    import json

    lines = [ln for ln in stream(cell).splitlines() if ln.strip()]
    assert lines, f"cell printed nothing; outputs: {cell.outputs}"
    return json.loads(lines[-1])


# Cells shared by the tests: prep -> train -> evaluate, with a parameter and an import from the notebook folder.
PREP = '''
%%step prep --outputs data --param n=3
import os
import helper
with open(os.path.join(outputs["data"], "numbers.txt"), "w") as f:
    f.write(",".join(str(i) for i in range(params["n"])))
print("prep wrote", params["n"], helper.GREETING)
'''
TRAIN = '''
%%step train --inputs data --outputs model
import os
numbers = open(os.path.join(inputs["data"], "numbers.txt")).read().split(",")
for i, _ in enumerate(numbers):
    run.log("loss", 1.0 / (i + 1))
with open(os.path.join(outputs["model"], "model.txt"), "w") as f:
    f.write(str(len(numbers)))
print("trained on", len(numbers))
'''
EVALUATE = '''
%%step evaluate --inputs model
import os
print("model size", open(os.path.join(inputs["model"], "model.txt")).read())
run.log("accuracy", 0.9)
'''


def report(var: str, marker: str) -> str:
    """A cell printing, for run ``var``: stored status per step ('reused' when reused) and the monitor's words."""
    return f'''
# {marker}
import json
from mlpipe_jupyter.notebook.monitor import monitors_for
_m = monitors_for({var}.id)[-1]
print(json.dumps({{"store": {{s.name: ("reused" if s.reused else s.get_status()) for s in {var}.get_steps()}},
                  "monitor": _m.statuses(),
                  "logs": {{n: v.log.value for n, v in _m.rows.items()}},
                  "metrics": {{n: v.metrics_panel.scalars for n, v in _m.rows.items()}},
                  "charts": {{n: list(v.metrics_panel.chart_of) for n, v in _m.rows.items()}},
                  "reasons": {{s.name: s.get_details()["reuse_reason"] for s in {var}.get_steps()}}}}))
'''


def write_helper(folder, greeting="hello"):
    (folder / "helper.py").write_text(f"GREETING = {greeting!r}\n")
