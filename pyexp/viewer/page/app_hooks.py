"""Bokeh's server hooks of ``panel serve pyexp/viewer/page --args DIR``.

Panel runs this file once, when the server starts (``sys.argv`` then holds ``--args``): the server
is prepared as ``python -m pyexp.viewer`` prepares it (the default runs read, every kind of
component built once) before any browser asks, not during the first visit.
"""

from pyexp.viewer.app import prepare, served_root

ROOT = served_root()  # now: sys.argv is Panel's own again when the hook runs


def on_server_loaded(server_context):  # noqa: ARG001 - Bokeh's signature
    prepare(ROOT)
