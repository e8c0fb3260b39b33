#!/usr/bin/env bash
# One short CUDA check of sgdtop on a GPU machine (torch installed there; sgdtop run from
# this checkout without installing). Writes logs and runs under ${OUT:-/tmp/sgdtop-gpu}.
#   bash benchmarks/gpu_check.sh            # about 10 minutes on one H200
# Sized for a 15-minute device budget: each step has its own timeout, and every log is
# kept under $OUT so that a step cut short still reports what it measured.
set -u
out=${OUT:-/tmp/sgdtop-gpu}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NO_COLOR=1
nvidia-smi -L
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name(0))"
echo "== 1. CUDA tests of the measurement core (and the spectrum tests on this machine)"
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_spectrum_cuda.py \
  tests/test_spectrum_matmat.py tests/test_spectrum_lanczos.py 2>&1 | tee "$out/tests.log" | tail -n 5
echo "== 2. trainer on CUDA: teacher-student MLP, 3 epochs"
timeout 100 python3 -m sgdtop run mlp-teacher-student --device cuda --epochs 3 --log \
  --runs-dir "$out/runs" 2>&1 | tail -n 8
echo "== 3. block products on CUDA: seconds per vector against b (MLP, ResNet20, ResNet32)"
timeout 90 python3 benchmarks/bench_spectrum.py --device cuda --models mlp,resnet20,resnet32 \
  --sections block 2>&1 | tee "$out/bench_block.log" | grep -v "^$"
echo "== 4. top-30 at tol 1e-3 on CUDA: before issue 18 / now / ARPACK, float64 reference"
timeout 240 python3 benchmarks/bench_spectrum.py --device cuda --models mlp,resnet20 \
  --sections top30 --repeats 2 --no-profile 2>&1 | tee "$out/bench_top30.log" | grep -v "^$"
timeout 150 python3 benchmarks/bench_spectrum.py --device cuda --models resnet32 \
  --sections top30 --repeats 1 --ref-k 32 --no-profile 2>&1 | tee "$out/bench_top30_r32.log" \
  | grep -v "^$"
