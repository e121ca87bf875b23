#!/usr/bin/env bash
# Make Fashion-MNIST available: already there -> nothing to do; else Debian's package
# when apt is usable; else Keras' own download into ~/.keras (needs internet).
set -uo pipefail
py="${1:-python3}"
if "$py" -m core.data check --quiet; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Fashion-MNIST from Debian (dataset-fashion-mnist)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }
  if "$py" -m core.data check --quiet; then exit 0; fi
fi

echo "Trying Keras' download of Fashion-MNIST into ~/.keras/datasets (needs internet)..."
if "$py" -m core.data download && "$py" -m core.data check --quiet; then exit 0; fi

"$py" -m core.data check
cat >&2 <<'MSG'
Fashion-MNIST is not available and could not be fetched.
Fix one of these, then run the command again:
  * as root on Debian/Ubuntu: apt-get install dataset-fashion-mnist
  * with internet: python -m core.data download   (Keras' copy, into ~/.keras/datasets)
  * or set FASHION_MNIST_DIR to a folder holding the four IDX .gz files from
    https://github.com/zalandoresearch/fashion-mnist
MSG
exit 1
