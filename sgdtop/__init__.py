"""sgdtop: `top` for the curvature of the loss while SGD trains.

Measures the top-k Hessian eigenvalues of the training loss (Lanczos on a fixed probe
set), its spectral norm ρ(H) and condition number κ_k, and the share of dead neurons,
streams them as typed events, and shows them live (Textual) or headless.
"""

__version__ = "0.1.0"
