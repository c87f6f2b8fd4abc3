#!/usr/bin/env bash
# The warm adapter tier on zram: a compressed-RAM block device, formatted and mounted as the
# directory edgelora keeps its slot images in (adapters.warm.backend: directory).
#
#   zram-warm.sh start [DEVICE] [SIZE] [ALGORITHM] [MOUNT] [OWNER]
#   zram-warm.sh stop  [DEVICE] [MOUNT]
#
# Defaults: /dev/zram1, 1G, zstd (lzo-rle where the kernel has no zstd), /var/lib/edgelora/warm,
# edgelora. SIZE is the uncompressed capacity: set adapters.warm.budget_mb below it (the file
# system takes a little). `stop` unmounts and resets the device (its memory is freed).
# hw/edgelora-zram-warm.service runs this before edgelora.service.
set -euo pipefail

cmd="${1:-}"
dev="${2:-/dev/zram1}"
name="$(basename "$dev")"
sys="/sys/block/$name"

start() {
  local size="${3:-1G}" algo="${4:-zstd}" mnt="${5:-/var/lib/edgelora/warm}" owner="${6:-edgelora}"
  if [ ! -e "$sys" ]; then
    modprobe zram num_devices=2 2>/dev/null || true
    # A kernel with zram already loaded: ask it for one more device.
    [ -e "$sys" ] || [ ! -e /sys/class/zram-control/hot_add ] || cat /sys/class/zram-control/hot_add >/dev/null
  fi
  [ -e "$sys" ] || { echo "zram-warm: $dev does not exist (is the zram module available?)" >&2; exit 1; }
  if [ "$(cat "$sys/disksize")" != "0" ]; then
    echo "zram-warm: $dev is already set up (disksize $(cat "$sys/disksize")); run '$0 stop $dev' first" >&2
    exit 1
  fi
  if grep -qw "$algo" "$sys/comp_algorithm"; then echo "$algo" >"$sys/comp_algorithm"; fi
  echo "$size" >"$sys/disksize"
  # No journal, no reserved blocks: the contents are a cache, rebuilt from the adapter files.
  mkfs.ext4 -q -m 0 -O ^has_journal "$dev"
  mkdir -p "$mnt"
  mount -o noatime,nodev,nosuid,noexec "$dev" "$mnt"
  if id "$owner" >/dev/null 2>&1; then chown "$owner" "$mnt"; fi
  echo "zram-warm: $dev ($(cat "$sys/comp_algorithm" | grep -o '\[[^]]*\]'), $size) mounted on $mnt"
}

stop() {
  local mnt="${3:-/var/lib/edgelora/warm}"
  if mountpoint -q "$mnt"; then umount "$mnt"; fi
  [ -e "$sys/reset" ] && echo 1 >"$sys/reset"
  echo "zram-warm: $dev reset"
}

case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  *) echo "usage: $0 start [DEVICE] [SIZE] [ALGORITHM] [MOUNT] [OWNER] | stop [DEVICE] [MOUNT]" >&2; exit 2 ;;
esac
