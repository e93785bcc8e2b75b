"""What a step and the runner agree on: the variables a step finds its run by, the file its
``Run.get_context()`` writes metrics and tags into (which the runner reads as untrusted data), and
where a step run's log is kept.

Small on purpose: every step script that logs a metric imports this."""
from __future__ import annotations

METRICS_FILE = ".metrics.jsonl"
LOG_FILE = "logs/std_log.txt"  # in a step run's folder: every byte the step printed (Azure's name)
RUN_DIR_VAR = "MLPIPE_RUN_DIR"  # the step's run folder: metrics, images, uploaded files
STEP_NAME_VAR = "MLPIPE_STEP_NAME"
INPUT_DATASETS_VAR = "MLPIPE_INPUT_DATASETS"  # JSON: input name -> {"path", "kind", "options"}
RUN_ID_VAR, ROOT_RUN_ID_VAR, EXPERIMENT_VAR = "AZUREML_RUN_ID", "AZUREML_ROOT_RUN_ID", "AZUREML_ARM_PROJECT_NAME"
