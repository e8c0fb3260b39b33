"""Saving an SVG screenshot of a Textual app under a name that never overwrites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App


def free_path(folder: Path, stem: str, suffix: str = ".svg") -> Path:
    """``folder/stem.svg``, or ``stem-2.svg``, ``stem-3.svg``, ... — the first that does
    not exist yet."""
    path = folder / f"{stem}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path


def save_svg(app: App[Any], folder: Path, stem: str) -> Path | None:
    """Save ``app``'s screen as an SVG in ``folder`` (see :func:`free_path`), notify the
    user either way, and return the file (None when it could not be written)."""
    path = free_path(folder, stem)
    try:
        saved = Path(app.save_screenshot(filename=path.name, path=str(folder)))
    except OSError as exc:
        app.notify(f"screenshot not saved: {exc}", severity="error")
        return None
    app.notify(f"saved {saved}", timeout=4)
    return saved
