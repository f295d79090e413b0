"""Code fingerprints: the experiment's file and the project files it imports, nothing else."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyexp.fingerprint import CodeState, compute, diff, now_of


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_tree(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)  # marks the project's top folder
    write(root / "pkg" / "__init__.py", "")
    write(root / "pkg" / "models.py", "from .layers import Dense\nimport json\n")
    write(root / "pkg" / "layers.py", "class Dense: pass\n")
    write(root / "pkg" / "unused.py", "X = 1\n")
    write(root / "utils.py", "def helper(): pass\n")
    write(root / "notes.txt", "not code\n")
    return write(root / "exp" / "main.py", (
        "import os, sys\n"
        "import pkg.models\n"
        "def run(config):\n"
        "    from utils import helper   # imported only when a config runs\n"
        "    return helper()\n"
    ))


def test_files_are_the_experiment_and_what_it_imports_from_the_tree(tmp_path):
    main = make_tree(tmp_path)
    state = compute(main, search=["exp", "."], root=tmp_path)
    assert sorted(state.files) == ["exp/main.py", "pkg/__init__.py", "pkg/layers.py", "pkg/models.py", "utils.py"]
    assert state.file == "exp/main.py" and Path(state.root) == tmp_path.resolve()


def test_fingerprint_changes_exactly_when_an_imported_file_does(tmp_path):
    main = make_tree(tmp_path)
    before = compute(main, search=["exp", "."], root=tmp_path)
    write(tmp_path / "pkg" / "unused.py", "X = 2\n")
    write(tmp_path / "notes.txt", "edited\n")
    assert compute(main, search=["exp", "."], root=tmp_path).fingerprint == before.fingerprint
    write(tmp_path / "pkg" / "layers.py", "class Dense:\n    units = 3\n")
    after = compute(main, search=["exp", "."], root=tmp_path)
    assert after.fingerprint != before.fingerprint
    changes = diff(before, after)
    assert changes.changed == ["pkg/layers.py"] and not changes.added and not changes.removed


def test_a_new_import_shows_as_added_and_a_dropped_one_as_removed(tmp_path):
    main = make_tree(tmp_path)
    before = compute(main, search=["exp", "."], root=tmp_path)
    write(main, "import pkg.unused\n")
    after = compute(main, search=["exp", "."], root=tmp_path)
    changes = diff(before, after)
    assert "pkg/unused.py" in changes.added and "utils.py" in changes.removed and changes.changed == ["exp/main.py"]


def test_installed_packages_and_the_stdlib_are_not_the_experiments_code(tmp_path):
    main = make_tree(tmp_path)
    # A virtualenv inside the project: its site-packages is installed software.
    site = tmp_path / ".venv" / "lib" / "python3" / "site-packages"
    write(site / "thirdparty.py", "Y = 1\n")
    write(main, "import thirdparty\nimport json\nimport pkg.layers\n")
    state = compute(main, search=["exp", ".", os.path.relpath(site, tmp_path)], root=tmp_path)
    assert sorted(state.files) == ["exp/main.py", "pkg/__init__.py", "pkg/layers.py"]


def test_search_path_comes_from_sys_path_inside_the_project(tmp_path, monkeypatch):
    main = make_tree(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "exp"), str(tmp_path), *sys.path])
    state = compute(main)
    assert "utils.py" in state.files and "pkg/models.py" in state.files
    assert not any("site-packages" in f for f in state.files)


def test_a_recorded_state_spares_reading_unchanged_files_and_notices_edits(tmp_path):
    main = make_tree(tmp_path / "proj")
    first = compute(main, search=["exp", "."])
    assert set(first.stats) == set(first.files)
    # A seed whose stats match is trusted: a wrong hash in it shows that the file was not read.
    fake = CodeState.from_json({**first.to_json(), "files": {**first.files, "utils.py": "0" * 16}})
    assert compute(main, fake, search=["exp", "."]).files["utils.py"] == "0" * 16
    assert compute(main, first, search=["exp", "."]) == first
    # An edit that keeps the size still changes the mtime, so the cache does not hide it.
    layers = tmp_path / "proj" / "pkg" / "layers.py"
    write(layers, "class Dense: pasS\n")
    os.utime(layers, ns=(os.stat(layers).st_atime_ns, os.stat(layers).st_mtime_ns + 10**9))
    assert compute(main, first, search=["exp", "."]).fingerprint != first.fingerprint


def test_a_recorded_state_round_trips_and_is_recomputed_the_same_way(tmp_path):
    main = make_tree(tmp_path)
    state = compute(main, search=["exp", "."], root=tmp_path, commit="abc123")
    again = CodeState.from_json(state.to_json())
    assert again == state and state.short == {"fingerprint": state.fingerprint, "commit": "abc123"}
    assert now_of(again).fingerprint == state.fingerprint
    assert CodeState.from_json(None) is None and CodeState.from_json({"files": {}}) is None


def test_a_file_that_does_not_parse_still_counts_by_its_content(tmp_path):
    main = make_tree(tmp_path)
    write(main, "import pkg.layers\ndef broken(:\n")
    state = compute(main, search=["exp", "."], root=tmp_path)
    assert state.files.keys() == {"exp/main.py"}
