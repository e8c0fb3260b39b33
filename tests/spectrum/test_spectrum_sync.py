"""Host synchronizations of a measurement, counted without CUDA (issue 18 item 3).

On CUDA every read-back of a device value (``.cpu()``, ``bool(t)``, ``.item()``,
``torch.nonzero``) waits for the queued kernels. The solver does its own through one
counted helper (``_host``): once per iteration and once per expansion, independent of n
(not zero: the iteration still decides on the host which pairs to expand, and
``torch.linalg.eigh`` of the projected matrix synchronizes inside on CUDA);
the HVP operator keeps its finite check on the device off the CPU (one read at the end).
What is counted here is every call of those read-back functions made by the solver while
it runs, on the CPU (where they cost nothing) as a stand-in for the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from spectrum_fixtures import probe_for, split, tiny_mlp
from test_spectrum_lanczos import SIGNED, N, _operator, _rest

from sgdtop.spectrum import NonFiniteError, ProbeHessian
from sgdtop.spectrum import lanczos as lz
from sgdtop.spectrum.guard import measuring


@contextmanager
def counting_reads() -> Iterator[dict[str, int]]:
    """Count the read-back calls made from sgdtop/spectrum/lanczos.py."""
    import inspect

    counts = {"reads": 0}
    originals = {name: getattr(torch.Tensor, name) for name in ("cpu", "item", "tolist",
                                                                "__bool__")}
    nonzero = torch.nonzero

    def from_solver() -> bool:
        frame = inspect.currentframe()
        caller = frame.f_back.f_back if frame and frame.f_back else None
        return caller is not None and caller.f_code.co_filename == lz.__file__

    def wrap(fn):  # type: ignore[no-untyped-def]
        def inner(*args, **kwargs):  # type: ignore[no-untyped-def]
            if from_solver():
                counts["reads"] += 1
            return fn(*args, **kwargs)
        return inner

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(fn))
    torch.nonzero = wrap(nonzero)
    try:
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
        torch.nonzero = nonzero


def test_read_backs_per_iteration_do_not_grow() -> None:
    """Every read-back of the solver goes through ``_host`` (plus host-side index work on
    what it read) and their number is a small multiple of the iterations, not of n or m."""
    ev = torch.cat([SIGNED, _rest(N - 30, -2, 2)])
    matvec = _operator(ev)

    def matmat(v: torch.Tensor) -> torch.Tensor:
        return torch.stack([matvec(v[:, j]) for j in range(v.shape[1])], 1)

    with counting_reads() as counts:
        res = lz.top_eigenpairs(matvec, N, 30, tol=1e-3, block_size=2, matmat=matmat)
    iterations = res.passes  # one block product per iteration (measured: 26, 53 reads)
    assert res.host_reads <= 2 * iterations + 4, (res.host_reads, iterations)
    # The raw calls include host-side work on values already read (nonzero, bool of a
    # host tensor): still a bounded number per iteration.
    assert counts["reads"] <= 8 * iterations + 40, (counts["reads"], iterations)


def test_finite_check_is_deferred_off_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off the CPU a non-finite product does not read back at once; check_finite raises."""
    model = tiny_mlp()
    x, y = probe_for(model)
    op = ProbeHessian(model, F.cross_entropy, split(x, y, [4, 9]))
    monkeypatch.setattr(op, "device", torch.device("meta"))  # only the check looks at it
    op._check_finite(torch.tensor([1.0, float("nan")]))  # no raise: kept on the "device"
    with pytest.raises(NonFiniteError):
        op.check_finite()
    cpu = ProbeHessian(model, F.cross_entropy, split(x, y, [4, 9]))
    with measuring(model), pytest.raises(NonFiniteError):
        cpu._check_finite(torch.tensor([float("inf")]))
