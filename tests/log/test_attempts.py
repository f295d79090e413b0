"""A config run again from the start logs into a clean events.pb; its earlier attempt is kept aside."""

from __future__ import annotations

from pyexp import LogReader

SCRIPT = '''
import pathlib
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="att", executor="fork", stash=False)
def exp(config, logger):
    steps = 3 if (HERE / "crash").exists() else 5
    for i in range(steps):
        logger.set_global_it(i)
        logger.add_scalar("loss", float(i))
    if (HERE / "crash").exists():
        raise RuntimeError("first attempt dies")
    return steps

@exp.configs
def configs():
    return [{"name": "only"}]

if __name__ == "__main__":
    exp.run()
'''


def _config_dir(s):
    (run,) = s.runs("att")
    (folder,) = [p for p in run.iterdir() if p.name.startswith("only-")]
    return folder


def test_a_fresh_rerun_archives_the_interrupted_log(script):
    s = script(SCRIPT)
    (s.dir / "crash").touch()
    s.run()
    (s.dir / "crash").unlink()
    s.run("--continue")
    folder = _config_dir(s)
    assert [it for it, _ in LogReader(folder).load_scalars("loss")] == [0, 1, 2, 3, 4]
    archived = LogReader(folder / ".previous-attempts" / "1")
    assert [it for it, _ in archived.load_scalars("loss")] == [0, 1, 2]
    # hidden: the viewer and LogReader do not list the old attempt as a run
    assert LogReader(folder.parent).runs == [folder.name]


def test_a_resumed_attempt_keeps_appending(script):
    s = script(SCRIPT)
    (s.dir / "crash").touch()
    s.run()
    (s.dir / "crash").unlink()
    folder = _config_dir(s)
    (folder / ".checkpoints").mkdir(exist_ok=True)
    (folder / ".checkpoints" / "train.pkl").write_bytes(b"stands for a finished @chkpt phase")
    s.run("--continue")
    steps = [it for it, _ in LogReader(folder).load_scalars("loss")]
    assert steps == [0, 1, 2, 0, 1, 2, 3, 4]
    assert not (folder / ".previous-attempts").exists()
