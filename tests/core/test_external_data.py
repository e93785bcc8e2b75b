"""Steps that read data from datastores and datasets, the dataset registry and output destinations."""
import json
import textwrap
import uuid

import pytest

from mlpipe_jupyter import (DataReference, Dataset, Datastore, Experiment, OutputFileDatasetConfig, Pipeline,
                            PipelineData, PipelineValidationError, PythonScriptStep, UserError)

READ_REF = """
import argparse, json, os
p = argparse.ArgumentParser(); p.add_argument("--inp"); p.add_argument("--out")
a = p.parse_args()
env = os.environ["AZUREML_DATAREFERENCE_raw"]
files = {}
for d, _, names in os.walk(a.inp):
    for n in names:
        full = os.path.join(d, n)
        files[os.path.relpath(full, a.inp)] = open(full).read()
json.dump({"arg": a.inp, "env": env, "files": files}, open(os.path.join(a.out, "seen.json"), "w"))
"""

READ_DATASET = """
import argparse, json, os
from mlpipe_jupyter import Run
p = argparse.ArgumentParser(); p.add_argument("--out")
a = p.parse_args()
run = Run.get_context()
raw = run.input_datasets["raw"]
if hasattr(raw, "to_pandas_dataframe"):
    df = raw.to_pandas_dataframe()
    seen = {"kind": "tabular", "columns": list(df.columns), "total": int(df["value"].sum()), "rows": len(df)}
    run.log("rows", len(df))
else:
    names = sorted(os.path.relpath(os.path.join(d, n), raw) for d, _, ns in os.walk(raw) for n in ns)
    seen = {"kind": "file", "path": str(raw), "names": names}
json.dump(seen, open(os.path.join(a.out, "seen.json"), "w"))
"""

WRITE_OUT = """
import argparse, os
p = argparse.ArgumentParser(); p.add_argument("--out")
a = p.parse_args()
os.makedirs(os.path.join(a.out, "part"), exist_ok=True)
open(os.path.join(a.out, "part", "result.txt"), "w").write("made by a step")
"""


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    for name, text in {"read_ref.py": READ_REF, "read_dataset.py": READ_DATASET, "write_out.py": WRITE_OUT}.items():
        (d / name).write_text(textwrap.dedent(text))
    return d


@pytest.fixture
def local_store(workspace, tmp_path):
    root = tmp_path / "external"
    (root / "data" / "more").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("alpha")
    (root / "data" / "more" / "b.txt").write_text("beta")
    (root / "table.csv").write_text("name,value\nx,1\ny,2\n")
    return Datastore.register_local(workspace, "external", root)


def _run(workspace, steps, **kw):
    run = Experiment(workspace, "data").submit(Pipeline(workspace, steps), **kw)
    run.wait_for_completion(show_output=False, raise_on_error=False)
    assert run.get_status() == "Completed", [(s.name, s.get_details().get("error")) for s in run.get_steps()]
    return run


def _seen(run, step="read", output="out"):
    step_run = run.get_step(step)
    return json.loads((step_run.get_output_data(output).path / "seen.json").read_text()), step_run


def _reader(src, ref, script="read_ref.py"):
    """A step named 'read': read_ref.py takes ``ref`` as --inp, read_dataset.py as a named input."""
    out = PipelineData("out")
    by_argument = script == "read_ref.py"
    args = (["--inp", ref] if by_argument else []) + ["--out", out]
    inputs = None if by_argument else [ref]
    return PythonScriptStep(script, name="read", source_directory=str(src), arguments=args, inputs=inputs,
                            outputs=[out])


def test_local_data_reference_by_argument_and_environment(workspace, src, local_store):
    ref = DataReference(local_store, "raw", "data")
    run = _run(workspace, [_reader(src, ref)])
    seen, step = _seen(run)
    assert seen["arg"] == seen["env"]
    assert seen["files"] == {"a.txt": "alpha", "more/b.txt": "beta"}
    assert not step.reused

    again = _run(workspace, [_reader(src, DataReference(local_store, "raw", "data"))])
    assert again.get_step("read").reused

    (local_store.local_path("data/a.txt")).write_text("ALPHA!")
    changed = _run(workspace, [_reader(src, DataReference(local_store, "raw", "data"))])
    step = changed.get_step("read")
    assert not step.reused
    assert "input 'raw' changed" in step.get_details()["reuse_reason"]
    assert _seen(changed)[0]["files"]["a.txt"] == "ALPHA!"


def test_memory_datastore_reference_is_downloaded(workspace, src, tmp_path):
    mem = Datastore.register_fsspec(workspace, "mem", f"memory://b{uuid.uuid4().hex[:8]}")
    mem.fs.pipe(mem.resolve("data/a.txt"), b"from memory")
    mem.fs.pipe(mem.resolve("data/sub/b.txt"), b"nested")
    run = _run(workspace, [_reader(src, DataReference(mem, "raw", "data"))])
    seen, _ = _seen(run)
    assert seen["files"] == {"a.txt": "from memory", "sub/b.txt": "nested"}
    assert seen["arg"].startswith(str(workspace.folder / "cache"))

    assert _run(workspace, [_reader(src, DataReference(mem, "raw", "data"))]).get_step("read").reused
    mem.fs.pipe(mem.resolve("data/a.txt"), b"changed in memory")
    changed = _run(workspace, [_reader(src, DataReference(mem, "raw", "data"))])
    assert not changed.get_step("read").reused
    assert "input 'raw'" in changed.get_step("read").get_details()["reuse_reason"]
    assert _seen(changed)[0]["files"]["a.txt"] == "changed in memory"


def test_file_dataset_as_named_input(workspace, src, local_store):
    ds = Dataset.File.from_files((local_store, "data"))
    run = _run(workspace, [_reader(src, ds.as_named_input("raw"), "read_dataset.py")])
    seen, _ = _seen(run)
    assert seen == {"kind": "file", "path": str(local_store.local_path("data")), "names": ["a.txt", "more/b.txt"]}


def test_tabular_dataset_as_named_input_and_change_detection(workspace, src, local_store):
    def step():
        table = Dataset.Tabular.from_delimited_files((local_store, "table.csv"))
        return _reader(src, table.as_named_input("raw"), "read_dataset.py")

    run = _run(workspace, [step()])
    seen, step_run = _seen(run)
    assert seen == {"kind": "tabular", "columns": ["name", "value"], "total": 3, "rows": 2}
    assert step_run.get_metrics() == {"rows": 2}
    assert _run(workspace, [step()]).get_step("read").reused

    local_store.local_path("table.csv").write_text("name,value\nx,1\ny,2\nz,10\n")
    changed = _run(workspace, [step()])
    reason = changed.get_step("read").get_details()["reuse_reason"]
    assert reason.startswith("Rerun") and "input 'raw'" in reason
    assert _seen(changed)[0]["total"] == 13


def test_missing_external_path_fails_before_anything_runs(workspace, src, local_store):
    ref = DataReference(local_store, "raw", "no/such/dir")
    with pytest.raises(PipelineValidationError) as e:
        Experiment(workspace, "data").submit(Pipeline(workspace, [_reader(src, ref)]))
    msg = str(e.value)
    assert "'raw'" in msg and "no/such/dir" in msg and "'external'" in msg
    assert workspace._store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0

    mem = Datastore.register_fsspec(workspace, "mem", f"memory://b{uuid.uuid4().hex[:8]}")
    with pytest.raises(PipelineValidationError, match="'missing.csv'.*'mem'"):
        table = Dataset.Tabular.from_delimited_files((mem, "missing.csv"))
        Experiment(workspace, "data").submit(Pipeline(workspace, [_reader(src, table.as_named_input("raw"),
                                                                          "read_dataset.py")]))


def test_dataset_registry_versions(workspace, local_store):
    first = Dataset.File.from_files((local_store, "data")).register(workspace, "raw_files")
    assert (first.name, first.version) == ("raw_files", 1)
    same = Dataset.File.from_files((local_store, "data")).register(workspace, "raw_files")
    assert same.version == 1  # same definition: same version
    other = Dataset.File.from_files((local_store, "data/more"))
    with pytest.raises(UserError, match="create_new_version"):
        other.register(workspace, "raw_files")
    second = other.register(workspace, "raw_files", create_new_version=True, description="only more")
    assert second.version == 2

    assert Dataset.get_by_name(workspace, "raw_files").version == 2
    assert Dataset.get_by_name(workspace, "raw_files", version=None).version == 2
    assert Dataset.get_by_name(workspace, "raw_files", version="latest").version == 2
    v1 = Dataset.get_by_name(workspace, "raw_files", version=1)
    assert v1.version == 1 and v1.to_path() == ["a.txt", "more/b.txt"]
    assert Dataset.get_by_name(workspace, "raw_files", version="2").to_path() == ["b.txt"]
    assert Dataset.get_by_name(workspace, "raw_files", 2).description == "only more"
    assert set(workspace.datasets) == {"raw_files"}

    table = Dataset.Tabular.from_delimited_files((local_store, "table.csv")).register(workspace, "table")
    assert Dataset.get_by_name(workspace, "table").to_pandas_dataframe()["value"].tolist() == [1, 2]
    assert table.version == 1

    with pytest.raises(UserError) as e:
        Dataset.get_by_name(workspace, "nope")
    assert "'nope'" in str(e.value) and "raw_files" in str(e.value)
    with pytest.raises(UserError, match="'raw_files' has no version 7 \\(versions: 1, 2\\)"):
        Dataset.get_by_name(workspace, "raw_files", version=7)
    with pytest.raises(UserError, match="version"):
        Dataset.get_by_name(workspace, "raw_files", version="newest")


def test_registered_dataset_as_step_input(workspace, src, local_store):
    Dataset.File.from_files((local_store, "data")).register(workspace, "raw_files")
    ds = Dataset.get_by_name(workspace, "raw_files")
    run = _run(workspace, [_reader(src, ds.as_named_input("raw"), "read_dataset.py")])
    assert _seen(run)[0]["names"] == ["a.txt", "more/b.txt"]


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_output_destination_and_register_on_complete(workspace, src, tmp_path, kind):
    if kind == "local":
        dest_store = Datastore.register_local(workspace, "results", tmp_path / "results")
    else:
        dest_store = Datastore.register_fsspec(workspace, "results", f"memory://r{uuid.uuid4().hex[:8]}")
    out = OutputFileDatasetConfig("model", destination=(dest_store, "out/{run-id}")).register_on_complete("models")
    step = PythonScriptStep("write_out.py", name="write", source_directory=str(src), arguments=["--out", out],
                            outputs=[out])
    run = _run(workspace, [step])
    step_run = run.get_step("write")
    assert dest_store.exists(f"out/{step_run.id}/part/result.txt")
    fetched = tmp_path / "fetched"
    dest_store.download(fetched, prefix=f"out/{step_run.id}", show_progress=False)
    assert (fetched / "out" / step_run.id / "part" / "result.txt").read_text() == "made by a step"

    registered = Dataset.get_by_name(workspace, "models")
    assert registered.version == 1 and registered.to_path() == ["part/result.txt"]


def test_dataset_from_several_paths(workspace, src, local_store):
    mem = Datastore.register_fsspec(workspace, "mem", f"memory://b{uuid.uuid4().hex[:8]}")
    mem.fs.pipe(mem.resolve("extra/c.txt"), b"gamma")
    ds = Dataset.File.from_files([(local_store, "data/a.txt"), (mem, "extra")])
    run = _run(workspace, [_reader(src, ds.as_named_input("raw"), "read_dataset.py")])
    names = _seen(run)[0]["names"]
    assert len(names) == 2 and names[0].endswith("a.txt") and names[1].endswith("extra/c.txt")
    leftovers = [p.name for p in (workspace.folder / "cache").rglob("*") if ".partial" in p.name]
    assert leftovers == []


def test_download_mode_and_single_file_reference(workspace, src, local_store, tmp_path):
    (src / "read_file.py").write_text(textwrap.dedent("""
        import argparse, json, os
        p = argparse.ArgumentParser(); p.add_argument("--inp"); p.add_argument("--out")
        a = p.parse_args()
        json.dump({"path": a.inp, "text": open(a.inp).read()}, open(os.path.join(a.out, "seen.json"), "w"))
    """))
    ref = DataReference(local_store, "raw", "data/a.txt").as_download()
    out = PipelineData("out")
    step = PythonScriptStep("read_file.py", name="read", source_directory=str(src), arguments=["--inp", ref, "--out", out],
                            outputs=[out])
    seen, _ = _seen(_run(workspace, [step]))
    assert seen["text"] == "alpha"
    assert not seen["path"].startswith(str(local_store.local_path("")))  # a private copy, not the original

    mem = Datastore.register_fsspec(workspace, "mem", f"memory://b{uuid.uuid4().hex[:8]}")
    mem.fs.pipe(mem.resolve("one.txt"), b"single")
    out = PipelineData("out")
    step = PythonScriptStep("read_file.py", name="read", source_directory=str(src),
                            arguments=["--inp", DataReference(mem, "raw", "one.txt"), "--out", out], outputs=[out])
    assert _seen(_run(workspace, [step]))[0]["text"] == "single"


def test_local_path_dataset_and_registration_without_destination(workspace, src, tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    (folder / "f.txt").write_text("loose file")
    ds = Dataset.File.from_files(str(folder))
    seen, _ = _seen(_run(workspace, [_reader(src, ds.as_named_input("raw"), "read_dataset.py")]))
    assert seen["path"] == str(folder) and seen["names"] == ["f.txt"]

    out = OutputFileDatasetConfig("made").register_on_complete("made_ds")
    step = PythonScriptStep("write_out.py", name="write", source_directory=str(src), arguments=["--out", out],
                            outputs=[out])
    _run(workspace, [step])
    registered = Dataset.get_by_name(workspace, "made_ds")
    assert registered.to_path() == ["part/result.txt"]
    assert registered.sources[0]["datastore"] == workspace.get_default_datastore().name


def test_datasets_read_outside_a_pipeline(workspace, local_store, tmp_path):
    table = Dataset.Tabular.from_delimited_files((local_store, "table.csv"))
    assert table.to_pandas_dataframe()["value"].tolist() == [1, 2]
    files = Dataset.File.from_files((local_store, "data"))
    assert files.to_path() == ["a.txt", "more/b.txt"]
    written = files.download(tmp_path / "dl")
    assert sorted(written) == [str(tmp_path / "dl" / "a.txt"), str(tmp_path / "dl" / "more" / "b.txt")]
    with pytest.raises(UserError, match="overwrite=True"):
        files.download(tmp_path / "dl")
    with files.mount() as mounted:
        assert str(tmp_path / "external" / "data") == str(mounted.mount_point)
    mem = Datastore.register_fsspec(workspace, "mem", f"memory://b{uuid.uuid4().hex[:8]}")
    mem.fs.pipe(mem.resolve("t.csv"), b"a,b\n5,6\n")
    assert Dataset.Tabular.from_delimited_files((mem, "t.csv")).to_pandas_dataframe()["b"].tolist() == [6]
