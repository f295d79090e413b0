"""The page of ``panel serve pyexp/viewer/page --args DIR`` (run by Panel once per browser tab)."""

from pyexp.viewer.app import serve_page

serve_page()
