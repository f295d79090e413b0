"""The one helpers module of the test suite (imported as ``pyexp_testing``; tests/ is on pytest's path).

- environment: :func:`clean_env` (this environment without ``PYEXP_*`` / ``RAY_*``; conftest.py also
  strips them from the test process itself), :func:`ray_env` (plus Ray's auth/usage switches);
- user scripts: :class:`Script` (a script file, run as a user would; ``check=True`` by default) and
  :class:`ScriptAt` (writes the script into a folder; ``run`` never checks, ``start`` runs it in
  its own session for fault injection), :func:`count_calls`;
- waiting and processes: :func:`wait_until` (poll with a deadline, never sleep-and-hope),
  :func:`alive`, :func:`assert_all_dead`, :func:`read_pids`, :func:`killpg_quietly`,
  :func:`session_pids`, :func:`pids_mentioning`, :func:`free_ports`;
- results: :func:`outcome_of` (a config folder's stored outcome, via pyexp.store),
  :func:`one_line_error`, :func:`last_line`;
- Ray: :class:`RayHead` (a private head on 127.0.0.1, free ports, stopped by session);
- viewer: :func:`write_run`, :func:`add_figures`, :func:`write_many_tags` and the ``logs``
  fixture (real Logger folders), :func:`run_experiment` (a real sweep: done, failed, pending);
  in a browser: :class:`Site` (a served folder), :func:`offline_page` (refuses every non-local
  request), :func:`open_viewer`, :func:`chart`, :func:`traces`, :func:`deep_text`,
  :func:`open_tab`, :func:`wait_for`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

#: Environment variables no test inherits: the user's pyexp and Ray settings must not leak in.
STRIPPED_PREFIXES = ("PYEXP_", "RAY_")
#: Set PYEXP_TEST_KEEP_RAY=1 to keep each RayHead's temp dir (Ray's session logs) after the tests.
#: Read at import, before conftest's autouse fixture strips PYEXP_* from the test process.
KEEP_RAY = os.environ.get("PYEXP_TEST_KEEP_RAY") == "1"


# -- environment ------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without PYEXP_* / RAY_* (and no PYTHONPATH surprises), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def ray_env(**extra: str) -> dict[str, str]:
    """:func:`clean_env` with Ray's token auth off (``~/.ray/auth_token`` may exist) and no usage stats."""
    return clean_env(**{"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **extra})


# -- user scripts -----------------------------------------------------------------------------


#: Runs argv[1:] with SIGHUP's default action (an ignored signal stays ignored across exec).
_DEFAULT_SIGHUP = ("import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


class Script:
    """A user script written into a temp folder and run with this interpreter, as a user would."""

    check_by_default = True

    def __init__(self, path: Path):
        self.path = path
        self.dir = path.parent

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, str(self.path), *args]

    def run(self, *args: str, check: bool | None = None, timeout: float = 120,
            env: dict[str, str] | None = None, **popen: Any) -> subprocess.CompletedProcess:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.run(self.cmd(*args), cwd=self.dir, env=clean_env(**(env or {})), text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, **popen)
        if (self.check_by_default if check is None else check) and proc.returncode != 0:
            raise AssertionError(
                f"{self.path.name} {' '.join(args)} exited {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc

    def start(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen:
        """Start in a new session, as a terminal's foreground job would have its own group, and
        with SIGHUP's default action as it would have (the tests may run under ``nohup``)."""
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGHUP, *self.cmd(*args)], cwd=self.dir,
                                env=clean_env(**(env or {})), stdin=subprocess.DEVNULL,
                                start_new_session=True, **kw)

    def out(self, name: str) -> Path:
        return self.dir / "out" / name

    def runs(self, name: str) -> list[Path]:
        """The complete runs of experiment ``name`` (folders with runs.json), oldest first."""
        from pyexp.store import RunStore

        return [run.path for run in RunStore(self.dir / "out", name).runs()]

    def config_dirs(self, run: Path) -> dict[str, Path]:
        """Config name -> folder, from runs.json (which must parse)."""
        from pyexp.store import CONFIG_FILE, RUNS_FILE

        dirs = json.loads((run / RUNS_FILE).read_text())["runs"]
        return {json.loads((run / d / CONFIG_FILE).read_text())["name"]: run / d for d in dirs}


class ScriptAt(Script):
    """A script written into ``folder``; ``run`` returns whatever happened (no check)."""

    check_by_default = False

    def __init__(self, folder: Path, source: str, name: str = "main.py"):
        super().__init__(folder / name)
        self.path.write_text(textwrap.dedent(source))


def count_calls(counter_dir: Path) -> dict[str, int]:
    """How many times each config ran, from the marker lines the test scripts append."""
    counts: dict[str, int] = {}
    calls = counter_dir / "calls.txt"
    for line in calls.read_text().splitlines() if calls.exists() else []:
        counts[line] = counts.get(line, 0) + 1
    return counts


# -- waiting and processes --------------------------------------------------------------------


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def proc_stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name: state, parent, group, ..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _state(pid: int | str) -> str | None:
    try:
        return proc_stat(pid)[0]
    except (OSError, IndexError):
        return None


def parent_of(pid: int) -> int:
    return int(proc_stat(pid)[1])


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie nobody reaped counts as dead)."""
    return _state(pid) not in (None, "Z", "X")


def assert_all_dead(pids: list[int], timeout: float = 5.0, what: str = "children") -> None:
    wait_until(lambda: not [p for p in pids if alive(p)], timeout,
               f"{what} {[p for p in pids if alive(p)]} to exit (orphans left running)")


def read_pids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(x) for x in path.read_text().split()]


def killpg_quietly(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = proc_stat(entry)
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = proc_stat(entry)[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry))
    return found


# -- results ------------------------------------------------------------------------------


def outcome_of(folder: Path) -> Any:
    """The stored outcome of a config folder (None if none), as pyexp reads it when a run opens,
    with ``.result`` loaded from ``result.pkl`` for a success.

    A result that reads as damaged fails the test: atomic writes must never let one appear.
    """
    from pyexp.store import load_result, read_outcome

    outcome = read_outcome(folder)
    if outcome is not None and outcome.error_type == "StoreError":
        raise AssertionError(f"half-written or corrupt result read back: {outcome.error}")
    if outcome is not None and outcome.ok:
        outcome.result = load_result(folder)
    return outcome


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def one_line_error(stderr: str) -> str:
    """The stderr of a failed CLI run must be exactly one ``pyexp: error: ...`` line, no traceback."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert "error:" in lines[0], lines[0]
    return lines[0]


# -- Ray ----------------------------------------------------------------------------------------


class RayHead:
    """``ray start --head`` with 2 CPUs on 127.0.0.1; ``address`` (GCS) and ``client`` (ray://)."""

    def __init__(self, attempts: int = 3, env: dict[str, str] | None = None) -> None:
        self._extra_env = dict(env or {})  # e.g. Ray's RAY_RUNTIME_ENV_SLEEP_FOR_TESTING_S for its daemons
        for attempt in range(attempts):
            try:
                self._start()
                return
            except RuntimeError:  # most likely a port taken between choosing it and binding it
                if attempt == attempts - 1:
                    raise

    def _start(self) -> None:
        # Short path: Ray's unix socket paths must stay under ~107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="pxr-", dir="/tmp"))
        gcs, client, dashboard, agent, agent_grpc, runtime_env, metrics = free_ports(7)
        self.address = f"127.0.0.1:{gcs}"
        self.client = f"ray://127.0.0.1:{client}"
        self.env = ray_env(RAY_TMPDIR=str(self.temp_dir), **self._extra_env)
        cmd = [
            "ray", "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
            f"--ray-client-server-port={client}", "--include-dashboard=false",
            f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}", "--num-cpus=2", "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        # A new session: Ray's daemons and workers inherit it, which is how stop() finds them all.
        self._starter = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True, text=True)
        self.sid = self._starter.pid
        try:
            output, _ = self._starter.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        if self._starter.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed:\n{output}")
        try:
            self._warm_up()
        except BaseException:
            self.stop()  # a warm-up that timed out must not leave a whole Ray head running
            raise

    def _warm_up(self) -> None:
        """One Ray Client session with an uploaded working dir, before any test times its own.

        On a fresh machine (no bytecode for Ray yet) under load, the client server's first
        per-session server starts slowly enough that a test's first connection can fail with
        "Initialization failure from server". Paying that start here keeps it out of the tests.
        """
        work = Path(tempfile.mkdtemp(prefix="warm-", dir=self.temp_dir))
        (work / "warm.py").write_text("x = 1\n")
        code = ("import ray, sys\n"
                "ray.init(sys.argv[1], runtime_env={'working_dir': sys.argv[2]})\n"
                "assert ray.get(ray.remote(lambda: 1).remote()) == 1\n")
        deadline = time.monotonic() + 180
        while True:
            try:
                proc = subprocess.run([sys.executable, "-c", code, self.client, str(work)], env=self.env,
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
                ok, err = proc.returncode == 0, proc.stderr
            except subprocess.TimeoutExpired as exc:  # a starved machine: try again until the deadline
                ok, err = False, str(exc)
            if ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head never accepted a client session:\n{err[-3000:]}")
            time.sleep(1)

    def stop(self) -> None:
        for signum, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
            for pid in session_pids(self.sid):
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while session_pids(self.sid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not session_pids(self.sid):
                break
        if KEEP_RAY:
            print(f"RayHead: kept {self.temp_dir} (PYEXP_TEST_KEEP_RAY=1)", file=sys.stderr)
            return
        shutil.rmtree(self.temp_dir, ignore_errors=True)


# -- viewer -------------------------------------------------------------------------------


def write_run(root: Path, experiment: str, stamp: str, name: str, config: dict, *,
              steps: int = 50, figures: bool = False, use_protobuf: bool = True) -> Path:
    """One run folder as the runner lays it out, with scalars, text and (optionally) figures."""
    from pyexp.log import Logger
    from pyexp.store import CONFIG_FILE

    run = root / experiment / stamp / f"{name}-{abs(hash(name)) % 10**6:06d}"
    run.mkdir(parents=True, exist_ok=True)
    (run / CONFIG_FILE).write_text(json.dumps({"name": name, **config, "out": str(run)}))
    lr = float(config.get("lr", 0.1))
    with Logger(run, use_protobuf=use_protobuf) as logger:
        for it in range(steps):
            logger.set_global_it(it)
            logger.add_scalar("loss", math.exp(-lr * it) + 0.05 * math.sin(it))
            logger.add_scalar("train/acc", 1 - math.exp(-lr * it))
            logger.add_scalar("train/lr", lr)
            if it % 10 == 0:
                logger.add_text("sample", f"{name} says hello at {it}")
        if figures:
            add_figures(logger)
    return run


def add_figures(logger: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    for it in (0, 10):
        logger.set_global_it(it)
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot(np.arange(10), np.arange(10) ** (1 + it / 10))
        logger.add_figure("curve", fig, interactive=False)
        fig3 = plt.figure(figsize=(4, 3))
        ax3 = fig3.add_subplot(111, projection="3d")
        x, y = np.meshgrid(np.linspace(-2, 2, 20), np.linspace(-2, 2, 20))
        ax3.plot_surface(x, y, np.exp(-(x ** 2 + y ** 2)) * (1 + it))
        logger.add_figure("landscape", fig3, interactive=True)
        plt.close("all")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    for i, lr in enumerate((0.1, 0.01)):
        write_run(root, "mnist", "2024-01-25_14-30-00", f"lr{lr}", {"lr": lr, "model": {"depth": 2 + i}})
    return root


def write_many_tags(root: Path, stamp: str, tags: int) -> Path:
    """A run logging ``tags`` scalar tags (``m/00``, ``m/01``, ...), 20 steps each."""
    from pyexp.log import Logger
    from pyexp.store import CONFIG_FILE

    run = root / "wide" / stamp / "many-1"
    run.mkdir(parents=True, exist_ok=True)
    (run / CONFIG_FILE).write_text(json.dumps({"name": "many"}))
    with Logger(run) as logger:
        for it in range(20):
            logger.set_global_it(it)
            for k in range(tags):
                logger.add_scalar(f"m/{k:02d}", k + math.sin(it))
    return run


EXPERIMENT = '''
import pyexp
from pyexp import sweep


@pyexp.experiment(name="sweep")
def experiment(config, logger):
    for it in range(30):
        logger.set_global_it(it)
        logger.add_scalar("loss", config.lr * (30 - it) + config.depth)
    if config.lr > 0.5:
        raise ValueError(f"lr {config.lr} is too large")
    return {"accuracy": round(1 - config.lr / config.depth, 4), "epochs": 30, "note": "ok"}


@experiment.configs
def configs():
    base = [{"name": "net", "depth": 2, "opt": {"name": "sgd"}}]
    return sweep(base, [{"name": f"lr{lr}", "lr": lr} for lr in (0.1, 0.2, 0.9, 0.05, 0.3)])


if __name__ == "__main__":
    experiment.run()
'''


def run_experiment(base: Path) -> Path:
    """A real sweep of five configs: three done, one failed, one never run (pending).

    Returns the output folder (``<base>/out``); the run is ``out/sweep/<timestamp>/``.
    """
    script = base / "exp.py"
    script.write_text(EXPERIMENT)
    out = base / "out"
    proc = subprocess.run(
        [sys.executable, str(script), "--output-dir", str(out), "--no-stash",
         "--filter", r"lr0\.(1|2|9|05)$"],
        capture_output=True, text=True, env=clean_env(), timeout=300, cwd=base)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return out


# -- viewer in a browser ---------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
STAMP = "2024-01-25_14-30-00"
SHOTS = Path(os.environ.get("PYEXP_VIEWER_SHOTS", "/tmp/pyexp-viewer-shots"))


def free_port() -> int:
    return free_ports(1)[0]


class Site:
    """A served folder: its URL and the folder itself."""

    def __init__(self, root: Path) -> None:
        from pyexp.viewer import start_background

        self.root = root
        self.port = free_port()
        self.proc = start_background(root, port=self.port)
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()


def offline_page(browser: Any) -> Any:
    """A page that refuses (and records) every request not made to the local viewer."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.external = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:
            page.external.append(url)
            r.abort()

    page.route("**/*", route)
    page.set_default_timeout(20_000)
    return page


def wait_for(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    """:func:`wait_until` as the browser tests call it: a page on two shared cores may need a
    while, and a passing check returns as soon as it holds."""
    return wait_until(predicate, timeout, what, interval=0.1)


def open_viewer(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".pyexp-chart .js-plotly-plot .scatterlayer .trace")


def chart(page: Any, title: str) -> Any:
    return page.locator(".pyexp-scalar").filter(has=page.locator(".gtitle", has_text=title)).first


def traces(box: Any) -> list[dict[str, Any]]:
    return box.locator(".js-plotly-plot").evaluate(
        "el => el.data.map(t => ({name: t.name, kind: t.meta && t.meta.kind, "
        "x: Array.from(t.x), y: Array.from(t.y)}))")


def deep_text(locator: Any) -> str:
    """Text of an element including its shadow roots (Panel renders each widget in one)."""
    return locator.evaluate("""el => { const walk = n => { let s = n.shadowRoot ? walk(n.shadowRoot) : "";
        for (const c of n.childNodes)
          s += c.nodeType === 3 ? c.textContent : c.nodeName === "STYLE" ? "" : walk(c);
        return s; }; return walk(el); }""")


def open_tab(page: Any, name: str) -> None:
    page.locator(".bk-tab", has_text=name).click()
