"""Reading tabular data: delimited or parquet files, as a TabularDataset and a step's input dataset see them."""
from __future__ import annotations

import importlib.util
import os

from mlpipe_jupyter.data.partitions import PartitionFormat, path_on_source
from mlpipe_jupyter.errors import UserError


def _files(paths) -> list[str]:
    """Each path a file or a folder of them (read in name order)."""
    out = []
    for p in paths:
        out += sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs) if os.path.isdir(p) else [p]
    return out


def read_table(paths, options: dict):
    """One table from the files at ``paths``; ``options["format"]`` is "delimited" (the default) or "parquet".

    A partitioned dataset in a step (its options name ``partition_roots``, see data/inputs.py) gets its
    partition columns from each file's path on its source."""
    if options.get("partition_format"):
        roots = options.get("partition_roots") or {}
        files = []
        for p in paths:
            for f in _files([p]):
                rel = os.path.relpath(f, p) if os.path.isdir(p) else ""
                files.append((f, path_on_source(rel, roots) if roots else f))
        return read_files(files, options)
    if options.get("format") == "parquet":
        return read_parquet(paths)
    return read_delimited(paths, options)


def read_files(files: list[tuple[str, str]], options: dict):
    """One table from (local file, path on its source) pairs; a ``partition_format`` adds its keys as the
    last columns, from each file's path on its source (files it does not fit are left out)."""
    if not options.get("partition_format"):
        return read_table([f for f, _ in files], options)
    fmt = PartitionFormat(options["partition_format"])
    plain = {k: v for k, v in options.items() if k not in ("partition_format", "partition_roots")}
    frames = []
    for local, source in files:
        values = fmt.values(source)
        if values is None or os.path.basename(local).startswith(("_", ".")):
            continue
        frame = read_table([local], plain)
        for key in fmt.keys:
            frame[key] = values[key]
        frames.append(frame)
    return _concat(frames)


def read_delimited(paths, options: dict):
    """One table from delimited files, each path a file or a folder of them (read in name order)."""
    import pandas as pd

    sep = options.get("separator", ",")
    header = 0 if options.get("header", True) else None
    frames = [pd.read_csv(f, sep=sep, header=header) for f in _files(paths)]
    return _concat(frames)


def read_parquet(paths):
    """One table from parquet files; pandas reads them through pyarrow (or fastparquet)."""
    import pandas as pd

    if not any(importlib.util.find_spec(engine) for engine in ("pyarrow", "fastparquet")):
        raise UserError("Reading parquet files needs pyarrow, which is not installed in this Python "
                        "environment: pip install pyarrow (or add it to the step's environment).")
    frames = [pd.read_parquet(f) for f in _files(paths) if not os.path.basename(f).startswith(("_", "."))]
    return _concat(frames)


def _concat(frames):
    import pandas as pd

    if not frames:
        raise UserError("The tabular dataset has no files to read.")
    return pd.concat(frames, ignore_index=True) if len(frames) != 1 else frames[0]
