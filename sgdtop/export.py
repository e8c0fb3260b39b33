"""Export a run's events as tidy CSV files or as TensorBoard scalars (``sgdtop export``).

CSV (:func:`export_csv`): one file per event kind, one row per event, loadable with
``pandas.read_csv`` or the ``csv`` module. Every table starts with the columns
``run_id, step, epoch, t`` (``t`` in seconds since the run started; ``step``/``epoch`` empty
where an event has none), then the kind's fields in schema order, then any extra fields in
name order. The list-valued fields get their own long-form tables:

- ``spectrum_eigenvalues.csv``: one row per eigenvalue: ``rank`` (1 = largest |λ|),
  ``eigenvalue`` (signed), ``residual`` (‖Hv−λv‖), ``converged``;
- ``neurons_layers.csv``: one row per layer: ``layer``, ``units``, ``dead``, ``dead_pct``;
- ``dense_spectrum_histogram.csv``: one row per bin: ``bin``, ``left``, ``right``,
  ``count``.

Cells: floats at full precision (``repr``), non-finite ones as ``nan``, ``inf``, ``-inf``
(which ``float()`` and pandas read back); booleans as ``True``/``False``; missing values
empty; nested values (``profile``, ``versions`` of ``run_start``) flattened to dotted
column names (``profile.lr``), other lists as JSON text.

TensorBoard (:func:`export_tensorboard`): scalars written with TensorBoard's own
numpy-only writer (:class:`tensorboard.summary.Writer`; no torch, no TensorFlow), one
event file in the given directory, tags listed in :data:`TENSORBOARD_TAGS` plus
``spectrum/lambda_NN`` (signed eigenvalue of rank NN) and ``neurons/<layer>/dead_pct``.
TensorBoard stores float32: non-finite values (and those beyond float32's range) are
skipped and counted, not written.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from sgdtop.schema import (
    BY_KIND,
    KINDS,
    DenseSpectrum,
    LossSlice,
    Neurons,
    Record,
    RunStart,
    Spectrum,
)
from sgdtop.stats import top_mean_abs

INSTALL_HINT_TB: Final[str] = "tensorboard is not installed: pip install 'sgdtop[tensorboard]'"

#: How TensorBoard's event files are named (``events.out.tfevents.<time>.<host>...``).
TB_FILE_PREFIX: Final[str] = "events.out.tfevents."

#: The leading columns of every CSV table.
BASE_COLUMNS: Final[tuple[str, ...]] = ("run_id", "step", "epoch", "t")

#: List-valued fields written to a long-form table instead of the kind's own table.
_LONG_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "spectrum": ("eigenvalues", "residuals", "converged"),
    "neurons": ("layers",),
    "dense_spectrum": ("hist_edges", "hist_counts"),
    "loss_slice": ("distances", "eigenvalues", "slopes", "losses"),
}

#: TensorBoard tag → (event kind, field, description with the definition and unit).
TENSORBOARD_TAGS: Final[dict[str, tuple[str, str, str]]] = {
    "train/loss": ("step", "loss", "mean loss of the last training batch"),
    "train/lr": ("step", "lr", "learning rate η in force"),
    "train/examples_per_s": ("step", "examples_per_s", "training throughput, examples/s"),
    "train/steps_per_s": ("step", "steps_per_s", "training throughput, optimizer steps/s"),
    "eval/train_loss": ("eval", "train_loss", "mean loss over the probe set (no L2 term)"),
    "eval/train_acc": ("eval", "train_acc", "accuracy over the probe set, in [0, 1]"),
    "eval/test_loss": ("eval", "test_loss", "mean loss over the test set"),
    "eval/test_acc": ("eval", "test_acc", "accuracy over the test set, in [0, 1]"),
    "spectrum/spectral_norm": (
        "spectrum", "spectral_norm", "ρ(H) = max |λ| of the probe-set loss Hessian"
    ),
    "spectrum/cond_k": ("spectrum", "cond_k", "κ_k = |λ₁| / |λ_k| over the computed top k"),
    "spectrum/top10_mean": ("spectrum", "top10_mean", "mean |λ| of the top 10 eigenvalues"),
    "spectrum/eta_lambda1": ("spectrum", "eta_lambda1", "η·λ₁ (λ₁ the signed top eigenvalue)"),
    "spectrum/stability_limit": (
        "spectrum", "stability_limit", "2(1+β)/η: largest curvature GD with momentum is stable on"
    ),
    "spectrum/max_residual": ("spectrum", "max_residual", "largest Ritz residual ‖Hv−λv‖"),
    "spectrum/hvps": ("spectrum", "hvps", "Hessian-vector products the measurement took"),
    "spectrum/seconds": ("spectrum", "seconds", "wall-clock cost of the measurement, s"),
    "neurons/dead_pct": (
        "neurons", "dead_pct", "% of units with mean |activation| below the threshold"
    ),
    "dense/cond": ("dense_spectrum", "cond", "κ = λmax / λmin⁺ of the full spectrum"),
    "dense/lambda_max": ("dense_spectrum", "lambda_max", "largest Hessian eigenvalue"),
    "dense/lambda_min": ("dense_spectrum", "lambda_min", "smallest Hessian eigenvalue"),
    "dense/min_positive": (
        "dense_spectrum", "min_positive", "smallest eigenvalue above the relative floor"
    ),
    "dense/n_negative": ("dense_spectrum", "n_negative", "number of negative eigenvalues"),
}


class ExportUnavailableError(RuntimeError):
    """The package an export needs (tensorboard) is not installed."""


# -- CSV --------------------------------------------------------------------------------


def _json_safe(x: Any) -> Any:
    """``x`` with non-finite floats replaced by their names (JSON has no NaN)."""
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def _cell(x: Any) -> str:
    """One CSV cell (see the module docstring)."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "True" if x else "False"
    if isinstance(x, float):
        return repr(x)  # full precision; nan, inf, -inf
    if isinstance(x, int | str):
        return str(x)
    return json.dumps(_json_safe(x), ensure_ascii=False, allow_nan=False)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested mappings become dotted keys; everything else is kept as it is."""
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


def _base(rec: Record, run_id: str | None) -> dict[str, Any]:
    return {"run_id": run_id, "step": rec.step, "epoch": rec.epoch, "t": rec.t}


#: Wire keys that are not a kind's own fields (the header is in BASE_COLUMNS).
_NOT_FIELDS: Final[frozenset[str]] = frozenset({"v", "kind", *BASE_COLUMNS})


def _scalar_row(rec: Record, run_id: str | None) -> dict[str, Any]:
    row = _base(rec, run_id)
    skip = _LONG_FIELDS.get(rec.kind, ())
    for key, value in rec.to_wire().items():
        if key in skip or key in _NOT_FIELDS:  # run_start's run_id is the run_id column
            continue
        if isinstance(rec, RunStart):
            _flatten(key, value, row)
        else:
            row[key] = value
    return row


def _at(seq: Sequence[Any], i: int) -> Any:
    return seq[i] if i < len(seq) else None


def _eigen_rows(rec: Spectrum, run_id: str | None) -> Iterable[dict[str, Any]]:
    for i, lam in enumerate(rec.eigenvalues):
        yield {
            **_base(rec, run_id),
            "rank": i + 1,
            "eigenvalue": lam,
            "residual": _at(rec.residuals, i),
            "converged": _at(rec.converged, i),
        }


def _layer_rows(rec: Neurons, run_id: str | None) -> Iterable[dict[str, Any]]:
    for layer in rec.layers:
        row = _base(rec, run_id)
        row["layer"] = layer.name
        row.update((k, v) for k, v in layer.to_wire().items() if k != "name")
        yield row


def _hist_rows(rec: DenseSpectrum, run_id: str | None) -> Iterable[dict[str, Any]]:
    for i, count in enumerate(rec.hist_counts):
        yield {
            **_base(rec, run_id),
            "bin": i,
            "left": _at(rec.hist_edges, i),
            "right": _at(rec.hist_edges, i + 1),
            "count": count,
        }


def _slice_rows(rec: LossSlice, run_id: str | None) -> Iterable[dict[str, Any]]:
    """One row per (direction, distance) of a loss_slice: loss = L(θ + t·vᵢ)."""
    for i, row in enumerate(rec.losses):
        for t, loss in zip(rec.distances, row, strict=False):
            yield {
                **_base(rec, run_id),
                "direction": i + 1,
                "eigenvalue": _at(rec.eigenvalues, i),
                "slope": _at(rec.slopes, i),
                "distance": t,
                "loss": loss,
            }


def _required(kind: str) -> tuple[str, ...]:
    """The required fields of ``kind``'s record, in schema order (header left out)."""
    return tuple(f.name for f in dataclasses.fields(BY_KIND[kind])
                 if f.default is dataclasses.MISSING
                 and f.default_factory is dataclasses.MISSING and f.name not in _NOT_FIELDS)


def _columns(rows: Sequence[dict[str, Any]], leading: Sequence[str]) -> list[str]:
    """``leading`` first (those present or required), then the other keys in name order."""
    seen = set().union(*(r.keys() for r in rows)) if rows else set()
    cols = list(dict.fromkeys(c for c in leading if c in seen or c in BASE_COLUMNS))
    return cols + sorted(seen.difference(cols))


def _write_table(path: Path, rows: Sequence[dict[str, Any]], leading: Sequence[str]) -> Path:
    """Write one table to a temporary name beside ``path``, then rename it: a failed write
    (a full disk) leaves no empty or cut-off ``path``, and raises ``OSError`` whose
    ``filename`` is ``path``."""
    cols = _columns(rows, leading)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(cols)
            for row in rows:
                writer.writerow([_cell(row.get(c)) for c in cols])
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    return path


def _run_start(records: Sequence[Record]) -> RunStart | None:
    return next((r for r in records if isinstance(r, RunStart)), None)


def _run_id(records: Sequence[Record], run_id: str | None) -> str | None:
    if run_id is not None:
        return run_id
    start = _run_start(records)
    return None if start is None else start.run_id


def export_csv(
    events: Sequence[Record], out_dir: Path, *, run_id: str | None = None
) -> dict[str, Path]:
    """Write one tidy CSV per event kind present (plus the long-form tables) into
    ``out_dir`` (created if needed; files of the same name are replaced).

    ``run_id`` fills the ``run_id`` column (default: from ``run_start``). Returns the
    files written, by table name (``"spectrum"``, ``"spectrum_eigenvalues"``, ...), in
    schema order.
    """
    records = list(events)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rid = _run_id(records, run_id)
    tables: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {}

    def add(name: str, row: dict[str, Any], leading: tuple[str, ...]) -> None:
        tables.setdefault(name, ([], leading))[0].append(row)

    by_kind: dict[str, list[Record]] = {k: [] for k in KINDS}
    for rec in records:
        by_kind[rec.kind].append(rec)
    for kind in KINDS:
        fields = tuple(f for f in _required(kind) if f not in _LONG_FIELDS.get(kind, ()))
        for rec in by_kind[kind]:
            add(kind, _scalar_row(rec, rid), (*BASE_COLUMNS, *fields))
            match rec:
                case Spectrum():
                    for row in _eigen_rows(rec, rid):
                        add(
                            "spectrum_eigenvalues", row,
                            (*BASE_COLUMNS, "rank", "eigenvalue", "residual", "converged"),
                        )
                case Neurons():
                    for row in _layer_rows(rec, rid):
                        add(
                            "neurons_layers", row,
                            (*BASE_COLUMNS, "layer", "units", "dead", "dead_pct"),
                        )
                case LossSlice():
                    for row in _slice_rows(rec, rid):
                        add(
                            "loss_slice_points", row,
                            (*BASE_COLUMNS, "direction", "eigenvalue", "slope", "distance",
                             "loss"),
                        )
                case DenseSpectrum():
                    for row in _hist_rows(rec, rid):
                        add(
                            "dense_spectrum_histogram", row,
                            (*BASE_COLUMNS, "bin", "left", "right", "count"),
                        )
    return {
        name: _write_table(out_dir / f"{name}.csv", rows, leading)
        for name, (rows, leading) in tables.items()
    }


# -- TensorBoard ------------------------------------------------------------------------


@dataclass(slots=True)
class TensorBoardExport:
    """What :func:`export_tensorboard` wrote: the log directory, the scalars written, the
    non-finite values skipped (per tag), and the tags."""

    log_dir: Path
    scalars: int = 0
    skipped_nonfinite: Counter[str] = field(default_factory=Counter)
    tags: list[str] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        """Non-finite values left out, all tags together."""
        return sum(self.skipped_nonfinite.values())


def _record_value(rec: Record, field_name: str) -> Any:
    match rec, field_name:
        case Spectrum(), "top10_mean":
            return top_mean_abs(list(rec.eigenvalues))
        case Spectrum(), "max_residual":
            return max(rec.residuals, default=None)
    return getattr(rec, field_name)


def _tag_part(name: str) -> str:
    """A layer name usable inside a tag: whitespace and slashes replaced by ``_``."""
    return "_".join(str(name).replace("/", "_").split()) or "_"


def _tb_scalars(rec: Record) -> Iterable[tuple[str, Any, str]]:
    """(tag, value, description) for every scalar of ``rec``."""
    for tag, (kind, field_name, desc) in TENSORBOARD_TAGS.items():
        if kind == rec.kind:
            yield tag, _record_value(rec, field_name), desc
    match rec:
        case Spectrum(eigenvalues=eigs):
            width = max(2, len(str(len(eigs))))
            for i, lam in enumerate(eigs):
                yield (
                    f"spectrum/lambda_{i + 1:0{width}d}", lam,
                    f"Hessian eigenvalue of rank {i + 1} by |λ| (signed)",
                )
        case Neurons(layers=layers):
            for layer in layers:
                yield (
                    f"neurons/{_tag_part(layer.name)}/dead_pct", layer.dead_pct,
                    "% of the layer's units with mean |activation| below the threshold",
                )


def _wall_origin(records: Sequence[Record], origin: float | None) -> float:
    """``origin``, else run_start's ``wall_time`` (or an older writer's ``started_at`` /
    ``unix_time``, kept in ``extra``), else 0."""
    if origin is not None:
        return float(origin)
    start = _run_start(records)
    if start is None:
        return 0.0
    for value in (start.wall_time, start.extra.get("started_at"), start.extra.get("unix_time")):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 0.0


def export_tensorboard(
    events: Sequence[Record],
    out_dir: Path,
    *,
    wall_time_origin: float | None = None,
    replace: bool = False,
) -> TensorBoardExport:
    """Write the run's scalars as a TensorBoard event file in ``out_dir`` (created if
    needed). Point TensorBoard at ``out_dir`` (or its parent, for several runs: give each
    run its own directory).

    TensorBoard merges every event file of a directory, so exporting twice into one would
    show every point twice: when ``out_dir`` already holds ``events.out.tfevents.*``
    files, this raises ``FileExistsError``, or with ``replace=True`` deletes those files
    (only those) first.

    Each value is logged at the event's optimizer step (the last step seen for events
    without one) and at wall time ``wall_time_origin + t`` (Unix seconds). The origin
    defaults to a ``wall_time``/``started_at`` field of ``run_start`` if present, else 0
    (TensorBoard's "relative" time axis is then right, its wall-clock axis is not).
    Non-finite values are skipped and counted (see the module docstring).

    Raises :class:`ExportUnavailableError` when tensorboard is not installed.
    """
    try:
        from tensorboard.summary import Writer
    except ImportError as exc:
        raise ExportUnavailableError(INSTALL_HINT_TB) from exc

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob(f"{TB_FILE_PREFIX}*"))
    if existing and not replace:
        raise FileExistsError(
            f"{out_dir} already holds TensorBoard event files ({existing[0].name}"
            f"{', ...' if len(existing) > 1 else ''}): export into an empty directory, "
            "or replace them"
        )
    # Written into a hidden sibling directory first, moved in once complete: a failed
    # export (a full disk) leaves out_dir as it was, with no empty or cut-off file.
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp",
                                    dir=out_dir.parent))
    try:
        with _thread_errors_raised_here():
            report = _write_tensorboard(list(events), staging, Writer,
                                        wall_time_origin)
        report.log_dir = out_dir
        for path in existing:
            if path.is_file():
                path.unlink()
        for path in staging.iterdir():
            os.replace(path, out_dir / path.name)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(out_dir)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


@contextlib.contextmanager
def _thread_errors_raised_here() -> Iterator[None]:
    """TensorBoard writes from a thread of its own and re-raises the thread's error in
    the caller; keep that thread from also printing it ("Exception in thread ...")."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, OSError):
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


def _write_tensorboard(records: Sequence[Record], log_dir: Path, writer_cls: Any,
                       wall_time_origin: float | None) -> TensorBoardExport:
    """Write the scalars of ``records`` with a new ``writer_cls`` in ``log_dir``."""
    origin = _wall_origin(records, wall_time_origin)
    report = TensorBoardExport(log_dir=log_dir)
    described: set[str] = set()
    step = 0
    writer = writer_cls(str(log_dir))
    try:
        for rec in records:
            if rec.step is not None:
                step = rec.step
            for tag, value, desc in _tb_scalars(rec):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                with np.errstate(over="ignore"):
                    finite = math.isfinite(value) and bool(np.isfinite(np.float32(value)))
                if not finite:
                    report.skipped_nonfinite[tag] += 1
                    continue
                writer.add_scalar(
                    tag, float(value), step, wall_time=origin + rec.t,
                    description=None if tag in described else desc,
                )
                if tag not in described:
                    described.add(tag)
                    report.tags.append(tag)
                report.scalars += 1
    except BaseException:
        with contextlib.suppress(OSError):  # the write error, again: the first one counts
            writer.close()
        raise
    writer.close()
    return report
