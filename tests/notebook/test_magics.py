"""%%step and %pipeline in real notebooks: record, submit, reuse, edits, --run, parameters, export/load."""
from __future__ import annotations

import yaml

from nbhelpers import EVALUATE, PREP, TRAIN, by_tag, errors, last_json, report, stream, write_helper

LOAD = "%load_ext mlpipe_jupyter"


def test_record_submit_and_reuse_on_resubmit(notebook, tmp_path):
    write_helper(tmp_path)
    nb = notebook([LOAD, PREP, TRAIN, EVALUATE,
                   "# submit 1\nr1 = %pipeline submit --wait", report("r1", "report 1"),
                   "# submit 2\nr2 = %pipeline submit --wait", report("r2", "report 2")])
    assert "Recorded step 'train' (inputs: data; outputs: model)." in stream(by_tag(nb, "%%step train"))

    first = last_json(by_tag(nb, "# report 1"))
    assert first["store"] == {"prep": "Completed", "train": "Completed", "evaluate": "Completed"}
    assert first["monitor"] == {"prep": "completed", "train": "completed", "evaluate": "completed"}
    assert "prep wrote 3 hello" in first["logs"]["prep"]  # imports from the notebook folder work
    assert "model size 3" in first["logs"]["evaluate"]
    assert len(first["metrics"]["train"]["loss"]) > 1 and first["charts"]["train"] == ["loss"]  # drawn as a chart

    second = last_json(by_tag(nb, "# report 2"))
    assert second["store"] == {"prep": "reused", "train": "reused", "evaluate": "reused"}
    assert second["monitor"] == {"prep": "reused", "train": "reused", "evaluate": "reused"}

    # the submit cell shows the monitor once (the returned run is not displayed a second time)
    submit = by_tag(nb, "# submit 1")
    views = [o for o in submit.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1

    # the recorded step is a real script in the workspace: the cell body under a preamble
    script = (tmp_path / ".mlpipe/cells/session/train/cell_train.py").read_text()
    assert 'numbers = open(os.path.join(inputs["data"], "numbers.txt")).read().split(",")' in script
    assert script.index("inputs = ") < script.index("numbers = open(")


def test_editing_a_cell_reruns_it_and_its_downstream_only(notebook, tmp_path):
    write_helper(tmp_path)
    train_edited = TRAIN.replace("str(len(numbers))", "str(len(numbers) * 10)")
    nb = notebook([LOAD, PREP, TRAIN, EVALUATE,
                   "r1 = %pipeline submit --wait",
                   train_edited,
                   "r2 = %pipeline submit --wait", report("r2", "report 2"),
                   # a cell recorded again unchanged changes nothing
                   EVALUATE,
                   "r3 = %pipeline submit --wait", report("r3", "report 3"),
                   # the notebook-folder module prep imports changes: prep reruns; its output is the same,
                   # so train and evaluate are reused
                   "# edit helper\nopen('helper.py', 'w').write('GREETING = \"changed\"\\n')",
                   "r4 = %pipeline submit --wait", report("r4", "report 4")])
    assert "Replaced step 'train'" in stream(nb.cells[5])
    r2 = last_json(by_tag(nb, "# report 2"))
    assert r2["store"] == {"prep": "reused", "train": "Completed", "evaluate": "Completed"}
    assert "cell_train.py" in r2["reasons"]["train"]
    assert "input 'model' changed" in r2["reasons"]["evaluate"]
    assert "model size 30" in r2["logs"]["evaluate"]

    r3 = last_json(by_tag(nb, "# report 3"))
    assert r3["store"] == {"prep": "reused", "train": "reused", "evaluate": "reused"}

    r4 = last_json(by_tag(nb, "# report 4"))
    assert r4["store"] == {"prep": "Completed", "train": "reused", "evaluate": "reused"}
    assert "hash_paths" in r4["reasons"]["prep"]
    assert "prep wrote 3 changed" in r4["logs"]["prep"]


def test_run_flag_runs_one_step_on_the_latest_upstream_outputs(notebook, tmp_path):
    write_helper(tmp_path)
    nb = notebook([LOAD, PREP,
                   TRAIN.strip().replace("--outputs model", "--outputs model --run"),  # too early
                   PREP.strip().replace("--param n=3", "--param n=4 --run"),
                   TRAIN.strip().replace("--outputs model", "--outputs model --run"),
                   '''
                   # report
                   import json
                   from mlpipe_jupyter import Workspace, Experiment
                   runs = list(Experiment(Workspace.from_config(), "notebook").get_runs())
                   print(json.dumps([{s.name: [s.get_status(), s.get_log_text()] for s in r.get_steps()}
                                     for r in runs]))
                   '''], allow_errors=True)
    early = nb.cells[2]
    assert "UsageError: Step 'train' input 'data' comes from step 'prep', which has no completed run yet" \
        in stream(early, "stderr")
    runs = last_json(by_tag(nb, "# report"))
    assert len(runs) == 2  # newest first: train alone, then prep alone
    assert list(runs[0]) == ["train"] and list(runs[1]) == ["prep"]
    assert runs[0]["train"][0] == "Completed"
    assert "trained on 4" in runs[0]["train"][1]
    for cell in nb.cells:
        assert not errors(cell)


def test_parameters_defaults_types_and_overrides(notebook, tmp_path):
    write_helper(tmp_path)
    show = '''
    %%step show --param rate=0.5 --param flag=true --param label=abc --param n=3
    import json
    print("PARAMS", json.dumps({k: [v, type(v).__name__] for k, v in sorted(params.items())}))
    '''
    nb = notebook([LOAD, PREP, show,
                   "r1 = %pipeline submit --wait",
                   "# override\nr2 = %pipeline submit --wait --param n=5 --param label=xyz",
                   '''
                   # report
                   import json, os
                   def numbers(r):
                       path = r.get_step("prep").get_output_data("data").path
                       return open(os.path.join(path, "numbers.txt")).read()
                   def shown(r):
                       line = [l for l in r.get_step("show").get_log_text().splitlines() if l.startswith("PARAMS")][0]
                       return json.loads(line[len("PARAMS "):])
                   print(json.dumps({"r1": [numbers(r1), shown(r1)], "r2": [numbers(r2), shown(r2)],
                                     "params": r2.get_details()["parameters"]}))
                   '''])
    out = last_json(by_tag(nb, "# report"))
    assert out["r1"] == ["0,1,2", {"flag": [True, "bool"], "label": ["abc", "str"], "n": [3, "int"],
                                   "rate": [0.5, "float"]}]
    assert out["r2"] == ["0,1,2,3,4", {"flag": [True, "bool"], "label": ["xyz", "str"], "n": [5, "int"],
                                       "rate": [0.5, "float"]}]
    assert out["params"] == {"n": 5, "rate": 0.5, "flag": True, "label": "xyz"}


def test_export_and_load_round_trip(notebook, tmp_path):
    write_helper(tmp_path)
    nb = notebook([LOAD, PREP, TRAIN,
                   "r1 = %pipeline submit --wait",
                   "%pipeline export pipe.yaml",
                   "%pipeline export pipe.json",
                   "%pipeline clear",
                   "# empty\n%pipeline steps",
                   "%pipeline load pipe.yaml",
                   "# loaded\n%pipeline steps",
                   EVALUATE,  # a new cell links to an output of a loaded step
                   "r2 = %pipeline submit --wait", report("r2", "report 2"),
                   "%pipeline load pipe.json",
                   "r3 = %pipeline submit --wait", report("r3", "report 3")])
    doc = yaml.safe_load((tmp_path / "pipe.yaml").read_text())
    assert [s["name"] for s in doc["steps"]] == ["prep", "train"]
    assert doc["steps"][0]["source_directory"] == ".mlpipe/cells/session/prep"
    assert doc["parameters"] == {"n": {"default": 3}}
    assert "No steps yet" in stream(by_tag(nb, "# empty"))
    loaded = stream(by_tag(nb, "# loaded"))
    assert "prep" in loaded and "train" in loaded and "(file)" in loaded
    r2 = last_json(by_tag(nb, "# report 2"))
    assert r2["store"] == {"prep": "reused", "train": "reused", "evaluate": "Completed"}
    r3 = last_json(by_tag(nb, "# report 3"))
    assert r3["store"] == {"prep": "reused", "train": "reused"}


def test_external_inputs_source_dir_environment_and_no_reuse(notebook, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("VALUE = 41\n")
    (tmp_path / "data.csv").write_text("a,b\n")
    nb = notebook([
        "%load_ext mlpipe_jupyter",
        '''
        import sys
        from mlpipe_jupyter import Workspace, Datastore, Dataset, Environment
        ws = Workspace.from_config()  # the extension opened (here: created) the notebook's workspace
        store = Datastore.register_local(ws, "files", "files_root")
        open("files_root/x.txt", "w").write("hi")
        Dataset.File.from_files((store, "x.txt")).register(ws, "xs")
        env = Environment("py")
        env.python.interpreter_path = sys.executable
        env.register(ws)
        ''',
        '''
        %%step read --inputs raw=data.csv st=files:x.txt reg=dataset:xs --outputs o --source-dir lib --no-reuse --environment py
        import os, util  # util sits in the step's source folder
        print("READ", open(inputs["raw"]).read().strip(), open(inputs["st"]).read(), util.VALUE)
        open(os.path.join(outputs["o"], "o"), "w").write("1")
        ''',
        "r1 = %pipeline submit --wait",
        "r2 = %pipeline submit --wait",
        '''
        # report
        import json
        print(json.dumps({"log": r2.get_step("read").get_log_text(),
                          "why": r2.get_step("read").get_details()["reuse_reason"],
                          "reused": r2.get_step("read").reused}))
        ''',
    ])
    for cell in nb.cells:
        assert not errors(cell), cell.source
    out = last_json(by_tag(nb, "# report"))
    assert "READ a,b hi 41" in out["log"]
    assert out["reused"] is False and "allow_reuse=False" in out["why"]
    assert (tmp_path / "lib" / ".mlpipe_cells" / "cell_read.py").is_file()


def test_submit_output_reads_as_text_where_widgets_cannot_show(notebook, tmp_path):
    """A notebook run headless (or exported) keeps a text summary of the run next to the widget:
    each step's final status and why it was reused or rerun."""
    write_helper(tmp_path)
    nb = notebook([LOAD, PREP, TRAIN, "# first\nr1 = %pipeline submit --wait",
                   "# second\nr2 = %pipeline submit --wait --param n=4"])

    def shown(marker):  # nbclient applies the display update (the run's end) to the output in place
        (output,) = [o for o in by_tag(nb, marker).outputs if o.output_type == "display_data"]
        assert "application/vnd.jupyter.widget-view+json" in output.data
        return output.data["text/plain"]

    first, second = shown("# first"), shown("# second")
    assert "status=Completed" in first and first.count("why: Rerun: no earlier run of this step") == 2
    assert "status=Completed" in second
    assert "why: Rerun: parameter 'n' changed from 3 to 4" in second  # prep consumes n
    assert "why: Rerun: input 'data' changed" in second  # and train reads what prep wrote
