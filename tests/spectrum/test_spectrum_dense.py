"""dense_spectrum: the exact full spectrum of small models, κ and its floor."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import (
    probe_for,
    reference_eigenvalues,
    split,
    tiny_cnn_bn,
    tiny_dropout,
    tiny_mlp,
)

from sgdtop.recorder.records import dense_record
from sgdtop.schema import DenseSpectrum, decode_line, encode
from sgdtop.spectrum import (
    DENSE_MAX_PARAMS_DEFAULT,
    DenseTooLargeError,
    dense_spectrum,
    hessian_spectrum,
    spectrum_histogram,
)
from sgdtop.spectrum.dense import default_rel_floor, summarize


@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn_bn, tiny_dropout])
def test_matches_reference(make) -> None:
    model = make()
    model.train()
    x, y = probe_for(model)
    ref = reference_eigenvalues(model, x, y)
    d64 = dense_spectrum(copy.deepcopy(model).double(), F.cross_entropy, split(x, y, [8, 5]))
    assert d64.n == ref.numel()
    assert torch.allclose(torch.tensor(d64.eigenvalues, dtype=torch.float64), ref,
                          rtol=0, atol=1e-10 * float(ref.abs().max()))
    d32 = dense_spectrum(model, F.cross_entropy, [(x, y)])
    assert np.allclose(d32.eigenvalues, ref.numpy(), rtol=0, atol=1e-5 * float(ref.abs().max()))
    assert d32.rel_floor == pytest.approx(default_rel_floor(d32.n, torch.float32))
    assert d32.asymmetry < 1e-5


def test_top_k_agrees_with_hessian_spectrum() -> None:
    model = tiny_cnn_bn().double()
    x, y = probe_for(model)
    d = dense_spectrum(model, F.cross_entropy, [(x, y)])
    s = hessian_spectrum(model, F.cross_entropy, [(x, y)], k=8, tol=1e-9)
    assert s.eigenvalues == pytest.approx(d.eigenvalues[:8], rel=1e-8)


def test_condition_number_floor_and_counts() -> None:
    values = [10.0, 4.0, 1e-3, 2e-9, -1e-9, 0.0, -0.5, -3.0]
    d = summarize(values, rel_floor=1e-6)
    assert d.floor == pytest.approx(1e-5)
    assert d.min_positive == 1e-3
    assert d.cond == pytest.approx(1e4)
    assert d.n_negative == 2 and d.n_zero == 3
    assert d.lambda_max == 10.0 and d.lambda_min == -3.0 and d.spectral_norm == 10.0
    assert d.eigenvalues[:3] == (10.0, 4.0, -3.0)
    none_positive = summarize([-1.0, -2.0], rel_floor=1e-6)
    assert math.isnan(none_positive.min_positive) and math.isnan(none_positive.cond)


def test_refuses_large_models_with_a_clear_error() -> None:
    model = tiny_mlp()
    x, y = probe_for(model)
    with pytest.raises(DenseTooLargeError, match="limited to 50 parameters; the model has 75"):
        dense_spectrum(model, F.cross_entropy, [(x, y)], max_params=50)
    assert DENSE_MAX_PARAMS_DEFAULT >= 1000


def test_histogram_and_event_fields() -> None:
    edges, counts = spectrum_histogram([0.0, 1.0, 1.0, 2.0, 10.0], bins=5)
    assert len(edges) == 6 and edges[0] == 0.0 and edges[-1] == 10.0
    assert counts == [3, 1, 0, 0, 1]  # bins [0,2) [2,4) ... [8,10]
    assert spectrum_histogram([3.0], bins=2) == ([1.5, 3.0, 4.5], [0, 1])
    model = tiny_mlp()
    x, y = probe_for(model)
    d = dense_spectrum(model, F.cross_entropy, [(x, y)])
    edges, counts = d.histogram(bins=20)
    assert sum(counts) == d.n == 75 and len(edges) == 21
    rec = dense_record({"t": 0.5, "step": 1, "epoch": None}, d)
    assert isinstance(rec, DenseSpectrum) and sum(rec.hist_counts) == 75
    assert rec.cond == d.cond and rec.n_negative == d.n_negative
    assert decode_line(encode(rec)) == rec
