"""What a config leaves on disk: a plain result.pkl, the outcome.json sidecar, and older run folders."""

from __future__ import annotations

import json
import pickle
import zlib

import pyexp
from pyexp.store import OUTCOME_FILE, RESULT_FILE

APP = '''
import pickle, sys
import pyexp
from pyexp import Executor

class Plain(Executor):  # the spec's custom executor
    def run(self, fn, config, result_path):
        result = fn(config)
        with open(result_path, "wb") as f:
            pickle.dump(result, f, protocol=2)
        return result

@pyexp.experiment(name="files", stash=False, executor="fork")
def exp(config):
    if config["v"] < 0:
        raise ValueError(f"negative {config['v']}")
    return {"v": config["v"], "twice": [config["v"]] * 2}

@exp.configs
def configs():
    return [{"name": "good", "v": 3}, {"name": "bad", "v": -1}]

if __name__ == "__main__":
    exp.run(executor=Plain() if "--plain" in sys.argv else None,
            argv=[a for a in sys.argv[1:] if a != "--plain"])
'''


def test_result_pkl_is_the_pickled_value_and_outcome_json_says_how_it_ended(script):
    s = script(APP)
    s.run()
    (run,) = s.runs("files")
    dirs = s.config_dirs(run)
    good, bad = dirs["good"], dirs["bad"]
    with open(good / RESULT_FILE, "rb") as f:
        assert pickle.load(f) == {"v": 3, "twice": [3, 3]}
    record = json.loads((good / OUTCOME_FILE).read_text())
    data = (good / RESULT_FILE).read_bytes()
    assert record["status"] == "ok" and record["error"] is None
    assert record["result_size"] == len(data) and record["result_crc32"] == zlib.crc32(data)
    assert record["finished"] >= record["started"]
    assert not (bad / RESULT_FILE).exists()
    failed = json.loads((bad / OUTCOME_FILE).read_text())
    assert failed["status"] == "error" and failed["error"] == "ValueError: negative -1"
    assert failed["error_type"] == "ValueError" and "Traceback" in failed["traceback"]


def test_a_custom_executor_result_is_kept_as_written(script):
    s = script(APP)
    s.run("--plain")
    (run,) = s.runs("files")
    good = s.config_dirs(run)["good"]
    assert (good / RESULT_FILE).read_bytes() == pickle.dumps({"v": 3, "twice": [3, 3]}, protocol=2)
    results = pyexp.load_results(run)
    assert results[0].result == {"v": 3, "twice": [3, 3]} and results[0].error is None
    assert results[1].error == "ValueError: negative -1" and results[1].result is None


def _legacy(value, status="ok", error=None):
    """A result.pkl as pyexp wrote it before outcome.json: header pickle + record pickle."""
    body = pickle.dumps({"status": status, "result": value, "error": error, "traceback": "tb" if error else None,
                         "signal": None, "exit_code": None, "started": 1.0, "finished": 3.0,
                         "pyexp_outcome": 1})
    header = pickle.dumps({"pyexp_outcome": 1, "status": status, "error": error, "size": len(body),
                           "crc": zlib.crc32(body)})
    return header + body


def test_run_folders_written_before_the_sidecar_still_load(script):
    s = script(APP)
    s.run()
    (run,) = s.runs("files")
    dirs = s.config_dirs(run)
    for folder in dirs.values():
        (folder / OUTCOME_FILE).unlink()
        (folder / RESULT_FILE).unlink(missing_ok=True)
    (dirs["good"] / RESULT_FILE).write_bytes(_legacy({"old": True}))
    (dirs["bad"] / RESULT_FILE).write_bytes(_legacy(None, "error", "KeyError: 'lr'"))
    results = pyexp.load_results(run)
    assert results[0].result == {"old": True} and results[0].status == "done"
    assert results[1].error == "KeyError: 'lr'" and results[1].traceback == "tb"
    report = s.run("--report", check=False)
    assert report.returncode == 0, report.stderr
