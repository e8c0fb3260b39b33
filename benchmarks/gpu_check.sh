#!/usr/bin/env bash
# One short CUDA check of sgdtop on a GPU machine (torch installed there; sgdtop run from
# this checkout without installing). Writes logs and runs under ${OUT:-/tmp/sgdtop-gpu}.
#   bash benchmarks/gpu_check.sh
set -u
out=${OUT:-/tmp/sgdtop-gpu}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NO_COLOR=1
nvidia-smi -L
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name(0))"
echo "== 1. trainer on CUDA: teacher-student MLP, 3 epochs"
timeout 150 python3 -m sgdtop run mlp-teacher-student --device cuda --epochs 3 --log \
  --runs-dir "$out/runs" 2>&1 | tail -n 12
echo "== 2. trainer on CUDA: small CNN factory (batch norm, dropout), 2 epochs, k=30"
timeout 120 python3 -m sgdtop run examples/small_cnn.py:factory --device cuda --epochs 2 --k 30 \
  --log --runs-dir "$out/runs" 2>&1 | tail -n 6
echo "== 3. spectrum benchmark on CUDA (quick): HVP methods, top-k vs eigsh, warm vs cold"
timeout 300 python3 benchmarks/bench_spectrum.py --device cuda --quick 2>&1 | tail -n 60
