"""`mlpipe logs` streams a log of any size: it runs in an address space far smaller than the log."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import WAIT_SECONDS
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
CLI = [sys.executable, "-m", "mlpipe_jupyter.cli"]
BIG_LINES = 300_000  # 1000-byte lines: a 300 MB log
MARGIN = 64 << 20  # what the command may use beyond its baseline; far less than the log
# Runs the command in this process and reports its peak address space, to calibrate the limit.
PEAK = """\
import sys
from mlpipe_jupyter.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
peak = next(line for line in open("/proc/self/status") if line.startswith("VmPeak:"))
sys.stderr.write(str(int(peak.split()[1]) * 1024))
sys.exit(code)
"""


def big_line(i: int) -> bytes:
    return b"%07d " % i + b"z" * 991 + b"\n"


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A finished one-step pipeline run whose log was then grown to 300 MB (last line unterminated)."""
    root = tmp_path_factory.mktemp("bigws")
    ws = Workspace.create("big", path=root)
    src = root / "src"
    src.mkdir()
    (src / "talk.py").write_text("print('first line')\n")
    step = PythonScriptStep("talk.py", name="talk", source_directory=str(src))
    run = Experiment(ws, "big").submit(Pipeline(ws, [step]))
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    step = run.get_steps()[0]
    log = ws._store.run_dir(step.id) / "logs" / "std_log.txt"
    assert log.read_bytes() == b"first line\n"
    limit = max(_peak(root, "runs"), _peak(root, "logs", run.id)) + MARGIN
    assert limit < BIG_LINES * 1000 // 2
    with open(log, "ab") as f:
        for i in range(0, BIG_LINES, 1000):
            f.write(b"".join(big_line(j) for j in range(i, i + 1000)))
        f.write(b"last line")
    return {"root": root, "run": run.id, "log": log, "limit": limit}


def _peak(root, *args) -> int:
    r = subprocess.run([sys.executable, "-c", PEAK, *args], cwd=root, env=ENV, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stderr.decode().strip().splitlines()[-1])


def limited_logs(big, tmp_path, *args):
    """`mlpipe logs ...` under the address-space limit, stdout in a file; returns (result, that file)."""
    out = tmp_path / "out.txt"
    limit = big["limit"]

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    with open(out, "wb") as f:
        r = subprocess.run([*CLI, "logs", *args], cwd=big["root"], env=ENV, stdout=f, stderr=subprocess.PIPE,
                           preexec_fn=cap, timeout=300)
    return r, out


def head_and_tail(path, n=4000):
    with open(path, "rb") as f:
        head = f.read(n)
        f.seek(max(0, os.path.getsize(path) - n))
        return head, f.read()


@pytest.mark.parametrize("follow", [False, True])
def test_a_300_mb_log_prints_in_a_small_address_space_with_step_prefixes(big, tmp_path, follow):
    r, out = limited_logs(big, tmp_path, big["run"], *(["--follow"] if follow else []))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    prefix = b"[talk] "
    assert os.path.getsize(out) == (len(prefix) * (BIG_LINES + 2) + len(b"first line\n")
                                    + BIG_LINES * 1000 + len(b"last line\n"))
    head, tail = head_and_tail(out)
    assert head.startswith(b"[talk] first line\n[talk] " + big_line(0) + b"[talk] " + big_line(1))
    assert tail.endswith(b"[talk] " + big_line(BIG_LINES - 1) + b"[talk] last line\n")


def test_one_step_of_a_300_mb_log_prints_unprefixed(big, tmp_path):
    r, out = limited_logs(big, tmp_path, big["run"], "--step", "talk")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert os.path.getsize(out) == os.path.getsize(big["log"]) + 1  # the unterminated last line gets its newline
    head, tail = head_and_tail(out)
    assert head.startswith(b"first line\n" + big_line(0))
    assert tail.endswith(big_line(BIG_LINES - 1) + b"last line\n")


def test_piping_into_head_stops_quietly(big):
    proc = subprocess.Popen([*CLI, "logs", big["run"]], cwd=big["root"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"[talk] first line\n"
    proc.stdout.close()
    proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert "Traceback" not in err and "Error" not in err


def test_a_line_longer_than_a_chunk_keeps_one_prefix(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "wide.py").write_text("print('short')\nprint('w' * 3_000_000)\nprint('after')\n")
    step = PythonScriptStep("wide.py", name="wide", source_directory=str(src))
    run = Experiment(workspace, "wide").submit(Pipeline(workspace, [step]))
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    r = subprocess.run([*CLI, "logs", run.id], cwd=workspace.path, env=ENV, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"[wide] short\n[wide] " + b"w" * 3_000_000 + b"\n[wide] after\n"
