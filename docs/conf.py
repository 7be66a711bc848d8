"""Sphinx configuration of the mastertrail documentation (built by ``make docs``)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

# The packages live at the top of the repository; autodoc imports them from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "mastertrail"
author = "the mastertrail authors"
copyright = "2026, the mastertrail authors"
try:
    release = metadata.version("mastertrail")
except metadata.PackageNotFoundError:
    release = "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

html_theme = "alabaster"
html_title = f"mastertrail {release}"
