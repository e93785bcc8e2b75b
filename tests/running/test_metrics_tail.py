"""The runner reads a step's metrics file as untrusted data: a link or a FIFO in its place is refused and
said in the log, but a file the step makes just as the runner first looks for it is read (a warm step
writes its first metric within milliseconds of starting; that race once lost a step's metrics in CI)."""
from __future__ import annotations

import json
import os

from mlpipe_jupyter.running import metrics
from mlpipe_jupyter.running.metrics import MetricsTail


class FakeStore:
    def __init__(self):
        self.metrics = []

    def __getattr__(self, name):  # every store call a tail makes records what it got
        return lambda *args, **kwargs: self.metrics.append((name, args))


def lines_into(said: list):
    """A publisher keeping the log lines a tail says (and ignoring the live metric events)."""
    return lambda event, step, /, **data: said.append(data["line"]) if "line" in data else None


def drained(tail) -> tuple[list, list]:
    store, said = FakeStore(), []
    tail.drain(store, lines_into(said), final=True)
    return store.metrics, said


def test_a_file_made_just_after_the_first_look_is_read(tmp_path, monkeypatch):
    path = tmp_path / ".metrics.jsonl"
    real_open, looks = metrics.open_regular, []

    def step_writes_in_between(p, *args):
        looks.append(p)
        if len(looks) == 1:  # not there when looked for; made by the step right after
            path.write_text(json.dumps({"type": "metric", "name": "loss", "kind": "scalar", "value": 1}) + "\n")
            return None
        return real_open(p, *args)

    monkeypatch.setattr(metrics, "open_regular", step_writes_in_between)
    tail = MetricsTail("s", "run-1", path)
    store, said = FakeStore(), []
    tail.drain(store, lines_into(said))  # the follower's poll
    recorded, more_said = drained(tail)  # the step's end
    assert said == more_said == [] and tail.notes == []
    assert any("loss" in json.dumps(call, default=str) for call in store.metrics + recorded)


def test_a_link_or_a_fifo_in_its_place_is_refused_and_said(tmp_path):
    (tmp_path / "elsewhere").write_text(json.dumps({"type": "metric", "name": "x", "kind": "scalar", "value": 1}))
    os.symlink(tmp_path / "elsewhere", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    for name in ("link", "fifo"):
        recorded, said = drained(MetricsTail("s", "run-1", tmp_path / name))
        assert not any("metric" in json.dumps(call, default=str) for call in recorded)
        assert said == ["mlpipe: the step's .metrics.jsonl is not a regular file; its metrics were ignored."]
