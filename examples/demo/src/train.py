"""Train: linear regression by gradient descent, logging the loss as it goes."""
import argparse
import json
import os

from features import read_rows
from mlpipe_jupyter import Run

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--learning-rate", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=60)
args = parser.parse_args()

run = Run.get_context()
rows = read_rows(os.path.join(args.data, "train.csv"))
w1 = w2 = b = 0.0
for epoch in range(args.epochs):
    g1 = g2 = gb = loss = 0.0
    for x1, x2, y in rows:
        err = w1 * x1 + w2 * x2 + b - y
        g1, g2, gb, loss = g1 + err * x1, g2 + err * x2, gb + err, loss + err * err
    n = len(rows)
    w1, w2, b = w1 - args.learning_rate * g1 / n, w2 - args.learning_rate * g2 / n, b - args.learning_rate * gb / n
    run.log("loss", loss / n)
    if epoch % 20 == 0:
        print(f"epoch {epoch}: loss {loss / n:.4f}")
with open(os.path.join(args.model, "model.json"), "w") as f:
    json.dump({"w1": w1, "w2": w2, "b": b}, f)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.json", "w") as f:
    json.dump({"w1": w1, "w2": w2, "b": b}, f)
print(f"model: y = {w1:.3f}*x1 + {w2:.3f}*x2 + {b:.3f}")
