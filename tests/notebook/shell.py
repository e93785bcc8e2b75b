"""An IPython shell in the test process, with the magics loaded: most magics tests need no kernel.

As in jupysql's testing shell, a cell's error is raised (``run``) or handed back (``run_error``)
instead of being printed, so a test reads the exception itself. A few tests keep a real kernel
(test_magics.py and the monitor tests), for what only a kernel shows: widgets and display updates."""
from __future__ import annotations

import os

from IPython.core.interactiveshell import InteractiveShell

from mlpipe_jupyter.notebook.magics import load_ipython_extension


class TestingShell(InteractiveShell):
    def run(self, source: str):
        """Run a cell; raise what it raised."""
        result = self.run_cell(source)
        result.raise_error()
        return result.result

    def run_error(self, source: str) -> BaseException | None:
        """Run a cell; the exception it raised (None when it worked)."""
        result = self.run_cell(source)
        return result.error_in_exec or result.error_before_exec


def shell_in(folder) -> TestingShell:
    """The one shell of the test process, with fresh magics working in ``folder`` (a new workspace)."""
    os.chdir(folder)
    shell = TestingShell.instance()
    shell.user_ns.pop("__session__", None)
    load_ipython_extension(shell)  # new magics: a fresh notebook pipeline and workspace
    return shell
