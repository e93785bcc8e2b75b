"""Split the iris data set (it ships with scikit-learn) into train and test tables."""
import argparse
import os

from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from mlpipe_jupyter import Run

parser = argparse.ArgumentParser()
parser.add_argument("--test-size", type=float, default=0.25)
parser.add_argument("--prepared", required=True, help="output folder")
args = parser.parse_args()

run = Run.get_context()
frame = load_iris(as_frame=True).frame
train, test = train_test_split(frame, test_size=args.test_size, random_state=0, stratify=frame["target"])
train.to_csv(os.path.join(args.prepared, "train.csv"), index=False)
test.to_csv(os.path.join(args.prepared, "test.csv"), index=False)
run.log("train_rows", len(train))
run.log("test_rows", len(test))
print(f"prepared {len(train)} training rows and {len(test)} test rows")
