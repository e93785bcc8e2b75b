"""The run monitor as a finished table in real JupyterLab: column headers, status icons, the reason on every
row, a small live graph, one error per failed step naming the user's cell, a quiet not-run row, a log pane
that can pause following and open the whole log, and the actions of a finished run.

Steps that must stay running wait for a gate file the test creates, so "running" is a state the test
controls, not a race against a sleep.
"""
import re

from playwright.sync_api import expect

from helpers import write_notebook

RUN_TIMEOUT = 90_000
RED = "rgb(198, 40, 40)"  # #c62828, the failed colour


def failing_notebook() -> list[str]:
    return [
        "%load_ext mlpipe_jupyter",
        "%%step make --outputs numbers\n"
        "import os\n"
        "open(os.path.join(outputs['numbers'], 'n.txt'), 'w').write('1 2 3')\n"
        "print('made numbers')",
        "%%step boom --inputs numbers --outputs result\n"
        "print('about to fail', flush=True)\n"
        "values = [1, 2, 3]\n"
        "total = sum(values)\n"
        "ratio = total / 0\n",
        "%%step after --inputs result\nprint('never')",
        "run = %pipeline submit --experiment table",
    ]


def test_a_failed_run_reads_as_a_table(lab, lab_server):
    write_notebook(lab_server.root, "table.ipynb", failing_notebook())
    lab.open("table.ipynb")
    lab.run_all()
    monitor = lab.output(4).locator(".mlpipe-monitor")
    expect(monitor.locator(".mlpipe-run-status")).to_contain_text("failed", timeout=RUN_TIMEOUT)

    header = monitor.locator(".mlpipe-step-header")
    expect(header).to_be_visible()
    assert [t.strip() for t in header.locator(".widget-html-content").all_inner_texts() if t.strip()] == [
        "Step", "Status", "Duration", "Why"]
    rows = {name: monitor.locator(f".mlpipe-step-row.mlpipe-step-{name}") for name in ("make", "boom", "after")}
    expect(rows["make"].locator(".mlpipe-icon-completed")).to_be_visible()
    expect(rows["boom"].locator(".mlpipe-icon-failed")).to_be_visible()
    expect(rows["after"].locator(".mlpipe-icon-not-run")).to_be_visible()
    # the header's cells line up with the rows' cells
    head_box = header.locator(".widget-html").nth(2).bounding_box()
    status_box = rows["make"].locator(".mlpipe-status").bounding_box()
    assert abs(head_box["x"] - status_box["x"]) < 2, (head_box, status_box)
    for name in ("make", "boom"):  # the steps the planner decided on say why
        expect(rows[name].locator(".mlpipe-reason")).to_have_text(re.compile(r"^(Rerun|Reused)\b"))

    # one error block, the traceback of the cell: In[3] (the third cell), line 4 of it
    error = rows["boom"].locator(".mlpipe-error .mlpipe-error-failed")
    expect(error).to_have_count(1)
    expect(error).to_contain_text("Cell In[3], line 4, in <module>")
    expect(error).to_contain_text("ratio = total / 0")
    expect(error).to_contain_text("ZeroDivisionError: division by zero")
    text = error.inner_text()
    assert "cell_boom.py" not in text and ".mlpipe/tmp" not in text and "about to fail" not in text, text
    expect(rows["boom"].locator(".mlpipe-log")).to_contain_text("about to fail")
    expect(rows["boom"].locator(".mlpipe-log")).not_to_contain_text("Traceback")
    assert error.locator("pre").evaluate("el => getComputedStyle(el).color") == RED

    # the step that never ran is quiet grey, not red, and says why
    skipped = rows["after"].locator(".mlpipe-error-not-run")
    expect(skipped).to_have_text("not run: upstream 'boom' failed")
    assert skipped.evaluate("el => getComputedStyle(el).color") != RED
    expect(rows["after"].locator(".mlpipe-error-failed")).to_have_count(0)

    # the graph: three boxes coloured by status, two links
    graph = monitor.locator(".mlpipe-graph svg")
    expect(graph).to_be_visible()
    expect(graph.locator(".mlpipe-graph-node")).to_have_count(3)
    expect(graph.locator(".mlpipe-graph-edge")).to_have_count(2)
    expect(graph.locator(".mlpipe-graph-node[data-step='boom']")).to_have_attribute("data-status", "failed")
    expect(graph.locator(".mlpipe-graph-node[data-step='after']")).to_have_attribute("data-status", "not run")
    lab.screenshots("monitor-table-failed", monitor)


def live_notebook(gate) -> list[str]:
    return [
        "%load_ext mlpipe_jupyter",
        "%%step talk --outputs out\n"
        "import os, pathlib, time\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "print('first line of talk', flush=True)\n"
        "deadline = time.monotonic() + 120\n"
        "n = 0\n"
        "while not gate.exists() and time.monotonic() < deadline:\n"
        "    for _ in range(10):\n"
        "        n += 1\n"
        "        print('talk line', n, flush=True)\n"
        "    time.sleep(0.1)\n"
        "open(os.path.join(outputs['out'], 'done.txt'), 'w').write('done')\n"
        "print('talk done')",
        "%%step after --inputs out\nprint('after done')",
        "run = %pipeline submit --experiment live",
    ]


def _pane_state(log):
    return log.evaluate("""el => { const pane = el.querySelector('.mlpipe-log-scroll');
        return {top: pane.scrollTop, text: pane.innerText}; }""")


def test_follow_pause_full_log_and_the_actions_of_a_finished_run(lab, lab_server, tmp_path):
    gate = tmp_path / "gate"
    write_notebook(lab_server.root, "live.ipynb", live_notebook(gate))
    lab.open("live.ipynb")
    lab.run_all()
    page = lab.page
    monitor = lab.output(3).locator(".mlpipe-monitor").first
    talk = monitor.locator(".mlpipe-step-row.mlpipe-step-talk")
    expect(talk.locator(".mlpipe-status")).to_have_text("running", timeout=RUN_TIMEOUT)
    expect(talk.locator(".mlpipe-icon-running .mlpipe-spin")).to_be_visible()
    expect(monitor.locator(".mlpipe-graph-node[data-step='talk']")).to_have_attribute("data-status", "running")
    expect(monitor.locator(".mlpipe-cancel")).to_be_visible()
    for action in (".mlpipe-rerun", ".mlpipe-clone", ".mlpipe-open-panel"):
        expect(monitor.locator(action)).to_be_hidden()
    log = talk.locator(".mlpipe-log")
    expect(log).to_contain_text("talk line 250", timeout=RUN_TIMEOUT)  # more than the pane keeps

    # pause, scroll up to read: new lines arrive (counted on the button) and the view stays put
    talk.locator(".mlpipe-log-pause").click()
    expect(talk.locator(".mlpipe-log-pause")).to_contain_text("Resume")
    log.evaluate("el => { const p = el.querySelector('.mlpipe-log-scroll'); p.scrollTop = -p.scrollHeight; }")
    before = _pane_state(log)
    assert before["top"] < -50, before  # scrolled away from the newest line
    expect(talk.locator(".mlpipe-log-pause")).to_contain_text(re.compile(r"Resume \((\d{3,}) new\)"),
                                                              timeout=RUN_TIMEOUT)
    after = _pane_state(log)
    assert after == before, (before["top"], after["top"])
    lab.screenshots("monitor-table-paused", monitor)

    # resume: the newest lines come, the view follows again
    talk.locator(".mlpipe-log-pause").click()
    expect(talk.locator(".mlpipe-log-pause")).to_have_text("Pause")
    newest = _pane_state(log)
    assert newest["text"] != before["text"] and abs(newest["top"]) < 3, newest["top"]

    gate.touch()
    expect(monitor.locator(".mlpipe-step-after .mlpipe-status")).to_have_text("completed", timeout=RUN_TIMEOUT)
    for row in monitor.locator(".mlpipe-step-table .mlpipe-step-row").all():  # the reason, on each row
        expect(row.locator(".mlpipe-reason")).to_have_text(re.compile(r"^(Rerun|Reused)\b.{5,}"))

    # the whole log, on demand: its first line scrolled out of the pane long ago
    expect(log).not_to_contain_text("first line of talk")
    talk.locator(".mlpipe-log-full").click()
    full = talk.locator(".mlpipe-full-log .mlpipe-full-log-box")
    expect(full).to_be_visible()
    expect(full).to_contain_text("first line of talk")
    expect(full).to_contain_text("talk done")

    # a finished run: Cancel goes, Rerun / Clone to designer / Open in panel come
    expect(monitor.locator(".mlpipe-cancel")).to_be_hidden()
    monitor.locator(".mlpipe-rerun").first.click()
    below = monitor.locator(".mlpipe-monitor-below").first
    rerun = below.locator(".mlpipe-monitor").first
    expect(rerun.locator(".mlpipe-step-row")).to_have_count(2, timeout=RUN_TIMEOUT)
    expect(rerun.locator(".mlpipe-run-status")).to_contain_text("completed", timeout=RUN_TIMEOUT)
    expect(rerun.locator(".mlpipe-step-talk .mlpipe-status")).to_have_text("reused")
    assert rerun.locator(".mlpipe-run-status code").inner_text() != monitor.locator(
        ".mlpipe-run-status code").first.inner_text()

    monitor.locator(".mlpipe-clone").first.click()
    expect(monitor.locator(".mlpipe-action-message").first).to_have_text("")
    clone = below.locator(".mlpipe-designer .mlpipe-designer-canvas[data-ready='true']")
    expect(clone).to_be_visible(timeout=RUN_TIMEOUT)
    ids = set(clone.evaluate("el => el.mlpipeCy.elements().map(e => e.id())"))
    assert {"step:talk", "step:after"} <= ids, ids
    lab.screenshots("monitor-table-actions", lab.output(3))

    monitor.locator(".mlpipe-open-panel").first.click()
    panel = page.locator(".mlpipe-designer-panel")
    expect(panel).to_be_visible(timeout=RUN_TIMEOUT)
    expect(panel.locator(".mlpipe-designer-canvas[data-ready='true']")).to_be_visible(timeout=RUN_TIMEOUT)
