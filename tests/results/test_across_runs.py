"""One config across runs: results(timestamp="all"), history(), and --reuse."""

from __future__ import annotations

import json
import os
import pickle


def test_results_all_is_one_flat_tensor_of_every_run_oldest_first(project):
    project.run(env={"LRS": "0.1,0.2"})
    project.run(env={"LRS": "0.2,0.3,0.4"})
    a, b = [p.name for p in project.runs("demo")]
    out = json.loads(project.load("""
        import json
        rs = exp.results(timestamp="all")
        print(json.dumps({"shape": list(rs.shape), "axes": list(rs.axes),
                          "rows": [[r.run, r.name, r.result["acc"]] for r in rs],
                          "sub": [r.run for r in rs[{"run": rs[0].run}]]}))
    """))
    assert out["shape"] == [5] and out["axes"] == ["result"]
    assert out["rows"] == [[a, "lr0.1", 0.2], [a, "lr0.2", 0.4], [b, "lr0.2", 0.4], [b, "lr0.3", 0.6],
                           [b, "lr0.4", 0.8]]
    assert out["sub"] == [a, a]


def test_history_is_one_config_newest_first_by_name_or_query(project):
    project.run(env={"LRS": "0.1,0.2"})
    project.change_helper()
    project.run(env={"LRS": "0.2"})
    a, b = [p.name for p in project.runs("demo")]
    out = json.loads(project.load("""
        import json
        by_name = exp.history("lr0.2")
        by_query = exp.history({"lr": 0.2})
        from pyexp.errors import NoMatchError
        try:
            exp.history("nope")
            none = "no error"
        except NoMatchError as exc:
            none = str(exc)
        print(json.dumps({"name": [[r.run, r.result["acc"], r.stale] for r in by_name],
                          "query": [r.run for r in by_query], "none": none,
                          "shape": list(by_name.shape)}))
    """))
    assert out["name"] == [[b, 0.6, False], [a, 0.4, True]]
    assert out["query"] == [b, a] and out["shape"] == [2]
    assert "'nope'" in out["none"] and "lr0.2" in out["none"]  # a name never run: the Tensor's no-match error


def test_reuse_links_finished_results_of_identical_configs_and_code(project):
    project.run(env={"LRS": "0.1,0.2"})
    assert sorted(project.calls()) == ["lr0.1", "lr0.2"]
    done = project.run("--reuse", env={"LRS": "0.1,0.2,0.3"})
    assert "reused 2" in done.stderr
    assert sorted(project.calls()) == ["lr0.1", "lr0.2", "lr0.3"]  # only the new config ran
    first, second = project.runs("demo")
    old = next(first.glob("lr0.1-*")) / "result.pkl"
    new = next(second.glob("lr0.1-*")) / "result.pkl"
    assert os.path.samefile(old, new) and not new.is_symlink()  # a hard link, not a copy
    out = json.loads(project.load("""
        import json
        rs = exp.results()
        print(json.dumps([[r.name, r.reused, r.result["acc"], r.logger["loss"][1], r.stale] for r in rs]))
    """))
    assert [x[:3] for x in out] == [["lr0.1", True, 0.2], ["lr0.2", True, 0.4], ["lr0.3", False, 0.6]]
    assert all(abs(x[3] - 1 / 3) < 1e-6 for x in out) and not any(x[4] for x in out)
    listing = project.run("--list").stdout
    assert "2 of 3 results reused from earlier runs" in listing
    frame = project.pyexp("export", "out/demo", "-o", "t.jsonl")
    assert frame.returncode == 0
    rows = [json.loads(x) for x in (project.dir / "t.jsonl").read_text().splitlines()]
    assert [r["reused"] for r in rows] == [True, True, False]
    with open(new, "rb") as f:  # still exactly the pickled return value
        assert pickle.load(f)["acc"] == 0.2
    outcome = json.loads((new.parent / "outcome.json").read_text())
    assert outcome["reused_from"] == f"{first.name}/{new.parent.name}"


def test_reuse_is_off_by_default_and_never_takes_results_of_other_code(project):
    project.run(env={"LRS": "0.1"})
    project.run(env={"LRS": "0.1"})
    assert project.calls() == ["lr0.1", "lr0.1"]
    project.change_helper()
    done = project.run("--reuse", env={"LRS": "0.1"})
    assert "reused" not in done.stderr and project.calls() == ["lr0.1"] * 3
    out = project.load("print([r.reused for r in exp.results()])")
    assert out.strip() == "[False]"


def test_running_a_reused_config_again_leaves_the_earlier_runs_file_alone(project):
    project.run(env={"LRS": "0.1"})
    project.run("--reuse", env={"LRS": "0.1"})
    first, second = project.runs("demo")
    old = next(first.glob("lr0.1-*")) / "result.pkl"
    before = old.read_bytes()
    project.change_helper()
    project.run("--continue", "--rerun-stale")  # the reused (now stale) result of the second run
    new = next(second.glob("lr0.1-*")) / "result.pkl"
    assert not os.path.samefile(old, new) and old.read_bytes() == before
    out = json.loads(project.load("""
        import json
        print(json.dumps([[r.reused, r.result["acc"]] for r in exp.results()]))
    """))
    assert out == [[False, 0.3]]
