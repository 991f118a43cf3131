#!/usr/bin/env bash
# The end-to-end demo on built-in data: set up the machine, train CRATE-mini briefly on Fashion-MNIST, evaluate
# it, export it to ONNX, check the file with the official ONNX checker, look inside the white box, and score it
# through ML.NET. Everything lands in runs/demo/. CRATE_DEMO_EPOCHS / CRATE_DEMO_LIMIT shorten or lengthen it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

out=runs/demo
epochs=${CRATE_DEMO_EPOCHS:-2}
limit=${CRATE_DEMO_LIMIT:-20000}
crate() { dotnet src/Crate.Cli/bin/Release/net10.0/crate.dll "$@"; }
mkdir -p "$out"

echo "== 1. Train CRATE-mini on $limit Fashion-MNIST images for $epochs epochs"
crate train --data fashion-mnist --preset mini --epochs "$epochs" --limit "$limit" --augment crop,flip --out "$out/train"

echo "== 2. Evaluate on the 10,000 Fashion-MNIST test images"
crate evaluate --weights "$out/train/weights.safetensors" --data fashion-mnist

echo "== 3. Export to ONNX and check the file"
crate export --weights "$out/train/weights.safetensors" --out "$out/crate-mini.onnx" --attention
/usr/bin/python3 scripts/check_onnx.py "$out/crate-mini.onnx"

echo "== 4. The same task in ML.NET (samples/FashionMnistClassification): train, save, reload, predict, evaluate"
dotnet samples/FashionMnistClassification/bin/Release/net10.0/FashionMnistClassification.dll --output "$out/mlnet"

echo "== 5. Look inside the white box: compression and sparsity per layer, attention maps, dictionary (HTML report)"
crate analyze --weights "$out/train/weights.safetensors" --random-init --data fashion-mnist --images 500 --out "$out/whitebox"

echo
echo "Done. Open $out/whitebox/report.html; the training curve is $out/train/training-curve.png; the ONNX model is $out/crate-mini.onnx."
