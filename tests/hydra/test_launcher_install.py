"""The launcher is found by Hydra from a normal (wheel) install, not only from the editable one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import hydra
import pytest

REPO = Path(__file__).resolve().parents[2]


from pyexp_testing import clean_env  # noqa: E402

APP = """
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    return cfg.x

if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_wheel_install_registers_the_launcher(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("pyexp", "hydra_plugins"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-build-isolation", "--no-deps", str(src), "-w", str(tmp_path / "wh")],
                   check=True, capture_output=True, env=clean_env())
    (wheel,) = (tmp_path / "wh").glob("pyexp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hydra_plugins/pyexp_launcher/pyexp_launcher.py" in names
    assert "hydra_plugins/pyexp_sweeper/pyexp_sweeper.py" in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace shared with other plugins
    subprocess.run(pip + ["install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, capture_output=True, env=clean_env())

    # -S: no site-packages processing, so the editable install's finder is out of the picture;
    # Hydra and its dependencies come from their folder on PYTHONPATH.
    deps = os.path.dirname(os.path.dirname(hydra.__file__))
    (tmp_path / "app.py").write_text(APP)
    env = clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), deps]))
    proc = subprocess.run(
        [sys.executable, "-S", "app.py", "-m", "hydra/launcher=pyexp", "hydra.launcher.executor=fork", "+x=1,2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "out" / "app").glob("*/runs.json"))
    assert len(runs) == 1
    assert str(tmp_path / "site") in subprocess.run(
        [sys.executable, "-S", "-c", "import pyexp; print(pyexp.__file__)"], env=env, capture_output=True,
        text=True, cwd=tmp_path).stdout
