#!/usr/bin/env bash
# Re-record the stderr fixtures of the real OpenSSH client used by the
# StderrClassifier tests.
#
#   sudo Tests/WarrenCoreTests/Fixtures/record-stderr.sh [SITUATION...]
#   sudo SSH=/var/cache/warren-compat/openssh-10.5p1-*/bin/ssh Tests/WarrenCoreTests/Fixtures/record-stderr.sh
#
# SSH is the client (default: ssh on PATH, Debian's 9.2). Its fixtures go to
# stderr/ for OpenSSH 9.2 and to stderr-X.Y/ for any other OpenSSH X.Y (OUT
# overrides), so each client's lines are recorded against the same servers.
#
# Needs root, /usr/sbin/sshd (openssh-server), ssh, nc, python3, unshare, and
# for the *_dropbear situations dropbear and dropbearkey (dropbear-bin).
# Everything runs on 127.0.0.1 with throwaway keys in a temp dir. For each
# situation it runs `ssh -v -F <config> -N warren-demo` (the config resembles
# the one warren generates), and writes
#   stderr/<situation>.txt   the complete stderr, trailing CR of each line removed
#   stderr/<situation>.exit  ssh's exit status (one line)
# Every process it starts is tracked by PID and ended by the EXIT trap.
set -euo pipefail

# PID 1 on these machines does not reap orphans. ssh's ProxyJump child and
# sshd's per-connection processes can be orphaned, so make this shell a child
# subreaper (PR_SET_CHILD_SUBREAPER = 36; it survives exec) and it reaps them.
if [[ -z "${WARREN_RECORD_SUBREAPER:-}" ]]; then
    export WARREN_RECORD_SUBREAPER=1
    exec python3 -c '
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
os.execvp("bash", ["bash"] + sys.argv[1:])
' "$0" "$@"
fi

[[ $(id -u) -eq 0 ]] || { echo "record-stderr.sh: run as root (sshd needs it)" >&2; exit 1; }

HERE=$(cd "$(dirname "$0")" && pwd)
SSH=$(command -v "${SSH:-ssh}") || { echo "record-stderr.sh: no ssh client ${SSH:-ssh}" >&2; exit 1; }
SSH_VERSION=$("$SSH" -V 2>&1 | sed -nE 's/^OpenSSH_([0-9]+\.[0-9]+).*/\1/p')
[[ -n "$SSH_VERSION" ]] || { echo "record-stderr.sh: $SSH -V does not name an OpenSSH version" >&2; exit 1; }
if [[ "$SSH_VERSION" == 9.2 ]]; then OUT=${OUT:-$HERE/stderr}; else OUT=${OUT:-$HERE/stderr-$SSH_VERSION}; fi
echo "record-stderr.sh: recording $("$SSH" -V 2>&1) into $OUT" >&2
mkdir -p "$OUT"
unset SSH_AUTH_SOCK SSH_AGENT_PID

T=$(mktemp -d /tmp/warren-rec.XXXXXX)
STARTED=()          # PIDs of every process this script started

descendants() {     # all descendants of PID $1, deepest first
    local c
    for c in $(pgrep -P "$1" 2>/dev/null || true); do
        descendants "$c"
        echo "$c"
    done
}

alive() {           # running (not a zombie, not gone)
    local s
    s=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)
    [[ -n "$s" && "$s" != Z ]]
}

gone() { ! alive "$1"; }

stop_pid() {        # SIGCONT+SIGTERM a PID and its descendants, SIGKILL if needed, reap
    local p=$1 d i
    for d in $(descendants "$p") "$p"; do
        kill -CONT "$d" 2>/dev/null || true
        kill -TERM "$d" 2>/dev/null || true
    done
    for i in $(seq 50); do alive "$p" || break; sleep 0.05; done
    for d in $(descendants "$p") "$p"; do
        alive "$d" && kill -KILL "$d" 2>/dev/null || true
    done
    wait "$p" 2>/dev/null || true
}

cleanup() {
    local p
    set +e
    for p in "${STARTED[@]}"; do
        [[ -d /proc/$p ]] && stop_pid "$p"
    done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_until() {      # wait_until SECONDS COMMAND... : poll until COMMAND succeeds
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@"; do
        (( $(date +%s) < deadline )) || return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- keys
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -C warren-rec-host -f "$T/host_key"
ssh-keygen -q -t ed25519 -N '' -C warren-rec-other-host -f "$T/other_host_key"
ssh-keygen -q -t ed25519 -N '' -C warren-rec-client -f "$T/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C warren-rec-stranger -f "$T/stranger_key"
chmod 600 "$T"/host_key "$T"/other_host_key "$T"/id_ed25519 "$T"/stranger_key
cp "$T/id_ed25519.pub" "$T/authorized_keys"
HOSTKEY_PUB=$(cut -d' ' -f1,2 "$T/host_key.pub")
OTHER_HOSTKEY_PUB=$(cut -d' ' -f1,2 "$T/other_host_key.pub")

# ---------------------------------------------------------------- sshd
SSHD_PID= SSHD_PORT=
start_sshd() {      # start_sshd NAME [extra sshd_config lines...]
    local name=$1; shift
    SSHD_PORT=$(free_port)
    {
        echo "ListenAddress 127.0.0.1"
        echo "Port $SSHD_PORT"
        echo "HostKey $T/host_key"
        echo "UsePAM no"
        echo "PidFile none"
        echo "StrictModes no"
        echo "PermitRootLogin prohibit-password"
        echo "PasswordAuthentication no"
        echo "KbdInteractiveAuthentication no"
        echo "AuthorizedKeysFile $T/authorized_keys"
        local l; for l in "$@"; do echo "$l"; done
    } > "$T/sshd_config.$name"
    /usr/sbin/sshd -t -f "$T/sshd_config.$name"
    /usr/sbin/sshd -D -e -f "$T/sshd_config.$name" 2> "$T/sshd.$name.log" &
    SSHD_PID=$!
    STARTED+=("$SSHD_PID")
    wait_until 5 grep -q "Server listening on 127.0.0.1 port $SSHD_PORT" "$T/sshd.$name.log" \
        || { cat "$T/sshd.$name.log" >&2; exit 1; }
}
stop_sshd() { stop_pid "$SSHD_PID"; }

# Dropbear as the bastion. It reads the login user's ~/.ssh/authorized_keys, so
# it runs in a private mount namespace with $T/dbhome bound over that home:
# the machine's own ~/.ssh is never touched, and the mount ends with dropbear.
DROPBEAR_HOSTKEY_PUB=
start_dropbear() {
    SSHD_PORT=$(free_port)
    if [[ ! -f "$T/dropbear_host_key" ]]; then
        dropbearkey -t ed25519 -f "$T/dropbear_host_key" > /dev/null 2>&1
        mkdir -p "$T/dbhome/.ssh"; chmod 700 "$T/dbhome" "$T/dbhome/.ssh"
        cp "$T/authorized_keys" "$T/dbhome/.ssh/authorized_keys"; chmod 600 "$T/dbhome/.ssh/authorized_keys"
    fi
    DROPBEAR_HOSTKEY_PUB=$(dropbearkey -y -f "$T/dropbear_host_key" | grep '^ssh-' | cut -d' ' -f1,2)
    unshare --mount --propagation private sh -c 'mount --bind "$0" "$1" && shift && exec "$@"' \
        "$T/dbhome" "$(getent passwd "$(id -un)" | cut -d: -f6)" \
        dropbear -F -E -s -p "127.0.0.1:$SSHD_PORT" -r "$T/dropbear_host_key" -P "$T/dropbear.pid" 2> "$T/dropbear.log" &
    SSHD_PID=$!
    STARTED+=("$SSHD_PID")
    wait_until 5 bash -c "grep -qs 'Not backgrounding' '$T/dropbear.log' && ss -Hltn 'sport = :$SSHD_PORT' | grep -q ." \
        || { cat "$T/dropbear.log" >&2; exit 1; }
    echo "warren-demo $DROPBEAR_HOSTKEY_PUB" > "$T/known_hosts"
}

# A listener that accepts TCP connections (kernel backlog) and never says a word.
SILENT_PID=
start_silent_listener() {   # start_silent_listener PORT
    python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
print("listening", flush=True)
time.sleep(600)
' "$1" > "$T/silent.$1.log" &
    SILENT_PID=$!
    STARTED+=("$SILENT_PID")
    wait_until 5 grep -q listening "$T/silent.$1.log"
}

# ---------------------------------------------------------------- client
# write_client_config FILE [KEY=VALUE...]  (defaults below; empty value drops the line)
write_client_config() {
    local file=$1; shift
    local -A o=(
        [HostName]=127.0.0.1 [Port]=$SSHD_PORT [User]=root
        [IdentityFile]=$T/id_ed25519 [IdentitiesOnly]=yes [BatchMode]=yes
        [StrictHostKeyChecking]=yes [UserKnownHostsFile]=$T/known_hosts
        [GlobalKnownHostsFile]=/dev/null [HostKeyAlias]=warren-demo
        [ExitOnForwardFailure]=yes [ServerAliveInterval]=2 [ServerAliveCountMax]=2
        [ConnectTimeout]=3 [LocalForward]="127.0.0.1:$(free_port) 127.0.0.1:$(free_port)"
        [RemoteForward]= [ProxyJump]= [Extra]=
    )
    local kv; for kv in "$@"; do o[${kv%%=*}]=${kv#*=}; done
    {
        echo "Host warren-demo"
        local k
        for k in HostName Port User IdentityFile IdentitiesOnly BatchMode StrictHostKeyChecking \
                 UserKnownHostsFile GlobalKnownHostsFile HostKeyAlias ExitOnForwardFailure \
                 ServerAliveInterval ServerAliveCountMax ConnectTimeout ProxyJump \
                 LocalForward RemoteForward; do
            [[ -n "${o[$k]}" ]] && echo "  $k ${o[$k]}"
        done
        [[ -n "${o[Extra]}" ]] && printf '  %s\n' "${o[Extra]}"
        true
    } > "$file"
}

pin_host_key() { echo "warren-demo $HOSTKEY_PUB" > "$T/known_hosts"; }

SSH_PID=
RAW=
start_ssh() {       # start_ssh SITUATION CONFIG [PREFIX COMMAND...]
    local name=$1 cfg=$2; shift 2
    RAW="$T/$name.raw"
    "$@" "$SSH" -v -F "$cfg" -N warren-demo 2> "$RAW" < /dev/null &
    SSH_PID=$!
    STARTED+=("$SSH_PID")
}

# finish_ssh SITUATION: wait (at most 30 s) for ssh to exit by itself, then save.
finish_ssh() {
    local name=$1 rc=0
    if ! wait_until 30 gone "$SSH_PID"; then
        echo "record-stderr.sh: $name: ssh did not exit within 30 s; terminating it" >&2
        kill -TERM "$SSH_PID" 2>/dev/null || true
    fi
    wait "$SSH_PID" || rc=$?
    save "$name" "$rc"
}

# terminate_ssh SITUATION: SIGTERM ssh (it is still running), then save.
terminate_ssh() {
    local name=$1 rc=0
    alive "$SSH_PID" || echo "record-stderr.sh: $name: ssh had already exited" >&2
    kill -TERM "$SSH_PID" 2>/dev/null || true
    wait "$SSH_PID" || rc=$?
    save "$name" "$rc"
}

save() {
    sed 's/\r$//' "$RAW" > "$OUT/$1.txt"
    echo "$2" > "$OUT/$1.exit"
    printf '%-24s exit %-3s %3d lines\n' "$1" "$2" "$(wc -l < "$OUT/$1.txt")"
}

wait_stderr() {     # wait_stderr SECONDS PATTERN  (fixed string, in ssh's stderr)
    wait_until "$1" grep -qF -- "$2" "$RAW" || {
        echo "record-stderr.sh: did not see '$2' within $1 s" >&2; return 1; }
}

# ---------------------------------------------------------------- situations
# record_session SITUATION START: START brings up the bastion (and pins its
# key); ssh enters its session there and is then ended by SIGTERM.
record_session() {
    local name=$1 start=$2
    $start
    write_client_config "$T/c.$name"
    start_ssh "$name" "$T/c.$name"
    wait_stderr 10 "Entering interactive session."
    sleep 0.3
    terminate_ssh "$name"; stop_sshd
}

start_sshd_pinned() { start_sshd s; pin_host_key; }

rec_success() { record_session success start_sshd_pinned; }

rec_success_remote_forward() {
    start_sshd s; pin_host_key
    write_client_config "$T/c.rf" LocalForward= \
        RemoteForward="127.0.0.1:$(free_port) 127.0.0.1:$(free_port)"
    start_ssh success_remote_forward "$T/c.rf"
    wait_stderr 10 "all expected forwarding replies received"
    sleep 0.3
    terminate_ssh success_remote_forward; stop_sshd
}

rec_success_proxyjump() {
    start_sshd s
    { echo "warren-demo $HOSTKEY_PUB"; echo "warren-demo-jump $HOSTKEY_PUB"; } > "$T/known_hosts"
    write_client_config "$T/c.pj" ProxyJump=warren-demo-jump
    # The jump hop: the same sshd, pinned under its own alias.
    sed -e 's/^Host warren-demo$/Host warren-demo-jump/' -e '/ProxyJump/d' -e '/LocalForward/d' \
        -e 's/HostKeyAlias warren-demo$/HostKeyAlias warren-demo-jump/' "$T/c.pj" > "$T/c.pj.hop"
    { echo; cat "$T/c.pj.hop"; } >> "$T/c.pj"
    start_ssh success_proxyjump "$T/c.pj"
    wait_until 10 bash -c "[[ \$(grep -c 'Entering interactive session.' '$RAW') -ge 2 ]]"
    sleep 0.3
    terminate_ssh success_proxyjump; stop_sshd
}

# The jump hop's port is closed: the hop fails, then the outer ssh reports the
# dead proxy.
rec_proxyjump_hop_refused() {
    start_sshd s
    { echo "warren-demo $HOSTKEY_PUB"; echo "warren-demo-jump $HOSTKEY_PUB"; } > "$T/known_hosts"
    write_client_config "$T/c.pjr" ProxyJump=warren-demo-jump
    local closed; closed=$(free_port)
    sed -e 's/^Host warren-demo$/Host warren-demo-jump/' -e '/ProxyJump/d' -e '/LocalForward/d' \
        -e "s/^  Port .*/  Port $closed/" \
        -e 's/HostKeyAlias warren-demo$/HostKeyAlias warren-demo-jump/' "$T/c.pjr" > "$T/c.pjr.hop"
    { echo; cat "$T/c.pjr.hop"; } >> "$T/c.pjr"
    start_ssh proxyjump_hop_refused "$T/c.pjr"
    finish_ssh proxyjump_hop_refused; stop_sshd
}

rec_auth_failed() {
    start_sshd s; pin_host_key
    write_client_config "$T/c.auth" IdentityFile="$T/stranger_key"
    start_ssh auth_failed "$T/c.auth"
    finish_ssh auth_failed; stop_sshd
}

rec_host_key_unknown() {
    start_sshd s; : > "$T/known_hosts"
    write_client_config "$T/c.hku"
    start_ssh host_key_unknown "$T/c.hku"
    finish_ssh host_key_unknown; stop_sshd
}

rec_host_key_changed() {
    start_sshd s; echo "warren-demo $OTHER_HOSTKEY_PUB" > "$T/known_hosts"
    write_client_config "$T/c.hkc"
    start_ssh host_key_changed "$T/c.hkc"
    finish_ssh host_key_changed; stop_sshd
}

rec_accept_new_first_use() {
    start_sshd s; : > "$T/known_hosts"
    write_client_config "$T/c.an" StrictHostKeyChecking=accept-new
    start_ssh accept_new_first_use "$T/c.an"
    wait_stderr 10 "Entering interactive session."
    sleep 0.3
    terminate_ssh accept_new_first_use; stop_sshd
}

rec_connection_refused() {
    pin_host_key
    SSHD_PORT=$(free_port)     # nothing listens there
    write_client_config "$T/c.cr"
    start_ssh connection_refused "$T/c.cr"
    finish_ssh connection_refused
}

# Name resolution without any network traffic: in a private mount namespace,
# nsswitch.conf says `hosts: files`, so glibc answers from /etc/hosts alone.
rec_dns_failure() {
    pin_host_key; SSHD_PORT=22
    printf 'hosts: files\n' > "$T/nsswitch.files-only"
    write_client_config "$T/c.dns" HostName=nonexistent.invalid
    start_ssh dns_failure "$T/c.dns" unshare -m -- sh -c \
        'mount --bind "$0" /etc/nsswitch.conf && exec "$@"' "$T/nsswitch.files-only"
    finish_ssh dns_failure
}

# DNS configured but not answering: resolv.conf names 127.0.0.1, where nothing
# listens on port 53 (checked), so the query never leaves the machine.
rec_dns_unreachable() {
    if ss -Hlun 'sport = :53' | grep -q .; then
        echo "record-stderr.sh: dns_unreachable: something listens on UDP 53; skipped" >&2; return 0
    fi
    pin_host_key; SSHD_PORT=22
    printf 'hosts: files dns\n' > "$T/nsswitch.dns"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$T/resolv.loopback"
    write_client_config "$T/c.dnsu" HostName=nonexistent.invalid
    start_ssh dns_unreachable "$T/c.dnsu" unshare -m -- sh -c \
        'mount --bind "$0" /etc/nsswitch.conf && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' \
        "$T/nsswitch.dns" "$T/resolv.loopback"
    finish_ssh dns_unreachable
}

rec_connect_timeout() {
    pin_host_key
    SSHD_PORT=$(free_port)
    start_silent_listener "$SSHD_PORT"
    write_client_config "$T/c.ct"
    start_ssh connect_timeout "$T/c.ct"
    finish_ssh connect_timeout
    stop_pid "$SILENT_PID"
}

# A server that accepts the TCP connection and closes it at once, before the
# SSH banner (what sshd's MaxStartups, tcpwrappers or fail2ban look like).
rec_banner_closed() {
    pin_host_key
    SSHD_PORT=$(free_port)
    python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept(); c.close()
' "$SSHD_PORT" > "$T/closer.log" &
    local closer=$!
    STARTED+=("$closer")
    wait_until 5 grep -q listening "$T/closer.log"
    write_client_config "$T/c.bc"
    start_ssh banner_closed "$T/c.bc"
    finish_ssh banner_closed
    stop_pid "$closer"
}

rec_key_permissions() {
    start_sshd s; pin_host_key
    cp "$T/id_ed25519" "$T/open_key"; cp "$T/id_ed25519.pub" "$T/open_key.pub"
    chmod 644 "$T/open_key"
    write_client_config "$T/c.kp" IdentityFile="$T/open_key"
    start_ssh key_permissions "$T/c.kp"
    finish_ssh key_permissions; stop_sshd
}

# A key protected by a passphrase, in BatchMode (no passphrase_file): the
# server would accept the key, but ssh cannot decrypt it.
rec_key_passphrase() {
    start_sshd s; pin_host_key
    cp "$T/id_ed25519" "$T/locked_key"; cp "$T/id_ed25519.pub" "$T/locked_key.pub"
    ssh-keygen -q -p -P '' -N 'correct horse' -f "$T/locked_key"
    write_client_config "$T/c.kpp" IdentityFile="$T/locked_key"
    start_ssh key_passphrase "$T/c.kpp"
    finish_ssh key_passphrase; stop_sshd
}

rec_key_missing() {
    start_sshd s; pin_host_key
    write_client_config "$T/c.km" IdentityFile="$T/no_such_key"
    start_ssh key_missing "$T/c.km"
    finish_ssh key_missing; stop_sshd
}

rec_local_port_in_use() {
    start_sshd s; pin_host_key
    local lp; lp=$(free_port)
    start_silent_listener "$lp"
    write_client_config "$T/c.lp" LocalForward="127.0.0.1:$lp 127.0.0.1:$(free_port)"
    start_ssh local_port_in_use "$T/c.lp"
    finish_ssh local_port_in_use; stop_pid "$SILENT_PID"; stop_sshd
}

# Connect through the local forward once; ssh then reports the channel failure.
connect_through() {     # connect_through LOCALPORT
    nc -w 3 127.0.0.1 "$1" < /dev/null > /dev/null 2>&1 || true
}

rec_target_unreachable() {
    start_sshd s; pin_host_key
    local lp; lp=$(free_port)
    write_client_config "$T/c.tu" LocalForward="127.0.0.1:$lp 127.0.0.1:$(free_port)"
    start_ssh target_unreachable "$T/c.tu"
    wait_stderr 10 "Entering interactive session."
    connect_through "$lp"
    wait_stderr 10 "open failed"
    sleep 0.3
    terminate_ssh target_unreachable; stop_sshd
}

rec_forwarding_forbidden() {
    start_sshd ff "AllowTcpForwarding no"; pin_host_key
    local lp; lp=$(free_port)
    write_client_config "$T/c.ff" LocalForward="127.0.0.1:$lp 127.0.0.1:$(free_port)"
    start_ssh forwarding_forbidden "$T/c.ff"
    wait_stderr 10 "Entering interactive session."
    connect_through "$lp"
    wait_stderr 10 "open failed"
    sleep 0.3
    terminate_ssh forwarding_forbidden; stop_sshd
}

rec_remote_forward_failed() {
    start_sshd s; pin_host_key
    local rp; rp=$(free_port)
    start_silent_listener "$rp"        # the "server side" port, taken
    write_client_config "$T/c.rff" LocalForward= RemoteForward="127.0.0.1:$rp 127.0.0.1:$(free_port)"
    start_ssh remote_forward_failed "$T/c.rff"
    finish_ssh remote_forward_failed; stop_pid "$SILENT_PID"; stop_sshd
}

# The per-connection sshd processes are the descendants of the listening sshd.
session_pids() { descendants "$SSHD_PID"; }

rec_keepalive_timeout() {
    start_sshd ka; pin_host_key
    write_client_config "$T/c.ka"
    start_ssh keepalive_timeout "$T/c.ka"
    wait_stderr 10 "Entering interactive session."
    local p pids; pids=$(session_pids)
    [[ -n "$pids" ]] || { echo "record-stderr.sh: no per-connection sshd" >&2; return 1; }
    for p in $pids; do kill -STOP "$p"; done
    finish_ssh keepalive_timeout
    for p in $pids; do kill -CONT "$p" 2>/dev/null || true; done
    stop_sshd
}

# record_drop SITUATION START: ssh enters its session on the bastion START
# brings up, then every per-connection server process is killed.
record_drop() {
    local name=$1 start=$2
    $start
    write_client_config "$T/c.$name"
    start_ssh "$name" "$T/c.$name"
    wait_stderr 10 "Entering interactive session."
    sleep 0.3
    local p pids; pids=$(session_pids)
    [[ -n "$pids" ]] || { echo "record-stderr.sh: no per-connection server process" >&2; return 1; }
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    finish_ssh "$name"
    stop_sshd
}

rec_connection_lost() { record_drop connection_lost start_sshd_pinned; }

# Against Dropbear, which offers no post-quantum key exchange: ssh 10.1 and
# later add their `** WARNING: connection is not using a post-quantum key
# exchange algorithm.` lines here.
rec_success_dropbear() { record_session success_dropbear start_dropbear; }

rec_connection_lost_dropbear() { record_drop connection_lost_dropbear start_dropbear; }

rec_bad_config() {
    pin_host_key; SSHD_PORT=$(free_port)
    write_client_config "$T/c.bad" Extra="TunnelKeepalive yes"
    start_ssh bad_config "$T/c.bad"
    finish_ssh bad_config
}

ALL=(success success_remote_forward success_proxyjump proxyjump_hop_refused auth_failed host_key_unknown
     host_key_changed accept_new_first_use connection_refused dns_failure dns_unreachable
     connect_timeout banner_closed key_permissions key_passphrase key_missing local_port_in_use target_unreachable
     forwarding_forbidden remote_forward_failed keepalive_timeout connection_lost bad_config
     success_dropbear connection_lost_dropbear)

if (( $# )); then LIST=("$@"); else LIST=("${ALL[@]}"); fi
for s in "${LIST[@]}"; do
    declare -F "rec_$s" > /dev/null || { echo "record-stderr.sh: unknown situation $s" >&2; exit 2; }
    "rec_$s"
done
