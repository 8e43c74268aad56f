#!/usr/bin/env bash
# Trains 5,000 steps of MNIST on one device and as 2 localhost workers
# (--strategy multi-worker), both through the CLI with seed 0, then prints
# each model's test negative ELBO, their difference, each worker's grids and
# the wall times. Usage:
#   benchmarks/distributed_quality.sh MNIST_DIR [RESULTS_DIR] [ITERS]
set -euo pipefail
MNIST=$1
R=${2:-results/distributed}
ITERS=${3:-5000}
mkdir -p "$R"
common=(--data-dir "$MNIST" --seed 0 --iters "$ITERS" --verbose 0)

start=$SECONDS
keras-vae train "${common[@]}" --out "$R/one/grids" --save "$R/one.keras" --overwrite
echo "one device: $((SECONDS - start)) s"

ports=$(python3 -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("localhost", 0))
print(",".join(f"localhost:{s.getsockname()[1]}" for s in sockets))')
start=$SECONDS
for i in 0 1; do
    keras-vae train "${common[@]}" --strategy multi-worker --workers "$ports" \
        --worker-index "$i" --out "$R/worker$i/grids" --save "$R/workers.keras" \
        --overwrite &
done
wait
echo "2 workers ($ports): $((SECONDS - start)) s"

for model in one workers; do
    keras-vae evaluate --model "$R/$model.keras" --data-dir "$MNIST" --k 1 --json \
        > "$R/$model.json"
done
python3 - "$R" <<'PY'
import json, os, sys
r = sys.argv[1]
one, workers = (json.load(open(f"{r}/{m}.json"))["neg_elbo"] for m in ("one", "workers"))
print(f"test negative ELBO: one device {one:.2f}, 2 workers {workers:.2f}, "
      f"difference {workers - one:+.2f} nat")
for i in (0, 1):
    grids = f"{r}/worker{i}/grids"
    print(f"worker {i} grids:", sorted(os.listdir(grids)) if os.path.isdir(grids) else "none")
PY
