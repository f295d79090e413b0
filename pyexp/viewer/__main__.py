"""``python -m pyexp.viewer DIR [--port 8765] [--host 127.0.0.1]``."""

from __future__ import annotations

import sys

from .._entry import ArgParser, user_errors
from . import DEFAULT_HOST, DEFAULT_PORT, run


def main(argv: list[str] | None = None) -> int:
    parser = ArgParser(prog="python -m pyexp.viewer",
                                     description="Web viewer for pyexp logs (scalars, text, figures).")
    parser.add_argument("log_dir", help="folder with runs, searched recursively (e.g. out/my_experiment)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"interface to bind ({DEFAULT_HOST}; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                        help="how often to look for new data (1.0)")
    with user_errors():
        args = parser.parse_args(argv)
        try:
            run(args.log_dir, port=args.port, host=args.host, refresh_seconds=args.refresh)
        except KeyboardInterrupt:
            return 0  # the usual way to stop a server
    return 0


if __name__ == "__main__":
    sys.exit(main())
