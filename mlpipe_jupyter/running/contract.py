"""What a step and the runner agree on: the variables a step finds its run by, the file its
``Run.get_context()`` writes metrics and tags into (which the runner reads as untrusted data), and
where a step run's log is kept.

Small on purpose: every step script that logs a metric imports this."""
from __future__ import annotations

METRICS_FILE = ".metrics.jsonl"
LOG_FILE = "logs/std_log.txt"  # in a step run's folder: every byte the step printed (Azure's name)
# The same file under the names Azure's runtimes give it, linked when the step ends (never a second writer)
LOG_ALIASES = ("user_logs/std_log.txt", "azureml-logs/70_driver_log.txt")
RUN_DIR_VAR = "MLPIPE_RUN_DIR"  # the step's run folder: metrics, images, uploaded files
STEP_NAME_VAR = "MLPIPE_STEP_NAME"
INPUT_DATASETS_VAR = "MLPIPE_INPUT_DATASETS"  # JSON: input name -> {"path", "kind", "options"}
WORKSPACE_VAR = "MLPIPE_WORKSPACE_DIR"  # the workspace's folder, for Run.get_context().experiment.workspace;
# unset where the workspace is not reachable (in a container)
PARENT_FIELD = "for_parent"  # true in a metrics or tag record the step logged on its pipeline run
CHILD_FIELD = "for_child"  # the id of the child run (Run.child_run, create_children) a record is about
CHILDREN_DIR = ".children"  # in the step's run folder: <child id>/ holds the files a child run uploaded
RUN_ID_VAR, ROOT_RUN_ID_VAR, EXPERIMENT_VAR = "AZUREML_RUN_ID", "AZUREML_ROOT_RUN_ID", "AZUREML_ARM_PROJECT_NAME"
# Azure ML SDK v1's ``azureml`` import paths, inside this package: on every step's PYTHONPATH, last, so a
# step script written for Azure (``from azureml.core import Run``) runs unchanged on every compute target
AZUREML_IMPORT_ROOT = "compat/root"
