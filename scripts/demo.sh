#!/usr/bin/env bash
# warren's demo: a throwaway sshd on loopback plays the bastion, a socat echo
# server plays the database behind it, and `warren run` keeps a tunnel to it up
# while the demo kills its ssh child and stops and restarts the target.
#
# Needs root on Debian (installs openssh-server, socat and iproute2 if missing).
# Ends by itself after the scenario; DEMO_HOLD=1 (or a terminal) keeps warren
# running until Ctrl-C. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# Bold headings on a terminal only: a log or a pipe gets plain text.
if [ -t 1 ]; then
    say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '\n==> %s\n' "$*"; }
fi

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v socat >/dev/null || need+=(socat)
command -v ss >/dev/null || need+=(iproute2)
command -v setpriv >/dev/null || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "demo: run as root to install ${need[*]}" >&2; exit 1; }
    say "installing ${need[*]}"
    # Keep the package from starting a system sshd on port 22.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; policy=yes
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
fi
[ "$(id -u)" -eq 0 ] || { echo "demo: sshd needs root; run as root" >&2; exit 1; }

say "building warren"
swift build 2>&1 | tail -1
warren="$(swift build --show-bin-path)/warren"

demo=$(mktemp -d /tmp/warren-demo.XXXXXX)
pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$demo"
    echo "demo: cleaned up"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 10000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
bastion_port=$(free_port); target_port=$(free_port); local_port=$(free_port)

say "starting a bastion (sshd on 127.0.0.1:$bastion_port) and a target (echo on 127.0.0.1:$target_port)"
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N "" -C demo-bastion -f "$demo/host_key"
ssh-keygen -q -t ed25519 -N "" -C demo-client -f "$demo/id_ed25519"
cp "$demo/id_ed25519.pub" "$demo/authorized_keys"
cat > "$demo/sshd_config" <<CONF
ListenAddress 127.0.0.1:$bastion_port
HostKey $demo/host_key
AuthorizedKeysFile $demo/authorized_keys
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
CONF
setpriv --pdeathsig TERM -- /usr/sbin/sshd -D -e -f "$demo/sshd_config" 2> "$demo/sshd.log" &
pids+=($!)
start_target() {
    setpriv --pdeathsig TERM -- socat "TCP-LISTEN:$target_port,bind=127.0.0.1,reuseaddr,fork" EXEC:cat &
    target_pid=$!
    pids+=($target_pid)
}
start_target

cat > "$demo/warren.toml" <<CONF
state_dir = "$demo/state"

[tunnels.warehouse]
host = "127.0.0.1"
port = $bastion_port
user = "root"
identity_file = "$demo/id_ed25519"
host_key = "$(cut -d' ' -f1,2 "$demo/host_key.pub")"
local_forward = ["127.0.0.1:$local_port:127.0.0.1:$target_port"]
keepalive_interval = 5
keepalive_count = 2
probe_interval = 2
backoff_min = 0.5
CONF
say "the config ($demo/warren.toml)"
sed 's/^/    /' "$demo/warren.toml"

say "warren run (its log is indented)"
"$warren" run --config "$demo/warren.toml" 2> >(sed -u 's/^/    warren | /' >&2) &
warren_pid=$!
pids+=($warren_pid)

field() { "$warren" status --json --config "$demo/warren.toml" 2>/dev/null | grep -o "\"$1\" : [^,]*" | head -1 | sed 's/.*: //; s/"//g'; }
wait_state() {
    for _ in $(seq 1 300); do
        [ "$(field state)" = "$1" ] && return 0
        sleep 0.1
    done
    echo "demo: tunnel did not reach $1" >&2; "$warren" status --config "$demo/warren.toml" >&2; exit 1
}
echo_through() { printf 'hello through the tunnel\n' | timeout 3 socat - "TCP:127.0.0.1:$local_port" 2>/dev/null; }

wait_state up
say "tunnel up: 127.0.0.1:$local_port reaches the target behind the bastion"
echo "    sent 'hello through the tunnel', got back: $(echo_through)"

child=$(field pid)
say "kill -9 the ssh child (pid $child): the tunnel was up, so warren restarts it at once"
kill -9 "$child"
for _ in $(seq 1 100); do [ "$(field pid)" != "$child" ] && [ "$(field state)" = up ] && break; sleep 0.1; done
wait_state up
echo "    new ssh pid $(field pid), restarts $(field restarts); echo: $(echo_through)"

say "stop the target: the tunnel stays connected but is degraded (target_unreachable)"
kill "$target_pid"; wait "$target_pid" 2>/dev/null || true
wait_state degraded
"$warren" status --config "$demo/warren.toml" | sed 's/^/    /'

say "start the target again: warren's probe sees it and the tunnel is up by itself"
start_target
wait_state up
echo "    echo: $(echo_through)"
"$warren" status --config "$demo/warren.toml" | sed 's/^/    /'

if [ "${DEMO_HOLD:-}" = 1 ] || { [ -t 0 ] && [ -z "${CI:-}" ]; }; then
    say "warren keeps the tunnel up; try: $warren status --config $demo/warren.toml   (Ctrl-C to stop)"
    wait "$warren_pid" || true
else
    say "stopping warren (SIGTERM): it stops its ssh child and writes the final status"
    kill -TERM "$warren_pid"; wait "$warren_pid" || true
fi
