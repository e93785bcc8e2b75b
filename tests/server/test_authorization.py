"""Jupyter Server's authorizer decides who may do what with the API: here one that lets users read but not
start runs or change anything, set in a real ``jupyter server``'s own config file."""
import textwrap

from helpers import start_jupyter_server

from mlpipe_jupyter import Pipeline, PythonScriptStep, Workspace

READ_ONLY = """
from jupyter_server.auth import Authorizer

class ReadOnly(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return resource != "mlpipe" or action == "read"

c.ServerApp.authorizer_class = ReadOnly
"""


def test_an_authorizer_that_allows_reading_only_refuses_triggers_and_changes(tmp_path):
    workspace = Workspace.create("guarded", path=tmp_path / "ws")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text("print('hello')\n")
    published = Pipeline(workspace, [PythonScriptStep("hello.py", source_directory=str(tmp_path / "src"))]
                         ).publish(name="hello")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "jupyter_server_config.py").write_text(textwrap.dedent(READ_ONLY))
    server = start_jupyter_server(workspace, tmp_path)
    try:
        listed = server.get("pipelines")
        assert listed.status_code == 200 and [p["Id"] for p in listed.json()["Value"]] == [published.id]
        for path in (f"pipelines/{published.id}", f"pipelines/{published.id}/disable"):
            answer = server.post(path, json={"ExperimentName": "guarded"})
            assert answer.status_code == 403, (path, answer.text)
            message = answer.json()["error"]["message"]
            assert "not authorized" in message and "mlpipe" in message and "authorizer" in message, message
        assert workspace._store.list_runs() == []
        assert published.__class__.get(workspace, published.id).status == "Active"
    finally:
        server.stop()
