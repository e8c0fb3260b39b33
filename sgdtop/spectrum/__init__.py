"""The measurement core: the Hessian spectrum of the training loss on a probe set.

Definitions are those of ``docs/design.md``; every measurement runs the model in eval
mode without side effects (:mod:`sgdtop.spectrum.guard`).

- :func:`hessian_spectrum`: top-k eigenvalues (Lanczos on Hessian-vector products),
  residuals, ρ(H), κ_k, cost; warm-startable.
- :func:`dense_spectrum`: every eigenvalue of a small model, κ = λ_max / λ_min⁺.
- :func:`spectral_density`: the density of the whole spectrum by stochastic Lanczos
  quadrature, for models of any size.
- :func:`loss_slices`: the loss along the top eigenvectors (the paper's Fig. 7).

Modules: ``hvp`` (products over the probe set), ``lanczos`` (the eigensolver, pure linear
algebra), ``topk``, ``dense``, ``density``, ``slices``, ``guard`` (side-effect freedom), ``errors``,
``legacy`` (the solver before issue 18, a baseline for the benchmark and one test).
"""

from sgdtop.spectrum.dense import (
    DENSE_MAX_PARAMS_DEFAULT,
    DenseSpectrum,
    dense_spectrum,
    spectrum_histogram,
)
from sgdtop.spectrum.density import SpectralDensity, spectral_density
from sgdtop.spectrum.errors import (
    DenseTooLargeError,
    NonFiniteError,
    SpectrumError,
    SpectrumInputError,
)
from sgdtop.spectrum.hvp import DEFAULT_HVP_METHOD, HVP_METHODS, ProbeHessian
from sgdtop.spectrum.slices import LossSlices, loss_slices, slice_distances
from sgdtop.spectrum.topk import SpectrumResult, hessian_spectrum

__all__ = [
    "DEFAULT_HVP_METHOD",
    "DENSE_MAX_PARAMS_DEFAULT",
    "HVP_METHODS",
    "DenseSpectrum",
    "DenseTooLargeError",
    "LossSlices",
    "NonFiniteError",
    "ProbeHessian",
    "SpectralDensity",
    "SpectrumError",
    "SpectrumInputError",
    "SpectrumResult",
    "dense_spectrum",
    "hessian_spectrum",
    "loss_slices",
    "slice_distances",
    "spectral_density",
    "spectrum_histogram",
]
