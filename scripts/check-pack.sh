#!/usr/bin/env bash
# The published package works on its own: packed, installed into an empty folder without any
# dev dependency, `ampsignal --version` and `ampsignal demo` run there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --loglevel=error "./$tarball"
for dev in tsx vitest typescript esbuild @biomejs/biome; do
  if [ -e "node_modules/$dev" ]; then echo "check-pack: dev dependency $dev was installed" >&2; exit 1; fi
done
version=$(npx --no-install ampsignal --version)
expected=$(node -p "require('$root/package.json').version")
[ "$version" = "$expected" ] || { echo "check-pack: --version printed '$version', expected '$expected'" >&2; exit 1; }
npx --no-install ampsignal demo --users 300 >demo.log 2>&1 || { cat demo.log >&2; echo "check-pack: demo failed" >&2; exit 1; }
echo "check-pack: $tarball installs and runs (version $version, $(du -k "$tarball" | cut -f1) kB packed)"
