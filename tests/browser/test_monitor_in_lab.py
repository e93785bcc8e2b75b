"""The live run monitor in real JupyterLab: ``%pipeline submit`` returns at once, the monitor rows
follow the run while another cell executes, and ``display(run)`` shows a stored run again.

The slow step prints lines until the test creates a gate file, so "still running while the kernel
is free" is a state the test controls, not a race against a sleep.
"""
from playwright.sync_api import expect

from helpers import write_notebook

RUN_TIMEOUT = 90_000


def monitor_notebook(gate) -> list[str]:
    return [
        "%load_ext mlpipe_jupyter",
        "%%step make_numbers --outputs numbers\n"
        "import os\n"
        "with open(os.path.join(outputs['numbers'], 'numbers.txt'), 'w') as f:\n"
        "    f.write(' '.join(str(i) for i in range(10)))\n"
        "print('wrote ten numbers')",
        "%%step slow_sum --inputs numbers\n"
        "import os, pathlib, time\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "deadline = time.monotonic() + 120\n"
        "tick = 0\n"
        "while not gate.exists():\n"
        "    if time.monotonic() > deadline:\n"
        "        raise SystemExit('the test never opened the gate')\n"
        "    tick += 1\n"
        "    print('waiting for the gate, tick', tick, flush=True)\n"
        "    time.sleep(0.2)\n"
        "numbers = open(os.path.join(inputs['numbers'], 'numbers.txt')).read().split()\n"
        "total = sum(int(n) for n in numbers)\n"
        "run.log('total', total)\n"
        "print('sum of numbers', total)",
        "run = %pipeline submit --experiment browser",
        "print('kernel free:', sum(i * i for i in range(10)))",
    ]


def test_monitor_follows_the_run_while_the_kernel_is_free(lab, lab_server, tmp_path):
    gate = tmp_path / "gate"
    write_notebook(lab_server.root, "monitor.ipynb", monitor_notebook(gate))
    lab.open("monitor.ipynb")
    lab.run_all()

    # The cell after the submit has run, so the kernel is free, yet the run goes on in the background.
    expect(lab.output(4)).to_contain_text("kernel free: 285", timeout=RUN_TIMEOUT)
    monitor = lab.output(3).locator(".mlpipe-monitor")
    slow = monitor.locator(".mlpipe-step-row.mlpipe-step-slow_sum")
    first = monitor.locator(".mlpipe-step-row.mlpipe-step-make_numbers")
    expect(slow.locator(".mlpipe-status")).to_have_text("running", timeout=RUN_TIMEOUT)
    expect(first.locator(".mlpipe-status")).to_have_text("completed")
    expect(slow.locator(".mlpipe-log")).to_contain_text("waiting for the gate, tick", timeout=RUN_TIMEOUT)
    # more lines than the pane shows: the newest is in view, the first scrolled away above
    expect(slow.locator(".mlpipe-log")).to_contain_text("waiting for the gate, tick 30", timeout=RUN_TIMEOUT)
    box = slow.locator(".mlpipe-log").evaluate(  # one look: a flush may replace the pane between two
        """el => { const pane = el.querySelector('.mlpipe-log-scroll').getBoundingClientRect();
                   const text = el.querySelector('.mlpipe-log-scroll pre').getBoundingClientRect();
                   return {pane: [pane.top, pane.bottom], text: [text.top, text.bottom]}; }""")
    assert box["text"][1] - box["text"][0] > box["pane"][1] - box["pane"][0] + 20, box  # it does overflow
    assert abs(box["text"][1] - box["pane"][1]) < 3 and box["text"][0] < box["pane"][0], box  # the end in view
    expect(monitor.locator(".mlpipe-cancel")).to_have_count(1)
    # the run's line and the running row count up while the step runs (they froze between status changes)
    header, row_time = monitor.locator(".mlpipe-run-status"), slow.locator(".mlpipe-duration")
    before = (header.inner_text(), row_time.inner_text())
    expect(header).not_to_have_text(before[0], timeout=10_000)
    expect(row_time).not_to_have_text(before[1], timeout=10_000)
    expect(header).to_contain_text("running")
    # the whole word on the Cancel button, not cut to "Ca..."
    cancel = monitor.locator(".mlpipe-cancel")
    assert cancel.evaluate("el => el.scrollWidth <= el.clientWidth && el.innerText.trim() === 'Cancel'")
    expect(lab.output(4)).to_contain_text("kernel free: 285")  # still there: nothing re-ran
    lab.screenshot("monitor-running")

    gate.touch()
    expect(slow.locator(".mlpipe-status")).to_have_text("completed", timeout=RUN_TIMEOUT)
    expect(slow.locator(".mlpipe-log")).to_contain_text("sum of numbers 45")
    expect(monitor.locator(".mlpipe-step-row")).to_have_count(2)

    # A run read back from the store shows its stored state.
    index = lab.add_cell_and_run(
        "from mlpipe_jupyter import Run\n"
        "display(Run.get(run.experiment.workspace, run.id))")
    stored = lab.output(index).locator(".mlpipe-monitor")
    expect(stored.locator(".mlpipe-step-row")).to_have_count(2, timeout=RUN_TIMEOUT)
    for step in ("make_numbers", "slow_sum"):
        expect(stored.locator(f".mlpipe-step-{step} .mlpipe-status")).to_have_text("completed")
    expect(stored.locator(".mlpipe-step-slow_sum .mlpipe-log")).to_contain_text("sum of numbers 45")
    lab.screenshot("monitor-completed")

    # Cancel: the run ends canceled, the button goes (it never stays reading "Canceling")
    lab.add_cell_and_run("%%step sleeper\nimport time\nfor i in range(600):\n"
                         "    print('sleeping', i, flush=True)\n    time.sleep(0.2)")
    index = lab.add_cell_and_run("run2 = %pipeline submit --experiment browser")
    live = lab.output(index).locator(".mlpipe-monitor")
    sleeper = live.locator(".mlpipe-step-sleeper")
    expect(sleeper.locator(".mlpipe-log")).to_contain_text("sleeping 3", timeout=RUN_TIMEOUT)
    live.locator(".mlpipe-cancel").click()
    expect(sleeper.locator(".mlpipe-status")).to_have_text("canceled", timeout=RUN_TIMEOUT)
    expect(live.locator(".mlpipe-run-status")).to_contain_text("canceled", timeout=RUN_TIMEOUT)
    expect(live.locator(".mlpipe-cancel")).to_be_hidden()
    expect(live.locator("text=Canceling")).to_have_count(0)
    # a user's cancel is not painted as a failure: neither the header's reason nor the step's note is red
    red = "rgb(198, 40, 40)"
    assert live.locator(".mlpipe-run-status span", has_text="Canceled by the user").evaluate(
        "el => getComputedStyle(el).color") != red
    lab.screenshots("monitor-canceled", live)
