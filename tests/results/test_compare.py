"""``python -m pyexp compare`` and ``diff-code``, and the one-line errors for bad runs."""

from __future__ import annotations

import json
import shutil


def two_runs(project):
    project.run(env={"LRS": "0.1,0.2,0.3"})
    project.change_helper()
    project.run(env={"LRS": "0.2,0.3,0.5"})
    return [p.name for p in project.runs("demo")]


def test_compare_lists_added_removed_and_the_difference_of_each_scalar(project):
    a, b = two_runs(project)
    done = project.pyexp("compare", "out/demo", a, b)
    text = done.stdout
    assert "+ lr0.5" in text and "- lr0.1" in text
    assert "lr0.2   result.acc" in text and "+0.2" in text  # 0.4 -> 0.6
    found = json.loads(project.pyexp("compare", "out/demo", a, "latest", "--json").stdout)
    assert found["a"] == a and found["b"] == b
    assert found["added"] == ["lr0.5"] and found["removed"] == ["lr0.1"] and found["changed"] == []
    by_name = {r["name"]: r for r in found["results"]}
    assert set(by_name) == {"lr0.2", "lr0.3"}
    acc = by_name["lr0.2"]["scalars"]["result.acc"]
    assert acc["a"] == 0.4 and acc["b"] == 0.6 and abs(acc["diff"] - 0.2) < 1e-9
    assert by_name["lr0.2"]["scalars"]["result.tag"] == {"a": "ok", "b": "ok", "diff": None}
    assert by_name["lr0.2"]["status"] == ["done", "done"]


def test_compare_shows_configs_whose_values_changed(project):
    project.run(env={"LRS": "0.1"})
    main = project.dir / "main.py"
    main.write_text(main.read_text().replace('"lr": v}', '"lr": v, "depth": 2}'))
    project.run(env={"LRS": "0.1"})
    a, b = [p.name for p in project.runs("demo")]
    found = json.loads(project.pyexp("compare", "out/demo", a, b, "--json").stdout)
    assert found["changed"] == [{"name": "lr0.1", "changes": {"depth": [None, 2]}}]
    assert "~ lr0.1: depth: - -> 2" in project.pyexp("compare", "out/demo", a, b).stdout


def test_unknown_timestamp_and_a_run_of_another_experiment_are_one_line(project, tmp_path):
    project.run(env={"LRS": "0.1"})
    (ts,) = [p.name for p in project.runs("demo")]
    done = project.pyexp("compare", "out/demo", ts, "1999-01-01_00-00-00", check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("pyexp: error:") and "1999-01-01_00-00-00" in done.stderr
    other = tmp_path / "elsewhere" / "other"
    other.parent.mkdir()
    shutil.copytree(project.store, other)
    foreign = other / ts
    runs_json = json.loads((foreign / "runs.json").read_text())
    runs_json["experiment"] = "other"
    (foreign / "runs.json").write_text(json.dumps(runs_json))
    done = project.pyexp("compare", "out/demo", ts, str(foreign), check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert str(foreign / "runs.json") in done.stderr and "'other'" in done.stderr
    # The library refuses it the same way.
    out = project.load(f"""
        from pyexp.errors import RunNotFoundError
        try:
            exp.results(timestamp={str(foreign)!r})
        except RunNotFoundError as exc:
            print("refused:", exc)
    """)
    assert out.startswith("refused:") and "runs.json" in out


def test_diff_code_names_the_files_changed_since_the_runs_snapshot(project):
    project.run(env={"LRS": "0.1"})
    (ts,) = [p.name for p in project.runs("demo")]
    same = project.pyexp("diff-code", "out/demo").stdout
    assert "unchanged" in same and "(no changes)" in same
    project.change_helper()
    (project.dir / "README.md").write_text("edited\n")
    (project.dir / "lib" / "extra.py").write_text("Z = 1\n")
    text = project.pyexp("diff-code", f"out/demo/{ts}").stdout
    assert "M  lib/helper.py" in text.split("work tree")[0]  # an experiment source
    assert "README.md" in text.split("work tree")[1] and "lib/extra.py" in text.split("work tree")[1]
    found = json.loads(project.pyexp("diff-code", "out/demo", ts, "--json").stdout)
    assert found["sources"]["changed"] == ["lib/helper.py"]
    assert ["M", "README.md"] in found["worktree"] and ["A", "lib/extra.py"] in found["worktree"]
    assert found["fingerprint"][0] != found["fingerprint"][1]


def test_diff_code_without_git_uses_the_recorded_file_hashes(project):
    shutil.rmtree(project.dir / ".git")
    project.run(env={"LRS": "0.1"})
    project.change_helper()
    found = json.loads(project.pyexp("diff-code", "out/demo", "--json").stdout)
    assert found["commit"] is None and found["worktree"] is None
    assert found["sources"]["changed"] == ["lib/helper.py"]
