#!/usr/bin/env bash
# Builds what `make test-compat` needs, once: OpenSSH 10.5p1 from the vendored
# tarball (shared/vendor beside the repo) into a cache outside .build/, keyed
# by the tarball's sha256, and makes sure Dropbear and the sshd privsep user
# exist. Prints the install directory on its last line of stdout.
#
#   WARREN_COMPAT_CACHE   cache root (default /var/cache/warren-compat)
#   WARREN_COMPAT_TARBALL the tarball (default ../shared/vendor/openssh-10.5p1.tar.gz)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tarball=${WARREN_COMPAT_TARBALL:-$(dirname "$repo")/shared/vendor/openssh-10.5p1.tar.gz}
cache=${WARREN_COMPAT_CACHE:-/var/cache/warren-compat}
say() { echo "compat-build: $*" >&2; }

if [ ! -f "$tarball" ]; then
    say "no OpenSSH tarball at $tarball (shared/vendor must sit beside the repo)"
    exit 1
fi
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
dir="$cache/openssh-10.5p1-${sum:0:16}"
# "complete" is written last, after install-nokeys succeeded: a build that was
# interrupted leaves no marker and is built again from scratch.
complete() {
    [ -f "$dir/complete" ] && [ "$(cat "$dir/complete")" = "$sum" ] &&
        [ -x "$dir/bin/ssh" ] && [ -x "$dir/sbin/sshd" ] && [ -x "$dir/libexec/sshd-session" ]
}

# Tools: gcc, make, the OpenSSL and zlib headers for the build; Dropbear for
# its server and dropbearkey. A fresh CI machine lacks some of them.
missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || missing+=(make)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
[ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
{ [ -x /usr/sbin/dropbear ] && command -v dropbearkey >/dev/null 2>&1; } || missing+=(dropbear-bin)
if complete; then
    # The build is cached: only Dropbear is still needed.
    filtered=()
    for p in "${missing[@]}"; do [ "$p" = dropbear-bin ] && filtered+=("$p"); done
    missing=("${filtered[@]}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "need root to install: ${missing[*]}"
        exit 1
    fi
    # Installing dropbear-bin must not start anything: policy-rc.d exit 101
    # tells the package scripts not to start services (as .ci/run does).
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=yes
    fi
    say "installing ${missing[*]}"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

# sshd refuses to start without its privsep user; Debian's openssh-server
# creates it, a machine without that package may not have it.
if ! getent passwd sshd >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        say "need root to create the sshd privsep user"
        exit 1
    fi
    say "creating the sshd privsep user"
    useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin sshd
fi

if complete; then
    say "OpenSSH 10.5p1 cached in $dir"
    echo "$dir"
    exit 0
fi

mkdir -p "$cache"
# One build at a time per cache: a second caller waits for the first.
exec 9>"$cache/.lock"
flock 9
if complete; then
    echo "$dir"
    exit 0
fi
rm -rf "$dir"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "building OpenSSH 10.5p1 into $dir (about 4 minutes on 2 cores; log $cache/build.log)"
start=$SECONDS
(
    tar -xzf "$tarball" -C "$work"
    cd "$work"/openssh-*
    ./configure --prefix="$dir" --sysconfdir="$dir/etc" --with-privsep-path="$dir/empty" \
        --with-privsep-user=sshd --without-pam
    make -j2
    make install-nokeys
) >"$cache/build.log" 2>&1 || {
    say "build failed; last lines of $cache/build.log:"
    tail -n 30 "$cache/build.log" >&2
    exit 1
}
echo "$sum" >"$dir/complete"
complete || { say "build finished but $dir is incomplete"; exit 1; }
say "built in $((SECONDS - start)) s"
echo "$dir"
