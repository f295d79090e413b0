"""A small git project with an experiment that imports a helper module, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyexp_testing import Script, clean_env

MAIN = '''
import os
import pyexp
from lib.helper import scale

@pyexp.experiment(name="demo", executor="fork")
def exp(config, logger):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.txt"), "a") as f:
        f.write(config.name + "\\n")
    if config.get("fail"):
        raise ValueError("asked to fail")
    for i in range(3):
        logger.set_global_it(i)
        logger.add_scalar("loss", 1.0 / (i + 1))
    return {"acc": scale(config.lr), "steps": 3, "weights": [0.5] * 10, "tag": "ok"}

@exp.configs
def configs():
    lrs = [float(v) for v in os.environ.get("LRS", "0.1,0.2,0.3").split(",")]
    return [{"name": f"lr{v}", "lr": v} for v in lrs]

if __name__ == "__main__":
    exp.run()
'''

HELPER = "def scale(x):\n    return round(x * 2, 6)\n"


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PYEXP_", "RAY_"))}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


class Project(Script):
    """The experiment script plus helpers to change its code and call ``python -m pyexp``."""

    @property
    def store(self) -> Path:
        return self.dir / "out" / "demo"

    def pyexp(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "pyexp", *args], cwd=self.dir, env=clean_env(),
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"python -m pyexp {' '.join(args)} exited {proc.returncode}\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def calls(self) -> list[str]:
        path = self.dir / "calls.txt"
        return path.read_text().split() if path.exists() else []

    def change_helper(self, body: str = "def scale(x):\n    return round(x * 3, 6)\n") -> None:
        (self.dir / "lib" / "helper.py").write_text(body)

    def load(self, code: str) -> str:
        """Run ``code`` in a fresh interpreter in the project folder (``exp`` is the experiment)."""
        prog = "from main import exp\n" + textwrap.dedent(code)
        proc = subprocess.run([sys.executable, "-c", prog], cwd=self.dir, env=clean_env(), capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "helper.py").write_text(HELPER)
    (root / "main.py").write_text(textwrap.dedent(MAIN))
    (root / "README.md").write_text("demo\n")
    (root / ".gitignore").write_text("out/\ncalls.txt\n__pycache__/\n")
    git(root, "init", "-q")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return Project(root / "main.py")
