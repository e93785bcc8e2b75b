"""The runs sidebar in real JupyterLab: a published pipeline triggered over REST shows up, follows its
run to Completed, opens to its steps, log and metrics, runs again from its Re-run button, and a
published pipeline is disabled from its toggle (checked over REST).

The step waits for a gate file the test creates, so "the sidebar shows it running" is a state the
test controls, not a race against a sleep.
"""
import textwrap

from playwright.sync_api import expect

from mlpipe_jupyter import Pipeline, PythonScriptStep, Workspace
from mlpipe_jupyter.errors import UserError

RUN_TIMEOUT = 90_000

SCRIPT = """
    import pathlib, sys, time
    from azureml.core import Run
    gate = pathlib.Path(sys.argv[1])
    deadline = time.monotonic() + 120
    while not gate.exists():
        if time.monotonic() > deadline:
            raise SystemExit('the test never opened the gate')
        time.sleep(0.2)
    print('hello from the sidebar step', 6 * 7, flush=True)
    Run.get_context().log('answer', 42)
"""


def test_runs_sidebar_follows_opens_reruns_and_toggles(lab, lab_server, tmp_path):
    try:  # the lab's folder may already be a workspace, made by a notebook another test ran there
        workspace = Workspace.from_config(lab_server.root)
    except UserError:
        workspace = Workspace.create("lab", path=lab_server.root)
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.py").write_text(textwrap.dedent(SCRIPT).lstrip())
    gate = tmp_path / "gate"
    step = PythonScriptStep("hello.py", name="hello", arguments=[str(gate)], source_directory=str(src),
                            allow_reuse=False)
    published = Pipeline(workspace, [step]).publish(name="sidebar-hello")
    other = Pipeline(workspace, [step]).publish(name="sidebar-other")
    run_id = lab_server.api(f"mlpipe/api/pipelines/{published.id}", "POST", {"ExperimentName": "sidebar"})["Id"]

    page = lab.page
    page.goto(f"{lab_server.url}lab?reset&token={lab_server.token}")
    page.locator('.jp-SideBar li[data-id="mlpipe-runs-sidebar"]').click()
    sidebar = page.locator("#mlpipe-runs-sidebar")
    row = sidebar.locator(f'.mlpipe-run-row[data-run-id="{run_id}"]')
    expect(row.locator(".mlpipe-run-status")).to_have_text("Running", timeout=RUN_TIMEOUT)
    expect(row.locator(".mlpipe-run-trigger")).to_have_text("rest")
    expect(sidebar.locator('.mlpipe-experiment[data-experiment="sidebar"] .mlpipe-experiment-name')) \
        .to_contain_text("sidebar (1)")
    lab.screenshot("runs-sidebar-running")

    gate.touch()
    expect(row.locator(".mlpipe-run-status")).to_have_text("Completed", timeout=RUN_TIMEOUT)
    row.click()
    details = sidebar.locator(".mlpipe-run-details")
    expect(details.locator(".mlpipe-run-title")).to_contain_text(run_id)
    step_row = details.locator('.mlpipe-run-step[data-step="hello"]')
    expect(step_row.locator(".mlpipe-run-status")).to_have_text("Completed")
    step_row.click()
    expect(details.locator(".mlpipe-step-log")).to_contain_text("hello from the sidebar step 42")
    expect(details.locator(".mlpipe-step-details .mlpipe-metrics")).to_contain_text("answer42")
    lab.screenshot("runs-sidebar-run")

    details.locator(".mlpipe-rerun").click()
    expect(sidebar.locator('.mlpipe-experiment[data-experiment="sidebar"] .mlpipe-run-row')).to_have_count(2)
    runs = lab_server.api("mlpipe/api/runs?experiment=sidebar")["Value"]
    assert [r["Id"] for r in runs][1] == run_id and runs[0]["TriggeredBy"] == "rest"
    rerun = sidebar.locator(f'.mlpipe-run-row[data-run-id="{runs[0]["Id"]}"]')
    expect(rerun.locator(".mlpipe-run-status")).to_have_text("Completed", timeout=RUN_TIMEOUT)

    toggled = sidebar.locator(f'.mlpipe-published-row[data-id="{other.id}"]')
    expect(toggled.locator(".mlpipe-published-status")).to_have_text("Active")
    toggled.locator(".mlpipe-toggle").click()
    expect(toggled.locator(".mlpipe-published-status")).to_have_text("Disabled")
    expect(toggled.locator(".mlpipe-toggle")).to_have_text("Enable")
    statuses = {p["Id"]: p["Status"] for p in lab_server.api("mlpipe/api/pipelines?active_only=false")["Value"]}
    assert statuses == {published.id: "Active", other.id: "Disabled"}
    lab.screenshot("runs-sidebar-published")
