"""sgdtop's terminal UI (Textual): live, followed and replayed runs on one screen.

:mod:`sgdtop.tui.state` is plain Python (the fold of the event stream), :mod:`.render`
the drawing code (Rich text), :mod:`.widgets` the Textual widgets and :mod:`.app` the app
and its entry points :func:`~sgdtop.tui.app.run_live`, :func:`~sgdtop.tui.app.run_watch`
and :func:`~sgdtop.tui.app.run_replay`. Importing this package imports no Textual.
"""
