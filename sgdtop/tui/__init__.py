"""sgdtop's terminal UI (Textual): live, followed and replayed runs, ``sgdtop compare`` and
``sgdtop sweep``.

Layers (see docs/design.md, the TUI):

- :mod:`sgdtop.tui.state`: plain Python (no Textual, no Rich, no torch) — the fold of the
  event stream into bounded, display-ready values, the replay cursor, the sweep board,
  the compare view's metrics and labels;
- :mod:`sgdtop.tui.draw`: pure functions from state snapshots to Rich text (palette,
  sparklines, braille canvas, header, table, one module per chart);
- one sub-package per app — :mod:`sgdtop.tui.run` (``run``/``watch``/``replay``),
  :mod:`sgdtop.tui.compare`, :mod:`sgdtop.tui.sweep` — each with its app, its widgets
  (which only adapt state to drawing functions) and its messages;
- :mod:`sgdtop.tui.help` (the ``?`` screen) and :mod:`sgdtop.tui.screenshot` (SVGs),
  shared by the apps; ``sgdtop.tcss`` their stylesheet.

Importing this package (or :mod:`~sgdtop.tui.state`, :mod:`~sgdtop.tui.draw`) imports
no Textual.
"""
