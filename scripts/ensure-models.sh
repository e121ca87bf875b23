#!/usr/bin/env bash
# Build the model files the labs need, once; each step skips itself when its output exists.
set -euo pipefail
py="${1:-python3}"
for step in scripts/models.d/*.sh; do
  [ -e "$step" ] || continue
  "$step" "$py"
done
