"""A ``pyexp:`` node in the primary YAML config sets runner options; the command line still wins."""

from __future__ import annotations


def test_pyexp_node_in_yaml_sets_runner_options(script):
    s = script('''
        import os
        import pyexp

        @pyexp.experiment(name="yaml", config_path="conf", config_name="config")
        def exp(config):
            return os.getpid()

        @exp.report
        def report(results, report_dir):
            same = [r.result == os.getpid() for r in results]
            print("INPROCESS", all(same), results.shape)

        if __name__ == "__main__":
            exp.run()
    ''')
    conf = s.dir / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("name: base\nlr: 0.1\npyexp:\n  executor: inline\n  name: from_yaml\n")
    proc = s.run()
    assert "INPROCESS True (1,)" in proc.stdout
    assert len(s.runs("from_yaml")) == 1
    proc = s.run("--executor", "subprocess", "--name", "from_cli")
    assert "INPROCESS False (1,)" in proc.stdout
    assert len(s.runs("from_cli")) == 1
    (conf / "config.yaml").write_text("name: base\npyexp:\n  executr: inline\n")
    proc = s.run(check=False)
    assert proc.returncode == 1
    assert "executr" in proc.stderr and "config.yaml" in proc.stderr
