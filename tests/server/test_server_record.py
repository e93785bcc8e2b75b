"""A Jupyter server with the extension, started in a workspace, records where it is (and its token) as
``mlpipe serve`` does, and removes the record on shutdown only while it is still its own."""
import json
import stat

from helpers import start_jupyter_server

from mlpipe_jupyter import Pipeline, PythonScriptStep, Workspace


def test_jupyter_server_records_its_url_and_token_while_it_lives(tmp_path, write_scripts):
    ws = Workspace.create("lab", path=tmp_path / "ws")
    record, token_file = ws.folder / "server.json", ws.folder / "server.token"
    server = start_jupyter_server(ws, tmp_path)
    try:
        assert json.loads(record.read_text()) == {"url": server.url, "pid": server.proc.pid}
        assert token_file.read_text().strip() == server.token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

        write_scripts(ws.path / "src", {"hello.py": "print('hello')"})
        step = PythonScriptStep("hello.py", name="hello", source_directory=str(ws.path / "src"))
        published = Pipeline(ws, [step]).publish(name="lab-pipeline")
        assert published.endpoint == f"{server.url}mlpipe/api/pipelines/{published.id}"  # this server's
    finally:
        returncode = server.stop()
    assert returncode == 0, server.output.read_text()
    assert not record.exists() and not token_file.exists()


def test_without_a_token_none_is_written_and_a_stale_one_goes(tmp_path):
    ws = Workspace.create("lab", path=tmp_path / "ws")
    (ws.folder / "server.token").write_text("an older server's\n")
    server = start_jupyter_server(ws, tmp_path, token="")
    try:
        assert json.loads((ws.folder / "server.json").read_text())["pid"] == server.proc.pid
        assert not (ws.folder / "server.token").exists()
    finally:
        server.stop()


def test_a_record_another_server_took_over_is_left_alone(tmp_path):
    ws = Workspace.create("lab", path=tmp_path / "ws")
    server = start_jupyter_server(ws, tmp_path)
    try:
        other = {"url": "http://127.0.0.1:1/", "pid": server.proc.pid + 1}
        (ws.folder / "server.json").write_text(json.dumps(other))
    finally:
        server.stop()
    assert json.loads((ws.folder / "server.json").read_text()) == other


def test_outside_a_workspace_nothing_is_recorded(tmp_path):
    elsewhere = tmp_path / "no-workspace-here"
    elsewhere.mkdir()
    server = start_jupyter_server(None, tmp_path, cwd=elsewhere)
    try:
        assert server.get("openapi.json").status_code == 200
    finally:
        server.stop()
    assert list(elsewhere.iterdir()) == []
