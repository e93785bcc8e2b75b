"""What a step script pays to start when it is written for Azure: ``from azureml.core import Run`` through
the compatibility layer, against ``from mlpipe_jupyter import Run`` and a bare interpreter.

Each command is a fresh process, as a step is, inside a run (``MLPIPE_RUN_DIR`` set, ``Run.get_context()``
called), with the step's PYTHONPATH (the package, then the layer's import folder). Bytecode is compiled
first, as an installed package has it. Median of ``--repeat`` runs each, the three commands interleaved.

    python benchmarks/azureml_import.py [--repeat 30]
"""
from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "mlpipe_jupyter" / "compat" / "root"
COMMANDS = {
    "bare interpreter": "pass",
    "mlpipe_jupyter Run": "from mlpipe_jupyter import Run; Run.get_context()",
    "azureml.core Run": "from azureml.core import Run; Run.get_context()",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    compileall.compile_dir(str(REPO / "mlpipe_jupyter"), quiet=1)
    with tempfile.TemporaryDirectory() as run_dir:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPATH=os.pathsep.join([str(REPO), str(LAYER)]), MLPIPE_RUN_DIR=run_dir)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.repeat):
            for name, code in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], env=env, check=True)
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["mlpipe_jupyter Run"])
    print(f"{'command':<22} {'median ms':>10} {'vs mlpipe_jupyter':>18}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<22} {median * 1000:>10.1f} {median / base:>17.2f}x")


if __name__ == "__main__":
    main()
