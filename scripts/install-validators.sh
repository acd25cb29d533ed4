#!/usr/bin/env bash
# Installs the real tools that judge podmesh output (RECIPES.md): bookworm packages plus the
# trixie builds of quadlet, docker compose v2 and podman-compose, unpacked into .cache/trixie
# without touching the system's apt sources. Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# apt-get needs root: a root shell (often without sudo, as in containers) runs on; a user with sudo
# is asked for it once here.
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
  exec sudo -- "$0" "$@"
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-validators: run as root (apt-get install), or install by hand:" >&2
  echo "  apt-get install -y podman netavark aardvark-dns runc wireguard-tools wireguard-go iptables nftables openssl php-cli systemd iproute2 busybox-static curl chromium postgresql redis-server php-pgsql age haproxy" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in podman netavark aardvark-dns runc wireguard-tools wireguard-go openssl php-cli systemd iproute2 busybox-static curl chromium python3-yaml python3-dotenv iptables nftables uidmap php-dev libssl-dev mmdebstrap xz-utils postgresql redis-server php-pgsql age composer haproxy; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Newer validators from trixie, unpacked privately.
d=$root/.cache/trixie
stamp=$d/.unpacked-v1
if [ ! -f "$stamp" ]; then
  rm -rf "$d/x" "$d/debs"
  mkdir -p "$d/src" "$d/lists/partial" "$d/debs"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$d/src/trixie.sources"
  o=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$d/src" -o "Dir::State::Lists=$d/lists")
  apt-get "${o[@]}" update -qq
  # _apt cannot write into a folder under /root; download as root (apt warns and carries on).
  (cd "$d/debs" && apt-get "${o[@]}" download podman docker-compose podman-compose 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  for f in "$d"/debs/*.deb; do dpkg -x "$f" "$d/x"; done
  for b in usr/libexec/podman/quadlet usr/libexec/docker/cli-plugins/docker-compose usr/lib/python3/dist-packages/podman_compose.py; do
    [ -e "$d/x/$b" ] || { echo "install-validators: $b missing from the trixie packages" >&2; exit 1; }
  done
  touch "$stamp"
fi

# Podman on a machine without systemd and with hybrid cgroups (RECIPES.md section 2). This is a
# property of the test machine, never of generated output.
if [ ! -f /etc/containers/containers.conf ] || ! grep -q 'cgroup_manager = "cgroupfs"' /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<'CONF'
[containers]
cgroupns = "private"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
fi

# Stable entry points the tests look for.
bin=$root/.cache/bin
mkdir -p "$bin"
ln -sf "$d/x/usr/libexec/podman/quadlet" "$bin/quadlet"
ln -sf "$d/x/usr/libexec/docker/cli-plugins/docker-compose" "$bin/docker-compose"
cat > "$bin/podman-compose" <<SH
#!/bin/sh
PYTHONPATH=$d/x/usr/lib/python3/dist-packages exec python3 -c 'import sys; sys.argv[0]="podman-compose"; from podman_compose import main; main()' "\$@"
SH
chmod +x "$bin/podman-compose"

# Swoole, the runtime under Hyperf (RECIPES.md section 7), built from the vendored release beside
# the project into a cache outside the clone, keyed by the inputs' hashes, so CI's fresh clones on
# the same machine reuse it. .cache/swoole.so points at the build the tests load.
vendor=$root/../shared/vendor/swoole-src-6.0.2.tar.xz
cache=${XDG_CACHE_HOME:-$HOME/.cache}/podmesh-test
if [ -f "$vendor" ]; then
  key=$( { sha256sum < "$vendor"; php-config --version; php-config --extension-dir; dpkg-query -W -f='${Version}' libssl-dev; echo swoole-build-v1; } | sha256sum | cut -c1-16)
  so=$cache/swoole-6.0.2-$key/swoole.so
  if [ ! -f "$so" ]; then
    work=$(mktemp -d)
    tar -xJf "$vendor" -C "$work"
    (cd "$work/swoole-src-6.0.2" && phpize >/dev/null && ./configure --enable-openssl >/dev/null && make -j"$(nproc)" >/dev/null 2>&1) || { echo "install-validators: building Swoole failed (in $work)" >&2; exit 1; }
    mkdir -p "$(dirname "$so")"
    cp "$work/swoole-src-6.0.2/modules/swoole.so" "$so.tmp" && mv "$so.tmp" "$so"
    rm -rf "$work"
  fi
  ln -sfn "$so" "$root/.cache/swoole.so"
  echo "swoole $(php -d extension="$so" -r 'echo swoole_version();') in $so"
else
  echo "install-validators: $vendor not found: the Swoole tests will skip (and fail under CI=true)" >&2
fi

# The real PSR-7/PSR-11/PSR-15 interfaces, nyholm/psr7 and Guzzle for the generated Hyperf middleware
# and client factory (test/hyperf-middleware.test.ts), versions pinned in the fixture's composer.json,
# into .cache/hyperf-vendor (Packagist through Composer; seconds once Composer's cache holds them).
if [ ! -f "$root/.cache/hyperf-vendor/autoload.php" ] || [ "$root/test/fixtures/hyperf/composer/composer.json" -nt "$root/.cache/hyperf-vendor/autoload.php" ]; then
  COMPOSER_ALLOW_SUPERUSER=1 composer update --working-dir="$root/test/fixtures/hyperf/composer" --no-interaction --no-progress --quiet
fi

# The end-to-end test's service images (PostgreSQL, Redis, PHP + Swoole + the PHP sample; RECIPES.md
# section 8), built up front so the test only imports them: about two minutes on a new machine,
# under a second from the cache (keyed by the inputs' hashes, outside the clone).
if [ -d "$root/../shared/vendor/docker-library" ] && [ -f "$root/.cache/swoole.so" ]; then
  bash "$root/scripts/build-test-images.sh" >/dev/null
else
  echo "install-validators: ../shared/vendor/docker-library or the Swoole build missing: the end-to-end test will skip (and fail under CI=true)" >&2
fi

# Podman 5.4 from a Debian 13 root filesystem, for running what Quadlet generates (RECIPES.md
# section 9; test/e2e-quadlet*.test.ts): about a minute on a new machine, then cached outside the
# clone, keyed by the script's hash.
bash "$root/scripts/podman54-rootfs.sh" >/dev/null

echo "validators ready in $bin:"
"$bin/quadlet" -version 2>/dev/null || true
"$bin/docker-compose" version
"$bin/podman-compose" --version 2>/dev/null | head -2 || true
