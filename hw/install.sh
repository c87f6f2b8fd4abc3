#!/usr/bin/env bash
# Sets a Raspberry Pi (or any systemd Linux) up to run edgelora as a service. Idempotent: run it
# again after an upgrade; what is already right is left alone, config.yaml is never overwritten.
#   - system user `edgelora` in the `gpio` group, data dir /var/lib/edgelora, config dir /etc/edgelora
#     (a starter config.yaml when there is none);
#   - the systemd unit (hw/edgelora.service with this install's node and package paths), enabled;
#   - --zram SIZE: a zram-backed warm-tier directory /var/lib/edgelora/warm (edgelora-zram-warm.service, running hw/zram-warm.sh);
#   - --led-gpio N: the gpio-led overlay line in the boot config (LED `edgelora` on GPIO N, after a
#     reboot) and a udev rule that lets the gpio group drive it.
# Usage: sudo hw/install.sh [--app DIR] [--zram SIZE] [--led-gpio N] [--root DIR] [--dry-run]
#   --app DIR   the installed package (default: the folder above this script)
#   --root DIR  write every file under DIR instead of / (and run no system command: they are printed)
#   --dry-run   change nothing: print the commands that would run and the files that would change
set -euo pipefail

app="$(cd "$(dirname "$0")/.." && pwd)"
root=/
dry=0
zram=""
led=""
while [ $# -gt 0 ]; do
  case "$1" in
    --app) app="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --zram) zram="$2"; shift 2 ;;
    --led-gpio) led="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -z "$zram" ] || [[ "$zram" =~ ^[0-9]+[KMG]$ ]] || { echo "install.sh: --zram takes a size like 512M or 1G" >&2; exit 2; }
[ -z "$led" ] || [[ "$led" =~ ^[0-9]+$ ]] || { echo "install.sh: --led-gpio takes a GPIO (BCM) number" >&2; exit 2; }
[ -f "$app/dist/src/cli.js" ] || { echo "install.sh: $app/dist/src/cli.js is missing (--app: the installed edgelora package)" >&2; exit 2; }
root="${root%/}"
live=0 # system commands act on this machine only when installing into / for real
if [ -z "$root" ] && [ "$dry" = 0 ]; then
  live=1
  [ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo), or with --dry-run" >&2; exit 1; }
fi
node="$(command -v node || echo /usr/bin/node)"
hw="$(cd "$(dirname "$0")" && pwd)"

say() { printf '%s\n' "$*"; }
run() { # a system command: run it, or print it
  if [ "$live" = 1 ]; then say "run: $*"; "$@"; else say "would run: $*"; fi
}
put() { # put <path under root> <mode> <content>: write when missing or different
  local path="$root$1" mode="$2" content="$3"
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then say "unchanged: $1"; return; fi
  local what=created; [ -f "$path" ] && what=updated
  if [ "$dry" = 1 ]; then say "would write: $1"; return; fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" > "$path"
  chmod "$mode" "$path"
  say "$what: $1"
}
dir() { # dir <path under root> <mode>
  if [ -d "$root$1" ]; then say "exists: $1"; return; fi
  if [ "$dry" = 1 ]; then say "would create: $1"; return; fi
  mkdir -p "$root$1" && chmod "$2" "$root$1"
  say "created: $1"
}

# User and group. Outside a live install they cannot be checked here: print what would run.
if [ "$live" = 0 ] || ! getent group gpio >/dev/null; then run groupadd --system gpio; fi
if [ "$live" = 1 ] && id edgelora >/dev/null 2>&1; then
  id -nG edgelora | grep -qw gpio && say "exists: user edgelora (in group gpio)" || run usermod -aG gpio edgelora
else
  run useradd --system --home-dir /var/lib/edgelora --shell /usr/sbin/nologin --groups gpio edgelora
fi

dir /etc/edgelora 0755
dir /var/lib/edgelora 0750
run chown edgelora:edgelora /var/lib/edgelora
if [ -f "$root/etc/edgelora/config.yaml" ]; then
  say "kept: /etc/edgelora/config.yaml"
else
  put /etc/edgelora/config.yaml 0640 "# edgelora: merged over $app/config/default.yaml (which documents every option).
daemon:
  data_dir: /var/lib/edgelora
model:
  path: null            # a GGUF file; null = the random-weight demo model (see README, Raspberry Pi)
$( [ -n "$led" ] && printf 'leds:\n  backend: sysfs\n  status: edgelora    # the gpio-led overlay LED (after a reboot)' )"
  run chgrp edgelora /etc/edgelora/config.yaml
fi

unit="$(sed -e "s#/usr/bin/node#$node#" -e "s#/opt/edgelora#$app#g" "$hw/edgelora.service")"
put /etc/systemd/system/edgelora.service 0644 "$unit"

if [ -n "$zram" ]; then
  # The shipped unit (hw/zram-warm.sh on /dev/zram1), with this install's path and the size asked for.
  warm_unit="$(sed -e "s#/opt/edgelora#$app#g" -e "s#/dev/zram1 1G #/dev/zram1 $zram #" "$hw/edgelora-zram-warm.service")"
  put /etc/systemd/system/edgelora-zram-warm.service 0644 "$warm_unit"
fi

if [ -n "$led" ]; then
  boot=/boot/firmware/config.txt
  [ -f "$root$boot" ] || [ ! -f "$root/boot/config.txt" ] || boot=/boot/config.txt
  line="dtoverlay=gpio-led,gpio=$led,label=edgelora,trigger=none"
  if [ -f "$root$boot" ] && grep -qxF "$line" "$root$boot"; then
    say "unchanged: $boot (has $line)"
  elif [ "$dry" = 1 ]; then
    say "would append to $boot: $line"
  else
    mkdir -p "$(dirname "$root$boot")"
    printf '%s\n' "$line" >> "$root$boot"
    say "appended to $boot: $line (takes effect after a reboot)"
  fi
  put /etc/udev/rules.d/99-edgelora-led.rules 0644 'SUBSYSTEM=="leds", KERNEL=="edgelora", RUN+="/bin/chgrp gpio /sys%p/trigger /sys%p/brightness", RUN+="/bin/chmod g+w /sys%p/trigger /sys%p/brightness"'
fi

run systemctl daemon-reload
run systemctl enable edgelora.service
[ -z "$zram" ] || run systemctl enable --now edgelora-zram-warm.service
say "done. Next: put a model in /etc/edgelora/config.yaml (or keep the demo), then: systemctl start edgelora; journalctl -u edgelora -f"
