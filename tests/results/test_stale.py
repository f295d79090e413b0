"""Stale results: code that changed between --continue's is noticed, counted and re-run on request."""

from __future__ import annotations

import json

STALE_3 = "3 of 3 results come from different code: run with --rerun-stale to redo them"


def test_unchanged_code_is_not_stale(project):
    project.run()
    (project.dir / "README.md").write_text("an edit to a file the experiment does not import\n")
    cont = project.run("--continue")
    assert "different code" not in cont.stderr
    assert "different code" not in project.run("--list").stdout
    out = project.load("""
        rs = exp.results()
        print([r.stale for r in rs], len({r.code.fingerprint for r in rs}))
    """)
    assert out.split("]")[0] == "[False, False, False" and out.strip().endswith("1")


def test_continue_and_list_count_results_of_other_code_and_rerun_stale_redoes_exactly_those(project):
    project.run()
    assert len(project.calls()) == 3
    project.change_helper()
    cont = project.run("--continue")
    assert STALE_3 in cont.stderr
    assert len(project.calls()) == 3  # --continue alone keeps them
    assert STALE_3 in project.run("--list").stdout
    stale = json.loads(project.load("""
        import json
        print(json.dumps([[r.stale, r.code.fingerprint, r.code.commit] for r in exp.results()]))
    """))
    assert all(s for s, _, _ in stale)
    run = project.runs("demo")[-1]
    commit = json.loads((run / "runs.json").read_text())["git_commit"]
    assert commit and all(c == commit for _, _, c in stale)

    redo = project.run("--continue", "--rerun-stale")
    assert "running 3 of 3 results again" in redo.stderr
    assert len(project.calls()) == 6
    after = json.loads(project.load("""
        import json
        print(json.dumps([[r.stale, r.code.fingerprint, r.code.commit, r.result["acc"]] for r in exp.results()]))
    """))
    assert not any(s for s, *_ in after)
    assert {fp for _, fp, _, _ in after} != {fp for _, fp, _ in stale}
    # Re-run code differs from the run's snapshot: its own snapshot names the code that ran.
    assert after[0][2] and after[0][2] != commit
    assert [a for *_, a in after] == [0.3, 0.6, 0.9]
    assert "different code" not in project.run("--continue").stderr
    assert len(project.calls()) == 6


def test_rerun_stale_leaves_current_results_and_reruns_failed_ones_as_continue_does(project):
    project.run("--filter", "lr0.1")  # the other two stay pending
    project.change_helper()
    project.run("--continue", "--rerun-stale", "--filter", "lr0.2")
    assert sorted(project.calls()) == ["lr0.1", "lr0.2"]
    cont = project.run("--continue")
    assert "1 of 2 results come from different code" in cont.stderr
    project.run("--continue", "--rerun-stale")
    assert sorted(project.calls()) == ["lr0.1", "lr0.1", "lr0.2", "lr0.3"]


def test_rerun_stale_has_a_hydra_spelling(project):
    project.run()
    project.change_helper()
    project.run("--continue", "+pyexp.rerun_stale=true")
    assert len(project.calls()) == 6
