"""Tables of results: to_pandas / to_parquet in Python and ``python -m pyexp export`` on disk."""

from __future__ import annotations

import csv
import json
import shutil

import pandas as pd
import pytest


def test_to_pandas_flattens_configs_scalar_results_status_and_last_logged_scalars(project):
    project.run(env={"LRS": "0.1,0.2"})
    out = project.load("""
        frame = exp.results().to_pandas()
        frame.to_json("frame.json", orient="records")
        exp.results().to_parquet("frame.parquet")
    """)
    frame = pd.read_json(project.dir / "frame.json", orient="records")
    assert list(frame["name"]) == ["lr0.1", "lr0.2"]
    assert list(frame["config.lr"]) == [0.1, 0.2]
    assert list(frame["result.acc"]) == [0.2, 0.4]
    assert list(frame["result.steps"]) == [3, 3] and list(frame["result.tag"]) == ["ok", "ok"]
    assert "result.weights" not in frame.columns  # a list is not a scalar: it stays in result.pkl
    assert list(frame["log.loss"]) == pytest.approx([1 / 3, 1 / 3])
    assert list(frame["status"]) == ["done", "done"] and not frame["stale"].any() and not frame["reused"].any()
    assert frame["error"].isna().all()
    parquet = pd.read_parquet(project.dir / "frame.parquet")
    assert list(parquet.columns) == list(frame.columns)
    assert list(parquet["result.acc"]) == [0.2, 0.4]


def test_failed_and_pending_configs_keep_their_rows(project):
    (project.dir / "main.py").write_text((project.dir / "main.py").read_text().replace(
        'return [{"name": f"lr{v}", "lr": v} for v in lrs]',
        'return [{"name": f"lr{v}", "lr": v, "fail": v == 0.2} for v in lrs]'))
    project.run("--filter", "lr0.[12]")
    project.pyexp("export", "out/demo", "-o", "t.csv")
    with open(project.dir / "t.csv", newline="") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert rows["lr0.1"]["status"] == "done" and rows["lr0.1"]["result.acc"] == "0.2"
    assert rows["lr0.2"]["status"] == "failed" and rows["lr0.2"]["error"] == "ValueError: asked to fail"
    assert rows["lr0.3"]["status"] == "pending" and rows["lr0.3"]["result.acc"] == ""


def test_export_never_unpickles_results(project):
    """The result holds an object of a module that is gone by export time: pickle.load would fail."""
    (project.dir / "lib" / "model.py").write_text("class Model:\n    pass\n")
    text = (project.dir / "main.py").read_text().replace(
        '"tag": "ok"}', '"tag": "ok", "model": __import__("lib.model").model.Model()}')
    (project.dir / "main.py").write_text(text)
    project.run(env={"LRS": "0.1"})
    (project.dir / "lib" / "model.py").unlink()
    for fmt in ("parquet", "csv", "jsonl"):
        done = project.pyexp("export", "out/demo", "--format", fmt, "-o", f"table.{fmt}")
        assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (project.dir / "table.jsonl").read_text().splitlines()]
    assert rows[0]["result.acc"] == 0.2 and rows[0]["status"] == "done" and rows[0]["error"] is None
    assert pd.read_parquet(project.dir / "table.parquet")["result.acc"].tolist() == [0.2]


def test_export_all_runs_has_a_run_column_and_same_columns_in_every_format(project):
    project.run(env={"LRS": "0.1,0.2"})
    project.run(env={"LRS": "0.2,0.3"})
    first, second = [p.name for p in project.runs("demo")]
    project.pyexp("export", "out/demo", "--run", "all", "-o", "all.parquet")
    project.pyexp("export", "out/demo", "--run", "all", "-o", "all.jsonl")
    frame = pd.read_parquet(project.dir / "all.parquet")
    assert list(frame["run"]) == [first, first, second, second]
    assert list(frame["name"]) == ["lr0.1", "lr0.2", "lr0.2", "lr0.3"]
    lines = [json.loads(x) for x in (project.dir / "all.jsonl").read_text().splitlines()]
    assert [list(x) for x in lines] == [list(frame.columns)] * 4
    # One run, by timestamp or by its folder.
    project.pyexp("export", f"out/demo/{first}", "-o", "one.csv")
    project.pyexp("export", "out/demo", "--run", first, "-o", "one2.csv")
    assert (project.dir / "one.csv").read_text() == (project.dir / "one2.csv").read_text()


def test_an_unreadable_result_is_one_error_line_and_keeps_its_row(project):
    project.run(env={"LRS": "0.1,0.2"})
    run = project.runs("demo")[-1]
    damaged = next(run.glob("lr0.2-*")) / "result.pkl"
    damaged.write_bytes(b"\x80\x04garbage")
    done = project.pyexp("export", "out/demo", "-o", "t.jsonl", check=False)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("pyexp: error:")]
    assert len(errors) == 1 and str(damaged) in errors[0]
    rows = {r["name"]: r for r in map(json.loads, (project.dir / "t.jsonl").read_text().splitlines())}
    assert rows["lr0.1"]["status"] == "done"
    assert str(damaged) in rows["lr0.2"]["error"] and rows["lr0.2"]["status"] != "done"


@pytest.mark.parametrize("args, needle", [
    (["export", "out/demo", "--run", "2001-01-01_00-00-00", "-o", "x.csv"], "2001-01-01_00-00-00"),
    (["export", "out/nothing", "-o", "x.csv"], "out/nothing"),
    (["export", "out/demo", "-o", "x.xlsx"], "x.xlsx"),
    (["export", "out/demo", "--format", "xml", "-o", "x.csv"], "xml"),
])
def test_bad_export_arguments_are_one_line(project, args, needle):
    project.run(env={"LRS": "0.1"})
    done = project.pyexp(*args, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyexp: error:") and needle in lines[0]
    assert not (project.dir / "x.csv").exists()


def test_results_of_a_reused_folder_copy_still_export(project, tmp_path):
    """A copied experiment folder (e.g. moved to another disk) exports the same table."""
    project.run(env={"LRS": "0.1"})
    copy = tmp_path / "copy" / "demo"
    shutil.copytree(project.store, copy)
    project.pyexp("export", str(copy), "-o", "copy.csv")
    assert "0.2" in (project.dir / "copy.csv").read_text()


def test_a_config_that_died_still_shows_what_it_logged(project):
    """No outcome of its own records the logged scalars: the table reads them from the log."""
    text = (project.dir / "main.py").read_text().replace(
        '    return {"acc"', '    if config.lr == 0.2:\n        logger.flush()\n        os._exit(3)\n    return {"acc"')
    (project.dir / "main.py").write_text(text)
    project.run(env={"LRS": "0.1,0.2"})
    project.pyexp("export", "out/demo", "-o", "t.jsonl")
    rows = {r["name"]: r for r in map(json.loads, (project.dir / "t.jsonl").read_text().splitlines())}
    assert rows["lr0.2"]["status"] == "failed" and "exited with code 3" in rows["lr0.2"]["error"]
    assert rows["lr0.2"]["log.loss"] == pytest.approx(1 / 3)
    assert rows["lr0.1"]["log.loss"] == pytest.approx(1 / 3)


CLASS_BASED = '''
import json
from pyexp import Experiment

class Train(Experiment):
    def experiment(self):
        self.score = self.cfg["lr"] * 2
        self.model = object.__new__(Train)  # not a scalar: stays in result.pkl
        return 7

    @staticmethod
    def configs():
        return [{"name": "a", "lr": 0.1}, {"name": "b", "lr": 0.2}]

    @staticmethod
    def report(results, out):
        frame = results.to_pandas()
        print(json.dumps({"cols": list(frame.columns), "score": frame["result.score"].tolist(),
                          "value": frame["result.value"].tolist(), "stale": [r.stale for r in results]}))

if __name__ == "__main__":
    Train.run()
'''


def test_class_based_experiments_tabulate_their_scalar_attributes(script):
    s = script(CLASS_BASED)
    out = json.loads(s.run("--executor", "fork", "--no-stash").stdout.strip().splitlines()[-1])
    assert out["score"] == [0.2, 0.4] and out["value"] == [7, 7] and out["stale"] == [False, False]
    assert "result.model" not in out["cols"] and "config.lr" in out["cols"]
