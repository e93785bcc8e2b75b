"""``mlpipe python SCRIPT [ARGS...]``: run a driver script written for Azure ML SDK v1 with the
``azureml`` import paths backed by this package, unchanged, as ``python SCRIPT ARGS`` would run it."""
from __future__ import annotations

import os
import runpy
import sys
import traceback

from mlpipe_jupyter import compat
from mlpipe_jupyter.cli.common import EXIT_FAILED
from mlpipe_jupyter.errors import MlpipeError


def main(args) -> int:
    script = os.path.abspath(args.script)
    if not os.path.isfile(script):
        print(f"mlpipe: error: no script at '{args.script}'.", file=sys.stderr)
        return EXIT_FAILED
    compat.enable()
    sys.argv = [args.script, *args.args]
    sys.path[0] = os.path.dirname(script)  # what `python SCRIPT` puts first
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_FAILED)
    except MlpipeError as e:  # the engine's errors are one paragraph: no traceback through our code
        frames = traceback.extract_tb(e.__traceback__)
        where = next((f for f in reversed(frames) if os.path.abspath(f.filename) == script), None)
        at = f" (at {args.script}:{where.lineno})" if where else ""
        print(f"{type(e).__name__}{at}: {e}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception:
        traceback.print_exc()
        return EXIT_FAILED
    return 0
