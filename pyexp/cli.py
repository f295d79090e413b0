"""Command line: pyexp's flags (argparse) plus Hydra-style ``key=value`` overrides.

Every flag also has a Hydra spelling (``+pyexp.continue=<ts>`` is ``--continue=<ts>``);
see :mod:`pyexp.config.hydra_bridge`.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

#: Runner settings and their defaults, in priority order CLI > run() > decorator > these.
DEFAULTS: dict[str, Any] = {
    "name": None,
    "output_dir": None,
    "executor": "subprocess",
    "continue": None,
    "report": None,
    "list": False,
    "filter": None,
    "capture": True,
    "viewer": False,
    "viewer_port": 8765,
    "stash": True,
    "jobs": 1,
    "multirun": False,
    "skip_failed": False,
    # The earlier API's spellings: True: a new timestamped run; False: no timestamp level;
    # "<TS>": that run (continued, reported with --report, or run again with --rerun).
    "timestamp": True,
    "rerun": False,
}


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (no usage block), exit code 2."""

    def error(self, message: str) -> "NoReturn":
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog, argument_default=argparse.SUPPRESS, allow_abbrev=False,
        description="Run this pyexp experiment. Extra key=value arguments are Hydra overrides "
        "applied to every config; with -m, comma lists / range() / choice() add sweep axes.",
    )
    p.add_argument("--name", help="experiment name (folder under the output dir)")
    p.add_argument("--executor", help="subprocess (default), fork, inline, ray, ray:<address>, ray://host:port")
    p.add_argument("--output-dir", dest="output_dir", metavar="DIR", help="where runs are stored")
    p.add_argument("--continue", dest="continue", nargs="?", const="latest", metavar="TIMESTAMP",
                   help="continue the latest run, or the run TIMESTAMP: run what is pending or failed")
    p.add_argument("--report", nargs="?", const="latest", metavar="TIMESTAMP",
                   help="only build the report of the latest run, or of TIMESTAMP")
    p.add_argument("--list", action="store_true", help="list previous runs with their status")
    p.add_argument("--filter", metavar="REGEX", help="only run configs whose names match REGEX")
    p.add_argument("-s", dest="capture", action="store_false", help="show live output (same as --capture=no)")
    p.add_argument("--capture", choices=["no", "yes"], help="--capture=no shows live output")
    p.add_argument("--viewer", action="store_true", help="start the web viewer before the experiments")
    p.add_argument("--viewer-port", dest="viewer_port", type=int, metavar="PORT", help="viewer port (8765)")
    p.add_argument("--no-stash", dest="stash", action="store_false", help="do not snapshot the git state")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="run N configs at once (default 1)")
    p.add_argument("-m", "--multirun", action="store_true", help="let overrides sweep (lr=0.1,0.01)")
    p.add_argument("--skip-failed", dest="skip_failed", action="store_true",
                   help="with --continue: keep failed configs as they are (their error stays in the "
                   "results) and run only pending ones; without it --continue re-runs failed and "
                   "pending configs, never finished ones")
    p.add_argument("--timestamp", metavar="TIMESTAMP",
                   help="the run TIMESTAMP: continue it (with --report: report it; with --rerun: "
                   "run all its configs again)")
    p.add_argument("--no-timestamp", dest="timestamp", action="store_false",
                   help="no timestamp folder: out/NAME/<config>-<hash>/; configs with a result are skipped")
    p.add_argument("--rerun", action="store_true",
                   help="run every config again, ignoring stored results (kept in .previous-attempts/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="Hydra override")
    return p


def parse_cli(argv: list[str], prog: str | None = None) -> dict[str, Any]:
    """The settings given explicitly on the command line, plus ``overrides`` (list of str).

    Unknown flags exit with argparse's usage error (code 2).
    """
    ns = vars(build_parser(prog).parse_intermixed_args(argv))
    overrides = list(ns.pop("overrides", []))
    for key in ("continue", "report"):
        # `--continue lr=0.1`: argparse took the override as the timestamp.
        if isinstance(ns.get(key), str) and "=" in ns[key]:
            overrides.insert(0, ns[key])
            ns[key] = "latest"
    if "capture" in ns and isinstance(ns["capture"], str):
        ns["capture"] = ns["capture"] != "no"
    if overrides:
        from .config.hydra_bridge import split_settings

        from_overrides, overrides = split_settings(overrides)
        ns = {**from_overrides, **ns}  # an explicit flag beats its Hydra spelling
    ns["overrides"] = overrides
    return ns
