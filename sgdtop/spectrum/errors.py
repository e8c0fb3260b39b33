"""Errors of the measurement core. Every message is one line, fit to print without a
traceback (the CLI does so)."""

from __future__ import annotations


class SpectrumError(Exception):
    """Base class of every error raised by :mod:`sgdtop.spectrum` and :mod:`sgdtop.neurons`."""


class SpectrumInputError(SpectrumError, ValueError):
    """A bad argument: k out of range, an empty probe set, no trainable parameters, ..."""


class DenseTooLargeError(SpectrumInputError):
    """The model has more trainable parameters than the dense spectrum accepts."""


class NonFiniteError(SpectrumError, ArithmeticError):
    """The probe loss or a Hessian-vector product is NaN or infinite (a diverged model)."""
