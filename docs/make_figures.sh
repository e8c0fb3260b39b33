#!/bin/bash
# Regenerate the figures of docs/reproduction.md from the runs it describes.
#
#     bash docs/make_figures.sh [RUNS_DIR]        # default: ./runs
#
# The runs come from the commands in docs/reproduction.md ("Commands"), run with
# --runs-dir RUNS_DIR; their sweeps are named with --name, as below. Needs matplotlib
# (sgdtop[plot]).
set -euo pipefail
R=${1:-runs}
F=docs/figures
mkdir -p "$F"
p() { sgdtop plot "$@" --runs-dir "$R"; }

FIG1=mlp-lr
FIG1FULL=mlp-full
LR=cnn-lr
BS=cnn-batch
MOM=cnn-momentum
LRBN=cnn-lr-bn-batch

p "$FIG1" --kind cond -o "$F/fig1a-mlp-condition-number.png"
p "$FIG1" --kind generalization -o "$F/fig1b-mlp-kappa-vs-test-loss.png"
p "$FIG1" -o "$F/fig1-mlp-rho-vs-inverse-lr.png"
p "$FIG1FULL" --kind dense -o "$F/fig1cd-mlp-full-spectrum.png"
p "$FIG1" --kind rho-vs-loss -o "$F/fig2-mlp-rho-at-equal-loss.png"
p "$LR" --kind eigenvalues -o "$F/fig2-cnn-eigenvalues-by-lr.png"
p "$LR" --kind rho-vs-loss -o "$F/fig2-cnn-rho-at-equal-loss.png"
p "$BS" --kind rho-vs-loss -o "$F/fig2-cnn-rho-at-equal-loss-by-batch.png"
p "$BS" --kind eigenvalues -o "$F/fig2-cnn-eigenvalues-by-batch.png"
p "$LR" -o "$F/fig3-cnn-rho-vs-inverse-lr.png"
p "$BS" -o "$F/fig3-cnn-rho-vs-batch.png"
p "$LRBN" --kind eigenvalues -o "$F/fig2-cnn-eigenvalues-by-lr-batch-stats.png"
p "$LRBN" --kind rho-vs-loss -o "$F/fig2-cnn-rho-at-equal-loss-batch-stats.png"
p "$LRBN" -o "$F/fig3-cnn-rho-vs-inverse-lr-batch-stats.png"
sgdtop plot latest --runs-dir "$R/fig4" --kind eigenvalues --axis step -o "$F/fig4-cnn-first-epoch.png"
p "$FIG1" --kind dead -o "$F/fig5-mlp-dead-neurons.png"
p "$LR" --kind dead -o "$F/fig5-cnn-dead-neurons.png"
p "$MOM" --kind auto -o "$F/fig6-cnn-momentum.png"
sgdtop plot latest --runs-dir "$R/fig4-batch" --kind eigenvalues --axis step -o "$F/fig4-cnn-first-epoch-batch-stats.png"
sgdtop plot latest --runs-dir "$R/fig7" --kind slices -o "$F/fig7-cnn-loss-slices.png"
sgdtop plot latest --runs-dir "$R/fig7-batch" --kind slices -o "$F/fig7-cnn-loss-slices-batch-stats.png"
