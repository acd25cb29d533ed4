#!/usr/bin/env bash
# Builds the end-to-end test's service images from Debian packages with mmdebstrap (RECIPES.md
# section 8), without a registry: PostgreSQL 15 and Redis 7 carrying the official images'
# entrypoints from ../shared/vendor/docker-library/ (copied unmodified), and PHP 8.2 with the
# Swoole build, plus the PHP sample (examples/php-sample/) added as a layer on top, so a change to
# the sample costs a second instead of a new root filesystem.
#
#   scripts/build-test-images.sh [postgres|redis|php ...]     (default: all three)
#
# Each image is a root filesystem tarball plus the `podman import --change` lines that replay its
# Dockerfile's ENV/USER/WORKDIR/ENTRYPOINT/CMD/STOPSIGNAL, cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/podmesh-test/images/ under a key hashed from every input (this
# script, the package list, the entrypoint files; for php the Swoole build and the sample), so CI's
# fresh clones on the same machine reuse them. Idempotent; a cached image costs nothing. Prints one
# line per image: `NAME<TAB>TARBALL<TAB>CHANGES-FILE` (the changes file has one --change value a line).
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
root=$PWD
vendor=$root/../shared/vendor/docker-library
cache=${XDG_CACHE_HOME:-$HOME/.cache}/podmesh-test/images
# The machine's own suites (security updates included), so the image's libssl is the one the
# host-built swoole.so was linked against.
mirrors=("deb http://deb.debian.org/debian bookworm bookworm-updates main" "deb http://deb.debian.org/debian-security bookworm-security main")
# The official images' default PATH (debian:bookworm-slim).
base_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

packages() {
  case $1 in
    # postgres:16 (bookworm) installs locales, libnss-wrapper (initdb as an arbitrary --user) and gosu; Debian has 15.
    postgres) echo postgresql-15,gosu,locales,libnss-wrapper,tzdata ;;
    redis) echo redis-server,gosu,tzdata ;;
    # swoole.so's own libraries (ldd) named explicitly; libc-bin gives getent for the DNS checks.
    php-base) echo php8.2-cli,php8.2-pgsql,php8.2-redis,ca-certificates,curl,libc-bin,libssl3,libstdc++6,libbrotli1,zlib1g ;;
    # The sample layer: no packages of its own (see add_sample).
    php) ;;
  esac
}

# Files whose content goes into an image, so into its cache key.
inputs() {
  case $1 in
    postgres) echo "$vendor/postgres-16-bookworm/docker-entrypoint.sh" "$vendor/postgres-16-bookworm/docker-ensure-initdb.sh" ;;
    redis) echo "$vendor/redis-7.2-debian/docker-entrypoint.sh" ;;
    php-base) readlink -f "$root/.cache/swoole.so" ;;
    php) find "$root/examples/php-sample" -type f | LC_ALL=C sort ;;
  esac
}

# The Dockerfiles' ENV/VOLUME/WORKDIR/ENTRYPOINT/CMD/STOPSIGNAL/EXPOSE lines, as `podman import --change` values.
changes() {
  case $1 in
    postgres) printf '%s\n' \
      'ENV=PG_MAJOR=15' \
      "ENV=PATH=$base_path:/usr/lib/postgresql/15/bin" \
      'ENV=LANG=en_US.utf8' \
      'ENV=PGDATA=/var/lib/postgresql/data' \
      'VOLUME=/var/lib/postgresql/data' \
      'ENTRYPOINT=["docker-entrypoint.sh"]' \
      'STOPSIGNAL=SIGINT' \
      'EXPOSE=5432' \
      'CMD=["postgres"]' ;;
    redis) printf '%s\n' \
      "ENV=PATH=$base_path" \
      'VOLUME=/data' \
      'WORKDIR=/data' \
      'ENTRYPOINT=["docker-entrypoint.sh"]' \
      'EXPOSE=6379' \
      'CMD=["redis-server"]' ;;
    # Hyperf's layout: the application in /opt/www, podmesh mounts config/autoload/*.php into it.
    php) printf '%s\n' \
      "ENV=PATH=$base_path" \
      'WORKDIR=/opt/www' \
      'CMD=["php","-a"]' ;;
  esac
}

# mmdebstrap --essential-hook: runs after the Essential packages, before the rest. The official
# images create their users with fixed IDs before installing the server; Debian's maintainer
# scripts then find the user and keep it.
essential_hook() {
  local name=$1 r=$2
  case $name in
    postgres)
      echo 'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/bash' >>"$r/etc/passwd"
      echo 'postgres:x:999:' >>"$r/etc/group"
      # The Dockerfile sets create_main_cluster = false: no cluster in /var/lib/postgresql/15/main.
      mkdir -p "$r/etc/postgresql-common/createcluster.d"
      echo 'create_main_cluster = false' >"$r/etc/postgresql-common/createcluster.d/podmesh-test.conf" ;;
    redis)
      echo 'redis:x:999:999::/home/redis:/bin/sh' >>"$r/etc/passwd"
      echo 'redis:x:999:' >>"$r/etc/group" ;;
  esac
}

# mmdebstrap --customize-hook: the Dockerfiles' RUN/COPY lines that matter, then a smoke check.
customize_hook() {
  local name=$1 r=$2
  case $name in
    postgres)
      local d=$vendor/postgres-16-bookworm
      install -m 0755 "$d/docker-entrypoint.sh" "$d/docker-ensure-initdb.sh" "$r/usr/local/bin/"
      ln -sT docker-ensure-initdb.sh "$r/usr/local/bin/docker-enforce-initdb.sh"
      install -d -o 999 -g 999 -m 1777 "$r/var/lib/postgresql"
      install -d -o 999 -g 999 -m 3777 "$r/var/run/postgresql"
      install -d -o 999 -g 999 -m 1777 "$r/var/lib/postgresql/data"
      mkdir -p "$r/docker-entrypoint-initdb.d"
      # "make the sample config easier to munge (and correct by default)": listen on every address.
      sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$r/usr/share/postgresql/15/postgresql.conf.sample"
      grep -qF "listen_addresses = '*'" "$r/usr/share/postgresql/15/postgresql.conf.sample"
      echo 'en_US.UTF-8 UTF-8' >>"$r/etc/locale.gen"
      chroot "$r" locale-gen >/dev/null
      chroot "$r" locale -a | grep -q 'en_US.utf8'
      chroot "$r" gosu postgres /usr/lib/postgresql/15/bin/postgres --version
      [ ! -e "$r/var/lib/postgresql/15/main" ] ;;
    redis)
      install -m 0755 "$vendor/redis-7.2-debian/docker-entrypoint.sh" "$r/usr/local/bin/"
      install -d -o 999 -g 999 "$r/data"
      chroot "$r" redis-server --version ;;
    php-base)
      local ext
      ext=$(chroot "$r" php -r 'echo ini_get("extension_dir");')
      install -m 0644 "$(readlink -f "$root/.cache/swoole.so")" "$r$ext/swoole.so"
      echo 'extension=swoole.so' >"$r/etc/php/8.2/mods-available/swoole.ini"
      ln -s /etc/php/8.2/mods-available/swoole.ini "$r/etc/php/8.2/cli/conf.d/25-swoole.ini"
      chroot "$r" php -r 'echo "swoole ", swoole_version(), ", redis ", phpversion("redis"), ", pdo_pgsql ", phpversion("pdo_pgsql"), "\n";' ;;
  esac
  # Caches and logs of the build itself are not part of an image.
  rm -rf "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/log/apt/*
}

case ${1:-} in
  --essential-hook) essential_hook "$2" "$3"; exit 0 ;;
  --customize-hook) customize_hook "$2" "$3"; exit 0 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "build-test-images: run as root (mmdebstrap in root mode)" >&2
  exit 1
fi
command -v mmdebstrap >/dev/null || { echo "build-test-images: apt-get install mmdebstrap (or run scripts/install-validators.sh)" >&2; exit 1; }
[ -d "$vendor" ] || { echo "build-test-images: $vendor not found (the official entrypoints, beside the project)" >&2; exit 1; }

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(postgres redis php)
for name in "${names[@]}"; do
  case $name in postgres | redis | php) ;; *) echo "build-test-images: unknown image '$name' (postgres, redis, php)" >&2; exit 2 ;; esac
  if [ "$name" = php ]; then
    [ -f "$root/.cache/swoole.so" ] || { echo "build-test-images: .cache/swoole.so missing: run scripts/install-validators.sh" >&2; exit 1; }
    [ -d "$root/examples/php-sample" ] || { echo "build-test-images: examples/php-sample/ missing" >&2; exit 1; }
  fi
done

mkdir -p "$cache"

# The cache key of an image: this script, its packages, the mirrors and the content (and place
# relative to the clone, so every clone of the same content shares it) of every input file.
key_of() {
  {
    sha256sum <"$self"
    packages "$1"
    printf '%s\n' "${mirrors[@]}" "${2:-}"
    for f in $(inputs "$1"); do printf '%s ' "${f#"$root/"}"; sha256sum <"$f"; done
  } | sha256sum | cut -c1-16
}

# Runs "$@" (which writes $part) unless $tar exists, under a lock per image name: one builder at a
# time across clones; the second waits and then finds the tarball.
cached() {
  local name=$1 tar=$2 part=$3
  shift 3
  (
    flock 9
    if [ ! -f "$tar" ]; then
      started=$(date +%s)
      "$@" || { rm -f "$part"; exit 1; }
      mv "$part" "$tar"
      echo "build-test-images: built $name in $(( $(date +%s) - started )) s ($(du -m "$tar" | cut -f1) MB)" >&2
    fi
  ) 9>"$cache/$name.lock"
  touch "$tar"
  # Builds of other keys unused for a week (older inputs) are dropped.
  find "$cache" -maxdepth 1 -name "$name-????????????????.*" ! -name "$(basename "${tar%.tar}").*" -mtime +7 -delete
}

debootstrap() {
  local name=$1 part=$2 log=${2%.part.tar}.log
  if ! mmdebstrap --variant=essential --include="$(packages "$name")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --essential-hook="bash '$self' --essential-hook $name \"\$1\"" \
    --customize-hook="bash '$self' --customize-hook $name \"\$1\"" \
    bookworm "$part" "${mirrors[@]}" >"$log" 2>&1; then
    echo "build-test-images: building $name failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
}

# The PHP sample as a layer: the base tarball with /opt/www appended (Hyperf's layout: podmesh
# mounts config/autoload/*.php into it; the generated pid_file is in runtime/). The base has no
# /opt/www, so no path appears twice (podman import refuses duplicates).
add_sample() {
  local base=$1 part=$2 stage
  stage=$(mktemp -d)
  mkdir -p "$stage/opt/www/config/autoload" "$stage/opt/www/runtime"
  cp -a "$root/examples/php-sample/." "$stage/opt/www/"
  cp "$base" "$part"
  tar --append -f "$part" --owner=0 --group=0 --numeric-owner --sort=name -C "$stage" ./opt/www
  rm -rf "$stage"
}

build() {
  local name=$1 key tar
  if [ "$name" = php ]; then
    local base_key base
    base_key=$(key_of php-base)
    base=$cache/php-base-$base_key.tar
    # mmdebstrap writes a tarball only when the name ends in .tar (otherwise a directory).
    cached php-base "$base" "$cache/php-base-$base_key.part.tar" debootstrap php-base "$cache/php-base-$base_key.part.tar"
    key=$(key_of php "$base_key")
    tar=$cache/php-$key.tar
    cached php "$tar" "$cache/php-$key.part.tar" add_sample "$base" "$cache/php-$key.part.tar"
  else
    key=$(key_of "$name")
    tar=$cache/$name-$key.tar
    cached "$name" "$tar" "$cache/$name-$key.part.tar" debootstrap "$name" "$cache/$name-$key.part.tar"
  fi
  changes "$name" >"${tar%.tar}.changes.$$" && mv "${tar%.tar}.changes.$$" "${tar%.tar}.changes"
  printf '%s\t%s\t%s\n' "$name" "$tar" "${tar%.tar}.changes"
}

# The builds are mostly downloads and dpkg: run them side by side.
pids=()
outs=()
for name in "${names[@]}"; do
  o=$(mktemp)
  outs+=("$o")
  build "$name" >"$o" &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=1
  cat "${outs[$i]}"
  rm -f "${outs[$i]}"
done
exit $status
