"""Make pyexp logs openable by TensorBoard: ``python -m pyexp.log.tensorboard DIR``.

Every protobuf run below DIR gets an ``events.out.tfevents.*.pyexp`` hard link to its
``events.pb`` (the file name TensorBoard scans for); the link keeps following appends. Then run
``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._entry import ArgParser, user_errors
from ._constants import EVENTS_FILE
from ._pbwrite import link_tensorboard
from .reader import LogReader


def link_all(root: Path) -> list[Path]:
    """Link every protobuf run at or below ``root``; return the aliases."""
    reader = LogReader(root)
    runs = [root] if reader.is_run else []
    runs += [root / name for name in reader.runs]
    return [link_tensorboard(run) for run in runs if (run / EVENTS_FILE).exists()]


def main(argv: list[str] | None = None) -> int:
    parser = ArgParser(prog="python -m pyexp.log.tensorboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log_dir", type=Path, help="a run folder or a folder above runs")
    with user_errors():
        args = parser.parse_args(argv)
        aliases = link_all(args.log_dir)
    print(f"{len(aliases)} run(s) ready: tensorboard --logdir {args.log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
