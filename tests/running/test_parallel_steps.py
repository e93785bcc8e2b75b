"""Independent steps run at the same time, up to max_concurrency."""
import json

from helpers import run_pipeline
from mlpipe_jupyter import PythonScriptStep

RENDEZVOUS = '''
    """Records when it started, waits (bounded) until every other step has started, records its end."""
    import json, os, sys, time
    me, folder, others = sys.argv[1], sys.argv[2], sys.argv[3:]
    start = time.time()
    open(os.path.join(folder, me + ".started"), "w").close()
    for _ in range(400):
        if all(os.path.exists(os.path.join(folder, o + ".started")) for o in others):
            break
        time.sleep(0.02)
    time.sleep(0.05)
    json.dump({"start": start, "end": time.time()}, open(os.path.join(folder, me + ".json"), "w"))
'''

SHORT = '''
    import json, os, sys, time
    me, folder = sys.argv[1], sys.argv[2]
    start = time.time()
    time.sleep(0.1)
    json.dump({"start": start, "end": time.time()}, open(os.path.join(folder, me + ".json"), "w"))
'''


def spans(folder, names):
    return {n: json.loads((folder / f"{n}.json").read_text()) for n in names}


def overlap(a, b):
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_independent_steps_overlap(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"meet.py": RENDEZVOUS})
    names = ["a", "b"]
    steps = [PythonScriptStep("meet.py", name=n, source_directory=str(src),
                              arguments=[n, str(tmp_path), *[o for o in names if o != n]]) for n in names]
    run = run_pipeline(workspace, steps, max_concurrency=2)
    assert run.get_status() == "Completed"
    s = spans(tmp_path, names)
    assert overlap(s["a"], s["b"])


def test_max_concurrency_one_means_no_overlap(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"short.py": SHORT})
    names = ["a", "b", "c"]
    steps = [PythonScriptStep("short.py", name=n, source_directory=str(src), arguments=[n, str(tmp_path)])
             for n in names]
    run = run_pipeline(workspace, steps, max_concurrency=1)
    assert run.get_status() == "Completed"
    s = spans(tmp_path, names)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            assert not overlap(s[x], s[y]), (x, y, s)


def test_compute_target_max_concurrency_holds_across_runs(workspace, tmp_path, write_scripts):
    from helpers import WAIT_SECONDS, submit
    from mlpipe_jupyter import ComputeTarget, LocalCompute

    ComputeTarget.create(workspace, "one-at-a-time", LocalCompute.provisioning_configuration(max_concurrency=1))
    src = write_scripts(tmp_path / "src", {"short.py": SHORT})
    runs = [submit(workspace, [PythonScriptStep("short.py", name=n, source_directory=str(src),
                                                compute_target="one-at-a-time", arguments=[n, str(tmp_path)])
                               for n in group])
            for group in (["a", "b"], ["c", "d"])]
    for run in runs:
        run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
        assert run.get_status() == "Completed"
    names = ["a", "b", "c", "d"]
    s = spans(tmp_path, names)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            assert not overlap(s[x], s[y]), (x, y, s)
