"""The page of ``panel serve pyexp/viewer/page --args DIR`` (run by Panel once per browser tab)."""

import sys

from pyexp.viewer.app import serve_page

serve_page(sys.argv[1] if len(sys.argv) > 1 else ".").servable(title="pyexp viewer")
