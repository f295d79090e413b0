"""The earlier README's Quick Start and "Robust Execution" report run as their users wrote them.

Each script is written to a temp folder and run with ``python main.py`` in a subprocess.
"""

from __future__ import annotations

import json

# The earlier README's Quick Start, word for word.
QUICK_START = '''
import pyexp
from pyexp import Config

@pyexp.experiment(name="mnist")
def experiment(config: Config):
    lr = config.learning_rate
    epochs = config.epochs
    # Run your experiment...
    return {"accuracy": 0.95}

@experiment.configs
def configs():
    return [
        {"name": "fast", "learning_rate": 0.01, "epochs": 10},
        {"name": "slow", "learning_rate": 0.001, "epochs": 100},
    ]

@experiment.report
def report(results):
    # Each result contains 'name', 'config', and experiment outputs
    for r in results:
        print(f"{r['name']}: {r['accuracy']}")

    # Filter by config values
    fast_results = results[{"config.learning_rate": 0.01}]

if __name__ == "__main__":
    experiment.run()
'''


def test_quick_start_runs_as_written(script):
    proc = script(QUICK_START).run()
    assert proc.stdout.splitlines() == ["fast: 0.95", "slow: 0.95"]


# The earlier README's "Robust Execution" report, word for word, on configs that raise or crash.
ROBUST = '''
import ctypes
import pyexp

@pyexp.experiment(name="robust")
def experiment(config):
    if config.mode == "raise":
        raise ValueError("learning rate too high")
    if config.mode == "segfault":
        ctypes.string_at(0)  # a real SIGSEGV in the experiment's process
    return {"accuracy": 0.9}

@experiment.configs
def configs():
    return [{"name": "good", "mode": "ok"}, {"name": "bad", "mode": "raise"},
            {"name": "crash", "mode": "segfault"}]

@experiment.report
def report(results):
    for r in results:
        if r.get("__error__"):
            print(f"{r['name']} failed: {r['type']}: {r['message']}")
        else:
            print(f"{r['name']}: {r['accuracy']}")

if __name__ == "__main__":
    experiment.run()
'''


def test_robust_execution_report_runs_as_written(script):
    proc = script(ROBUST).run()
    assert proc.stdout.splitlines() == [
        "good: 0.9",
        "bad failed: ValueError: learning rate too high",
        "crash failed: SIGSEGV: killed by SIGSEGV (signal 11)",
    ]


# Item access beside attribute access, printed as JSON for the test to check.
ITEMS = '''
import json
import pyexp

@pyexp.experiment(name="items", executor="inline")
def experiment(config):
    if config.fail:
        raise KeyError("missing column")
    return {"accuracy": 0.5, "name": "returned name"}

@experiment.configs
def configs():
    return [{"name": "ok", "fail": False, "lr": 0.1}, {"name": "broken", "fail": True, "lr": 0.2}]

@experiment.report
def report(results):
    ok, broken = results[0], results[1]
    def key_error(r, key):
        try:
            r[key]
        except KeyError as exc:
            return str(exc)
    print(json.dumps({
        "ok": {"name": ok["name"], "lr": ok["config"]["lr"], "out": str(ok["out"]) == str(ok.out),
               "accuracy": ok["accuracy"], "get": ok.get("accuracy"), "default": ok.get("loss", -1),
               "error": ok.get("__error__"), "in": ["accuracy" in ok, "name" in ok, "loss" in ok],
               "missing": key_error(ok, "loss"), "result": ok.result, "attr_error": ok.error},
        "broken": {"error": broken["__error__"], "type": broken["type"], "message": broken["message"],
                   "traceback_last": broken["traceback"].strip().splitlines()[-1],
                   "in": ["__error__" in broken, "accuracy" in broken],
                   "missing": key_error(broken, "accuracy"), "attr_error": broken.error},
        # One match of a 1-D sweep drops the axis: the element itself, as in the earlier API.
        "filtered": results[{"config.lr": 0.2}]["name"],
    }))

if __name__ == "__main__":
    experiment.run()
'''


def test_result_answers_item_access_and_attributes_stay(script):
    got = json.loads(script(ITEMS).run().stdout)
    ok, broken = got["ok"], got["broken"]
    # The returned dict's keys, with name/config/out keeping their meaning.
    assert ok["name"] == "ok" and ok["lr"] == 0.1 and ok["out"] is True
    assert ok["accuracy"] == ok["get"] == 0.5 and ok["default"] == -1 and ok["error"] is None
    assert ok["in"] == [True, True, False]
    assert "'loss'" in ok["missing"] and "'accuracy'" in ok["missing"] and "'config'" in ok["missing"]
    assert ok["result"] == {"accuracy": 0.5, "name": "returned name"} and ok["attr_error"] is None
    assert broken["error"] is True and broken["type"] == "KeyError"
    assert broken["message"] == "'missing column'"
    assert broken["traceback_last"] == "KeyError: 'missing column'"
    assert broken["in"] == [True, False]
    assert "'accuracy'" in broken["missing"] and "'__error__'" in broken["missing"]
    assert broken["attr_error"] == "KeyError: 'missing column'"
    assert got["filtered"] == "broken"


TWO_REPORTS = '''
import pyexp

@pyexp.experiment(name="r", executor="inline")
def experiment(config):
    return config.x

@experiment.configs
def configs():
    return [{"name": "a", "x": 1}]

def one(results):
    print("one", [r.result for r in results])

def two(results, report_dir):
    print("two", report_dir.name, [r.result for r in results])

def keyword_only(results, *, verbose=True):
    print("keyword_only", verbose)

if __name__ == "__main__":
    experiment.run(report=one)
    experiment.run(report=two, argv=["--report"])
    experiment.run(report=keyword_only, argv=["--report"])
'''


def test_report_gets_report_dir_only_when_it_takes_two_parameters(script):
    out = script(TWO_REPORTS).run().stdout.splitlines()
    assert out == ["one [1]", "two report [1]", "keyword_only True"]
