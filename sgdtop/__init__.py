"""sgdtop: `top` for the curvature of the loss while SGD trains.

Measures the top-k Hessian eigenvalues of the training loss (Lanczos on a fixed probe
set), its spectral norm ρ(H) and condition number κ_k, and the share of dead neurons,
streams them as typed events, and shows them live (Textual) or headless.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__
    from sgdtop.monitor import Monitor

__version__ = "0.1.0"

__all__ = ["Monitor", "__version__"]


def __getattr__(name: str) -> object:
    """Lazy exports: ``sgdtop.Monitor`` imports torch only when first used, so
    ``import sgdtop`` (done by the TUI and the CLI) stays light."""
    if name == "Monitor":
        from sgdtop.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'sgdtop' has no attribute {name!r}")
