"""Regenerate tests/compat/samples/ from a checkout of Azure/MachineLearningNotebooks.

    python tests/compat/convert_samples.py PATH_TO_CHECKOUT

Each case's driver.py is the notebook's code cells in order, with IPython magics and shell lines
removed and the listed replacements applied (each must match exactly once, so a changed notebook is
noticed); the step scripts are copied unchanged from the same commit. Small data files that stand in
for internet downloads are generated here, deterministically.
"""
from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
PIPES = "how-to-use-azureml/machine-learning-pipelines"
INTRO = f"{PIPES}/intro-to-pipelines"
PRS = f"{PIPES}/parallel-run"

TITANIC = """PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked
1,0,3,"Braund, Mr. Owen Harris",male,22,1,0,A/5 21171,7.25,,S
2,1,1,"Cumings, Mrs. John Bradley (Florence Briggs Thayer)",female,38,1,0,PC 17599,71.2833,C85,C
3,1,3,"Heikkinen, Miss. Laina",female,26,0,0,STON/O2. 3101282,7.925,,S
4,1,1,"Futrelle, Mrs. Jacques Heath (Lily May Peel)",female,35,1,0,113803,53.1,C123,S
5,0,3,"Allen, Mr. William Henry",male,35,0,0,373450,8.05,,S
6,0,3,"Moran, Mr. James",male,,0,0,330877,8.4583,,Q
7,0,1,"McCarthy, Mr. Timothy J",male,54,0,0,17463,51.8625,E46,S
8,0,3,"Palsson, Master. Gosta Leonard",male,2,3,1,349909,21.075,,S
9,1,3,"Johnson, Mrs. Oscar W (Elisabeth Vilhelmina Berg)",female,27,0,2,347742,11.1333,,S
10,1,2,"Nasser, Mrs. Nicholas (Adele Achem)",female,14,1,0,237736,30.0708,,C
"""

DATASTORE_TITANIC = ("# changed: the shipped Titanic.csv, uploaded to the default datastore, instead of the public URL\n"
                     "def_blob_store = ws.get_default_datastore()\n"
                     "def_blob_store.upload_files(['Titanic.csv'], target_path='demo', overwrite=True)\n")

CASES = [
    {
        "case": "pipelines_getting_started",
        "notebook": f"{INTRO}/aml-pipelines-getting-started.ipynb",
        "copy": {f"{INTRO}/train/train.py": "train/train.py", f"{INTRO}/compare/compare.py": "compare/compare.py",
                 f"{INTRO}/extract/extract.py": "extract/extract.py"},
        "data": {"Titanic.csv": TITANIC},
        "replace": [
            ('response = requests.get("https://dprepdata.blob.core.windows.net/demo/Titanic.csv")\n'
             'titanic_file = os.path.join(tempfile.mkdtemp(), "Titanic.csv")\n'
             'with open(titanic_file, "w") as f:\n'
             '    f.write(response.content.decode("utf-8"))',
             '# changed: the shipped Titanic.csv instead of a download\n'
             'titanic_file = os.path.join(tempfile.mkdtemp(), "Titanic.csv")\n'
             'with open(titanic_file, "w") as f:\n'
             '    f.write(open("Titanic.csv").read())',
             "the download of Titanic.csv (requests.get of dprepdata.blob.core.windows.net) reads the shipped "
             "Titanic.csv (10 rows of the same file) instead"),
        ],
    },
    {
        "case": "pipelines_data_dependency",
        "notebook": f"{INTRO}/aml-pipelines-with-data-dependency-steps.ipynb",
        "copy": {f"{INTRO}/data_dependency_run_train/train.py": "data_dependency_run_train/train.py",
                 f"{INTRO}/data_dependency_run_extract/extract.py": "data_dependency_run_extract/extract.py",
                 f"{INTRO}/data_dependency_run_compare/compare.py": "data_dependency_run_compare/compare.py"},
        "data": {"Titanic.csv": TITANIC},
        "replace": [
            ('print("Blobstore\'s name: {}".format(def_blob_store.name))',
             'print("Blobstore\'s name: {}".format(def_blob_store.name))\n'
             '# added: upload the shipped Titanic.csv to titanic/ (in Azure the getting-started sample has put it there)\n'
             'def_blob_store.upload_files(["Titanic.csv"], target_path="titanic", overwrite=True)',
             "one line added after the datastore cell: the shipped Titanic.csv (10 rows) is uploaded to "
             "titanic/ on the default datastore, where the sample expects the getting-started sample to have put it"),
        ],
    },
    {
        "case": "pipelines_datapath_parameter",
        "notebook": f"{INTRO}/aml-pipelines-showcasing-datapath-and-pipelineparameter.ipynb",
        "publish": "pipeline.publish",
        "replace": [],
    },
    {
        "case": "pipelines_dataset_parameter",
        "notebook": f"{INTRO}/aml-pipelines-showcasing-dataset-and-pipelineparameter.ipynb",
        "publish": "pipeline.publish",
        "data": {"Titanic.csv": TITANIC},
        "iris_csv": "iris.csv",
        "replace": [
            ("file_dataset = Dataset.File.from_files('https://dprepdata.blob.core.windows.net/demo/Titanic.csv')",
             DATASTORE_TITANIC + "file_dataset = Dataset.File.from_files((def_blob_store, 'demo/Titanic.csv'))",
             "the Titanic.csv URL datasets read the shipped Titanic.csv (10 rows) uploaded to the default datastore "
             "(three lines added, the two URLs replaced by (datastore, 'demo/Titanic.csv'))"),
            ("tabular_dataset = Dataset.Tabular.from_delimited_files('https://dprepdata.blob.core.windows.net/demo/Titanic.csv')",
             "tabular_dataset = Dataset.Tabular.from_delimited_files((def_blob_store, 'demo/Titanic.csv'))", None),
            ("iris_file_ds = Dataset.File.from_files('https://raw.githubusercontent.com/Azure/MachineLearningNotebooks/'\n"
             "                                        '4e7b3784d50e81c313c62bcdf9a330194153d9cd/how-to-use-azureml/work-with-data/'\n"
             "                                        'datasets-tutorial/train-with-datasets/train-dataset/iris.csv')",
             "# changed: the shipped iris.csv instead of the GitHub URL\n"
             "def_blob_store.upload_files(['iris.csv'], target_path='demo', overwrite=True)\n"
             "iris_file_ds = Dataset.File.from_files((def_blob_store, 'demo/iris.csv'))",
             "the iris.csv GitHub URL datasets read the shipped iris.csv (sklearn's bundled iris data, same "
             "columns) uploaded to the default datastore"),
            ("iris_tabular_ds = Dataset.Tabular.from_delimited_files('https://raw.githubusercontent.com/Azure/MachineLearningNotebooks/'\n"
             "                                                       '4e7b3784d50e81c313c62bcdf9a330194153d9cd/how-to-use-azureml/work-with-data/'\n"
             "                                                       'datasets-tutorial/train-with-datasets/train-dataset/iris.csv')",
             "iris_tabular_ds = Dataset.Tabular.from_delimited_files((def_blob_store, 'demo/iris.csv'))", None),
        ],
    },
    {
        "case": "pipelines_modulestep",
        "notebook": f"{INTRO}/aml-pipelines-how-to-use-modulestep.ipynb",
        "copy": {f"{INTRO}/calc/calculate.py": "calc/calculate.py"},
        "replace": [],
    },
    {
        "case": "pipelines_publish_rest_endpoint",
        "notebook": f"{INTRO}/aml-pipelines-publish-and-run-using-rest-endpoint.ipynb",
        "publish": "pipeline1.publish",
        "copy": {f"{INTRO}/publish_run_train/train.py": "publish_run_train/train.py",
                 f"{INTRO}/publish_run_extract/extract.py": "publish_run_extract/extract.py",
                 f"{INTRO}/publish_run_compare/compare.py": "publish_run_compare/compare.py"},
        "data": {"Titanic.csv": TITANIC},
        "replace": [
            ('data_path = "https://dprepdata.blob.core.windows.net/demo/Titanic.csv"\n',
             DATASTORE_TITANIC.replace("def_blob_store = ws.get_default_datastore()\n", "")
             + 'data_path = (def_blob_store, "demo/Titanic.csv")\n',
             "the Titanic.csv URL is replaced by the shipped Titanic.csv (10 rows), uploaded to the default "
             "datastore (one line added) and named as (datastore, 'demo/Titanic.csv')"),
        ],
    },
    {
        "case": "pipelines_schedule",
        "notebook": f"{INTRO}/aml-pipelines-setup-schedule-for-a-published-pipeline.ipynb",
        "publish": "pipeline1.publish",
        "copy": {f"{INTRO}/publish_run_train/train.py": "publish_run_train/train.py"},
        "replace": [],
    },
    {
        "case": "pipelines_versioned_endpoints",
        "notebook": f"{INTRO}/aml-pipelines-setup-versioned-pipeline-endpoints.ipynb",
        "publish": "pipeline.publish",
        "copy": {f"{INTRO}/publish_run_train/train.py": "publish_run_train/train.py"},
        "replace": [],
    },
    {
        "case": "pipelines_drafts",
        "notebook": f"{INTRO}/aml-pipelines-how-to-use-pipeline-drafts.ipynb",
        "publish": "PipelineDraft.create",
        "copy": {f"{INTRO}/publish_run_train/train.py": "publish_run_train/train.py"},
        "replace": [],
    },
    {
        "case": "nyc_taxi_regression",
        "notebook": f"{PIPES}/nyc-taxi-data-regression-model-building/nyc-taxi-data-regression-model-building.ipynb",
        "copy": {f"{PIPES}/nyc-taxi-data-regression-model-building/scripts/prepdata/{n}.py": f"scripts/prepdata/{n}.py"
                 for n in ("cleanse", "filter", "merge", "normalize", "transform")}
        | {f"{PIPES}/nyc-taxi-data-regression-model-building/scripts/trainmodel/train_test_split.py":
           "scripts/trainmodel/train_test_split.py"},
        "replace": [
            ("from azureml.opendatasets import NycTlcGreen, NycTlcYellow\n", "",
             "the Azure Open Datasets download (import of azureml.opendatasets, and the two loops that append "
             "NycTlcGreen / NycTlcYellow samples) is removed: the pipeline runs on the 250 + 250 rows the "
             "notebook itself builds inline"),
            ("for sample_month in range(number_of_months):\n"
             "    temp_df_green = NycTlcGreen(start + relativedelta(months=sample_month), end + relativedelta(months=sample_month)) \\\n"
             "        .to_pandas_dataframe()\n"
             "    if temp_df_green is None:\n"
             "        continue\n"
             "    green_df_raw = green_df_raw.append(temp_df_green.sample(sample_size))",
             "# removed: the NycTlcGreen download loop", None),
            ("for sample_month in range(number_of_months):\n"
             "    temp_df_yellow = NycTlcYellow(start + relativedelta(months=sample_month), end + relativedelta(months=sample_month)) \\\n"
             "        .to_pandas_dataframe()\n"
             "    if temp_df_yellow is None:\n"
             "        continue\n"
             "    yellow_df_raw = yellow_df_raw.append(temp_df_yellow.sample(sample_size))",
             "# removed: the NycTlcYellow download loop", None),
            (re.compile(r"from azureml\.train\.automl import AutoMLConfig\n.*?print\(\"trainWithAutomlStep created.\"\)\n",
                        re.S),
             "# removed: the AutoMLConfig / AutoMLStep cells (AutoML has no local meaning)\n",
             "AutoML is cloud-only: the AutoMLConfig and AutoMLStep cells are removed, the pipeline is built "
             "from the train/test split step instead (`pipeline_steps = [testTrainSplitStep]`), and the last "
             "cells (AutoMLRun: the AutoML model's details) are removed"),
            ("pipeline_steps = [trainWithAutomlStep]", "pipeline_steps = [testTrainSplitStep]  # changed: AutoML step removed",
             None),
            (re.compile(r"from azureml\.train\.automl\.run import AutoMLRun\n.*", re.S),
             "# removed: the AutoMLRun cells\n", None),
        ],
    },
    {
        "case": "prs_tabular_iris",
        "notebook": f"{PRS}/tabular-dataset-inference-iris.ipynb",
        "copy": {f"{PRS}/Code/iris_score.py": "Code/iris_score.py"},
        "iris_csv": "iris/iris.csv",
        "iris_features_only": True,
        "replace": [
            ("path_on_datastore = iris_data.path('iris/')",
             "# added: the shipped iris/iris.csv (sklearn's bundled iris features) uploaded to the datastore\n"
             "iris_data.upload('iris', 'iris', overwrite=True)\n"
             "path_on_datastore = iris_data.path('iris/')",
             "one line added: the shipped iris/iris.csv (sklearn's bundled iris features, 150 rows) is uploaded "
             "to iris/ on the registered datastore, which in Azure is the public `pipelinedata/sampledata` container"),
            ("model_datastore.download('iris_model.pkl')",
             "# changed: the pretrained model is fitted here (sklearn's iris data) instead of downloaded; numpy arrays\n"
             "# are pickled as lists, so that the environment's older numpy and scikit-learn can load it\n"
             "import copyreg, pickle\n"
             "import numpy as np\n"
             "from sklearn.datasets import load_iris\n"
             "from sklearn.linear_model import LogisticRegression\n"
             "_iris = load_iris(as_frame=True)\n"
             "_X = _iris.data.set_axis(['sepal.length', 'sepal.width', 'petal.length', 'petal.width'], axis=1)\n"
             "os.makedirs('iris_model.pkl', exist_ok=True)\n"
             "with open('iris_model.pkl/iris_model.pkl', 'wb') as _f:\n"
             "    _pickler = pickle.Pickler(_f, protocol=2)\n"
             "    _pickler.dispatch_table = {**copyreg.dispatch_table,\n"
             "                               np.ndarray: lambda a: (np.array, (a.tolist(), a.dtype.str))}\n"
             "    _pickler.dump(LogisticRegression(max_iter=1000).fit(_X, _iris.target_names[_iris.target]))",
             "`model_datastore.download('iris_model.pkl')` (a pretrained model in a public container) is "
             "replaced by fitting a LogisticRegression on sklearn's iris data and pickling it to the same "
             "path, iris_model.pkl/iris_model.pkl; its numpy arrays are pickled as lists, since the step's "
             "environment (pinned to 2020 versions) has an older numpy and scikit-learn than the driver"),
        ],
    },
    {
        "case": "prs_partition_per_folder",
        "notebook": f"{PRS}/file-dataset-partition-per-folder.ipynb",
        "copy": {f"{PRS}/Code/total_file_size.py": "Code/total_file_size.py"},
        "wavs": ["disco", "orchestra", "piano", "spirituality"],
        "replace": [],
        "note": "the sample's four test_files/*/*.wav (0.8 MB each) are shipped as short generated WAV files "
                "of the same names (different sizes, so the size ratios differ from the sample's)",
    },
    {
        "case": "prs_partition_per_column",
        "notebook": f"{PRS}/tabular-dataset-partition-per-column.ipynb",
        "copy": {f"{PRS}/Code/total_income.py": "Code/total_income.py"},
        "oj_csv": "oj.csv",
        "replace": [
            ('import requests\n\noj_sales_path = "./oj.csv"\n'
             'r = requests.get("https://raw.githubusercontent.com/Azure/azureml-examples/main/sdk/python/jobs/'
             'automl-standalone-jobs/automl-forecasting-orange-juice-sales/data/dominicks_OJ.csv")\n'
             'open(oj_sales_path, "wb").write(r.content)',
             '# changed: oj.csv is shipped (generated, same columns) instead of downloaded\noj_sales_path = "./oj.csv"',
             "the download of dominicks_OJ.csv is removed: a generated oj.csv with the same columns (4 stores x "
             "3 brands x 4 weeks = 48 rows instead of 28,947) is shipped as ./oj.csv"),
        ],
    },
    {
        "case": "train_on_local",
        "notebook": "how-to-use-azureml/training/train-on-local/train-on-local.ipynb",
        "copy": {"how-to-use-azureml/training/train-on-local/scripts/train.py": "scripts/train.py",
                 "how-to-use-azureml/training/train-on-local/scripts/mylib.py": "scripts/mylib.py"},
        "replace": [],
    },
    {
        "case": "train_on_amlcompute",
        "notebook": "how-to-use-azureml/training/train-on-amlcompute/train-on-amlcompute.ipynb",
        "copy": {"how-to-use-azureml/training/train-on-amlcompute/train.py": "train.py"},
        "replace": [],
    },
    {
        "case": "using_environments",
        "notebook": "how-to-use-azureml/training/using-environments/using-environments.ipynb",
        "copy": {"how-to-use-azureml/training/using-environments/example.py": "example.py"},
        "replace": [],
    },
    {
        "case": "logging_api",
        "notebook": "how-to-use-azureml/track-and-monitor-experiments/logging-api/logging-api.ipynb",
        "replace": [],
    },
    {
        "case": "manage_runs",
        "notebook": "how-to-use-azureml/track-and-monitor-experiments/manage-runs/manage-runs.ipynb",
        "copy": {f"how-to-use-azureml/track-and-monitor-experiments/manage-runs/{n}": n
                 for n in ("hello.py", "hello_with_children.py", "hello_with_delay.py")},
        "replace": [],
    },
]


def git_show(checkout: Path, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(checkout), "show", f"HEAD:{path}"], capture_output=True, check=True).stdout


def iris_rows(features_only: bool) -> str:
    from sklearn.datasets import load_iris

    iris = load_iris()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    head = ["sepal.length", "sepal.width", "petal.length", "petal.width"]
    w.writerow(head if features_only else head + ["variety"])
    for x, t in zip(iris.data, iris.target):
        row = [f"{v:.1f}" for v in x]
        w.writerow(row if features_only else row + [str(iris.target_names[t]).capitalize()])
    return out.getvalue()


def oj_rows() -> str:
    rnd = random.Random(0)
    cols = ["WeekStarting", "Store", "Brand", "Quantity", "logQuantity", "Advert", "Price", "Age60", "COLLEGE",
            "INCOME", "Hincome150", "Large HH", "Minorities", "WorkingWoman", "SSTRDIST", "SSTRVOL", "CPDIST5",
            "CPWVOL5"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for store in (2, 5, 8, 9):
        demo = [round(rnd.uniform(0.1, 0.3), 6), round(rnd.uniform(0.1, 0.4), 6), round(rnd.uniform(10, 11), 6),
                round(rnd.uniform(9, 11), 6), round(rnd.uniform(0.05, 0.2), 6), round(rnd.uniform(0.1, 0.6), 6),
                round(rnd.uniform(0.2, 0.5), 6), round(rnd.uniform(1, 5), 6), round(rnd.uniform(0.5, 2), 6),
                round(rnd.uniform(1, 4), 6), round(rnd.uniform(0.5, 2), 6)]
        for brand in ("dominicks", "minute.maid", "tropicana"):
            for week in range(4):
                q = rnd.randint(5000, 30000)
                w.writerow([f"1990-06-{14 + 7 * week:02d}" if week < 3 else "1990-07-05", store, brand, q,
                            round(math.log(q), 6), rnd.randint(0, 1), round(rnd.uniform(1.5, 3.9), 2),
                            demo[0], demo[1], demo[2], demo[3], demo[4], demo[5], demo[6], demo[7], demo[8],
                            demo[9], demo[10]])
    return out.getvalue()


def write_wav(path: Path, seconds: float, freq: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
                               for i in range(int(rate * seconds))))


MAGIC = re.compile(r"^\s*(%|!)")


def convert(checkout: Path, spec: dict, commit: str):
    case = SAMPLES / spec["case"]
    if case.exists():
        shutil.rmtree(case)
    case.mkdir(parents=True)
    nb = json.loads(git_show(checkout, spec["notebook"]))
    removed, written, cells = [], [], []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        if lines and lines[0].startswith("%%writefile"):
            name = lines[0].split(None, 1)[1].strip()
            (case / name).write_text("\n".join(lines[1:]) + "\n")
            written.append(name)
            cells.append(f"# In[{index}]: %%writefile {name} (shipped as the file {name})\n")
            continue
        kept = []
        for line in lines:
            if MAGIC.match(line):
                removed.append(line.strip())
            else:
                kept.append(line)
        cells.append(f"# In[{index}]:\n" + "\n".join(kept) + "\n")
    body = "\n".join(cells)
    changes = []
    if removed:
        changes.append("IPython magics and shell lines removed: " + ", ".join(f"`{r}`" for r in removed))
    if written:
        changes.append("%%writefile cells become the files they write, shipped beside this driver: "
                       + ", ".join(written))
    for old, new, why in spec["replace"]:
        if isinstance(old, re.Pattern):
            body, count = old.subn(lambda m: new, body)
        else:
            count = body.count(old)
            body = body.replace(old, new)
        if count != 1:
            raise SystemExit(f"{spec['case']}: replacement matched {count} times: {str(old)[:80]!r}")
        if why:
            changes.append(why)
    for src, dest in spec.get("copy", {}).items():
        (case / dest).parent.mkdir(parents=True, exist_ok=True)
        (case / dest).write_bytes(git_show(checkout, src))
    for name, text in spec.get("data", {}).items():
        (case / name).write_text(text)
    if "iris_csv" in spec:
        (case / spec["iris_csv"]).parent.mkdir(parents=True, exist_ok=True)
        (case / spec["iris_csv"]).write_text(iris_rows(spec.get("iris_features_only", False)))
    if "oj_csv" in spec:
        (case / spec["oj_csv"]).write_text(oj_rows())
    for i, name in enumerate(spec.get("wavs", [])):
        write_wav(case / "test_files" / name / f"{name}.wav", 0.1 + 0.05 * i, 220.0 * (i + 1))
    if spec.get("note"):
        changes.append(spec["note"])
    if not changes:
        changes.append("none besides the conversion itself (code cells in order, as one script)")
    header = [f"# Azure ML SDK v1 sample, converted to a script: {spec['notebook']}",
              f"# from github.com/Azure/MachineLearningNotebooks at commit {commit}.",
              "# Copyright (c) Microsoft Corporation. Licensed under the MIT License (tests/compat/samples/LICENSE).",
              "# The code cells in order (\"# In[n]\" is the cell's index in the notebook); the step scripts beside",
              "# this file are copied unchanged from the same commit. Changes from the sample:"]
    header += [f"#  - {c}" for c in changes]
    if spec.get("publish"):
        header.append(f"# The sample publishes (or drafts) a pipeline with `{spec['publish']}(...)`: how far it runs today is in "
                      "tests/compat/README.md.")
    (case / "driver.py").write_text("\n".join(header) + "\n\n" + body)


def main():
    checkout = Path(sys.argv[1])
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    SAMPLES.mkdir(parents=True, exist_ok=True)
    (SAMPLES / "LICENSE").write_bytes(git_show(checkout, "LICENSE"))
    wanted = set(sys.argv[2:])
    for spec in CASES:
        if not wanted or spec["case"] in wanted:
            convert(checkout, spec, commit)
            print("converted", spec["case"])


if __name__ == "__main__":
    main()
