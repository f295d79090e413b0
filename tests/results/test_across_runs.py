"""One config across runs: results(timestamp="all"), history(), and --reuse."""

from __future__ import annotations

import json


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
        print(json.dumps({"name": [[r.run, r.result["acc"], r.stale] for r in by_name],
                          "query": [r.run for r in by_query], "none": len(exp.history("nope")),
                          "shape": list(by_name.shape)}))
    """))
    assert out["name"] == [[b, 0.6, False], [a, 0.4, True]]
    assert out["query"] == [b, a] and out["none"] == 0 and out["shape"] == [2]
