"""Ray Client sessions when two Ray heads on one machine hand out the same session port.

Every head's client server picks each session's server port from the same range (23000-23999)
by probing with bind-and-close, and those servers bind with SO_REUSEPORT. Two heads starting
sessions at once can both pick one port; the session is then served by the other head's server,
on the other cluster. This test stages that collision on purpose: head A's runtime env agent is
made slow (Ray's own testing switch), and while A's client server waits for it, a session server
of cluster B starts on the port A just picked, as B's client server would have.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from pyexp_testing import RayHead, killpg_quietly, ray_env, wait_until

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group(name="ray"), pytest.mark.timeout(900)]

#: How long head A's runtime env agent sleeps before creating each new runtime env: the window in
#: which the squatter takes A's port. It only has to outlast our own reaction (a file poll and a bind).
AGENT_DELAY_S = "10"

# A session server of cluster B that imports Ray first and binds only when told the port.
SQUATTER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from ray.util.client.server.server import create_ray_handler, serve

    gcs, trigger = sys.argv[1], Path(sys.argv[2])
    connect = create_ray_handler(gcs, None)

    def handler(job_config=None, **kwargs):
        print("SESSION", flush=True)  # a client's session started here, on cluster B
        connect(job_config, **kwargs)

    print("READY", flush=True)
    while not trigger.exists() or not trigger.read_text().strip():
        time.sleep(0.02)
    server = serve("127.0.0.1", int(trigger.read_text()), handler)
    print("LISTENING", flush=True)
    while True:
        time.sleep(1)
''')

MAIN = '''
    import os
    import pyexp
    import helpers  # only in the uploaded working_dir on the workers

    @pyexp.experiment(name="collide")
    def exp(config):
        return helpers.VALUE

    @exp.configs
    def configs():
        return [{"name": "one"}]

    @exp.report
    def report(results, report_dir):
        print("RESULT", results[0].result, "|", results[0].error)

    if __name__ == "__main__":
        exp.run()
'''


def _session_ports(head: RayHead) -> set[str]:
    """Ports A's client server has chosen for sessions so far (it opens their log files first)."""
    return {m.group(1) for p in head.temp_dir.glob("session_*/logs/ray_client_server_*.out")
            if (m := re.fullmatch(r"ray_client_server_(\d+)\.out", p.name))}


def test_a_session_served_by_another_clusters_server_is_started_again(script, tmp_path):
    pytest.importorskip("ray")
    heads: list[RayHead] = []
    squatter = None
    try:
        a = RayHead(env={"RAY_RUNTIME_ENV_SLEEP_FOR_TESTING_S": AGENT_DELAY_S})
        heads.append(a)
        b = RayHead()
        heads.append(b)
        trigger = tmp_path / "port"
        squatter = subprocess.Popen([sys.executable, "-c", SQUATTER, b.address, str(trigger)], env=b.env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, start_new_session=True)
        assert squatter.stdout.readline().strip() == "READY"
        s = script(MAIN)
        (s.dir / "helpers.py").write_text("VALUE = 42\n")
        known = _session_ports(a)
        run = subprocess.Popen(s.cmd("--executor", a.client), cwd=s.dir, env=ray_env(RAY_TMPDIR=str(a.temp_dir)),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # A's client server has chosen a port and now waits for its (slow) agent: take the port.
            (port,) = wait_until(lambda: _session_ports(a) - known, 240, "head A to choose a session port")
            trigger.write_text(port)
            assert squatter.stdout.readline().strip() == "LISTENING"
            out, err = run.communicate(timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
        killpg_quietly(squatter.pid)
        served_on_b = squatter.communicate()[0]
        # Our first session really was served on cluster B (else this test proved nothing)...
        assert "SESSION" in served_on_b
        # ...and pyexp noticed, started a new session, and ran the config on cluster A.
        assert "RESULT 42 | None" in out, f"stdout:\n{out}\nstderr:\n{err}"
    finally:
        if squatter is not None and squatter.poll() is None:
            killpg_quietly(squatter.pid)
            squatter.wait()
        for h in heads:
            h.stop()
