"""Every field of the reuse key has its own explanation of a miss: one test per kind of change, on
manifests as the planner makes them, without running anything."""
from mlpipe_jupyter.planning.reuse import diff_manifests, explain_miss, reuse_key
from mlpipe_jupyter.planning.snapshot import take_snapshot


def manifest(**changes):
    base = {"snapshot": "s1", "script": "train.py", "arguments": ["--lr", "<param:lr>"], "parameters": {"lr": 0.1},
            "env_vars": {"MODE": "fast", "AML_PARAMETER_lr": "0.1"}, "inputs": {"data": "d1"}, "outputs": ["model"],
            "hash_paths": {}, "environment": "e1", "compute": {"kind": "local"},
            "interpreter": "/usr/bin/python3.11 in /venv"}
    base.update(changes)
    return base


def test_a_changed_file_is_named(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print(1)\n")
    (src / "util.py").write_text("X = 1\n")
    old = take_snapshot(workspace._store, src)
    (src / "util.py").write_text("X = 2\n")
    (src / "new.py").write_text("\n")
    new = take_snapshot(workspace._store, src)
    reasons = diff_manifests(workspace._store, manifest(snapshot=old.digest), manifest(snapshot=new.digest))
    assert reasons == ["source files changed 'util.py'; added 'new.py'"]


def test_a_parameter_with_its_old_and_new_value(workspace):
    reasons = diff_manifests(workspace._store, manifest(),
                             manifest(parameters={"lr": 0.05}, env_vars={"MODE": "fast", "AML_PARAMETER_lr": "0.05"}))
    assert reasons == ["parameter 'lr' changed from 0.1 to 0.05"]  # once, not again as its variable


def test_an_input(workspace):
    reasons = diff_manifests(workspace._store, manifest(), manifest(inputs={"data": "d2"}))
    assert reasons == ["input 'data' changed (its content fingerprint differs)"]
    assert diff_manifests(workspace._store, manifest(), manifest(inputs={})) == ["input 'data' was removed"]


def test_the_environment_and_the_interpreter(workspace):
    assert diff_manifests(workspace._store, manifest(), manifest(environment="e2")) == ["the environment changed"]
    reasons = diff_manifests(workspace._store, manifest(),
                             manifest(environment="e2", interpreter="/usr/bin/python3.12 in /venv2"))
    assert reasons == ["the Python interpreter changed from /usr/bin/python3.11 in /venv to /usr/bin/python3.12 in /venv2"]


def test_an_environment_variable_and_a_secret_one(workspace):
    reasons = diff_manifests(workspace._store, manifest(), manifest(env_vars={"MODE": "slow", "AML_PARAMETER_lr": "0.1"}))
    assert reasons == ['environment variable \'MODE\' changed from "fast" to "slow"']
    secret = diff_manifests(workspace._store, manifest(env_vars={"API_TOKEN": "hmac-sha256:aa"}),
                            manifest(env_vars={"API_TOKEN": "hmac-sha256:bb"}))
    assert secret == ["environment variable 'API_TOKEN' changed (a secret: values not shown)"]


def test_script_arguments_outputs_and_compute(workspace):
    store = workspace._store
    assert diff_manifests(store, manifest(), manifest(script="fit.py")) == \
        ["the script changed from 'train.py' to 'fit.py'"]
    assert "the arguments changed" in diff_manifests(store, manifest(), manifest(arguments=["--x"]))[0]
    assert "the outputs changed" in diff_manifests(store, manifest(), manifest(outputs=["model", "report"]))[0]
    assert "the compute target changed" in diff_manifests(store, manifest(), manifest(compute={"kind": "docker"}))[0]


def test_a_miss_with_nothing_changed_says_why(workspace):
    previous = {"id": "step_1", "status": "Failed", "details": {"manifest": manifest()}}
    assert "ended Failed; only completed runs are reused" in explain_miss(workspace._store, previous, manifest())
    assert reuse_key(manifest()) != reuse_key(manifest(parameters={"lr": 0.2}))
