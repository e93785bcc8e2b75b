"""Fit a logistic regression on the prepared training table and save it."""
import argparse
import os
import pickle
import warnings

import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from mlpipe_jupyter import Run

parser = argparse.ArgumentParser()
parser.add_argument("--prepared", required=True, help="input folder from prep")
parser.add_argument("--model", required=True, help="output folder")
parser.add_argument("--C", type=float, default=1.0, help="inverse regularization strength")
args = parser.parse_args()

run = Run.get_context()
warnings.filterwarnings("ignore", category=ConvergenceWarning)  # the early, short fits on purpose
train = pd.read_csv(os.path.join(args.prepared, "train.csv"))
features, labels = train.drop(columns="target"), train["target"]
for iterations in (1, 2, 5, 10, 20, 50):
    partial = LogisticRegression(C=args.C, max_iter=iterations).fit(features, labels)
    run.log("train_accuracy", partial.score(features, labels))
model = LogisticRegression(C=args.C, max_iter=500).fit(features, labels)
with open(os.path.join(args.model, "model.pkl"), "wb") as f:
    pickle.dump(model, f)
print(f"trained with C={args.C}: training accuracy {model.score(features, labels):.3f}")
