"""The ``mlpipe`` command: create a workspace, run saved pipelines, and look at the run history.

This module is the router: it parses the command line and hands it to the one module of the chosen
command (init.py, run.py, runs.py, show.py, logs.py, cancel.py, python.py, serve.py), loaded only then, so a quick command
starts quickly.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from mlpipe_jupyter.errors import MlpipeError
from mlpipe_jupyter.version import __version__

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line, like every other user error."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"mlpipe: error: {message} (see `{self.prog} --help`).\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", "-w", metavar="PATH", default=argparse.SUPPRESS,
                        help="a folder at or below the workspace (default: the current directory)")
    parser = _Parser(prog="mlpipe", description="Run Azure ML style pipelines on this machine and browse their runs.")
    parser.add_argument("--workspace", "-w", metavar="PATH", default=None,
                        help="a folder at or below the workspace (default: the current directory)")
    parser.add_argument("--version", action="version", version=f"mlpipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("init", help="create a workspace", description="Create a workspace (.mlpipe/ folder).")
    p.add_argument("name", nargs="?", help="workspace name (default: the folder's name)")
    p.add_argument("--path", default=".", help="folder to create it in (default: the current directory)")
    p.set_defaults(command_module="init")

    p = sub.add_parser("run", parents=[common], help="run a saved pipeline file",
                       description="Run a pipeline saved with Pipeline.save (YAML or JSON), streaming its logs.")
    p.add_argument("pipeline_file")
    p.add_argument("--experiment", "-e", help="experiment name (default: the file's name without extension)")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="set a pipeline parameter (repeatable)")
    p.add_argument("--regenerate", action="store_true", help="rerun every step instead of reusing earlier results")
    p.add_argument("--detach", "-d", action="store_true", help="run in the background and return at once")
    p.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(command_module="run")

    p = sub.add_parser("runs", parents=[common], help="list runs, newest first")
    p.add_argument("--experiment", "-e")
    p.add_argument("--limit", "-n", type=int, default=20, help="how many runs (default 20)")
    p.set_defaults(command_module="runs")

    p = sub.add_parser("show", parents=[common], help="a run's steps, reuse reasons, errors, metrics and outputs")
    p.add_argument("run_id", help="a run id, a unique beginning of one, or 'latest'")
    p.set_defaults(command_module="show")

    p = sub.add_parser("logs", parents=[common], help="print a run's log")
    p.add_argument("run_id", help="a run id, a unique beginning of one, or 'latest'")
    p.add_argument("--step", "-s", help="only this step of a pipeline run")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the run ends")
    p.set_defaults(command_module="logs")

    p = sub.add_parser("python", help="run a script written for Azure ML SDK v1, unchanged",
                       description="Run a Python script with the azureml import paths of Azure ML SDK v1 backed "
                                   "by mlpipe-jupyter, so `from azureml.core import ...` code runs on this machine.")
    p.add_argument("script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    p.set_defaults(command_module="python")

    p = sub.add_parser("cancel", parents=[common], help="cancel a running run (from any process)")
    p.add_argument("run_id", help="a run id, a unique beginning of one, or 'latest'")
    p.add_argument("--no-wait", action="store_true", help="return without waiting for the run to stop")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to stop (default 60)")
    p.set_defaults(command_module="cancel")

    p = sub.add_parser("serve", parents=[common], help="serve the REST API (published pipelines, runs)",
                       description="Serve the workspace's REST API (run published pipelines and endpoints, "
                                   "watch runs) from a headless Jupyter Server with a token.")
    p.add_argument("--port", type=int, default=8888, help="port (default 8888)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--log-level", default="WARN", help="Jupyter Server's log level (default WARN)")
    p.add_argument("--allow-root", action="store_true", help="run as root (Jupyter Server refuses it otherwise)")
    p.add_argument("--unknown-parameters", choices=["reject", "ignore"], default="reject",
                   help="a trigger assigning a parameter its pipeline lacks: reject it with 400 (default), or "
                        "ignore the name as Azure ML does")
    p.set_defaults(command_module="serve")

    # hidden (no help): the background process a server starts for a queued run (a REST call, a schedule)
    p = sub.add_parser("_trigger", parents=[common])
    p.add_argument("run_id", help="the queued run, claimed by the server")
    p.set_defaults(command_module="trigger")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # the chosen command's module only: `mlpipe runs` never loads the runner, the planner or Docker
        command = importlib.import_module(f"mlpipe_jupyter.cli.{args.command_module}")
        return command.main(args)
    except MlpipeError as e:
        print(f"mlpipe: error: {e}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mlpipe logs ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED

