"""Locate the packaged `templates/` and `static/` folders.

In a wheel they are installed inside the package (pyproject force-include); in a source checkout they sit
beside the package at the repository root.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the directory `name` ("templates" or "static"), installed or from the source tree."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cookiebridge resource folder '{name}' is missing: reinstall the package")
