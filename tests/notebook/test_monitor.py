"""The monitor's widget model in a real kernel: live updates while other cells run, failures, cancel, reopening."""
from __future__ import annotations

from nbhelpers import by_tag, errors, last_json, stream

WIDGET = "application/vnd.jupyter.widget-view+json"


def test_monitor_updates_live_shows_failures_and_stored_state(notebook, tmp_path):
    go = tmp_path / "go"
    nb = notebook([
        "%load_ext mlpipe_jupyter",
        f'''
        %%step slow --outputs out
        import os, time
        for i in range(3):
            print("tick", i, flush=True)
            run.log("acc", i / 10)
        while not os.path.exists({str(go)!r}):  # holds the step until a later cell says go
            time.sleep(0.05)
        open(os.path.join(outputs["out"], "x"), "w").write("x")
        ''',
        '''
        %%step boom --inputs out --outputs result
        print("about to fail", flush=True)
        1 / 0
        ''',
        "%%step after --inputs result\nprint('never')",
        "# submit\nr = %pipeline submit",
        f'''
        # free
        # the kernel runs this cell while the pipeline runs; the model changes under it, pushed by events
        import json, time
        from mlpipe_jupyter.notebook.monitor import monitors_for
        m = monitors_for(r.id)[-1]
        deadline = time.time() + 60
        def seen():
            return m.statuses()["slow"] == "running" and "tick 2" in m.rows["slow"].log.value
        while time.time() < deadline and not seen():
            time.sleep(0.02)
        print(json.dumps({{"statuses": m.statuses(), "log": m.rows["slow"].log.value}}))
        open({str(go)!r}, "w").close()
        ''',
        '''
        # ended
        import json, time
        r.wait_for_completion(raise_on_error=False)
        deadline = time.time() + 60
        while time.time() < deadline and m.statuses()["after"] != "canceled":
            time.sleep(0.02)
        rows = m.rows
        print(json.dumps({"statuses": m.statuses(), "run": r.get_status(), "error": rows["boom"].error.value,
                          "metrics": rows["slow"].metrics_panel.scalars,
                          "charts": list(rows["slow"].metrics_panel.chart_of), "header": m.run_status.value,
                          "cancel_disabled": m.cancel_button.disabled,
                          "classes": {"monitor": m.widget._dom_classes, "row": rows["boom"].widget._dom_classes,
                                      "status": rows["boom"].status._dom_classes,
                                      "log": rows["boom"].log._dom_classes,
                                      "cancel": m.cancel_button._dom_classes}}))
        ''',
        '''
        # reopened
        import json
        from mlpipe_jupyter import Run, Workspace
        from mlpipe_jupyter.notebook.monitor import RunMonitor
        m2 = RunMonitor(Run.get(Workspace.from_config(), r.id))
        print(json.dumps({"statuses": m2.statuses(), "log": m2.rows["slow"].log.value,
                          "error": m2.rows["boom"].error.value, "metrics": m2.rows["slow"].metrics_panel.scalars,
                          "charts": list(m2.rows["slow"].metrics_panel.chart_of)}))
        ''',
        "# display\ndisplay(r)",
        "# wait failed\n%pipeline submit --wait",
    ], allow_errors=True)

    assert any(WIDGET in o.get("data", {}) for o in by_tag(nb, "# submit").outputs)
    free = last_json(by_tag(nb, "# free"))
    assert free["statuses"]["slow"] == "running"
    assert free["statuses"]["after"] == "not started"
    assert "tick 2" in free["log"]

    ended = last_json(by_tag(nb, "# ended"))
    assert ended["run"] == "Failed"
    assert ended["statuses"] == {"slow": "completed", "boom": "failed", "after": "canceled"}
    assert "color:#c62828" in ended["error"] and "ZeroDivisionError" in ended["error"]
    # the error shows once: the traceback, naming the cell and its line (not the generated script)
    assert "Cell In[3], line 2, in &lt;module&gt;" in ended["error"], ended["error"]
    assert "cell_boom.py" not in ended["error"] and "about to fail" not in ended["error"]
    assert ended["metrics"] == {"acc": [0.0, 0.1, 0.2]} and ended["charts"] == ["acc"]  # a chart of all three
    assert "failed" in ended["header"] and ended["cancel_disabled"]
    assert ended["classes"] == {"monitor": ["mlpipe-monitor"], "row": ["mlpipe-step-row", "mlpipe-step-boom"],
                                "status": ["mlpipe-status"], "log": ["mlpipe-log"], "cancel": ["mlpipe-cancel"]}

    reopened = last_json(by_tag(nb, "# reopened"))
    assert reopened["statuses"] == ended["statuses"]
    assert "tick 2" in reopened["log"] and "ZeroDivisionError" in reopened["error"]
    assert reopened["metrics"] == ended["metrics"] and reopened["charts"] == ["acc"]

    assert any(WIDGET in o.get("data", {}) for o in by_tag(nb, "# display").outputs)
    failed_wait = by_tag(nb, "# wait failed")
    err = stream(failed_wait, "stderr")
    assert err.startswith("UsageError: Run ") and "failed: Step 'boom'" in err
    for cell in nb.cells:
        assert not errors(cell), cell.source


def test_cancel_button_cancels_the_run(notebook):
    nb = notebook([
        "%load_ext mlpipe_jupyter",
        "%%step sleepy\nimport time\nprint('sleeping', flush=True)\ntime.sleep(120)",
        "r = %pipeline submit",
        '''
        # cancel
        import json, time
        from mlpipe_jupyter.notebook.monitor import monitors_for
        m = monitors_for(r.id)[-1]
        deadline = time.time() + 60
        while time.time() < deadline and "sleeping" not in m.rows["sleepy"].log.value:
            time.sleep(0.02)
        m.cancel_button.click()
        r.wait_for_completion(raise_on_error=False)
        while time.time() < deadline and m.statuses()["sleepy"] != "canceled":
            time.sleep(0.02)
        print(json.dumps({"run": r.get_status(), "statuses": m.statuses()}))
        ''',
    ])
    out = last_json(by_tag(nb, "# cancel"))
    assert out == {"run": "Canceled", "statuses": {"sleepy": "canceled"}}
