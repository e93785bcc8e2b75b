"""A datastore on the local disk through fsspec (``file://``) keeps to its folder, symlinks included.

``register_local`` datastores always refused a symbolic link leading out of the folder; one registered
with ``register_fsspec("file://...")`` is the same folder reached another way, so it must refuse too.
"""
import os

import pytest
from fsspec.implementations.local import LocalFileSystem

from mlpipe_jupyter import DataReference, Datastore
from mlpipe_jupyter.errors import DatastorePathError


@pytest.fixture
def layout(tmp_path):
    """A datastore folder with a link ``link`` to a folder outside it, and a file to upload."""
    root, outside, src = tmp_path / "store", tmp_path / "outside", tmp_path / "src"
    for d in (root, outside, src):
        d.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, root / "link")
    (src / "a.txt").write_text("A")
    return root, outside, src


@pytest.fixture
def file_store(workspace, layout):
    root = layout[0]
    ds = Datastore.register_fsspec(workspace, "files", f"file://{root}")
    assert isinstance(ds.fs, LocalFileSystem) and not ds.is_local
    return ds


def _listing(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_upload_files_through_a_link_is_refused(file_store, layout):
    _, outside, src = layout
    before = _listing(outside)
    with pytest.raises(DatastorePathError) as e:
        file_store.upload_files([src / "a.txt"], target_path="link", show_progress=False)
    assert "'files'" in str(e.value) and "link/a.txt" in str(e.value)
    with pytest.raises(DatastorePathError):
        file_store.upload(src, target_path="link/sub", show_progress=False)
    assert _listing(outside) == before


def test_resolve_and_references_through_a_link_are_refused(file_store):
    with pytest.raises(DatastorePathError):
        file_store.resolve("link/secret.txt")
    with pytest.raises(DatastorePathError):
        DataReference(file_store, "ref", "link/secret.txt")


def test_download_does_not_follow_a_link_out(file_store, layout, tmp_path):
    root = layout[0]
    (root / "ok.txt").write_text("ok")
    with pytest.raises(DatastorePathError):
        file_store.download(tmp_path / "down", prefix="link", show_progress=False)
    # downloading the whole datastore must not bring back what the link points to either
    with pytest.raises(DatastorePathError):
        file_store.download(tmp_path / "all", show_progress=False)
    assert not (tmp_path / "all" / "link" / "secret.txt").exists()


def test_links_that_stay_inside_still_work(file_store, layout, tmp_path):
    root, _, src = layout
    (root / "inside").mkdir()
    os.symlink(root / "inside", root / "ok_link")
    file_store.upload_files([src / "a.txt"], target_path="ok_link", show_progress=False)
    assert (root / "inside" / "a.txt").read_text() == "A"
    os.unlink(root / "link")
    assert file_store.download(tmp_path / "down", show_progress=False) >= 1
