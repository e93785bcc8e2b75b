"""Time to take a step's 64 MiB line without a newline, against the same script run bare.

The step writes 64 MiB to stdout in 1 MiB pieces and never a newline. "bare" runs the script with its
output to a file (``subprocess.run([python, script], stdout=file)``); "mlpipe" submits it as a
one-step pipeline through the API and waits for the run to end (log file written, events cut to
32 KiB). Median of ``--repeat`` runs each.

    python benchmarks/long_line.py [--mib 64] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace  # noqa: E402

SCRIPT = """\
import sys
chunk = b"x" * (1 << 20)
for _ in range(int(sys.argv[1])):
    sys.stdout.buffer.write(chunk)
sys.stdout.buffer.flush()
"""


def bare(script: Path, mib: int, out: Path) -> float:
    start = time.perf_counter()
    with open(out, "wb") as f:
        subprocess.run([sys.executable, str(script), str(mib)], stdout=f, check=True)
    return time.perf_counter() - start


def through_mlpipe(ws, src: Path, mib: int) -> float:
    step = PythonScriptStep("line.py", source_directory=str(src), arguments=[mib], allow_reuse=False)
    start = time.perf_counter()
    run = Experiment(ws, "long-line").submit(Pipeline(ws, [step]))
    run.wait_for_completion()
    elapsed = time.perf_counter() - start
    log = ws._store.run_dir(run.get_steps()[0].id) / "logs" / "std_log.txt"
    assert log.stat().st_size == mib << 20, "the log must keep every byte"
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlpipe-long-line-") as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        (src / "line.py").write_text(SCRIPT)
        ws = Workspace.create("bench", path=tmp / "ws")
        bare_times = [bare(src / "line.py", args.mib, tmp / "out.bin") for _ in range(args.repeat)]
        ours = [through_mlpipe(ws, src, args.mib) for _ in range(args.repeat)]
    b, m = statistics.median(bare_times), statistics.median(ours)
    print(f"{args.mib} MiB on one line, median of {args.repeat}")
    print(f"{'how':<28}{'seconds':>10}{'x bare':>9}")
    print(f"{'bare (output to a file)':<28}{b:>10.3f}{1:>9.2f}")
    print(f"{'mlpipe (one-step pipeline)':<28}{m:>10.3f}{m / b:>9.2f}")


if __name__ == "__main__":
    main()
