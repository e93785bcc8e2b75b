"""The demo pipeline: prepare -> train -> evaluate, as an Azure ML SDK v1 user would write it.

Run it twice: the second time every step is reused. Change the learning rate with
``python demo.py --learning-rate 0.2`` and only train and evaluate rerun.
"""
import argparse
import os

from mlpipe_jupyter import (Experiment, Pipeline, PipelineData, PipelineParameter, PythonScriptStep, RunConfiguration,
                            Workspace)

parser = argparse.ArgumentParser()
parser.add_argument("--learning-rate", type=float, default=0.1)
parser.add_argument("--workspace", default=os.path.dirname(os.path.abspath(__file__)))
args = parser.parse_args()

ws = Workspace.create("demo", path=args.workspace, exist_ok=True)
src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")

learning_rate = PipelineParameter("learning_rate", default_value=0.1)
prepared = PipelineData("prepared", datastore=ws.get_default_datastore())
model = PipelineData("model", datastore=ws.get_default_datastore())

prep = PythonScriptStep("prep.py", name="prep", source_directory=src, arguments=["--output", prepared],
                        outputs=[prepared])
train = PythonScriptStep("train.py", name="train", source_directory=src,
                         arguments=["--data", prepared, "--model", model, "--learning-rate", learning_rate],
                         inputs=[prepared], outputs=[model], runconfig=RunConfiguration())
evaluate = PythonScriptStep("evaluate.py", name="evaluate", source_directory=src,
                            arguments=["--data", prepared, "--model", model], inputs=[prepared, model])

pipeline = Pipeline(ws, [evaluate], description="demo: prep -> train -> evaluate")
run = Experiment(ws, "demo").submit(pipeline, pipeline_parameters={"learning_rate": args.learning_rate})
run.wait_for_completion(show_output=True)

print()
for step in run.get_steps():
    print(f"{step.name:<9} {step.get_status():<10} {'reused' if step.reused else 'ran':<7} "
          f"{step.get_details()['reuse_reason']}")
print("test MSE:", run.find_step_run("evaluate")[0].get_metrics()["test_mse"])
