"""Argument parsing of ``%%step`` and ``%pipeline``, apart from running them.

Every mistake is a ``MagicUsageError`` with one short message, which the magics show as IPython's
``UsageError`` (no traceback). The same parsers read ``%%step`` cells of a notebook file for
``mlpipe run``, which therefore need not load IPython.
"""
from __future__ import annotations

import argparse
import json
import shlex

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_data_name, check_param_name, check_step_name
from mlpipe_jupyter.notebook.cell_steps import CellSpec
from mlpipe_jupyter.sdk.parameters import parse_value


class MagicUsageError(UserError):
    """A mistake in a magic's line."""


class HelpShown(Exception):
    """``-h`` printed its help; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise MagicUsageError(f"{self.prog}: {message}")

    def exit(self, status=0, message=None):
        if status:
            raise MagicUsageError(f"{self.prog}: {(message or '').strip()}")
        raise HelpShown()


def _usage(check, *args):
    """A name check from model/names.py, its UserError as a mistake in the magic's line."""
    try:
        return check(*args)
    except UserError as e:
        raise MagicUsageError(str(e)) from None


def split(line: str, prog: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as e:
        raise MagicUsageError(f"{prog}: {e} in {line!r}") from None


def parse_params(items, prog: str, what="--param") -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MagicUsageError(f"{prog}: {what} {item!r} is not of the form NAME=VALUE.")
        _usage(check_param_name, key, f"{prog}: {what}")
        out[key] = parse_value(value)
    return out


# -- %%step ---------------------------------------------------------------------------------------------------
def _step_parser() -> _Parser:
    p = _Parser(prog="%%step", description="Record this cell as a step of the notebook's pipeline.")
    p.add_argument("name", help="step name")
    p.add_argument("--inputs", nargs="+", default=[], metavar="NAME[=SOURCE]",
                   help="NAME: the output of another step; NAME=SOURCE: a path relative to the notebook, "
                        "DATASTORE:PATH or dataset:NAME[:VERSION]")
    p.add_argument("--outputs", nargs="+", default=[], metavar="NAME", help="folders the cell writes")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a pipeline parameter")
    p.add_argument("--compute", metavar="TARGET", help="compute target (default: the configured one)")
    p.add_argument("--environment", metavar="ENV",
                   help="a registered NAME[:VERSION], docker:IMAGE, a requirements .txt, a conda .yml or a Python "
                        "interpreter")
    p.add_argument("--no-reuse", action="store_true", help="always rerun this step")
    p.add_argument("--cold", action="store_true", help="start this step in a fresh interpreter, never warm")
    p.add_argument("--source-dir", metavar="DIR", help="snapshot this folder with the cell (relative to the notebook)")
    p.add_argument("--run", action="store_true", help="also run the cell now, on the latest upstream outputs")
    return p


def parse_step_line(line: str, body: str, default_compute: str = "local") -> tuple[CellSpec, bool]:
    """The cell's spec and whether ``--run`` was given."""
    prog = "%%step"
    args = _step_parser().parse_args(split(line, prog))
    _usage(check_step_name, args.name, prog)
    inputs, seen = [], set()
    for item in args.inputs:
        name, sep, source = item.partition("=")
        _usage(check_data_name, f"{prog} {args.name}: input", name)
        if sep and not source:
            raise MagicUsageError(f"{prog} {args.name}: input {item!r} has an empty SOURCE.")
        if name in seen:
            raise MagicUsageError(f"{prog} {args.name}: input '{name}' is given twice.")
        seen.add(name)
        inputs.append([name, source if sep else None])
    for name in args.outputs:
        _usage(check_data_name, f"{prog} {args.name}: output", name)
        if name in seen:
            raise MagicUsageError(f"{prog} {args.name}: '{name}' is both an input and an output.")
        seen.add(name)
    if len(set(args.outputs)) != len(args.outputs):
        raise MagicUsageError(f"{prog} {args.name}: an output name is given twice.")
    spec = CellSpec(name=args.name, body=body.rstrip(), inputs=inputs, outputs=list(args.outputs),
                    params=parse_params(args.param, f"{prog} {args.name}"), compute=args.compute or default_compute,
                    environment=args.environment, allow_reuse=not args.no_reuse, source_dir=args.source_dir,
                    cold=args.cold)
    return spec, args.run


def _param_text(value) -> str:
    """A parameter value as ``--param`` writes it: read back by ``parse_value`` as the same value."""
    if isinstance(value, str) and parse_value(value) == value and isinstance(parse_value(value), str):
        return value
    return json.dumps(value)


def _option(flag: str, value: str) -> str:
    """``--flag VALUE``; ``--flag=VALUE`` when the value starts with '-', which argparse would take for an option."""
    return f"{flag}={shlex.quote(value)}" if value.startswith("-") else f"{flag} {shlex.quote(value)}"


def render_step_line(spec: CellSpec, default_compute: str = "local", run: bool = False) -> str:
    """The ``%%step`` line (without ``%%step``) that ``parse_step_line`` reads back as ``spec``: what the
    designer writes into a cell after editing its step."""
    parts = [shlex.quote(spec.name)]
    if spec.inputs:
        parts.append("--inputs " + " ".join(shlex.quote(n if src is None else f"{n}={src}") for n, src in spec.inputs))
    if spec.outputs:
        parts.append("--outputs " + " ".join(shlex.quote(n) for n in spec.outputs))
    parts += ["--param " + shlex.quote(f"{k}={_param_text(v)}") for k, v in spec.params.items()]
    if spec.compute != default_compute:
        parts.append(_option("--compute", spec.compute))
    if spec.environment is not None:
        parts.append(_option("--environment", spec.environment))
    if not spec.allow_reuse:
        parts.append("--no-reuse")
    if spec.cold:
        parts.append("--cold")
    if spec.source_dir is not None:
        parts.append(_option("--source-dir", spec.source_dir))
    if run:
        parts.append("--run")
    return " ".join(parts)


def step_cell_line(spec: CellSpec, default_compute: str = "local", run: bool = False) -> str:
    """The first line of a ``%%step`` cell for ``spec``."""
    return "%%step " + render_step_line(spec, default_compute, run)


# -- %pipeline ----------------------------------------------------------------------------------------------------
def _pipeline_parser() -> _Parser:
    p = _Parser(prog="%pipeline", description="Work with the notebook's pipeline.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    s = sub.add_parser("submit", help="submit the pipeline and show its monitor")
    s.add_argument("--experiment", metavar="E")
    s.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    s.add_argument("--regenerate", action="store_true", help="rerun every step")
    s.add_argument("--wait", action="store_true", help="block until the run ends and return it")
    pb = sub.add_parser("publish", help="publish the pipeline; print its id, REST endpoint and a curl example")
    pb.add_argument("name")
    pb.add_argument("--description", metavar="D")
    pb.add_argument("--version", metavar="V")
    sh = sub.add_parser("show", help="show the pipeline designer (the list of steps without widgets)")
    sh.add_argument("--panel", action="store_true", help="open the designer in a JupyterLab panel")
    sub.add_parser("validate", help="list every problem of the pipeline")
    sub.add_parser("steps", help="list the steps")
    r = sub.add_parser("runs", help="the run history: a table to sort, filter, compare runs in and open their files")
    r.add_argument("--experiment", metavar="E")
    r.add_argument("--all", action="store_true", help="runs of every experiment")
    r.add_argument("--limit", type=int, default=20, metavar="N", help="the N newest runs (default 20)")
    r.add_argument("--status", metavar="S", help="only runs with this status (Completed, Failed, Running...)")
    e = sub.add_parser("export", help="save the pipeline as YAML or JSON")
    e.add_argument("path")
    ld = sub.add_parser("load", help="replace the pipeline with one from a YAML or JSON file")
    ld.add_argument("path")
    sub.add_parser("clear", help="remove every step")
    rm = sub.add_parser("remove", help="remove one step")
    rm.add_argument("step")
    sn = sub.add_parser("save-notebook", help="save the pipeline into a notebook's metadata")
    sn.add_argument("path", nargs="?")
    return p


def parse_pipeline_line(line: str) -> argparse.Namespace:
    args, extra = _pipeline_parser().parse_known_args(split(line, "%pipeline"))
    if extra:
        where = f"%pipeline {args.command}" if args.command else "%pipeline"
        raise MagicUsageError(f"{where}: unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        raise MagicUsageError("%pipeline: give a command: submit, publish, show, validate, steps, runs, export, load, "
                              "clear, remove or save-notebook.")
    if args.command == "submit":
        args.params = parse_params(args.param, "%pipeline submit")
    if args.command == "runs" and args.limit < 1:
        raise MagicUsageError(f"%pipeline runs: --limit must be 1 or more, not {args.limit}.")
    if args.command == "publish":
        for what, value in (("NAME", args.name), ("--description", args.description), ("--version", args.version)):
            if value is not None and not value.strip():
                raise MagicUsageError(f"%pipeline publish: {what} is empty; give it a text, or leave the option out.")
    return args
