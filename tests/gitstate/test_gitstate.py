"""git snapshots: tracked + untracked files, the user's index and work tree untouched, gc-proof."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyexp_testing import clean_env

from pyexp.gitstate import snapshot

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git_env() -> dict[str, str]:
    env = {k: v for k, v in clean_env().items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", HOME=env.get("HOME", "/tmp"))
    return env


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=git_env(), check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    (repo / ".gitignore").write_text("out/\n*.log\n")
    (repo / "main.py").write_text("print('v1')\n")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "lib.py").write_text("X = 1\n")
    git(repo, "add", ".gitignore", "main.py", "pkg/lib.py")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def files_of(repo: Path, commit: str) -> dict[str, str]:
    names = git(repo, "ls-tree", "-r", "--name-only", commit).split()
    return {name: git(repo, "show", f"{commit}:{name}") for name in names}


def test_snapshot_captures_the_work_tree_without_touching_it(repo: Path) -> None:
    (repo / "main.py").write_text("print('v2, not committed')\n")  # modified, unstaged
    (repo / "pkg" / "lib.py").write_text("X = 2\n")
    git(repo, "add", "pkg/lib.py")  # staged
    (repo / "new_module.py").write_text("NEW = True\n")  # untracked
    (repo / "debug.log").write_text("ignored\n")
    (repo / "out").mkdir()
    (repo / "out" / "result.pkl").write_text("ignored too\n")
    status_before = git(repo, "status", "--porcelain")
    index_before = (repo / ".git" / "index").read_bytes()
    head_before = git(repo, "rev-parse", "HEAD").strip()
    branches_before = git(repo, "for-each-ref", "refs/heads/", "refs/tags/")

    commit = snapshot(repo / "pkg", "my exp/2024-01-25_14-30-00")

    assert commit is not None and len(commit) == 40
    files = files_of(repo, commit)
    assert files == {".gitignore": "out/\n*.log\n", "main.py": "print('v2, not committed')\n",
                     "pkg/lib.py": "X = 2\n", "new_module.py": "NEW = True\n"}
    assert git(repo, "rev-parse", f"{commit}^").strip() == head_before
    assert git(repo, "status", "--porcelain") == status_before
    assert (repo / ".git" / "index").read_bytes() == index_before
    assert git(repo, "rev-parse", "HEAD").strip() == head_before
    assert git(repo, "rev-parse", "refs/pyexp/my_exp/2024-01-25_14-30-00").strip() == commit
    assert git(repo, "for-each-ref", "refs/heads/", "refs/tags/") == branches_before


def test_snapshot_survives_gc(repo: Path) -> None:
    (repo / "untracked.txt").write_text("keep me\n")
    commit = snapshot(repo, "exp/ts1")
    assert commit is not None
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert git(repo, "cat-file", "-t", commit).strip() == "commit"
    assert git(repo, "show", f"{commit}:untracked.txt") == "keep me\n"


def test_two_snapshots_differ_and_both_stay_pinned(repo: Path) -> None:
    first = snapshot(repo, "exp/a")
    (repo / "main.py").write_text("print('changed')\n")
    second = snapshot(repo, "exp/b")
    assert first and second and first != second
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/pyexp/")
    assert refs.split("\n")[:2] == [f"refs/pyexp/exp/a {first}", f"refs/pyexp/exp/b {second}"]


def test_repo_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("A = 1\n")
    commit = snapshot(repo / "a.py", "exp/first")
    assert commit is not None
    assert files_of(repo, commit) == {"a.py": "A = 1\n"}
    assert git(repo, "rev-list", "--count", commit).strip() == "1"  # no parent
    assert git(repo, "status", "--porcelain") == "?? a.py\n"
    assert not (repo / ".git" / "index").exists()


def test_outside_a_repo_returns_none(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    env_ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)  # do not find a repo above tmp
    try:
        assert snapshot(plain, "exp/x") is None
    finally:
        if env_ceiling is None:
            del os.environ["GIT_CEILING_DIRECTORIES"]
        else:
            os.environ["GIT_CEILING_DIRECTORIES"] = env_ceiling
    assert not recwarn.list


def test_missing_git_returns_none(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    assert snapshot(repo, "exp/x") is None


def test_excluded_output_folder(repo: Path) -> None:
    (repo / "results").mkdir()
    (repo / "results" / "big.bin").write_text("data\n")
    commit = snapshot(repo, "exp/x", exclude=[repo / "results"])
    assert commit is not None and "results/big.bin" not in files_of(repo, commit)


def test_excluding_a_folder_gitignore_already_ignores(repo: Path) -> None:
    # The runner always excludes its output folder; git add refuses pathspecs of ignored paths.
    (repo / "out").mkdir()
    (repo / "out" / "result.pkl").write_text("data\n")
    (repo / "new.py").write_text("N = 1\n")
    commit = snapshot(repo, "exp/y", exclude=[repo / "out"])
    assert commit is not None
    files = files_of(repo, commit)
    assert "new.py" in files and not any(name.startswith("out/") for name in files)


def test_no_identity_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "anon"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("A = 1\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
                "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    commit = snapshot(repo, "exp/x")  # git may or may not guess an identity; either way a commit
    assert commit is not None
    assert git(repo, "cat-file", "-t", commit).strip() == "commit"


def test_large_untracked_files_are_left_out_with_a_warning(repo: Path) -> None:
    (repo / "model.bin").write_bytes(b"\0" * 5000)
    (repo / "small.txt").write_text("small\n")
    with pytest.warns(UserWarning, match=r"leaves out 1 untracked file.*model\.bin"):
        commit = snapshot(repo, "exp/big", max_untracked_bytes=1000)
    assert commit is not None
    files = files_of(repo, commit)
    assert "small.txt" in files and "model.bin" not in files
    assert "model.bin" in files_of(repo, snapshot(repo, "exp/all", max_untracked_bytes=None))
