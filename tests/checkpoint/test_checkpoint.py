"""Class-based experiments and @chkpt, through real scripts run as a user would.

Each script appends one line per method call to calls.txt; ``count_calls`` then proves
what ran again and what was restored from a checkpoint.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from pyexp_testing import clean_env, count_calls

EXECUTORS = ["inline", "subprocess", "fork"]

CLASS_SCRIPT = '''
import os, pathlib
import cloudpickle
from pyexp import Experiment, chkpt, sweep

HERE = pathlib.Path(__file__).parent


def mark(what):
    with open(HERE / "calls.txt", "a") as f:
        f.write(what + "\\n")


def calls(what):
    path = HERE / "calls.txt"
    return path.read_text().splitlines().count(what) if path.exists() else 0


class Train(Experiment, name="cls", executor=os.environ.get("EXECUTOR", "subprocess")):
    model: dict
    results: dict

    @chkpt(retry=int(os.environ.get("RETRY", "3")))
    def train(self):
        mark("train " + self.name)
        self.model = {"w": self.cfg.lr * 10}
        # Fails on the first FLAKY attempts of this config.
        if calls("train " + self.name) <= int(self.cfg.get("flaky", 0)):
            raise ValueError("flaky attempt %d" % calls("train " + self.name))
        return "trained-" + self.name

    @chkpt
    def evaluate(self):
        mark("evaluate " + self.name)
        if (HERE / ("fail-" + self.name)).exists():
            raise RuntimeError("evaluation broke")
        self.results = {"acc": self.model["w"] + self.cfg.bonus}

    def experiment(self):
        self.token = self.train()
        self.evaluate()
        return "done"

    @staticmethod
    def configs():
        return sweep([{"name": "a", "lr": 0.1, "flaky": int(os.environ.get("FLAKY_A", "0"))},
                      {"name": "b", "lr": 0.2, "flaky": int(os.environ.get("FLAKY_B", "0"))}],
                     [{"name": "x", "bonus": 1}, {"name": "y", "bonus": 2}])

    @staticmethod
    def report(results, out):
        print("SHAPE", results.shape)
        for exp in results:
            print("RESULT", exp.name, type(exp).__name__, exp.status, exp.results,
                  getattr(exp, "model", None), getattr(exp, "token", None), exp.error)
            assert exp.cfg is exp.config and exp.out == pathlib.Path(exp.cfg.out)
            assert exp.log is not None and exp.result == ("done" if exp.error is None else None)
            cloudpickle.loads(cloudpickle.dumps(exp))  # instances travel
        print("FILTER", [e.name for e in results[{"config.lr": 0.2}]], [e.name for e in results["*_y"]])


if __name__ == "__main__":
    Train.run()
'''


def _results(stdout: str) -> dict[str, list[str]]:
    """name -> [class, status, results, model, token, error] from the report's RESULT lines."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            name, klass, status, rest = line.split(" ", 4)[1:]
            found[name] = [klass, status, rest]
    return found


def _config_dir(s, name: str) -> Path:
    (run,) = s.runs("cls")
    (folder,) = [p for p in run.iterdir() if p.name.startswith(name + "-")]
    return folder


@pytest.mark.parametrize("executor", EXECUTORS)
def test_retry_then_failure_then_continue_resumes_from_checkpoint(script, executor):
    s = script(CLASS_SCRIPT)
    (s.dir / "fail-a_y").touch()
    proc = s.run(env={"EXECUTOR": executor, "FLAKY_B": "2"})
    results = _results(proc.stdout)
    assert "SHAPE (2, 2)" in proc.stdout
    # b_* failed twice in train and succeeded on the third (last allowed) attempt.
    assert results["b_x"] == ["Train", "done", "{'acc': 3.0} {'w': 2.0} trained-b_x None"]
    assert results["a_x"] == ["Train", "done", "{'acc': 2.0} {'w': 1.0} trained-a_x None"]
    # a_y failed in evaluate: its instance has the error and the state of its train checkpoint
    # (token was assigned after that checkpoint, so it is not there).
    assert results["a_y"][:2] == ["Train", "failed"]
    assert results["a_y"][2].startswith("None {'w': 1.0} None RuntimeError: evaluation broke")
    assert "FILTER ['b_x', 'b_y'] ['a_y', 'b_y']" in proc.stdout
    assert count_calls(s.dir) == {
        "train a_x": 1, "evaluate a_x": 1, "train a_y": 1, "evaluate a_y": 1,
        "train b_x": 3, "evaluate b_x": 1, "train b_y": 3, "evaluate b_y": 1,
    }
    log = (_config_dir(s, "b_x") / "log.out").read_text()
    assert "Train.train() failed (attempt 1 of 3): ValueError: flaky attempt 1; retrying" in log
    assert "attempt 2 of 3" in log and "attempt 3" not in log
    folder = _config_dir(s, "a_y")
    assert sorted(p.name for p in (folder / ".checkpoints").iterdir()) == ["train.pkl"]

    (s.dir / "fail-a_y").unlink()
    proc = s.run("--continue", env={"EXECUTOR": executor})
    results = _results(proc.stdout)
    # train was restored from its checkpoint (return value included), only evaluate re-ran.
    assert results["a_y"] == ["Train", "done", "{'acc': 3.0} {'w': 1.0} trained-a_y None"]
    assert count_calls(s.dir)["train a_y"] == 1
    assert count_calls(s.dir)["evaluate a_y"] == 2
    assert sum(count_calls(s.dir).values()) == 13
    assert sorted(p.name for p in (folder / ".checkpoints").iterdir()) == ["evaluate.pkl", "train.pkl"]


def test_retry_exhausted_fails_that_config_only(script):
    s = script(CLASS_SCRIPT)
    proc = s.run(env={"FLAKY_A": "5", "RETRY": "2"})
    results = _results(proc.stdout)
    for name in ("a_x", "a_y"):
        assert results[name][1] == "failed"
        assert results[name][2].endswith("ValueError: flaky attempt 2")
        assert "gave up after 2 attempts" in (_config_dir(s, name) / "log.out").read_text()
        assert not (_config_dir(s, name) / ".checkpoints").exists()
    assert results["b_x"][1] == results["b_y"][1] == "done"
    calls = count_calls(s.dir)
    assert calls["train a_x"] == calls["train a_y"] == 2
    assert "evaluate a_x" not in calls and calls["evaluate b_x"] == 1


def test_report_and_results_classmethod_load_instances_without_running(script):
    s = script(CLASS_SCRIPT)
    s.run()
    before = count_calls(s.dir)
    proc = s.run("--report")
    assert _results(proc.stdout)["b_y"] == ["Train", "done", "{'acc': 4.0} {'w': 2.0} trained-b_y None"]
    loader = s.dir / "load.py"
    loader.write_text(
        "import sys; sys.path.insert(0, '.')\n"
        "from main import Train\n"
        "res = Train.results()\n"
        "print(res.shape, [(e.name, e.results['acc'], e.error) for e in res])\n"
    )
    out = subprocess.run([sys.executable, str(loader)], cwd=s.dir, env=clean_env(), capture_output=True,
                         text=True, check=True, timeout=60)
    assert "(2, 2) [('a_x', 2.0, None), ('a_y', 3.0, None), ('b_x', 3.0, None), ('b_y', 4.0, None)]" in out.stdout
    assert count_calls(s.dir) == before


SPEC_EXAMPLE = '''
from pyexp import Experiment, ExperimentRunner, chkpt
import pathlib

HERE = pathlib.Path(__file__).parent


def train_model(cfg):
    with open(HERE / "calls.txt", "a") as f:
        f.write("train_model\\n")
    return {"weights": [cfg.lr] * 3}


def evaluate(model):
    with open(HERE / "calls.txt", "a") as f:
        f.write("evaluate\\n")
    if (HERE / "fail-eval").exists():
        raise RuntimeError("evaluation data missing")
    return {"accuracy": sum(model["weights"])}


class MyExperiment(Experiment):
    model: dict
    results: dict

    @chkpt(retry=3)
    def train(self):
        """Training phase - retried up to 3 times on failure."""
        self.model = train_model(self.cfg)

    @chkpt
    def evaluate(self):
        """Evaluation phase - checkpointed."""
        self.results = evaluate(self.model)

    def experiment(self):
        self.train()      # Checkpoint saved after completion
        self.evaluate()   # If this fails, train() won't re-run on --continue

    @staticmethod
    def configs():
        return [{"name": "exp", "lr": 0.01}]

    @staticmethod
    def report(results, out):
        for exp in results:
            print(f"{exp.name}: {exp.results}")


if __name__ == "__main__":
    ExperimentRunner(MyExperiment).run()
'''


def test_spec_checkpoints_example(script):
    s = script(SPEC_EXAMPLE)
    (s.dir / "fail-eval").touch()
    proc = s.run()
    assert "exp: None" in proc.stdout
    root = s.dir / "out" / "MyExperiment"
    (run,) = [p for p in root.iterdir()]
    (folder,) = [p for p in run.iterdir() if p.name.startswith("exp-")]
    assert (folder / ".checkpoints" / "train.pkl").is_file()
    assert "RuntimeError: evaluation data missing" in (folder / "log.out").read_text()
    (s.dir / "fail-eval").unlink()
    proc = s.run("--continue")
    assert "exp: {'accuracy': 0.03}" in proc.stdout
    assert count_calls(s.dir) == {"train_model": 1, "evaluate": 2}
    assert (folder / ".checkpoints" / "evaluate.pkl").is_file()


FUNCTION_SCRIPT = '''
import os, pathlib
import pyexp
from pyexp import chkpt

HERE = pathlib.Path(__file__).parent


def mark(what):
    with open(HERE / "calls.txt", "a") as f:
        f.write(what + "\\n")


@chkpt
def load_data(n, scale=1.0):
    mark("load %s %s" % (n, scale))
    return [i * scale for i in range(n)]


@chkpt(retry=2)
def fit(data, lr):
    mark("fit %s" % lr)
    if not (HERE / "fit-once").exists():
        (HERE / "fit-once").touch()
        raise OSError("transient")
    return sum(data) * lr


@pyexp.experiment(name="fn", executor=os.environ.get("EXECUTOR", "subprocess"))
def exp(config):
    data = load_data(config.n)
    same = load_data(n=config.n, scale=1.0)  # same arguments, spelled differently: one checkpoint
    assert same == data
    other = load_data(config.n, scale=2.0)
    w = fit(data, config.lr)
    if (HERE / ("fail-" + config.name)).exists():
        raise ValueError("failed after the helpers")
    return {"w": w, "other": sum(other)}


@exp.configs
def configs():
    return [{"name": "a", "n": 3, "lr": 0.5}]


@exp.report
def report(results, out):
    for r in results:
        print("RESULT", r.name, r.result, r.error)


if __name__ == "__main__":
    load_data(2)  # outside a run: no config folder, so it just runs
    exp.run()
'''


@pytest.mark.parametrize("executor", EXECUTORS)
def test_chkpt_on_helper_functions_in_decorator_api(script, executor):
    s = script(FUNCTION_SCRIPT)
    (s.dir / "fail-a").touch()
    proc = s.run(env={"EXECUTOR": executor})
    assert "RESULT a None ValueError: failed after the helpers" in proc.stdout
    (run,) = s.runs("fn")
    (folder,) = [p for p in run.iterdir() if p.name.startswith("a-")]
    names = sorted(p.name.split("-")[0] for p in (folder / ".checkpoints").iterdir())
    assert names == ["fit", "load_data", "load_data"]
    assert count_calls(s.dir) == {"load 2 1.0": 1, "load 3 1.0": 1, "load 3 2.0": 1, "fit 0.5": 2}

    (s.dir / "fail-a").unlink()
    proc = s.run("--continue", env={"EXECUTOR": executor})
    assert "RESULT a {'w': 1.5, 'other': 6.0} None" in proc.stdout
    # Only the call outside the run (no checkpoint folder) ran again.
    assert count_calls(s.dir) == {"load 2 1.0": 2, "load 3 1.0": 1, "load 3 2.0": 1, "fit 0.5": 2}


UNPICKLABLE_SCRIPT = '''
import os, threading
from pyexp import Experiment, chkpt


class Locky(Experiment, name="lock", executor=os.environ.get("EXECUTOR", "subprocess")):
    @chkpt
    def setup(self):
        self.ok = 1
        if self.cfg.where == "chkpt":
            self.guard = threading.Lock()

    def experiment(self):
        self.setup()
        if self.cfg.where == "final":
            self.handle = threading.Lock()

    @staticmethod
    def configs():
        return [{"name": "in_chkpt", "where": "chkpt"}, {"name": "at_end", "where": "final"},
                {"name": "fine", "where": "nowhere"}]

    @staticmethod
    def report(results, out):
        for exp in results:
            print("RESULT", exp.name, exp.error)


if __name__ == "__main__":
    Locky.run()
'''


@pytest.mark.parametrize("executor", ["inline", "subprocess"])
def test_unpicklable_state_names_the_attribute_and_method(script, executor):
    s = script(UNPICKLABLE_SCRIPT)
    proc = s.run(env={"EXECUTOR": executor})
    lines = {line.split()[1]: line.split(" ", 2)[2] for line in proc.stdout.splitlines() if line.startswith("RESULT")}
    assert lines["in_chkpt"].startswith("CheckpointError: Locky.setup(): attribute self.guard (a lock)")
    assert "cannot be pickled" in lines["in_chkpt"]
    assert lines["at_end"].startswith("CheckpointError: Locky.experiment() (its final state): attribute "
                                      "self.handle (a lock)")
    assert lines["fine"] == "None"


def test_corrupt_checkpoint_is_ignored_with_a_warning(script):
    s = script(CLASS_SCRIPT)
    (s.dir / "fail-a_x").touch()
    s.run(env={"EXECUTOR": "fork"})
    train = _config_dir(s, "a_x") / ".checkpoints" / "train.pkl"
    train.write_bytes(train.read_bytes()[:-7])  # truncated, e.g. by a full disk in another tool
    (s.dir / "fail-a_x").unlink()
    proc = s.run("--continue", env={"EXECUTOR": "fork"})
    assert _results(proc.stdout)["a_x"][1] == "done"
    log = (_config_dir(s, "a_x") / "log.out").read_text()
    assert f"ignoring corrupt checkpoint {train}" in log
    assert "Train.train() runs again" in log
    assert count_calls(s.dir)["train a_x"] == 2
    assert pickle.load(open(train, "rb"))["pyexp_checkpoint"] == 1  # rewritten whole


def test_list_shows_checkpoints_of_unfinished_configs(script):
    s = script(CLASS_SCRIPT)
    (s.dir / "fail-b_y").touch()
    s.run(env={"EXECUTOR": "fork"})
    proc = s.run("--list")
    folder = _config_dir(s, "b_y").name
    assert f"    {folder}: failed, 1 checkpoint (train)" in proc.stdout
    assert proc.stdout.count("checkpoint") == 1  # finished configs are not listed


def test_instance_by_hand_and_decorator_errors(tmp_path):
    from pyexp import Experiment, ExperimentRunner, chkpt
    from pyexp.errors import CheckpointError, ConfigError

    with pytest.raises(CheckpointError, match=r"@chkpt\(retry=3\)"):
        chkpt(3)
    with pytest.raises(CheckpointError, match="total number of attempts"):
        chkpt(retry=0)

    class NotStatic(Experiment):
        def experiment(self):
            pass

        def configs(self):
            return []

    with pytest.raises(ConfigError, match="NotStatic.configs must be a @staticmethod"):
        ExperimentRunner(NotStatic)
    with pytest.raises(ConfigError, match="must define experiment"):
        ExperimentRunner(type("Empty", (Experiment,), {}))
    with pytest.raises(ConfigError, match="unknown experiment option.*colour"):
        type("Bad", (Experiment,), {}, colour="red")

    runs = []

    class ByHand(Experiment):
        total: int

        @chkpt(retry=2)
        def step(self, k):
            runs.append(k)
            if len(runs) == 1:
                self.total = -1  # rolled back before the retry
                raise OSError("first attempt fails")
            self.total = getattr(self, "base", 0) + k
            return k * 2

        def experiment(self):
            pass

    exp = ByHand({"name": "manual"}, out=tmp_path)
    with pytest.raises(AttributeError, match="declared but not set yet"):
        exp.total
    assert exp.step(5) == 10 and exp.total == 5 and runs == [5, 5]
    fresh = ByHand({"name": "manual"}, out=tmp_path)
    assert fresh.step(5) == 10 and fresh.total == 5 and runs == [5, 5]  # restored, not run
    assert [p.name.split("-")[0] for p in (tmp_path / ".checkpoints").iterdir()] == ["step"]
    assert fresh.step(k=6) == 12 and runs == [5, 5, 6]
    json.dumps(exp.cfg)


LOGGER_SCRIPT = '''
from pyexp import Experiment, chkpt


class Logged(Experiment, name="logged", executor="fork"):
    @chkpt
    def fit(self):
        for it in range(3):
            self.logger.set_global_it(it)
            self.logger.add_scalar("loss", 1.0 / 2 ** it)
        self.fitted = True

    def experiment(self):
        self.fit()

    @staticmethod
    def configs():
        return [{"name": "one", "lr": 0.5}]

    @staticmethod
    def report(results, out):
        exp = results[0]
        print("LOSS", exp.logger["loss"], exp.fitted, exp.logger.load_scalars("loss"))
        print("CONFIG", "lr: 0.5" in exp.logger["config"][1])


if __name__ == "__main__":
    Logged.run()
'''


def test_logger_while_running_and_log_reader_in_the_report(script):
    s = script(LOGGER_SCRIPT)
    proc = s.run()
    assert "LOSS (2, 0.25) True [(0, 1.0), (1, 0.5), (2, 0.25)]" in proc.stdout
    assert "CONFIG True" in proc.stdout


def test_repeated_and_nested_method_calls_resume_in_order(tmp_path):
    from pyexp import Experiment, chkpt

    ran = []

    class Loop(Experiment):
        @chkpt
        def epoch(self):
            ran.append("epoch")
            self.step = getattr(self, "step", 0) + 1
            if self.step == self.cfg.crash_at:
                raise RuntimeError("crash")

        @chkpt
        def warmup(self):
            ran.append("warmup")
            self.epoch()  # a checkpointed call inside another one

        def experiment(self):
            self.warmup()
            for _ in range(3):
                self.epoch()
            return self.step

    first = Loop({"name": "loop", "crash_at": 3}, out=tmp_path)
    with pytest.raises(RuntimeError):
        first.experiment()
    assert ran == ["warmup", "epoch", "epoch", "epoch"]
    assert sorted(p.name for p in (tmp_path / ".checkpoints").iterdir()) == [
        "epoch-call2.pkl", "epoch.pkl", "warmup.pkl"]
    ran.clear()
    again = Loop({"name": "loop", "crash_at": 0}, out=tmp_path)
    assert again.experiment() == 4
    # warmup (with its inner epoch) and epoch #2 were restored; only epochs #3 and #4 ran.
    assert ran == ["epoch", "epoch"]
