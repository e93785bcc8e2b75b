"""A property-based run of the REST API from the OpenAPI document it serves, against a real ``mlpipe serve``
with its token: no 5xx, and every answer's status code, content type and body as the document says. The
document is read from the server, so a route added later is fuzzed too. The workspace has one published
pipeline, with a random id the fuzzer does not guess, so the run starts no pipelines."""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from mlpipe_jupyter import Pipeline, PythonScriptStep, Workspace

from helpers import start_mlpipe_serve

EXAMPLES = 25  # per operation and mode: the whole run stays well under a minute


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    ws = Workspace.create("fuzz", path=tmp / "ws")
    (tmp / "src").mkdir()
    (tmp / "src" / "hello.py").write_text("print('hello')\n")
    Pipeline(ws, [PythonScriptStep("hello.py", source_directory=str(tmp / "src"))]).publish(name="hello")
    server = start_mlpipe_serve(ws, tmp)
    yield server
    server.stop()


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_the_api_answers_as_its_openapi_document_says(fuzzed_server, mode):
    auth = {"Authorization": f"token {fuzzed_server.token}"}
    api = schemathesis.openapi.from_url(f"{fuzzed_server.url}mlpipe/api/openapi.json", headers=auth)
    failures, operations, calls = [], 0, []
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_as_documented(case):
            calls.append(operation.label)
            case.call_and_validate(base_url=fuzzed_server.url.rstrip("/"), headers=auth, timeout=30,
                                   checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                           response_schema_conformance])

        try:
            answers_as_documented()
        except Exception as e:  # noqa: BLE001 - every operation is fuzzed, then all failures are reported
            failures.append(f"{operation.label}: {e}")
        assert fuzzed_server.proc.poll() is None, f"the server died fuzzing {operation.label}"
    assert operations >= 11 and len(calls) >= operations * 3  # examples really ran, against every operation
    assert not failures, "\n\n".join(failures)
    assert fuzzed_server.workspace._store.list_runs() == []  # nothing it sent started a pipeline
