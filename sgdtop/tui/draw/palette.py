"""The TUI's colors: the eigenvalue-rank ramp (the paper's Fig. 2), one color per run,
status and log styles, and the stability color of η·λ₁/2(1+β).

Styles are Rich style strings; see docs/design.md (the TUI layer).
"""

from __future__ import annotations

from typing import Final

from sgdtop import format as fmt
from sgdtop.tui.state.views import LOST, RUNNING, STOPPING, WAITING

#: Rank 1 (largest |λ|) and rank k (smallest) in the chart and table (paper's Fig. 2).
RANK_FIRST: Final[tuple[int, int, int]] = (239, 68, 68)
RANK_LAST: Final[tuple[int, int, int]] = (59, 130, 246)
LOSS_COLOR: Final[str] = "#e5e7eb"
LIMIT_COLOR: Final[str] = "#f59e0b"
BAD: Final[str] = "bold #f87171"
WARN: Final[str] = "#facc15"
GOOD: Final[str] = "#4ade80"
DIM: Final[str] = "#8b949e"

METRIC_COLORS: Final[dict[str, str]] = {
    "rho": "#f87171",
    "stability": GOOD,
    "cond": "#c084fc",
    "train_loss": LOSS_COLOR,
    "test_loss": "#93c5fd",
    "test_acc": "#86efac",
    "dead": "#fdba74",
}

STATUS_STYLES: Final[dict[str, tuple[str, str]]] = {
    WAITING: ("○", DIM),
    RUNNING: ("●", GOOD),
    STOPPING: ("◌", WARN),
    "completed": ("■", GOOD),
    "interrupted": ("■", WARN),
    "diverged": ("✖", BAD),
    "failed": ("✖", BAD),
    LOST: ("✖", BAD),
}

LOG_STYLES: Final[dict[str, str]] = {"info": DIM, "warning": WARN, "error": BAD}


def ramp_color(first: tuple[int, int, int], last: tuple[int, int, int], f: float) -> str:
    """Hex color at fraction ``f`` (clamped to [0, 1]) of the way from ``first`` to ``last``."""
    f = min(max(f, 0.0), 1.0)
    r, g, b = (round(a + (z - a) * f) for a, z in zip(first, last, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def rank_color(rank: int, k: int) -> str:
    """Hex color of eigenvalue ``rank`` (0-based) among ``k``: red (largest) → blue."""
    return ramp_color(RANK_FIRST, RANK_LAST, 0.0 if k <= 1 else rank / (k - 1))



def stability_style(ratio: float) -> str:
    """Color of η·λ₁/2(1+β): green below 1/2, yellow below 1, red at or above 1."""
    if not fmt.finite(ratio) or ratio >= 1.0:
        return BAD
    return WARN if ratio >= 0.5 else GOOD


#: One color per run, in order (cycled beyond eight runs): distinct on dark backgrounds.
RUN_COLORS: Final[tuple[str, ...]] = (
    "#f87171", "#60a5fa", "#4ade80", "#facc15", "#c084fc", "#fb923c", "#2dd4bf", "#f472b6",
)


def run_color(index: int) -> str:
    """Hex color of run ``index`` (0-based) in charts, legends and table headers."""
    return RUN_COLORS[index % len(RUN_COLORS)]


#: How a setting that differs between compared runs is shown (table and labels).
DIFF_STYLE: Final[str] = "bold #facc15"
