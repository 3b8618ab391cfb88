#!/usr/bin/env bash
# Run HERE (the Debian build machine) before a GPU session: downloads the Debian packages mmref builds
# with that the GPU image lacks (it has nvcc, CMake, ninja and PyTorch, nothing can be fetched there)
# and unpacks them into .dev/root, which the device tool carries (`carry: [".dev"]`).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev
      libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian ccache)
mkdir -p .dev/debs .dev/root
if [ -z "$(ls .dev/debs/*.deb 2>/dev/null)" ]; then
  (cd .dev/debs && apt-get download "${PKGS[@]}")
fi
for f in .dev/debs/*.deb; do dpkg -x "$f" .dev/root; done
du -sh .dev/root
