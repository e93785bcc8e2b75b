"""Creating, opening and finding workspaces."""
import pytest

from mlpipe_jupyter import UserError, Workspace
from mlpipe_jupyter.errors import WorkspaceNotFoundError


def test_create_then_open_by_path(tmp_path):
    ws = Workspace.create("alpha", path=tmp_path)
    assert ws.name == "alpha"
    assert (tmp_path / ".mlpipe" / "config.json").is_file()
    again = Workspace(tmp_path)
    assert again == ws and again.name == "alpha"


def test_create_refuses_existing_workspace_unless_exist_ok(tmp_path):
    Workspace.create("alpha", path=tmp_path)
    with pytest.raises(UserError) as e:
        Workspace.create("alpha", path=tmp_path)
    assert "already exists" in str(e.value) and str(tmp_path) in str(e.value) and "exist_ok" in str(e.value)
    assert Workspace.create("alpha", path=tmp_path, exist_ok=True).name == "alpha"
    with pytest.raises(UserError, match="named 'alpha'"):
        Workspace.create("beta", path=tmp_path, exist_ok=True)


def test_from_config_walks_up_from_a_nested_folder(tmp_path, monkeypatch):
    Workspace.create("alpha", path=tmp_path)
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    ws = Workspace.from_config()
    assert ws.name == "alpha" and ws.path == tmp_path.resolve()
    assert Workspace.from_config(path=nested).path == tmp_path.resolve()


def test_clear_errors_when_there_is_no_workspace(tmp_path, monkeypatch):
    empty = tmp_path / "nothing" / "here"
    empty.mkdir(parents=True)
    monkeypatch.chdir(empty)
    with pytest.raises(WorkspaceNotFoundError) as e:
        Workspace.from_config()
    assert str(empty) in str(e.value) and "Workspace.create" in str(e.value)
    with pytest.raises(WorkspaceNotFoundError) as e:
        Workspace(empty)
    assert str(empty) in str(e.value)


def test_default_datastore_is_workspaceblobstore(workspace, tmp_path):
    from mlpipe_jupyter import Datastore

    default = workspace.get_default_datastore()
    assert default.name == "workspaceblobstore" and default.is_local
    assert default.local_path("").is_dir() and default.local_path("").is_relative_to(workspace.folder)
    assert "workspaceblobstore" in workspace.datastores
    assert Datastore(workspace) == default == Datastore.get_default(workspace)
    other = Datastore.register_local(workspace, "other", tmp_path / "other")
    workspace.set_default_datastore("other")
    assert Datastore(workspace) == other == Workspace(workspace.path).get_default_datastore()
    with pytest.raises(UserError, match="'nope'"):
        workspace.set_default_datastore("nope")


def test_damaged_config_is_a_clear_error(tmp_path):
    Workspace.create("alpha", path=tmp_path)
    (tmp_path / ".mlpipe" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="damaged"):
        Workspace(tmp_path)
    with pytest.raises(UserError, match="damaged"):
        Workspace.create("alpha", path=tmp_path, exist_ok=True)


def test_two_handles_see_the_same_history(tmp_path):
    one = Workspace.create("alpha", path=tmp_path)
    two = Workspace(tmp_path)
    one._store.ensure_experiment("e1")
    assert "e1" in two.experiments
