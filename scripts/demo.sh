#!/usr/bin/env bash
# Sets up the machine (idempotent) and runs the end-to-end demo, samples/FashionMnistClassification: CRATE-mini
# trained on Fashion-MNIST through ML.NET, saved, reloaded, used for predictions and evaluated; the metrics are
# printed at the end. Takes a few minutes on 2 cores. Extra arguments go to the sample (--train N --test N
# --epochs N --output DIR); the model files land in artifacts/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dotnet run --project samples/FashionMnistClassification -c Release --no-build -- --output artifacts/demo "$@"
