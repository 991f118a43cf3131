#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for Crate (run as root, or with sudo available) and builds the solution.
# Idempotent: every step checks first and says what it does; a second run only rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  say "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian packages the project uses: Fashion-MNIST (real data for demo and tests), the ONNX checker,
# PyTorch (independent reference implementation for the model fixture and interop), Node.js for the
# second ONNX runtime sample, and Chromium for the browser sample's test (Playwright drives it by its path,
# so no browser is downloaded).
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
/usr/bin/python3 -c 'import onnx' 2>/dev/null || need+=(python3-onnx)
/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; else say "Debian packages: already installed"; fi

# TorchSharp's native library needs GLIBCXX_3.4.32 (GCC 13+). Debian 12 ships GCC 12's libstdc++, so take
# libstdc++6 from Debian 13 (trixie), pinned low so nothing else is upgraded from it.
libstdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ && !p {p=$NF} END {print p}')
if [ -n "$libstdcxx" ] && grep -q GLIBCXX_3.4.32 "$libstdcxx"; then
  say "libstdc++ already provides GLIBCXX_3.4.32"
else
  say "libstdc++ lacks GLIBCXX_3.4.32 (TorchSharp needs it): installing libstdc++6 from Debian trixie"
  cat <<'SRC' | $SUDO tee /etc/apt/sources.list.d/crate-trixie.sources >/dev/null
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' | $SUDO tee /etc/apt/preferences.d/crate-trixie >/dev/null
  $SUDO apt-get update -qq
  apt_updated=1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t trixie libstdc++6 >/dev/null
  libstdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ && !p {p=$NF} END {print p}')
  grep -q GLIBCXX_3.4.32 "$libstdcxx" || { echo "[setup] error: libstdc++ still lacks GLIBCXX_3.4.32" >&2; exit 1; }
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "[setup] error: the .NET 10 SDK (dotnet) is not on PATH; install it, then run this script again" >&2
  exit 1
fi

# --- Node.js samples (issues 5 and 11): onnxruntime-web, pinned in each package-lock.json, for samples/onnx-node
# (the second-runtime test) and samples/web (the browser page and its test). Install scripts are skipped:
# onnxruntime-web needs none.
for sample in samples/onnx-node samples/web; do
  if [ -d "$sample/node_modules/onnxruntime-web" ]; then
    say "$sample: npm packages already installed"
  else
    say "$sample: npm ci (onnxruntime-web)"
    (cd "$sample" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
done
# --- end Node.js samples

say "restoring and building Crate.sln (Release)"
dotnet build Crate.sln -c Release -nologo -v quiet -clp:NoSummary -p:TreatWarningsAsErrors=false
say "done"
