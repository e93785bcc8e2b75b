"""ParallelRunConfig and ParallelRunStep: Azure ML's batch scoring, in parallel processes on this machine.

A ParallelRunStep is a PythonScriptStep, so planning, reuse, the runner and every compute target handle
it as any step. Its script is a small launcher that starts running/parallel_driver.py with the
configuration as arguments (Azure's argument names). The launcher must be in the step's snapshot
without being written into the user's folder, so the step's source directory is a mirror of the
user's: one link per file the snapshot would take, plus the launcher, kept current each time the
pipeline is turned into its document (submit, validate, save). Links keep the snapshot's content the
user's own files at that moment, so an edit after the step was built is seen, as in Azure.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.environment import EnvironmentDefinition
from mlpipe_jupyter.planning.snapshot import snapshot_files
from mlpipe_jupyter.running.parallel_driver import LOGGING_LEVELS, parse_size
from mlpipe_jupyter.sdk.data import (AbstractDataset, DatasetConsumptionConfig, FileDataset, InputBinding, PipelineData,
                                     TabularDataset)
from mlpipe_jupyter.sdk.parameters import PipelineParameter
from mlpipe_jupyter.sdk.run_config import RunConfiguration
from mlpipe_jupyter.sdk.step import PythonScriptStep

OUTPUT_ACTIONS = ("append_row", "summary_only")
DEFAULT_MINI_BATCH_SIZE = {"file": 10, "tabular": "1MB"}  # Azure's: 10 files, or 1 MB of a table
LAUNCHER = "_parallel_run_main.py"
LAUNCHER_SOURCE = ('"""Starts a ParallelRunStep (written by mlpipe-jupyter next to a link to each source file)."""\n'
                   "from mlpipe_jupyter.running.parallel_driver import main\n\n"
                   'if __name__ == "__main__":\n    main()\n')
# the user's files are filtered already; the mirror's own ignore file replaces any rules of theirs
MIRROR_IGNORE = "# every file here was chosen by the source folder's own rules\n"
RESERVED_ARGUMENTS = ("mini_batch_size", "partition_keys", "error_threshold", "allowed_failed_count",
                      "allowed_failed_percent", "output", "output_action", "logging_level", "process_count_per_node",
                      "run_invocation_timeout", "run_max_try", "append_row_file_name")
STEP_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
FILE_NAME_FORBIDDEN = re.compile(r'[~"#%&*:<>?/\\{|}]')


def _count(value, name, minimum, where="ParallelRunConfig"):
    """An int of at least ``minimum`` (or a PipelineParameter whose default is one)."""
    shown = value.default_value if isinstance(value, PipelineParameter) else value
    if isinstance(shown, bool) or not isinstance(shown, int) or shown < minimum:
        raise UserError(f"{where}: {name} must be a whole number of at least {minimum} (got {shown!r}).")
    return value


class ParallelRunConfig:
    """How a ParallelRunStep cuts its input and runs ``entry_script`` (Azure ML SDK v1 names and defaults).

    All processes run on the one machine of the compute target; ``node_count`` is checked and kept,
    ``process_count_per_node`` (default: this machine's cores) is how many run at once."""

    def __init__(self, environment, entry_script, error_threshold, output_action, compute_target, node_count,
                 process_count_per_node=None, mini_batch_size=None, source_directory=None, description=None,
                 logging_level="INFO", run_invocation_timeout=60, run_max_try=3, append_row_file_name=None,
                 allowed_failed_count=None, allowed_failed_percent=None, partition_keys=None):
        where = "ParallelRunConfig"
        if not isinstance(environment, EnvironmentDefinition):
            raise UserError(f"{where}: environment must be an Environment (got {environment!r}); "
                            "Environment('name') runs in this Python.")
        if not isinstance(entry_script, str) or not entry_script.strip():
            raise UserError(f"{where}: entry_script must name the script defining init() and run(mini_batch) "
                            f"(got {entry_script!r}).")
        if not isinstance(output_action, str) or output_action.lower() not in OUTPUT_ACTIONS:
            raise UserError(f"{where}: output_action must be 'append_row' or 'summary_only' (got {output_action!r}).")
        if isinstance(error_threshold, bool) or not isinstance(error_threshold, int) or error_threshold < -1:
            raise UserError(f"{where}: error_threshold must be a whole number of at least -1 (-1 ignores every "
                            f"failure; got {error_threshold!r}).")
        if allowed_failed_count is not None and (isinstance(allowed_failed_count, bool) or not isinstance(
                allowed_failed_count, int) or allowed_failed_count < -1):
            raise UserError(f"{where}: allowed_failed_count must be a whole number of at least -1 (-1 ignores every "
                            f"failure; got {allowed_failed_count!r}).")
        if allowed_failed_percent is not None and (isinstance(allowed_failed_percent, bool) or not isinstance(
                allowed_failed_percent, (int, float)) or not 0 <= allowed_failed_percent <= 100):
            raise UserError(f"{where}: allowed_failed_percent must be a number from 0 to 100 "
                            f"(got {allowed_failed_percent!r}).")
        if mini_batch_size is not None:
            shown = mini_batch_size.default_value if isinstance(mini_batch_size, PipelineParameter) else mini_batch_size
            if parse_size(shown) is None:
                raise UserError(f"{where}: mini_batch_size must be a number of files (10) or a size such as '10KB', "
                                f"'1MB' or '1GB' for a table (got {shown!r}).")
        if process_count_per_node is not None:
            _count(process_count_per_node, "process_count_per_node", 1)
        _count(node_count, "node_count", 1)
        if partition_keys is not None:
            keys = partition_keys.default_value if isinstance(partition_keys, PipelineParameter) else partition_keys
            if isinstance(partition_keys, PipelineParameter) and isinstance(keys, str):
                try:  # as in Azure: a parameter's value is the list as JSON
                    keys = json.loads(keys)
                except ValueError:
                    keys = None
            if isinstance(keys, str) or not isinstance(keys, (list, tuple)) or not keys \
                    or not all(isinstance(k, str) and k for k in keys):
                raise UserError(f"{where}: partition_keys must be a non-empty list of the input datasets' partition "
                                f"keys (got {partition_keys!r}).")
            if mini_batch_size is not None:
                raise UserError(f"{where}: give partition_keys or mini_batch_size, not both: with partition_keys "
                                "each mini batch is one partition of the input.")
        _count(run_invocation_timeout, "run_invocation_timeout", 1)
        _count(run_max_try, "run_max_try", 1)
        level = logging_level.default_value if isinstance(logging_level, PipelineParameter) else logging_level
        if not isinstance(level, str) or level.upper() not in LOGGING_LEVELS:
            raise UserError(f"{where}: logging_level must be one of {', '.join(LOGGING_LEVELS)} (got {level!r}).")
        row_file = append_row_file_name
        if row_file is not None and (not isinstance(row_file, str) or not row_file.strip()
                                     or FILE_NAME_FORBIDDEN.search(row_file)):
            raise UserError(f"{where}: append_row_file_name must be a plain file name, without a folder or any of "
                            f'~"#%&*:<>?/\\{{|}} (got {append_row_file_name!r}).')
        self.environment = environment
        self.entry_script = entry_script.strip()
        self.source_directory = source_directory.strip() if isinstance(source_directory, str) else source_directory
        self.error_threshold = error_threshold
        self.output_action = output_action
        self.compute_target = compute_target
        self.node_count = node_count
        self.process_count_per_node = process_count_per_node
        self.mini_batch_size = mini_batch_size
        self.description = description
        self.logging_level = logging_level
        self.run_invocation_timeout = run_invocation_timeout
        self.run_max_try = run_max_try
        self.append_row_file_name = append_row_file_name
        self.allowed_failed_count = allowed_failed_count
        self.allowed_failed_percent = allowed_failed_percent
        self.partition_keys = partition_keys


def _input_kind(item, step_name) -> str:
    """'file' or 'tabular' for a ParallelRunStep input; anything else is refused, naming it."""
    if isinstance(item, DatasetConsumptionConfig):
        dataset = item.dataset  # or a PipelineParameter whose default is the dataset, chosen at submit
        dataset = dataset.default_value if isinstance(dataset, PipelineParameter) else dataset
        if isinstance(dataset, TabularDataset):
            return "tabular"
        if isinstance(dataset, FileDataset):
            return "file"
    elif isinstance(item, (PipelineData, InputBinding)):  # another step's output: a folder of files
        return "file"
    elif isinstance(item, AbstractDataset):
        raise UserError(f"ParallelRunStep '{step_name}': give the dataset {item!r} a name with "
                        "ds.as_named_input('name'); the name is how the step finds it.")
    raise UserError(f"ParallelRunStep '{step_name}': input {item!r} is not a named FileDataset or TabularDataset "
                    "(ds.as_named_input('name')) or another step's output.")


class ParallelRunStep(PythonScriptStep):
    """Runs ``parallel_run_config.entry_script`` over mini-batches of ``inputs`` in parallel processes.

    ``inputs`` are all FileDatasets (run() gets a list of file paths) or all TabularDatasets (run() gets
    a pandas DataFrame); ``output`` receives ``parallel_run_step.txt`` with output_action='append_row';
    ``side_inputs`` reach every process whole; ``arguments`` (keyword style) reach the entry script."""

    def __init__(self, name, parallel_run_config, inputs, output=None, side_inputs=None, arguments=None,
                 allow_reuse=True):
        if not isinstance(name, str) or not 3 <= len(name) <= 32 or not STEP_NAME.match(name):
            raise UserError(f"ParallelRunStep name {name!r} must be 3 to 32 lowercase letters, digits or dashes, "
                            "starting with a letter and not ending with a dash (as Azure ML requires).")
        config = parallel_run_config
        if not isinstance(config, ParallelRunConfig):
            raise UserError(f"ParallelRunStep '{name}': parallel_run_config must be a ParallelRunConfig (got {config!r}).")
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise UserError(f"ParallelRunStep '{name}': inputs must be a list of at least one named dataset.")
        kinds = {getattr(i, "name", repr(i)): _input_kind(i, name) for i in inputs}
        if len(set(kinds.values())) > 1:
            shown = ", ".join(f"'{n}' is {'a FileDataset' if k == 'file' else 'a TabularDataset'}" for n, k in kinds.items())
            raise UserError(f"ParallelRunStep '{name}': inputs must all be FileDatasets or all TabularDatasets "
                            f"({shown}).")
        kind = next(iter(kinds.values()))
        if config.partition_keys is not None:
            _check_partitioned(name, inputs, config.partition_keys)
        action = config.output_action.lower()
        if output is None and action != "summary_only":
            raise UserError(f"ParallelRunStep '{name}': output_action='{config.output_action}' writes its rows to "
                            "the step's output; pass output=PipelineData(...) or OutputFileDatasetConfig(...).")
        if output is not None and not isinstance(output, PipelineData):
            raise UserError(f"ParallelRunStep '{name}': output {output!r} is not PipelineData or OutputFileDatasetConfig.")
        user_args = list(arguments or [])
        _check_arguments(name, user_args)
        source = config.source_directory
        entry = config.entry_script
        if not source:  # as PythonScriptStep: the script's folder is the source directory
            source, entry = os.path.dirname(entry) or ".", os.path.basename(entry)
        if not os.path.isdir(source):
            raise UserError(f"ParallelRunStep '{name}': source_directory '{source}' does not exist or is not a folder.")
        if not os.path.isfile(os.path.join(source, entry)):
            raise UserError(f"ParallelRunStep '{name}': entry_script '{entry}' is not a file in '{source}'.")
        if entry.replace("\\", "/") == LAUNCHER:
            raise UserError(f"ParallelRunStep '{name}': the entry script may not be named '{LAUNCHER}'; rename it.")

        # file datasets are mounted (as Azure converts them); tables are read where they are
        inputs = [i.as_mount() if isinstance(i, DatasetConsumptionConfig) and kind == "file" and i.mode == "direct"
                  else i for i in inputs]
        mini_batch = config.mini_batch_size if config.mini_batch_size is not None else DEFAULT_MINI_BATCH_SIZE[kind]
        if config.partition_keys is None:
            batching = ["--mini_batch_size", mini_batch]
        elif isinstance(config.partition_keys, PipelineParameter):
            batching = ["--partition_keys", config.partition_keys]
        else:
            batching = ["--partition_keys", json.dumps(list(config.partition_keys))]
        args = ["--scoring_module_name", entry, *batching, "--error_threshold", config.error_threshold, "--output_action", config.output_action,
                "--logging_level", config.logging_level, "--run_invocation_timeout", config.run_invocation_timeout,
                "--run_max_try", config.run_max_try]
        if config.allowed_failed_count is not None:
            args += ["--allowed_failed_count", config.allowed_failed_count]
        if config.allowed_failed_percent is not None:
            args += ["--allowed_failed_percent", config.allowed_failed_percent]
        if action == "append_row" and config.append_row_file_name is not None:
            args += ["--append_row_file_name", config.append_row_file_name]
        if output is not None:
            args += ["--output", output]
        if config.process_count_per_node is not None:
            args += ["--process_count_per_node", config.process_count_per_node]
        args += user_args
        flag = "--input_fds_" if kind == "file" else "--input_ds_"
        for i, item in enumerate(inputs):
            args += [f"{flag}{i}", item.name]

        runconfig = RunConfiguration()
        runconfig.environment = config.environment
        self._user_source_directory = os.path.abspath(source)
        super().__init__(LAUNCHER, name=name, arguments=args, compute_target=config.compute_target,
                         runconfig=runconfig, inputs=[*inputs, *(side_inputs or [])],
                         outputs=[output] if output is not None else [], source_directory=source,
                         allow_reuse=allow_reuse)
        self.parallel_run_config = config
        self.input_kind = kind

    @property
    def source_directory(self) -> str:
        """The mirror of the user's source directory with the launcher, brought up to date now."""
        return str(mirror_source_directory(Path(self._user_source_directory)))

    @source_directory.setter
    def source_directory(self, value):
        self._user_source_directory = os.path.abspath(value)

    def __repr__(self):
        return f"ParallelRunStep(name={self.name!r}, entry_script={self.parallel_run_config.entry_script!r})"


def _check_partitioned(name, inputs, partition_keys):
    """With partition_keys, every input is a dataset partitioned by (at least) those keys."""
    keys = partition_keys
    if isinstance(keys, PipelineParameter):
        keys = keys.default_value if not isinstance(keys.default_value, str) else json.loads(keys.default_value)
    for item in inputs:
        dataset = item.dataset if isinstance(item, DatasetConsumptionConfig) else None
        dataset = dataset.default_value if isinstance(dataset, PipelineParameter) else dataset
        if not isinstance(dataset, AbstractDataset):
            raise UserError(f"ParallelRunStep '{name}': with partition_keys, input {item!r} must be a partitioned "
                            "dataset (made with partition_format, or by TabularDataset.partition_by).")
        missing = [k for k in keys if k not in dataset.partition_keys]
        if missing:
            raise UserError(f"ParallelRunStep '{name}': input '{item.name}' is not partitioned by "
                            f"{', '.join(map(repr, missing))} (its partition keys: "
                            f"{', '.join(dataset.partition_keys) or 'none'}); partition_keys must be among them.")


def _check_arguments(name, arguments):
    if not arguments:
        return
    first = arguments[0]
    if not (isinstance(first, str) and first.startswith("-")):
        raise UserError(f"ParallelRunStep '{name}': arguments must be keyword style ('--name', value, ...), because "
                        f"they are merged with the step's own; the first is {first!r}.")
    for item in arguments:
        if isinstance(item, str) and item.startswith("--") and item[2:].split("=")[0] in RESERVED_ARGUMENTS:
            raise UserError(f"ParallelRunStep '{name}': argument '{item}' is one ParallelRunStep sets itself; "
                            "give yours another name.")


def mirror_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mlpipe" / "parallel-run"


def mirror_source_directory(source: Path) -> Path:
    """A folder holding a link to each file the snapshot of ``source`` takes, and the launcher.

    One per source folder; each call adds, replaces and removes links so it matches ``source`` now.
    Links and the launcher are replaced by rename, so two processes bringing it up to date at once
    each leave it whole."""
    source = source.resolve()
    root = mirror_root() / hashlib.sha256(str(source).encode()).hexdigest()[:24]
    files = [f for f in snapshot_files(source) if f != ".amlignore"]  # the folder's own rules, size limits
    if LAUNCHER in files:
        raise UserError(f"The source directory '{source}' holds a file named '{LAUNCHER}', the name a "
                        "ParallelRunStep uses for its launcher; rename that file.")
    root.mkdir(parents=True, exist_ok=True)
    wanted = set(files)
    for dirpath, _, names in os.walk(root):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/")
            if rel not in wanted and rel not in (LAUNCHER, ".amlignore"):
                os.unlink(os.path.join(dirpath, n))
    for rel in files:
        link, target = root / rel, str(source / rel)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        os.symlink(target, tmp)
        os.replace(tmp, link)
    for rel, text in ((LAUNCHER, LAUNCHER_SOURCE), (".amlignore", MIRROR_IGNORE)):
        path = root / rel
        if not path.is_file() or path.is_symlink() or path.read_text() != text:
            tmp = path.with_name(f".{rel}.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
    return root
