#!/usr/bin/env bash
# Installs mmref's build and test dependencies as Debian 12 packages. Idempotent: packages already
# present are not reinstalled and `apt-get update` runs only when something is missing.
# Usage: sudo scripts/install_deps.sh   (as root; CI and the README commands call it)
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread
  libyaml-cpp-dev libhdf5-dev libeigen3-dev libgloo-dev libicu-dev zlib1g-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libavfilter-dev libavdevice-dev ffmpeg
  libsentencepiece-dev sentencepiece libespeak-ng-dev espeak-ng
  # reference data for tests and side-by-side peers (never used inside mmref)
  python3-torch python3-numpy python3-torchaudio python3-torchvision python3-h5py python3-scipy
  # local corpora: speech synthesizers and real media shipped in Debian packages
  flite flite1-dev festival festvox-kallpc16k festvox-us-slt-hts pocketsphinx-testdata
  pocketsphinx pocketsphinx-en-us   # the ASR experiment's peer recogniser
  opencv-doc python3-skimage
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PKGS[@]} packages present"
else
  echo "install_deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's libtorch links whatever libblas.so.3 points to; make sure it is OpenBLAS (pthread variant),
# not the reference BLAS (1024^2 fp32 matmul: ~6 vs ~180 GFLOP/s on the 2-core machine).
if command -v update-alternatives >/dev/null; then
  blas=$(ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 2>/dev/null || true)
  if [ -n "$blas" ]; then
    cur=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
    if [ "$cur" != "$(readlink -f "$blas")" ]; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" || true
      lap=/usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3
      [ -e "$lap" ] && $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$lap" || true
    fi
  fi
fi
