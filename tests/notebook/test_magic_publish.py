"""``%pipeline publish``: the notebook's pipeline published, with its id, REST endpoint and a curl example
that works as printed once a server runs (the token read from its file, never shown)."""
from __future__ import annotations

import json
import re
import subprocess

from IPython.core.error import UsageError

from helpers import WAIT_SECONDS, start_mlpipe_serve
from mlpipe_jupyter import PublishedPipeline, Run, Workspace
from nbhelpers import PREP, TRAIN, by_tag, errors, stream, write_helper

BAD = [
    ("%pipeline publish", "%pipeline publish: the following arguments are required: name"),
    ("%pipeline publish nightly --bogus", "%pipeline publish: unrecognized arguments: --bogus"),
    ("%pipeline publish ''", "%pipeline publish: NAME is empty"),
    ("%pipeline publish nightly --version ' '", "%pipeline publish: --version is empty"),
    ("%pipeline publish nightly --description", "%pipeline publish: argument --description: expected one argument"),
    ("%pipeline publish nightly", "The pipeline has no steps yet"),
]


def test_bad_arguments_are_one_short_usage_error(ip):
    for source, expected in BAD:
        error = ip.run_error(source)
        assert isinstance(error, UsageError), f"{source!r} raised {error!r}"
        assert expected in str(error), f"{source!r}: expected {expected!r} in {str(error)!r}"
        assert len(str(error).strip().splitlines()) <= 3, f"{source!r}: not short: {error}"
    assert PublishedPipeline.list(Workspace.from_config()) == []  # the shell works in its workspace


def test_publish_prints_a_curl_example_that_runs_it(ip, tmp_path, capsys):
    write_helper(tmp_path)
    for cell in (PREP, TRAIN):
        ip.run(cell.strip())
    ws = Workspace(tmp_path)

    first = ip.run("%pipeline publish nightly --description 'every night' --version 2")
    out = capsys.readouterr().out
    assert (first.name, first.description, first.version) == ("nightly", "every night", "2")
    assert f"Published pipeline 'nightly' (id {first.id})." in out
    assert "No server runs for this workspace yet" in out and f"mlpipe serve --workspace {tmp_path}" in out

    server = start_mlpipe_serve(ws, tmp_path / "server")
    try:
        published = ip.run("%pipeline publish nightly")
        out = capsys.readouterr().out
        assert f"REST endpoint: {server.url}mlpipe/api/pipelines/{published.id}" in out
        assert "No server runs" not in out and server.token not in out
        curl, = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("curl ")]
        assert f"$(cat {ws.folder / 'server.token'})" in curl
        body = json.loads(re.search(r"-d '(.*)'$", curl).group(1))
        assert body == {"ExperimentName": "notebook", "ParameterAssignments": {"n": 3}}  # the defaults

        answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
        assert answer.returncode == 0, answer.stderr
        run = Run.get(ws, json.loads(answer.stdout)["Id"])
        run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
        assert run.get_status() == "Completed", run._row["error"]
        assert run.get_properties()["mlpipe.triggeredBy"] == "rest"
        assert run.get_properties()["azureml.pipelineid"] == published.id
    finally:
        server.stop()


def test_publish_in_a_real_kernel(notebook, tmp_path):
    write_helper(tmp_path)
    nb = notebook(["%load_ext mlpipe_jupyter", PREP, TRAIN, "# publish\np = %pipeline publish from-notebook",
                   "# bad\n%pipeline publish from-notebook --verbose"], allow_errors=True)
    published, = PublishedPipeline.list(Workspace(tmp_path))
    text = stream(by_tag(nb, "# publish"))
    assert f"Published pipeline 'from-notebook' (id {published.id})." in text
    assert f"REST endpoint: {published.endpoint}" in text and "curl -X POST" in text
    bad = by_tag(nb, "# bad")
    assert "UsageError: %pipeline publish: unrecognized arguments: --verbose" in stream(bad, "stderr")
    assert not errors(bad)  # one line, no traceback
