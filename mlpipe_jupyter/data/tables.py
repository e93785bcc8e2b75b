"""Reading tabular data: delimited files, as a TabularDataset and a step's input dataset see them."""
from __future__ import annotations

import os


def read_delimited(paths, options: dict):
    """One table from delimited files, each path a file or a folder of them (read in name order)."""
    import pandas as pd

    sep = options.get("separator", ",")
    header = 0 if options.get("header", True) else None
    frames = []
    for p in paths:
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs) if os.path.isdir(p) else [p]
        frames += [pd.read_csv(f, sep=sep, header=header) for f in files]
    return pd.concat(frames, ignore_index=True) if len(frames) != 1 else frames[0]
