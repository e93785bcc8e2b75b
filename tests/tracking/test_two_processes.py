"""Two processes running pipelines in one workspace at the same time corrupt nothing."""
import sqlite3
import subprocess
import sys
import textwrap

from mlpipe_jupyter import Datastore, Run, Workspace

DRIVER = '''
import sys
from mlpipe_jupyter import (DataReference, Datastore, Experiment, Pipeline, PipelineData, PipelineParameter,
                            PythonScriptStep, Workspace)

ws = Workspace(sys.argv[1])
src, who = sys.argv[2], sys.argv[3]
remote = Datastore(ws, "remote")  # an fsspec datastore: both processes fetch it into the shared cache
runs = []
for i in range(3):
    shared = PipelineData("shared")
    mine = PipelineData("mine")
    common = PythonScriptStep("common.py", name="common", source_directory=src,
                              arguments=["--seed", DataReference(remote, "seed", "seed"), "--out", shared],
                              outputs=[shared])
    own = PythonScriptStep("own.py", name="own", source_directory=src,
                           arguments=["--inp", shared, "--out", mine, "--tag", PipelineParameter("tag", "x")],
                           inputs=[shared], outputs=[mine])
    run = Experiment(ws, f"exp_{who}").submit(Pipeline(ws, [own]), pipeline_parameters={"tag": f"{who}-{i % 2}"})
    runs.append(run)
for run in runs:
    run.wait_for_completion(raise_on_error=False)
    print(run.id, run.get_status(), flush=True)
'''

COMMON = '''
import argparse, os
from mlpipe_jupyter import Run
p = argparse.ArgumentParser(); p.add_argument("--seed"); p.add_argument("--out"); a = p.parse_args()
word = open(os.path.join(a.seed, "word.txt")).read()
for i in range(20):
    open(os.path.join(a.out, f"part{i}.txt"), "w").write(f"{word} {i}\\n" * 100)
Run.get_context().log("parts", 20)
'''

OWN = '''
import argparse, os
from mlpipe_jupyter import Run
p = argparse.ArgumentParser(); p.add_argument("--inp"); p.add_argument("--out"); p.add_argument("--tag")
a = p.parse_args()
n = len(os.listdir(a.inp))
open(os.path.join(a.out, "result.txt"), "w").write(f"{a.tag}:{n}")
run = Run.get_context()
for i in range(10):
    run.log("i", i)
'''


def test_two_processes_share_a_workspace(tmp_path):
    ws = Workspace.create("shared", path=tmp_path / "ws")
    seed = tmp_path / "remote" / "seed"
    seed.mkdir(parents=True)
    for i in range(50):
        (seed / f"pad{i}.txt").write_text("x" * 1000)
    (seed / "word.txt").write_text("shared")
    Datastore.register_fsspec(ws, "remote", f"file://{tmp_path / 'remote'}")
    src = tmp_path / "src"
    src.mkdir()
    (src / "common.py").write_text(textwrap.dedent(COMMON))
    (src / "own.py").write_text(textwrap.dedent(OWN))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)

    procs = [subprocess.Popen([sys.executable, str(driver), str(tmp_path / "ws"), str(src), who],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    lines = [line.split() for out, _ in outs for line in out.splitlines()]
    assert len(lines) == 6 and all(status == "Completed" for _, status in lines), outs

    db = sqlite3.connect(tmp_path / "ws" / ".mlpipe" / "mlpipe.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM runs WHERE status != 'Completed'").fetchone()[0] == 0
    db.close()

    ws = Workspace(tmp_path / "ws")
    ran_common = 0
    for run_id, _ in lines:
        run = Run.get(ws, run_id)
        who = run.experiment.name[-1]
        common = run.get_step("common")
        ran_common += not common.reused
        shared = common.get_output_data("shared").path
        assert sorted(p.name for p in shared.iterdir()) == sorted(f"part{i}.txt" for i in range(20))
        assert (shared / "part7.txt").read_text() == "shared 7\n" * 100
        assert common.get_metrics() == {"parts": 20}
        own = run.get_step("own")
        result = (own.get_output_data("mine").path / "result.txt").read_text()
        assert result in (f"{who}-0:20", f"{who}-1:20")
        assert own.get_metrics() == {"i": list(range(10))}
    assert 1 <= ran_common <= 6
    leftovers = list((tmp_path / "ws" / ".mlpipe" / "tmp").iterdir())
    assert leftovers == []
    cache = tmp_path / "ws" / ".mlpipe" / "cache" / "datastores" / "remote"
    assert [p.name for p in cache.iterdir() if "partial" in p.name] == []
    (fetched,) = cache.iterdir()
    assert len(list((fetched / "seed").iterdir())) == 51
