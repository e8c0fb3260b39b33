"""Measurement results → records: the one place where a
:class:`~sgdtop.spectrum.SpectrumResult`, :class:`~sgdtop.spectrum.dense.DenseSpectrum`,
:class:`~sgdtop.spectrum.slices.LossSlices` or :class:`~sgdtop.neurons.NeuronReport`
becomes a ``Spectrum``, ``DenseSpectrum``, ``LossSlice`` or ``Neurons`` record
(``docs/design.md``, "Events").

Imports no torch: the results are read by attribute only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sgdtop.recorder.clock import Header
from sgdtop.schema import DenseSpectrum, LossSlice, NeuronLayer, Neurons, Record, Spectrum

if TYPE_CHECKING:
    from sgdtop.neurons import NeuronReport
    from sgdtop.spectrum import SpectrumResult
    from sgdtop.spectrum.dense import DenseSpectrum as DenseResult
    from sgdtop.spectrum.slices import LossSlices

def stability_limit(lr: float, momentum: float) -> float:
    """2(1+β)/η: the largest curvature SGD with momentum β and step η is stable on (inf
    when η is not positive or unknown)."""
    return 2.0 * (1.0 + momentum) / lr if lr > 0 else math.inf


def spectrum_record(header: Header, res: SpectrumResult, *, lr: float, momentum: float,
                    batch_norm: str) -> Record:
    """The ``spectrum`` record of a top-k result at η = ``lr``, β = ``momentum``:
    ``eta_lambda1`` = η·λ₁ (λ₁ signed), ``stability_limit`` = 2(1+β)/η."""
    return Spectrum(
        **header, eigenvalues=tuple(res.eigenvalues), residuals=tuple(res.residuals),
        converged=tuple(bool(c) for c in res.converged), spectral_norm=res.spectral_norm,
        cond_k=res.cond_k, lr=lr, momentum=momentum, eta_lambda1=lr * res.eigenvalues[0],
        stability_limit=stability_limit(lr, momentum), hvps=res.hvps, seconds=res.seconds,
        warm=res.warm, k=res.k, which=res.which, tol=res.tol, batch_norm=batch_norm,
        guard_band=res.guard_band, separated=res.separated, block_size=res.block_size,
        block_passes=res.block_passes)


def dense_record(header: Header, d: DenseResult) -> Record:
    """The ``dense_spectrum`` record: the histogram of all n eigenvalues (the dense
    module's default bins) and its extremes."""
    edges, counts = d.histogram()
    return DenseSpectrum(
        **header, n=d.n, hist_edges=tuple(edges), hist_counts=tuple(counts),
        lambda_max=d.lambda_max, lambda_min=d.lambda_min, min_positive=d.min_positive,
        cond=d.cond, floor=d.floor, n_negative=d.n_negative, seconds=d.seconds)


def slice_record(header: Header, sl: LossSlices) -> Record:
    """The ``loss_slice`` record: the loss along the top eigenvectors."""
    return LossSlice(
        **header, distances=tuple(sl.distances), eigenvalues=tuple(sl.eigenvalues),
        slopes=tuple(sl.slopes), losses=tuple(tuple(row) for row in sl.losses),
        loss0=sl.loss0, lr=sl.lr, seconds=sl.seconds)


def neurons_record(header: Header, rep: NeuronReport) -> Record:
    """The ``neurons`` record: dead units per ReLU site and overall."""
    return Neurons(
        **header, dead_pct=float(rep.dead_pct), threshold=float(rep.threshold),
        layers=tuple(NeuronLayer(name=x.name, units=int(x.units), dead=int(x.dead),
                                 dead_pct=float(x.dead_pct)) for x in rep.layers))
