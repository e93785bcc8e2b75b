"""A late subscriber can replay a run's earlier events, in order, without losing live ones."""
import threading

from mlpipe_jupyter.running.events import Event, EventBus


def test_replay_delivers_past_events_then_live_ones_in_order():
    bus = EventBus()
    for i in range(5):
        bus.publish(Event("log", "run1", "s", data={"line": str(i)}))
    bus.publish(Event("log", "other", "s", data={"line": "x"}))
    seen = []
    unsubscribe = bus.subscribe(lambda e: seen.append(e.data["line"]), "run1", replay=True)
    bus.publish(Event("log", "run1", "s", data={"line": "5"}))
    unsubscribe()
    bus.publish(Event("log", "run1", "s", data={"line": "6"}))
    assert seen == ["0", "1", "2", "3", "4", "5"]


def test_without_replay_only_live_events_arrive():
    bus = EventBus()
    bus.publish(Event("log", "run1", "s", data={"line": "old"}))
    seen = []
    bus.subscribe(lambda e: seen.append(e.data["line"]), "run1")
    bus.publish(Event("log", "run1", "s", data={"line": "new"}))
    assert seen == ["new"]


def test_replay_while_a_runner_thread_publishes_keeps_every_event_once():
    bus = EventBus()
    for i in range(500):
        bus.publish(Event("log", "r", data={"n": i}))
    seen = []
    publisher = threading.Thread(target=lambda: [bus.publish(Event("log", "r", data={"n": i}))
                                                 for i in range(500, 3000)])
    publisher.start()
    bus.subscribe(lambda e: seen.append(e.data["n"]), "r", replay=True)
    publisher.join()
    assert seen == list(range(3000))


def test_show_output_prints_lines_of_a_step_that_finished_before_waiting(workspace, tmp_path, capsys):
    from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep

    src = tmp_path / "src"
    src.mkdir()
    (src / "quick.py").write_text("print('hello from a quick step')\n")
    run = Experiment(workspace, "replay").submit(Pipeline(workspace, [PythonScriptStep("quick.py", source_directory=str(src))]))
    run.wait_for_completion()
    capsys.readouterr()
    run.wait_for_completion(show_output=True)
    assert "hello from a quick step" in capsys.readouterr().out
