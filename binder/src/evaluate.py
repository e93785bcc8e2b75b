"""Score the trained model on the held-out test table."""
import argparse
import os
import pickle

import pandas as pd
from sklearn.metrics import accuracy_score

from mlpipe_jupyter import Run

parser = argparse.ArgumentParser()
parser.add_argument("--prepared", required=True, help="input folder from prep")
parser.add_argument("--model", required=True, help="input folder from train")
args = parser.parse_args()

run = Run.get_context()
test = pd.read_csv(os.path.join(args.prepared, "test.csv"))
with open(os.path.join(args.model, "model.pkl"), "rb") as f:
    model = pickle.load(f)
accuracy = accuracy_score(test["target"], model.predict(test.drop(columns="target")))
run.log("accuracy", accuracy)
print(f"test accuracy {accuracy:.3f}")
