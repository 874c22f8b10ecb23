#!/usr/bin/env bash
# Installs what the build needs (Debian packages, only those missing) and builds Sluice
# into ./build with Ninja and ccache. Run by run.sh and test.sh. SLUICE_EXTRA_PACKAGES names
# more Debian packages for one caller only (test.sh adds the Kafka broker's Java and kcat, which
# run.sh does not need).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev librdkafka-dev libleveldb-dev libsnappy-dev libzmq3-dev cppzmq-dev
  libboost-test-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev libxxhash-dev libabsl-dev libsimdjson-dev libjemalloc-dev
)
read -r -a extra <<< "${SLUICE_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_type="${SLUICE_BUILD_TYPE:-RelWithDebInfo}"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" > /dev/null
cmake --build "$root/build" -j "${SLUICE_JOBS:-2}" "$@"
