"""What a compute target can change about a result is part of the reuse key; its name is not."""
from mlpipe_jupyter import (ComputeTarget, DockerCompute, Experiment, LocalCompute, Pipeline, PythonScriptStep)
from mlpipe_jupyter.sdk.experiment import plan_with_backends
from mlpipe_jupyter.planning.reuse import diff_manifests, reuse_key


def _plan_manifest(workspace, src, target):
    step = PythonScriptStep("hello.py", name="hello", source_directory=str(src), compute_target=target)
    plan, _ = plan_with_backends(workspace, Pipeline(workspace, [step]).to_document(), check=False)
    return plan.steps["hello"].manifest({})


def test_target_kind_and_image_change_the_key_but_its_name_does_not(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.py").write_text("print('hello')\n")
    ComputeTarget.create(workspace, "local2", LocalCompute.provisioning_configuration(max_concurrency=1))
    ComputeTarget.create(workspace, "slim", DockerCompute.provisioning_configuration(image="mlpipe/base:bookworm"))
    ComputeTarget.create(workspace, "other", DockerCompute.provisioning_configuration(image="someone/else:1"))

    local, local2 = _plan_manifest(workspace, src, "local"), _plan_manifest(workspace, src, "local2")
    slim, other = _plan_manifest(workspace, src, "slim"), _plan_manifest(workspace, src, "other")
    assert reuse_key(local) == reuse_key(local2)
    assert len({reuse_key(local), reuse_key(slim), reuse_key(other)}) == 3
    reasons = diff_manifests(workspace._store, slim, other)
    assert reasons == ['the compute target changed from {"kind": "docker", "image": "mlpipe/base:bookworm"} '
                       'to {"kind": "docker", "image": "someone/else:1"}']


def test_a_step_moved_to_another_local_target_is_reused(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.py").write_text("print('hello')\n")
    ComputeTarget.create(workspace, "local2", LocalCompute.provisioning_configuration(max_concurrency=1))
    first = Experiment(workspace, "targets").submit(
        Pipeline(workspace, [PythonScriptStep("hello.py", name="hello", source_directory=str(src))]))
    first.wait_for_completion()
    second = Experiment(workspace, "targets").submit(Pipeline(workspace, [
        PythonScriptStep("hello.py", name="hello", source_directory=str(src), compute_target="local2")]))
    second.wait_for_completion()
    assert second.get_steps()[0].reused
