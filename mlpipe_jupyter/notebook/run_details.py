"""``RunDetails(run).show()``: Azure ML's run widget, here the live run monitor under Azure's name."""
from __future__ import annotations

from IPython import get_ipython
from IPython.display import display

from mlpipe_jupyter.notebook.monitor import RunMonitor


def _in_kernel() -> bool:
    return getattr(get_ipython(), "kernel", None) is not None


class RunDetails:
    """Shows a run (a pipeline run, a step run or a script run) with its steps, logs and metrics."""

    def __init__(self, run_instance):
        self.run_instance = run_instance
        self.monitor = None

    def show(self, render_lib=None, widget_settings=None):
        """In a notebook, the live monitor; in a script, one line saying where to follow the run."""
        if _in_kernel():
            self.monitor = RunMonitor(self.run_instance)
            display(self.monitor)  # the widget, with the run in words where widgets cannot show
        else:
            run = self.run_instance
            print(f"RunDetails: {run!r}; follow it with `mlpipe logs --follow {run.id}`.", flush=True)
        # nothing returned, as Azure's show(): the cell's value would print a second, raw line

    def get_widget_data(self, widget_settings=None) -> dict:
        return self.run_instance.get_details()
