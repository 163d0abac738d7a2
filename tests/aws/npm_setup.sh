#!/bin/sh
# npm_setup.sh - installs the AWS SDK clients the JS tests use into
# tests/aws/node_modules, exactly as package-lock.json pins them (npm ci).
# Skips the install when node_modules already matches the lock file.
set -eu
cd "$(dirname "$0")"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "npm_setup: node_modules is up to date"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm_setup: npm is missing (install nodejs and npm)" >&2; exit 1; }
npm ci --no-audit --no-fund
echo "npm_setup: installed"
