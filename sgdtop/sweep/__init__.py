"""Sweeps: a grid of runs over η, S, β and seeds, and the paper's Fig. 3 summary.

The library half of ``sgdtop sweep`` and ``sgdtop plot SWEEP``.

A **sweep** is the Cartesian product of axis values (``lr``, ``batch_size``, ``momentum``,
``seed``) applied to one profile with the same base overrides (``--set key=value``). Each
point of the grid is a **cell**; each cell is trained by one ordinary ``sgdtop run``
subprocess and saved as an ordinary run directory. On disk::

    <runs>/sweeps/<sweep id>/
        sweep.json        profile, base overrides, axes, cells (settings, run ids)
        runs/<run id>/    one normal run directory per attempt of a cell
        logs/<cell>.log   the cell's `sgdtop run --log` output, every attempt appended
        locks/<run id>.lock  held by the attempt's `sgdtop run` process while it lives
        sweep.lock        held (flock, with its pid) by the sweep process while it runs

so ``sgdtop runs --runs-dir <sweep dir>/runs`` lists the cells' runs. The sweep id is
``<profile>-<8 hex>``, a hash of the profile, the base overrides and the axes: the same
command twice names the same sweep, and the second one **resumes** it — a cell whose
newest run ended ``completed`` or ``diverged`` (finished: running it again would give the
same answer) is not run again; an ``interrupted``, ``failed`` or ``died`` one (and one
that never started) is run again in a fresh run directory, the old one kept and
``sweep.json`` pointing to the newest. Each attempt's run id is chosen and saved in
``sweep.json`` before its process starts, so a resume after the sweep process was killed
follows a cell that is still running instead of training it twice.

**Fig. 3 summary** (:func:`~sgdtop.sweep.stats.summarize_sweep`): for each completed cell
the training-time averages (see :mod:`sgdtop.summary`) of ρ(H) = max |λ| and of the mean
|λ| of the top-10 eigenvalues, against 1/η (in 1/learning-rate units, i.e. dimensionless)
and against the batch size S (examples), with a least-squares line ``y = slope·x +
intercept`` and its coefficient of determination r² per quantity. When several axes vary,
one line is fitted per value of the other swept settings (seeds pooled): e.g. a 2×2 grid
of η × S gives a line against 1/η for each S and a line against S for each η.

The package, by concept (see ``docs/design.md``, sweeps): :mod:`~sgdtop.sweep.grid` (axes,
their specs, cells), :mod:`~sgdtop.sweep.sweepfile` (the directory and ``sweep.json``),
:mod:`~sgdtop.sweep.devices` (GPUs and CPU threads per slot), :mod:`~sgdtop.sweep.runner`
(the process pool and signals), :mod:`~sgdtop.sweep.tail` (following a cell's events),
:mod:`~sgdtop.sweep.updates` (what a sweep reports), :mod:`~sgdtop.sweep.stats` (Fig. 3
statistics), :mod:`~sgdtop.sweep.report` (tables, the log printer); the Fig. 3 figure is
:func:`sgdtop.plot.plot_sweep`. The names below are importable from ``sgdtop.sweep``.
"""

from sgdtop.plot import plot_sweep
from sgdtop.sweep.devices import cell_cpu_threads, gpu_for_slot, visible_gpus
from sgdtop.sweep.grid import (
    AXES,
    AXIS_FLAGS,
    AXIS_SYMBOLS,
    Cell,
    SweepError,
    parse_axis,
    plan_cells,
    seeds_axis,
)
from sgdtop.sweep.report import (
    SweepLogPrinter,
    cell_rows,
    fit_rows,
    fits_title,
    render_sweep_text,
    sweep_tables,
)
from sgdtop.sweep.runner import (
    KILL_GRACE_S,
    POLL_S,
    STOP_GRACE_S,
    cell_command,
    run_sweep,
    stop_on_signals,
)
from sgdtop.sweep.stats import (
    QUANTITIES,
    X_AXES,
    CellSummary,
    LinearFit,
    SweepFit,
    SweepSummary,
    fit_line,
    summarize_sweep,
)
from sgdtop.sweep.sweepfile import (
    FINISHED,
    LOGS_SUBDIR,
    PENDING,
    RUNS_SUBDIR,
    SWEEP_FILE,
    SWEEP_LOCK_FILE,
    SWEEPS_SUBDIR,
    Sweep,
    cell_run_dirs,
    check_name,
    create_sweep,
    is_sweep_dir,
    list_sweeps,
    load_sweep,
    resolve_sweep,
    sweep_id_for,
    sweeps_root,
)
from sgdtop.sweep.updates import CellUpdate, SweepResult, UpdateCallback, UpdateKind

__all__ = [
    "AXES", "AXIS_FLAGS", "AXIS_SYMBOLS", "FINISHED", "KILL_GRACE_S", "LOGS_SUBDIR",
    "PENDING", "POLL_S", "QUANTITIES", "RUNS_SUBDIR", "STOP_GRACE_S", "SWEEPS_SUBDIR",
    "SWEEP_FILE", "SWEEP_LOCK_FILE", "X_AXES", "Cell", "CellSummary", "CellUpdate",
    "LinearFit", "Sweep", "SweepError", "SweepFit", "SweepLogPrinter", "SweepResult",
    "SweepSummary", "UpdateCallback", "UpdateKind", "cell_command", "cell_cpu_threads",
    "cell_rows", "cell_run_dirs", "check_name", "create_sweep", "fit_line", "fit_rows",
    "fits_title", "gpu_for_slot", "is_sweep_dir", "list_sweeps", "load_sweep",
    "parse_axis", "plan_cells", "plot_sweep", "render_sweep_text", "resolve_sweep",
    "run_sweep", "seeds_axis", "stop_on_signals", "summarize_sweep", "sweep_id_for",
    "sweep_tables", "sweeps_root", "visible_gpus",
]
