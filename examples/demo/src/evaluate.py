"""Evaluate: mean squared error of the model on the test split."""
import argparse
import json
import os

from features import read_rows
from mlpipe_jupyter import Run

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--model", required=True)
args = parser.parse_args()

model = json.load(open(os.path.join(args.model, "model.json")))
rows = read_rows(os.path.join(args.data, "test.csv"))
mse = sum((model["w1"] * x1 + model["w2"] * x2 + model["b"] - y) ** 2 for x1, x2, y in rows) / len(rows)
Run.get_context().log("test_mse", mse)
print(f"test MSE: {mse:.4f}")
