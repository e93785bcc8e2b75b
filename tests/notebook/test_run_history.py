"""The run history in the test process: the table's rows and columns, filtering, the grid's selection
read back as runs, the comparison's values and chart, the file browser, and ``%pipeline runs``."""
from __future__ import annotations

import base64
import json
import os
import re
import struct
import zlib

import bqplot
import ipywidgets as widgets
import pytest
from IPython.core.error import UsageError

from mlpipe_jupyter import Experiment, Pipeline, PipelineData, PipelineParameter, PythonScriptStep
from mlpipe_jupyter.notebook import run_files
from mlpipe_jupyter.notebook.run_files import OUTPUTS, RunFiles, listing
from mlpipe_jupyter.notebook.run_history import RunHistory, status_text
from mlpipe_jupyter.sdk.published import TRIGGERED_BY

TRAIN = """
import os, sys
from azureml.core import Run
run = Run.get_context()
c, out = float(sys.argv[1]), sys.argv[2]
if c < 0:
    raise SystemExit("C must not be negative")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "scores.csv"), "w") as f:
    f.write("epoch,loss\\n" + "".join(f"{i},{c / i}\\n" for i in range(1, 31)))
for i in range(3):
    run.log("loss", c / (i + 1))
run.log("accuracy", 0.9 - c / 10)
os.makedirs("outputs", exist_ok=True)
with open("outputs/notes.txt", "w") as f:
    f.write("".join(f"line {i}\\n" for i in range(100)))
run.log_image("curve", path=sys.argv[3])
"""


def png(width=3, height=2) -> bytes:
    """A tiny valid PNG (red pixels)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def runs(workspace, tmp_path, write_scripts):
    """Three pipeline runs in experiment 'hist', oldest first: C=1.0, C=0.5, then C=-1 (fails)."""
    image = tmp_path / "curve.png"
    image.write_bytes(png())
    write_scripts(tmp_path / "src", {"train.py": TRAIN})
    c = PipelineParameter("C", default_value=1.0)
    scores = PipelineData("scores")
    step = PythonScriptStep("train.py", name="train", source_directory=str(tmp_path / "src"),
                            arguments=[c, scores, str(image)], outputs=[scores])
    experiment = Experiment(workspace, "hist")
    made = []
    for value in (1.0, 0.5, -1.0):
        run = experiment.submit(Pipeline(workspace, [step]), pipeline_parameters={"C": value})
        run.wait_for_completion(raise_on_error=False)
        made.append(run)
    return experiment, made


def test_the_table_has_a_row_per_run_newest_first_with_parameters_and_last_metric_values(runs):
    experiment, (one, half, failed) = runs
    failed.add_properties({TRIGGERED_BY: "schedule:nightly"})
    history = RunHistory(experiment)
    assert history.columns == ["status", "run id", "experiment", "start", "duration", "trigger", "C", "loss",
                               "accuracy"]
    rows = history.records()
    assert [r["run id"] for r in rows] == [failed.id, half.id, one.id]
    assert [r["status"] for r in rows] == [status_text("Failed"), "✓ Completed", "✓ Completed"]
    assert [r["trigger"] for r in rows] == ["schedule", "sdk", "sdk"]
    assert [r["C"] for r in rows] == [-1.0, 0.5, 1.0]
    assert rows[1]["loss"] == pytest.approx(0.5 / 3) and rows[1]["accuracy"] == pytest.approx(0.85)
    assert rows[0]["loss"] is None and all(r["experiment"] == "hist" for r in rows)
    assert all(isinstance(r["duration"], float) for r in rows)

    text = history.text().splitlines()
    assert text[0].split() == ["status", "run", "id", "experiment", "start", "duration", "trigger", "C", "loss",
                               "accuracy"]
    assert len(text) == 4 and one.id in text[3] and "✗ Failed" in text[1]
    # the same from the runs Experiment.get_runs() yields, and limited
    assert [r["run id"] for r in RunHistory(experiment.get_runs(), limit=2).records()] == [failed.id, half.id]
    assert RunHistory(experiment)._repr_mimebundle_() == {"text/plain": history.text()}  # no kernel: text


def test_filtering_by_text_and_status_and_numbers_sort_as_numbers(runs):
    experiment, (one, half, failed) = runs
    history = RunHistory(experiment)
    assert history.frame(half.id[-8:].upper())["run id"].tolist() == [half.id]
    assert history.frame(status="Failed")["run id"].tolist() == [failed.id]
    assert history.frame("completed 0.85 hist")["run id"].tolist() == [half.id]  # every word must match
    assert history.frame("no such text").empty
    assert history.frame("c=0.5")["run id"].tolist() == [half.id]  # a column's value, not any cell's
    assert history.frame("C=1.0")["run id"].tolist() == [one.id]
    assert history.frame("accuracy>0.81")["run id"].tolist() == [half.id]
    assert history.frame("loss<1 trigger=sdk")["run id"].tolist() == [half.id, one.id]
    assert history.frame("loss>x").empty and history.frame("nosuch=1").empty  # not a column: plain text
    assert history.frame().sort_values("C")["run id"].tolist() == [failed.id, half.id, one.id]
    assert RunHistory(experiment, status="failed").records()[0]["run id"] == failed.id
    assert [r["run id"] for r in RunHistory(experiment, limit=1).records()] == [failed.id]

    view = history.view
    view.filter.value = "C=0.5"
    assert view.grid.data["run id"].tolist() == [half.id]
    assert "1 of 3 runs" in view.count.value
    view.filter.value = ""
    view.status.value = "Completed"
    assert view.grid.data["run id"].tolist() == [half.id, one.id]
    assert "2 of 3 runs" in view.count.value


def test_selected_rows_compare_side_by_side_with_differences_marked_and_a_chart(runs):
    experiment, (one, half, failed) = runs
    view = RunHistory(experiment).view
    view.grid.select(1, 0, 2, 0)  # rows 1 and 2 as shown: half, then one
    assert view.selected_ids() == [half.id, one.id]
    comparison = view.show_comparison()
    values = {name: vals for _, name, vals in comparison.rows}
    assert values["C"] == [0.5, 1.0] and values["status"] == ["Completed", "Completed"]
    assert values["accuracy"] == pytest.approx([0.85, 0.8])
    assert comparison.differing() == ["C", "loss", "accuracy"]
    page = comparison.html()
    assert "<tr class='mlpipe-compare-parameter mlpipe-diff'><th>C" in page
    assert "<tr class='mlpipe-compare-status'>" in page  # the same status: not marked
    assert page.index(half.id) < page.index(one.id)
    assert comparison.series("loss") == {half.id: pytest.approx([0.5, 0.25, 0.5 / 3]),
                                         one.id: pytest.approx([1.0, 0.5, 1 / 3])}
    table, pick, chart = view.detail.children
    assert isinstance(table, widgets.HTML) and pick.options == ("loss", "accuracy")
    figure = chart.children[0]
    assert [list(m.y) for m in figure.marks] == [pytest.approx([0.5, 0.25, 0.5 / 3]), pytest.approx([1.0, 0.5, 1 / 3])]
    assert [m.labels for m in figure.marks] == [[half.id], [one.id]] and figure.axes[0].label == "step"
    pick.value = "accuracy"  # one value per run: one bar per run
    bars = chart.children[0].marks[0]
    assert isinstance(bars, bqplot.Bars) and list(bars.y) == pytest.approx([0.85, 0.8])

    view.grid.clear_selection()
    view.grid.select(0, 0)
    view._show(view.show_comparison)
    assert "two or more runs" in view.detail.children[0].value


def rows(*numbers):
    """A selection of whole rows as the page sends it."""
    return {"selections": [{"r1": r, "r2": r, "c1": 0, "c2": 8} for r in numbers]}


def compared(view) -> list[str]:
    """The run ids heading the comparison shown."""
    return re.findall(r"<th><code>([^<]+)</code></th>", view.detail.children[0].value.split("</thead>")[0])


def test_after_compare_or_files_the_detail_follows_a_selection_that_arrives_after_the_click(runs):
    """The page sends a click at once but holds a selection change while an earlier one is unanswered:
    Compare can reach the kernel when only the first of two rows has."""
    experiment, (one, half, failed) = runs
    view = RunHistory(experiment).view  # rows as shown: failed, half, one
    view.grid.set_state(rows(1))
    view.compare_button.click()
    assert "two or more runs" in view.detail.children[0].value
    view.grid.set_state(rows(1, 2))  # the Shift+click, late
    assert compared(view) == [half.id, one.id]

    view.grid.set_state(rows(0))  # one row: the comparison stays
    assert compared(view) == [half.id, one.id]
    view.grid.set_state(rows(0, 1))
    assert compared(view) == [failed.id, half.id]

    view.files_button.click()  # two rows: Files says to pick one, then shows the one picked
    assert "Select one run" in view.detail.children[0].value
    view.grid.set_state(rows(2))
    browser = view.detail.children[0]
    assert [run_id for _, run_id in browser.children[0].children[0].options][-1] == one.id
    view.grid.set_state({"selections": [{"r1": 2, "r2": 2, "c1": 0, "c2": 3}]})  # the same run, then two runs:
    view.grid.set_state(rows(1, 2))  # the browser stays as it is
    assert view.detail.children[0] is browser
    view.grid.set_state(rows(1))
    assert [run_id for _, run_id in view.detail.children[0].children[0].children[0].options][-1] == half.id


def test_the_file_browser_lists_outputs_logs_and_files_and_previews_them(runs, tmp_path, monkeypatch):
    experiment, (one, half, failed) = runs
    files = RunFiles(half)
    assert files.step.options[0] == ("step train (completed)", half.get_step("train").id)
    names = files.names
    assert f"{OUTPUTS}/scores/scores.csv" in names and "outputs/notes.txt" in names
    assert "user_logs/std_log.txt" in names and any(n.startswith("images/curve_") for n in names)
    assert [label for label, _ in files.list.options][:2] == [f"▸ {OUTPUTS}/", "▸ azureml-logs/"]
    assert listing({f"{OUTPUTS}/scores/a.csv": None, "x.txt": None}, "") == ([OUTPUTS], ["x.txt"])

    files.list.value = ("folder", OUTPUTS)
    files.list.value = ("folder", f"{OUTPUTS}/scores")
    assert [label.split()[0] for label, _ in files.list.options] == ["↑", "scores.csv"]
    files.list.value = ("file", f"{OUTPUTS}/scores/scores.csv")
    title, table = files.preview.children[0].children
    assert "<th>epoch</th><th>loss</th>" in table.value and "<td>2</td><td>0.25</td>" in table.value
    assert table.value.count("<tr>") == 1 + run_files.PREVIEW_ROWS  # the header and the first rows only
    link = title.value.split("href='")[1].split("'")[0]
    assert base64.b64decode(link.split(",", 1)[1]).startswith(b"epoch,loss\n1,0.5\n")

    image = next(n for n in names if n.startswith("images/"))
    _, shown = files.open_file(image).children
    assert isinstance(shown, widgets.Image) and shown.value == png() and shown.format == "png"
    _, text = files.open_file("outputs/notes.txt").children
    assert "line 0\nline 1" in text.value and "line 59" in text.value and "line 60" not in text.value

    # a large file: not sent to the page; under the hidden .mlpipe the server does not serve it, so it is
    # named where it is, and a button copies it next to the notebook, linked through the server's files/
    monkeypatch.setattr(run_files, "DATA_URL_LIMIT", 10)
    runtime, notebook_dir = tmp_path / "runtime", tmp_path / "notebooks"
    runtime.mkdir()
    notebook_dir.mkdir()
    (runtime / "jpserver-1.json").write_text(json.dumps({"pid": os.getpid(), "root_dir": str(tmp_path),
                                                         "base_url": "/base/", "url": "http://127.0.0.1:1/base/"}))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.chdir(notebook_dir)
    title, copy, _ = files.open_file("outputs/notes.txt").children
    assert "too large" in title.value and ".mlpipe" in title.value and "data:" not in title.value
    copy.click()
    step_id = half.get_step("train").id
    copied = notebook_dir / "run-files" / step_id / "outputs" / "notes.txt"
    assert copied.read_text().startswith("line 0\n") and copy.disabled
    assert f"href='/base/files/notebooks/run-files/{step_id}/outputs/notes.txt'" in title.value

    pipeline_files = RunHistory(experiment).files(one.id)  # a pipeline run: its steps, then itself
    assert [label for label, _ in pipeline_files.step.options] == ["step train (completed)", "the pipeline run"]
    pipeline_files.step.value = one.id
    assert pipeline_files.names == []


def test_csv_preview_without_pandas(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(50)))
    with_pandas = run_files.csv_preview(path)
    monkeypatch.setattr(run_files, "pd", None)
    assert run_files.csv_preview(path) == with_pandas == (["a", "b"], [[str(i), f"x{i}"] for i in range(20)])


def test_pipeline_runs_magic_prints_the_table_with_a_header_and_takes_limit_and_status(ip, capsys):
    from mlpipe_jupyter import Workspace

    workspace = Workspace.from_config()
    ip.run("%pipeline runs")
    assert "No runs yet in experiment 'notebook'." in capsys.readouterr().out
    exp = Experiment(workspace, "notebook")
    for n in range(3):
        with exp.start_logging() as run:
            run.log("n", n)
    failing = exp.start_logging()
    failing.fail()
    ip.run("%pipeline runs --limit 2")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["status", "run", "id"] and "n" in lines[0].split()
    assert len(lines) == 3 and failing.id in lines[1]
    ip.run("%pipeline runs --status completed")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and all("✓ Completed" in line for line in out[1:])
    ip.run("%pipeline runs --all --status Canceled")
    assert "No runs yet with status Canceled." in capsys.readouterr().out
    for line, message in (("%pipeline runs --status sideways", "Unknown run status 'sideways'"),
                          ("%pipeline runs --limit 0", "--limit must be 1 or more, not 0"),
                          ("%pipeline runs --limit many", "argument --limit: invalid int value: 'many'")):
        error = ip.run_error(line)
        assert isinstance(error, UsageError) and message in str(error), (line, error)


def test_in_a_kernel_the_table_is_a_widget_with_the_plain_table_for_headless_runs(notebook):
    """A notebook run headless (nbclient) keeps the widget and, beside it, the table as text."""
    nb = notebook([
        "%load_ext mlpipe_jupyter",
        "from mlpipe_jupyter import Experiment, RunHistory, Workspace\n"
        "exp = Experiment(Workspace.from_config(), 'kernel')\n"
        "for n in range(2):\n"
        "    with exp.start_logging() as run:\n"
        "        run.log('score', n / 4)\n"
        "ids = [r.id for r in exp.get_runs()]",
        "%pipeline runs --experiment kernel",
        "RunHistory(exp.get_runs())",
        "print(ids)",
        "exp",  # an Experiment as a cell's value shows its run history
    ])
    ids = eval(nb.cells[4].outputs[0]["text"])  # noqa: S307 - the list the kernel printed
    for cell in (nb.cells[2], nb.cells[3], nb.cells[5]):
        (output,) = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        lines = output["data"]["text/plain"].splitlines()
        assert lines[0].split()[:3] == ["status", "run", "id"] and lines[0].split()[-1] == "score"
        assert [line.split()[2] for line in lines[1:]] == ids
        assert lines[1].split()[-1] == "0.25"


def test_bad_input_is_one_clear_user_error(workspace):
    from mlpipe_jupyter import UserError

    experiment = Experiment(workspace, "none")
    assert RunHistory(experiment).text() == "No runs." and RunHistory([]).text() == "No runs."
    for make, message in ((lambda: RunHistory(5), "takes an Experiment, a Workspace or runs"),
                          (lambda: RunHistory([experiment]), "every item must be a Run"),
                          (lambda: RunHistory(experiment, limit=0), "limit must be a positive whole number"),
                          (lambda: RunHistory(experiment, status="done"), "Unknown run status 'done'")):
        with pytest.raises(UserError, match=message):
            make()
