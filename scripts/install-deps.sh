#!/usr/bin/env bash
# install-deps.sh - installs the Debian 12 packages Gearbox needs to build,
# test, fuzz and benchmark. Idempotent: installs only what is missing, and
# runs `apt-get update` only when something is. Run as root (or with sudo
# available); prints every package it installs.
set -euo pipefail

# Every package the project needs, in one list. Add test-only packages at
# the end with a comment saying who needs them.
PACKAGES=(
  build-essential    # gcc, g++ (RocksDB's C API pulls in the C++ runtime), make
  cmake
  pkg-config
  libuv1-dev         # event loop
  libmsgpack-dev     # wire codec (msgpack-c 4.0, pkg-config "msgpack")
  librocksdb-dev     # storage (RocksDB 7.8 C API)
  libcjson-dev       # JSON (policies, filter policies, CLI output)
  libcmocka-dev      # unit and integration tests
  libssl-dev         # libcrypto: keyed permutations, receipt MACs; libssl: TLS (server, client)
  openssl            # tests: the openssl CLI makes test certificates, s_client checks TLS
  libhttp-parser-dev # the AWS-compatible HTTP face's request parser (http_parser 2.9)
  clang              # libFuzzer targets (cmake -DGBX_FUZZ=ON)
  libclang-rt-14-dev # libFuzzer and sanitizer runtimes for clang 14
  clang-format       # `make format`
  valgrind           # memory checking outside ASan builds
  # Test- and bench-only packages:
  beanstalkd         # bench: baseline broker to compare against
  redis-server       # bench: baseline broker to compare against
  libhiredis-dev     # bench: the Redis client of gearbox-bench --compare
  faketime           # reliability: wall-clock jumps under libfaketime
  awscli             # tests/aws: the aws CLI against the SQS/SNS face (query protocol)
  python3-boto3      # tests/aws: boto3 (query protocol)
  wrk                # bench: pipelined HTTP load against the AWS face
  curl               # tests/integration/test_tls: the AWS face over HTTPS
)

# Prints the packages of PACKAGES that are not fully installed.
missing_packages() {
  local p status
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
      printf '%s\n' "$p"
    fi
  done
}

mapfile -t missing < <(missing_packages)
# tests/aws use npm's @aws-sdk clients: Node.js and npm from Debian unless a
# node/npm is already on the PATH (Debian's nodejs conflicts with other npms)
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root (or install sudo) to install them" >&2
  exit 1
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

mapfile -t still_missing < <(missing_packages)
if [[ ${#still_missing[@]} -ne 0 ]]; then
  echo "install-deps: still missing after install: ${still_missing[*]}" >&2
  exit 1
fi
echo "install-deps: done"
