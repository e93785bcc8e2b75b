"""Glob paths, partition_format, partition_by, and ParallelRunStep's one mini-batch per partition, in real
local pipelines."""
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from helpers import run_pipeline, steps_by_name
from mlpipe_jupyter import (Dataset, Environment, ParallelRunConfig, ParallelRunStep, PipelineData, UserError)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def upload_tree(workspace, tmp_path, files: dict, target: str):
    """Write ``{relative path: text}`` to a folder and upload it to ``target`` on the default datastore."""
    src = tmp_path / "upload"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    datastore = workspace.get_default_datastore()
    datastore.upload(str(src), target, overwrite=True, show_progress=False)
    return datastore


SONGS = {"u1/fall/jazz.wav": "a" * 10, "u1/winter/rock.wav": "b" * 20, "u2/fall/jazz.wav": "c" * 30,
         "u2/spring/jazz.wav": "d" * 40, "u2/spring/notes.txt": "not a song"}


def test_a_glob_takes_only_the_files_it_matches(workspace, tmp_path):
    datastore = upload_tree(workspace, tmp_path, SONGS, "songs")
    ds = Dataset.File.from_files(path=(datastore, "songs/*/*/*.wav"))
    assert ds.to_path() == ["u1/fall/jazz.wav", "u1/winter/rock.wav", "u2/fall/jazz.wav", "u2/spring/jazz.wav"]
    assert Dataset.File.from_files(path=(datastore, "songs/**/*.txt")).to_path() == ["u2/spring/notes.txt"]
    with pytest.raises(UserError, match=r"songs/\*/\*\.mp3.*matches no files"):
        Dataset.File.from_files(path=(datastore, "songs/*/*.mp3")).to_path()


def test_partition_format_gives_keys_and_their_values(workspace, tmp_path):
    datastore = upload_tree(workspace, tmp_path, SONGS, "songs")
    ds = Dataset.File.from_files(path=(datastore, "songs/*/*/*.wav"),
                                 partition_format="songs/{user}/{season}/{genre}.wav", validate=False)
    assert ds.partition_keys == ["user", "season", "genre"]
    assert ds.get_partition_key_values(["user", "genre"]) == [
        {"user": "u1", "genre": "jazz"}, {"user": "u1", "genre": "rock"}, {"user": "u2", "genre": "jazz"}]
    assert len(ds.get_partition_key_values()) == 4
    assert Dataset.File.from_files(path=(datastore, "songs")).partition_keys == []
    with pytest.raises(UserError, match="'mood' is not a partition key.*user, season, genre"):
        ds.get_partition_key_values(["mood"])
    with pytest.raises(UserError, match="partition_format"):
        Dataset.File.from_files(path=(datastore, "songs"), partition_format="songs/{user")


def test_dates_in_a_partition_format_are_dates(workspace, tmp_path):
    files = {"2024/01/31/a.csv": "x\n1\n2\n", "2024/02/01/b.csv": "x\n3\n"}
    datastore = upload_tree(workspace, tmp_path, files, "daily")
    ds = Dataset.Tabular.from_delimited_files(path=(datastore, "daily/**/*.csv"),
                                              partition_format="/{Day:yyyy/MM/dd}/{name}.csv")
    table = ds.to_pandas_dataframe()
    assert list(table.columns) == ["x", "Day", "name"]
    assert table["x"].tolist() == [1, 2, 3]
    assert list(table["Day"]) == [datetime(2024, 1, 31)] * 2 + [datetime(2024, 2, 1)]


SALES = "Week,Store,Brand,Income\n" + "".join(
    f"w{w},{store},{brand},{store * 10 + w}\n" for store in (1, 2) for brand in ("x", "y") for w in range(3))


def partitioned_sales(workspace, tmp_path, name=None):
    datastore = upload_tree(workspace, tmp_path, {"sales.csv": SALES, "notes.txt": "not a table"}, "sales")
    table = Dataset.Tabular.from_delimited_files(path=(datastore, "sales/*.csv"))
    return table.partition_by(partition_keys=["Store", "Brand"], target=(datastore, "by_key"), name=name,
                              show_progress=False)


def test_partition_by_writes_one_folder_per_partition(workspace, tmp_path):
    ds = partitioned_sales(workspace, tmp_path, name="sales_by_key")
    assert ds.partition_keys == ["Store", "Brand"]
    assert ds.name == "sales_by_key" and Dataset.get_by_name(workspace, "sales_by_key").partition_keys == ["Store", "Brand"]
    table = ds.to_pandas_dataframe()
    assert list(table.columns) == ["Week", "Income", "Store", "Brand"]  # the keys come last, as text
    assert len(table) == 12
    assert sorted(zip(table["Store"], table["Brand"], table["Income"])) == sorted(
        (str(s), b, s * 10 + w) for s in (1, 2) for b in ("x", "y") for w in range(3))
    parts = sorted(str(p.relative_to(p.parents[2])) for p in Path(workspace.get_default_datastore().resolve("by_key"))
                   .rglob("*.parquet"))
    assert parts == ["1/x/part-00000.parquet", "1/y/part-00000.parquet", "2/x/part-00000.parquet",
                     "2/y/part-00000.parquet"]
    with pytest.raises(UserError, match="'Shop' is not a partition key"):
        Dataset.Tabular.from_delimited_files(path=(workspace.get_default_datastore(), "sales/*.csv")).partition_by(
            ["Shop"], target=(workspace.get_default_datastore(), "x"))


FILE_SCRIPT = """
    import os

    def run(mini_batch, context):
        assert sorted(context.dataset.to_path()) == sorted(mini_batch)
        size = sum(os.path.getsize(p) for p in mini_batch)
        return [f"{os.path.basename(p)},{context.partition_key_value['user']},{context.partition_key_value['genre']},{size}"
                for p in mini_batch]
"""

TABLE_SCRIPT = """
    def run(mini_batch):
        mini_batch["total"] = mini_batch["Income"].sum()
        return mini_batch
"""


def partition_step(tmp_path, write_scripts, script, dataset, keys, **config):
    src = write_scripts(tmp_path / "src", {"score.py": script})
    prc = ParallelRunConfig(environment=Environment("batch"), entry_script="score.py", source_directory=str(src),
                            output_action="append_row", compute_target="local", error_threshold=0, node_count=1,
                            process_count_per_node=2, partition_keys=keys, **config)
    return ParallelRunStep("by-partition", parallel_run_config=prc, inputs=[dataset.as_named_input("data")],
                           output=PipelineData("scores"), allow_reuse=False)


def result_lines(run) -> list[str]:
    step = steps_by_name(run)["by-partition"]
    return (step.get_output_data("scores").path / "parallel_run_step.txt").read_text().splitlines()


def test_each_partition_of_a_file_dataset_is_one_mini_batch(workspace, tmp_path, write_scripts):
    datastore = upload_tree(workspace, tmp_path, SONGS, "songs")
    ds = Dataset.File.from_files(path=(datastore, "songs/*/*/*.wav"), partition_format="songs/{user}/{season}/{genre}.wav")
    run = run_pipeline(workspace, [partition_step(tmp_path, write_scripts, FILE_SCRIPT, ds, ["user", "genre"])])
    assert run.get_status() == "Completed", run.get_details().get("error")
    # u2's two jazz songs (fall, spring) are one partition: 30 + 40 characters
    assert sorted(result_lines(run)) == ["jazz.wav,u1,jazz,10", "jazz.wav,u2,jazz,70", "jazz.wav,u2,jazz,70",
                                         "rock.wav,u1,rock,20"]
    log = steps_by_name(run)["by-partition"].get_log_text()
    assert "3 mini batches" in log


def test_each_partition_of_a_table_is_one_mini_batch(workspace, tmp_path, write_scripts):
    ds = partitioned_sales(workspace, tmp_path)
    run = run_pipeline(workspace, [partition_step(tmp_path, write_scripts, TABLE_SCRIPT, ds, ["Store", "Brand"])])
    assert run.get_status() == "Completed", run.get_details().get("error")
    table = pd.DataFrame([line.split(" ") for line in result_lines(run)],
                         columns=["Week", "Income", "Store", "Brand", "total"])
    assert len(table) == 12
    for (store, brand), rows in table.groupby(["Store", "Brand"]):
        assert len(rows) == 3
        assert set(rows["total"]) == {str(sum(int(store) * 10 + w for w in range(3)))}, (store, brand)


def test_partition_keys_are_checked_before_anything_runs(workspace, tmp_path, write_scripts):
    datastore = upload_tree(workspace, tmp_path, SONGS, "songs")
    plain = Dataset.File.from_files(path=(datastore, "songs"))
    parted = Dataset.File.from_files(path=(datastore, "songs/*/*/*.wav"), partition_format="{user}/{season}/{genre}.wav")
    with pytest.raises(UserError, match="not both"):
        partition_step(tmp_path, write_scripts, FILE_SCRIPT, parted, ["user"], mini_batch_size=2)
    with pytest.raises(UserError, match="partition_keys must be a non-empty list"):
        partition_step(tmp_path, write_scripts, FILE_SCRIPT, parted, "user")
    with pytest.raises(UserError, match="input 'data' is not partitioned by 'mood'.*user, season, genre"):
        partition_step(tmp_path, write_scripts, FILE_SCRIPT, parted, ["mood"])
    with pytest.raises(UserError, match="input 'data' is not partitioned by 'user'.*none"):
        partition_step(tmp_path, write_scripts, FILE_SCRIPT, plain, ["user"])
