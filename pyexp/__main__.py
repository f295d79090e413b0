"""``python -m pyexp``: look at stored runs without the experiment's script.

    python -m pyexp compare DIR TS1 TS2 [--json]
    python -m pyexp export DIR [--run TS|all] [--format parquet|csv|jsonl] -o FILE [--no-logs]
    python -m pyexp diff-code DIR [TS] [--json]

``DIR`` is an experiment's folder (``out/<name>``, holding its timestamped runs) or one run's
folder (``out/<name>/<timestamp>``, then TS is not given). ``TS`` is a run's timestamp or
``latest``. A mistake prints one line ``pyexp: error: ...`` and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ._entry import ArgParser, user_errors
from .errors import ConfigError, RunNotFoundError
from .store import RUNS_FILE, Run, RunStore


def _parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="python -m pyexp",
                  description="Compare, export and inspect the stored runs of a pyexp experiment.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgParser)
    where = "an experiment's folder (out/<name>) or one run's folder (out/<name>/<timestamp>)"

    c = sub.add_parser("compare", help="configs added, removed and changed between two runs, and "
                       "the difference of each scalar result")
    c.add_argument("dir", metavar="DIR", help="the experiment's folder (out/<name>)")
    c.add_argument("a", metavar="TS1", help="the earlier run's timestamp")
    c.add_argument("b", metavar="TS2", help="the later run's timestamp (or 'latest')")
    c.add_argument("--json", action="store_true", help="print JSON for scripts")

    e = sub.add_parser("export", help="one row per config: config, status, scalar results and the "
                       "last logged scalars, as Parquet, CSV or JSON lines")
    e.add_argument("dir", metavar="DIR", help=where)
    e.add_argument("--run", default=None, metavar="TS|all", help="the run to export (default: the latest), "
                   "or 'all' for every run (a 'run' column tells them apart)")
    e.add_argument("--format", choices=["parquet", "csv", "jsonl"], default=None,
                   help="default: from FILE's suffix")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the table")
    e.add_argument("--no-logs", dest="logs", action="store_false",
                   help="leave out the last values of logged scalars (faster: no log is read)")

    d = sub.add_parser("diff-code", help="which source files changed since a run recorded its code")
    d.add_argument("dir", metavar="DIR", help=where)
    d.add_argument("ts", nargs="?", default=None, metavar="TS", help="the run's timestamp (default: latest)")
    d.add_argument("--json", action="store_true", help="print JSON for scripts")
    return p


def open_store(path: str) -> tuple[RunStore, Run | None]:
    """The store of ``path`` (an experiment's folder, or a run folder: then that run too)."""
    folder = Path(path)
    if (folder / RUNS_FILE).is_file():
        return RunStore(folder.resolve().parent.parent, folder.resolve().parent.name), Run(folder.resolve())
    if not folder.is_dir():
        raise RunNotFoundError(f"{folder}: no such folder; give an experiment's folder (out/<name>) "
                               "or one run's folder (out/<name>/<timestamp>)")
    store = RunStore(folder.resolve().parent, folder.resolve().name)
    if not store.runs():
        raise RunNotFoundError(f"{folder}: holds no pyexp runs (no <timestamp>/{RUNS_FILE} below it); "
                               "give an experiment's folder such as out/<name>")
    return store, None


def pick_run(store: RunStore, given: Run | None, ts: str | None) -> Run:
    """The run named by ``ts`` (or the run folder given as DIR)."""
    if given is not None:
        if ts not in (None, given.timestamp):
            raise ConfigError(f"{given.path} is already one run's folder; give its experiment's folder "
                              f"({given.path.parent}) to choose the run {ts!r}")
        return given
    return store.get(ts)


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs, format_comparison

    store, given = open_store(args.dir)
    if given is not None:
        raise ConfigError(f"compare takes the experiment's folder ({given.path.parent}) and two "
                          f"timestamps, not a run folder ({given.path})")
    found = compare_runs(store.get(args.a), store.get(args.b))
    print(json.dumps(found, indent=2, default=str) if args.json else format_comparison(found))
    return 0


def _export(args: argparse.Namespace) -> int:
    from . import table
    from .history import current_code

    fmt = args.format or Path(args.output).suffix.lstrip(".").lower()
    if fmt not in table.FORMATS:
        raise ConfigError(f"cannot tell the format of {args.output!r} from its suffix; "
                          "pass --format parquet, csv or jsonl")
    store, given = open_store(args.dir)
    runs = store.runs() if args.run == "all" and given is None else [pick_run(store, given, args.run)]
    memo: dict[Any, Any] = {}
    rows: list[dict[str, Any]] = []
    damaged: list[str] = []
    for run in runs:
        code = current_code(run, None, memo)
        for r in export_results(run, code.fingerprint if code else None):
            rows.append(table.result_row(r, logs=args.logs))
            if r.damaged is not None:
                damaged.append(r.damaged)
    table.write(rows, args.output, fmt)
    print(f"pyexp: wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    for message in damaged[:10]:
        print(f"pyexp: error: {' '.join(message.split())} (its row is kept, with this error)", file=sys.stderr)
    if len(damaged) > 10:
        print(f"pyexp: error: ... and {len(damaged) - 10} more unreadable results", file=sys.stderr)
    return 1 if damaged else 0


def export_results(run: Run, code_now: str | None) -> list[Any]:
    """The Results of ``run`` for a table: configs stay the plain dicts of config.json (a table
    needs their values, not Config objects)."""
    import functools

    from .result import Result
    from .result import config_names

    manifest = run.manifest()
    run.check_configs()
    return [Result(name, functools.partial(run.read_config, dirname), run.config_dir(dirname), run.outcome(dirname),
                   run=run.timestamp, code_now=code_now) for dirname, name in zip(manifest.dirs, config_names(run))]


def _diff_code(args: argparse.Namespace) -> int:
    from .compare import diff_code, format_diff_code

    store, given = open_store(args.dir)
    found = diff_code(pick_run(store, given, args.ts))
    print(json.dumps(found, indent=2) if args.json else format_diff_code(found))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``python -m pyexp`` command; returns the exit code (a mistake exits 1 with one line)."""
    with user_errors():
        args = _parser().parse_args(argv)
        return {"compare": _compare, "export": _export, "diff-code": _diff_code}[args.command](args)
    return 1  # not reached: user_errors exits


if __name__ == "__main__":
    sys.exit(main())
