#!/usr/bin/env bash
# The results in docs/evaluation.md: trains the default model on MNIST (10,000 and 100,000
# steps, continuous and binarized) and Fashion-MNIST (10,000 steps), a 2-D
# latent model for the manifold, then evaluates each at k = 1, 100, 5000 and
# draws the pictures. Usage:
#   benchmarks/results.sh MNIST_DIR FASHION_MNIST_DIR [RESULTS_DIR]
# Each step prints how long it took; on 2 CPU cores the whole takes about
# half an hour.
set -euo pipefail
MNIST=$1
FASHION=$2
R=${3:-results}
mkdir -p "$R"

timed() {  # runs a command, then prints its wall time (on stderr: --json output stays JSON)
    local start=$SECONDS
    echo "+ $*" >&2
    "$@"
    echo "  ($((SECONDS - start)) s)" >&2
}

run() {  # NAME [train flags...]: 10,000 steps, checkpointed and logged
    local name=$1
    shift
    local flags=(--seed 0 --out "$R/$name/grids" --checkpoint-dir "$R/$name/ck"
                 --log-dir "$R/$name/logs" --eval-every 1000 --verbose 0 "$@")
    timed keras-vae train "${flags[@]}" --iters 10000 --save "$R/$name-10k.keras"
}

run mnist --data-dir "$MNIST"
timed keras-vae train --seed 0 --out "$R/mnist/grids" --checkpoint-dir "$R/mnist/ck" \
    --log-dir "$R/mnist/logs" --eval-every 1000 --verbose 0 --data-dir "$MNIST" \
    --iters 100000 --save "$R/mnist-100k.keras"
run binarized --data-dir "$MNIST" --binarize
timed keras-vae train --seed 0 --out "$R/binarized/grids" --checkpoint-dir "$R/binarized/ck" \
    --log-dir "$R/binarized/logs" --eval-every 1000 --verbose 0 --data-dir "$MNIST" \
    --binarize --iters 100000 --save "$R/binarized-100k.keras"
run fashion --dataset fashion_mnist --data-dir "$FASHION"
run latent2 --data-dir "$MNIST" --z-dim 2

for model in mnist-10k mnist-100k binarized-10k binarized-100k fashion-10k; do
    dir=$MNIST
    [[ $model == fashion-* ]] && dir=$FASHION
    # Binarized models are evaluated binarized: evaluate follows the model's record.
    timed keras-vae evaluate --model "$R/$model.keras" --data-dir "$dir" --k 1,100,5000 \
        --json > "$R/$model.json"
    cat "$R/$model.json"
done

timed keras-vae plot reconstructions --model "$R/mnist-100k.keras" --data-dir "$MNIST" \
    --out "$R/mnist-100k-reconstructions.png"
timed keras-vae plot interpolation --model "$R/mnist-100k.keras" --data-dir "$MNIST" \
    --pair 0,1 --out "$R/mnist-100k-interpolation.png"
timed keras-vae plot latent --model "$R/mnist-100k.keras" --data-dir "$MNIST" \
    --out "$R/mnist-100k-latent.png"
timed keras-vae plot manifold --model "$R/latent2-10k.keras" --data-dir "$MNIST" \
    --out "$R/mnist-z2-manifold.png"
timed keras-vae plot latent --model "$R/latent2-10k.keras" --data-dir "$MNIST" \
    --out "$R/mnist-z2-latent.png"
timed keras-vae plot curves --log-dir "$R/mnist/logs" --out "$R/mnist-curves.png"
timed keras-vae plot reconstructions --model "$R/fashion-10k.keras" --data-dir "$FASHION" \
    --out "$R/fashion-10k-reconstructions.png"
timed keras-vae plot latent --model "$R/fashion-10k.keras" --data-dir "$FASHION" \
    --out "$R/fashion-10k-latent.png"
