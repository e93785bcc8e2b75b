"""Prepare: make a small regression data set and split it into train and test files."""
import argparse
import csv
import os
import random

from features import make_row

parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int, default=200)
parser.add_argument("--output", required=True)
args = parser.parse_args()

rng = random.Random(42)
rows = [make_row(rng) for _ in range(args.rows)]
split = int(len(rows) * 0.8)
for name, part in (("train.csv", rows[:split]), ("test.csv", rows[split:])):
    with open(os.path.join(args.output, name), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x1", "x2", "y"])
        writer.writerows(part)
print(f"wrote {split} training rows and {len(rows) - split} test rows")
