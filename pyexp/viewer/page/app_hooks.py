"""Bokeh's server hooks of ``panel serve pyexp/viewer/page --args DIR``.

Panel runs this file once, when the server starts (``sys.argv`` then holds ``--args``): the server
is prepared as ``python -m pyexp.viewer`` prepares it (the default runs read, every kind of
component built once) before any browser asks, not during the first visit.
"""

import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."


def on_server_loaded(server_context):  # noqa: ARG001 - Bokeh's signature
    from pyexp.viewer.app import prepare

    prepare(ROOT)
