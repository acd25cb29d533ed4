#!/usr/bin/env bash
# Podman 5.4 from Debian 13 (trixie) as a root filesystem, for running what Quadlet 5.4 generates
# (RECIPES.md section 9): bookworm's Podman 4.3 lacks flags Quadlet emits (`network create
# --ignore`, `--interface-name`, `run --sdnotify=healthy`). Built once with mmdebstrap into
# ${XDG_CACHE_HOME:-$HOME/.cache}/podmesh-test/podman54-<hash of this script>/rootfs, so CI's fresh
# clones on the same machine reuse it; prints that folder. Safe to run concurrently (flock).
# The folder is only ever used read-only by the tests: each run bind-mounts its own storage and a
# tmpfs on /run and /tmp over it in a private mount namespace (test/helpers/podman54.ts).
set -euo pipefail
# uidmap (newuidmap/newgidmap, setuid root) and passt (pasta): rootless Podman 5's user namespace
# and network (test/e2e-gateway.test.ts runs one host rootless).
PACKAGES=podman,netavark,aardvark-dns,runc,iproute2,ca-certificates,nftables,iptables,curl,mount,uidmap,passt
# This machine's Podman settings (RECIPES.md section 2: no systemd, hybrid cgroups, no
# CAP_SYS_RESOURCE). A property of the test machine, never of generated output.
CONTAINERS_CONF='[containers]
cgroupns = "private"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
'
if [ "$(id -u)" != 0 ]; then echo "podman54-rootfs: needs root (mmdebstrap in root mode)" >&2; exit 1; fi
command -v mmdebstrap >/dev/null || { echo "podman54-rootfs: apt-get install mmdebstrap" >&2; exit 1; }
cache=${XDG_CACHE_HOME:-$HOME/.cache}/podmesh-test
key=$(sha256sum < "$0" | cut -c1-16)
dir=$cache/podman54-$key
mkdir -p "$cache"
exec 9>"$cache/podman54-$key.lock"
flock -w 600 9
if [ ! -x "$dir/rootfs/usr/bin/podman" ]; then
  work=$(mktemp -d "$cache/podman54-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mmdebstrap --quiet --variant=essential --include="$PACKAGES" trixie "$work/rootfs" http://deb.debian.org/debian >&2
  # Mount points the tests bind over: the run's storage, a rootful host's /etc/podmesh and its
  # network configs (rootful netavark's /etc/containers/networks, which Podman only makes on first use).
  mkdir -p "$work/rootfs/etc/containers/networks" "$work/rootfs/var/lib/containers" "$work/rootfs/etc/podmesh"
  printf '%s' "$CONTAINERS_CONF" > "$work/rootfs/etc/containers/containers.conf"
  # The unprivileged user of a rootless simulated host (test/helpers/podman54.ts, ROOTLESS_USER);
  # its home is an empty mount point: each run binds its own folder there (its Podman storage, its
  # ~/.config/containers/systemd).
  chroot "$work/rootfs" groupadd --gid 1000 podmesh
  chroot "$work/rootfs" useradd --uid 1000 --gid 1000 --no-create-home --home-dir /home/podmesh --shell /bin/sh podmesh
  mkdir -p "$work/rootfs/home/podmesh"
  # Subordinate ids (written whole: useradd adds a range of its own choosing): for rootful
  # `--userns=auto` (podmesh's default on rootful hosts) Podman takes each container's range from
  # the user "containers" (podman-run(1), --userns=auto); the rootless user gets 65536 ids, as
  # Debian's useradd gives a new user, for newuidmap/newgidmap.
  printf 'containers:2147483647:2147483648\npodmesh:100000:65536\n' > "$work/rootfs/etc/subuid"
  cp "$work/rootfs/etc/subuid" "$work/rootfs/etc/subgid"
  rm -rf "$dir"
  mv "$work" "$dir"
  trap - EXIT
fi
echo "$dir/rootfs"
