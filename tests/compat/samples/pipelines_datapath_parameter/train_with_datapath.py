import argparse
import os

parser = argparse.ArgumentParser("train")
parser.add_argument("--arg1", type=str, help="sample string argument")
parser.add_argument("--arg2", type=str, help="sample datapath argument")
args = parser.parse_args()

print("Sample string argument  : %s" % args.arg1)
print("Sample datapath argument: %s" % args.arg2)
