"""Datastores: local folders and fsspec file systems, uploads, downloads, escapes and secrets."""
import os
import uuid

import pytest

from mlpipe_jupyter import DataReference, Dataset, Datastore, OutputFileDatasetConfig, UserError, Workspace
from mlpipe_jupyter.errors import DatastorePathError


@pytest.fixture
def files(tmp_path):
    src = tmp_path / "src_files"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    return src


def _memory_url():
    return f"memory://bucket{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["local", "memory"])
def datastore(request, workspace, tmp_path):
    if request.param == "local":
        return Datastore.register_local(workspace, "store", tmp_path / "store")
    return Datastore.register_fsspec(workspace, "store", _memory_url())


def test_register_and_look_up(workspace, tmp_path):
    local = Datastore.register_local(workspace, "mine", tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()
    assert Datastore(workspace, "mine") == local and Datastore(workspace, "mine").is_local
    mem = Datastore.register_fsspec(workspace, "mem", _memory_url())
    assert not mem.is_local and mem.datastore_type == "fsspec"
    assert set(workspace.datastores) == {"workspaceblobstore", "workspacefilestore", "mine", "mem"}
    with pytest.raises(UserError, match="No datastore named 'nope'.*mine"):
        Datastore(workspace, "nope")


def test_registering_another_location_needs_overwrite(workspace, tmp_path):
    Datastore.register_local(workspace, "mine", tmp_path / "one")
    Datastore.register_local(workspace, "mine", tmp_path / "one")  # same location: fine
    with pytest.raises(UserError, match="overwrite=True"):
        Datastore.register_local(workspace, "mine", tmp_path / "two")
    moved = Datastore.register_local(workspace, "mine", tmp_path / "two", overwrite=True)
    assert moved.url == str(tmp_path / "two")


def test_upload_files_upload_and_download(datastore, files, tmp_path):
    ref = datastore.upload_files([files / "a.txt", files / "sub" / "b.txt"], relative_root=files,
                                 target_path="flat", show_progress=False)
    assert isinstance(ref, DataReference) and ref.path_on_datastore == "flat"
    assert datastore.exists("flat/a.txt") and datastore.exists("flat/sub/b.txt")
    datastore.upload(files, target_path="tree", show_progress=False)
    assert datastore.exists("tree/sub/b.txt")

    out = tmp_path / "down"
    assert datastore.download(out, prefix="tree", show_progress=False) == 2
    assert (out / "tree" / "a.txt").read_text() == "A"
    assert (out / "tree" / "sub" / "b.txt").read_text() == "B"
    assert datastore.download(out, prefix="missing", show_progress=False) == 0

    ref = datastore.path("tree/sub")
    assert isinstance(ref, DataReference) and ref.datastore == datastore and ref.path_on_datastore == "tree/sub"


def test_overwrite_false_keeps_existing_files(datastore, tmp_path, capsys):
    f = tmp_path / "v.txt"
    f.write_text("first")
    datastore.upload_files([f], target_path="v")
    f.write_text("second")
    datastore.upload_files([f], target_path="v", overwrite=False)
    assert "Skipping" in capsys.readouterr().out
    out = tmp_path / "out"
    datastore.download(out, prefix="v", show_progress=False)
    assert (out / "v" / "v.txt").read_text() == "first"

    datastore.upload_files([f], target_path="v", overwrite=True, show_progress=False)
    assert datastore.download(out, prefix="v", show_progress=False) == 0  # overwrite=False locally too
    assert (out / "v" / "v.txt").read_text() == "first"
    datastore.download(out, prefix="v", overwrite=True, show_progress=False)
    assert (out / "v" / "v.txt").read_text() == "second"


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "..", "C:/Windows"])
def test_escaping_paths_are_refused_when_described(datastore, bad):
    with pytest.raises(DatastorePathError) as e:
        DataReference(datastore, "ref", bad)
    assert "'store'" in str(e.value) and repr(bad) in str(e.value)
    for make in (lambda: datastore.path(bad),
                 lambda: Dataset.File.from_files((datastore, bad)),
                 lambda: Dataset.Tabular.from_delimited_files((datastore, bad)),
                 lambda: OutputFileDatasetConfig("o", destination=(datastore, bad))):
        with pytest.raises(DatastorePathError):
            make()


def test_symlink_out_of_a_local_datastore_is_refused(workspace, tmp_path):
    root = tmp_path / "store"
    ds = Datastore.register_local(workspace, "store", root)
    outside = tmp_path / "secret_dir"
    outside.mkdir()
    (outside / "f.txt").write_text("x")
    os.symlink(outside, root / "link")
    with pytest.raises(DatastorePathError) as e:
        DataReference(ds, "ref", "link/f.txt")
    assert "'store'" in str(e.value) and "link/f.txt" in str(e.value)
    (root / "inside").mkdir()
    os.symlink(root / "inside", root / "ok_link")
    DataReference(ds, "ref", "ok_link")  # a link that stays inside is fine


def test_upload_cannot_write_outside(datastore, files):
    with pytest.raises(DatastorePathError):
        datastore.upload_files([files / "a.txt"], target_path="../up", show_progress=False)
    with pytest.raises(DatastorePathError):
        datastore.upload(files, target_path="/abs", show_progress=False)


def test_secrets_stay_out_of_the_database(workspace):
    url = _memory_url()
    key, secret = "AKIAEXAMPLEKEY12345", "s3cr3t-VALUE-that-must-not-leak"
    nested = "nested-secret-token-0987"
    ds = Datastore.register_fsspec(workspace, "cloud", url, key=key, secret=secret, region="eu-west-1",
                                   client_kwargs={"aws_session_token": nested})
    ds.fs.pipe(ds.resolve("data/x.txt"), b"hello")

    blob = b"".join(p.read_bytes() for p in workspace.folder.iterdir() if p.name.startswith("mlpipe.db"))
    for value in (key, secret, nested):
        assert value.encode() not in blob
    assert b"eu-west-1" in blob  # plain options are kept

    same_process = Datastore(workspace, "cloud")
    assert same_process.fs.storage_options["secret"] == secret
    assert same_process.fs.cat(same_process.resolve("data/x.txt")) == b"hello"
    assert Workspace(workspace.path).datastores["cloud"].exists("data/x.txt")


def test_credentials_in_the_url_stay_out_of_the_database(workspace, monkeypatch):
    from mlpipe_jupyter.data import datastore as datastore_module

    url = f"{_memory_url()}?sv=2024&sig=SharedAccessSignature0123"
    ds = Datastore.register_fsspec(workspace, "sas", url)
    ds.fs.pipe(ds.resolve("f.txt"), b"sas data")
    assert "SharedAccessSignature0123" not in ds.url and "sig=***" in ds.url
    blob = b"".join(p.read_bytes() for p in workspace.folder.iterdir() if p.name.startswith("mlpipe.db"))
    assert b"SharedAccessSignature0123" not in blob
    assert Datastore(workspace, "sas").exists("f.txt")  # this process still has the credential

    monkeypatch.setattr(datastore_module, "_session_secrets", {})  # as a later process sees it
    with pytest.raises(UserError, match="credentials in its URL"):
        Datastore(workspace, "sas").exists("f.txt")
