#!/usr/bin/env bash
# Re-record the fixtures of the one-shot ssh that `warren check` runs when no
# supervisor does (read by BastionProbeReader's tests).
#
#   sudo Tests/WarrenCoreTests/Fixtures/record-bastion.sh
#
# Needs root, /usr/sbin/sshd (openssh-server), ssh, python3. Everything runs on
# 127.0.0.1 with throwaway keys in a temp dir. One sshd serves as the bastion
# and, for ProxyJump, as the hop too. For each situation it writes
#   bastion/<situation>.txt   ssh's complete stderr, trailing CR of each line removed
#   bastion/<situation>.exit  ssh's exit status (one line)
# Every process it starts is tracked by PID and ended by the EXIT trap.
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "record-bastion.sh: run as root (sshd needs it)" >&2; exit 1; }

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/bastion"
mkdir -p "$OUT"
unset SSH_AUTH_SOCK SSH_AGENT_PID
T=$(mktemp -d /tmp/warren-recb.XXXXXX)
STARTED=()

cleanup() {
    local p
    set +e
    for p in "${STARTED[@]}"; do
        kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null
    done
    sleep 0.3
    for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -C warren-rec-host -f "$T/host_key"
ssh-keygen -q -t ed25519 -N '' -C warren-rec-client -f "$T/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C warren-rec-stranger -f "$T/stranger_key"
cp "$T/id_ed25519.pub" "$T/authorized_keys"
HOSTKEY_PUB=$(cut -d' ' -f1,2 "$T/host_key.pub")

SSHD_PORT=$(free_port)
cat > "$T/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $T/host_key
UsePAM no
PidFile none
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $T/authorized_keys
EOF
/usr/sbin/sshd -D -e -f "$T/sshd_config" 2> "$T/sshd.log" &
STARTED+=($!)

# An echo target, and a port where nothing listens.
TARGET=$(free_port)
CLOSED=$(free_port)
python3 -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
print("listening", flush=True)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$TARGET" > "$T/target.log" &
STARTED+=($!)
for _ in $(seq 100); do
    grep -q "Server listening" "$T/sshd.log" && grep -q listening "$T/target.log" && break
    sleep 0.05
done

# The config warren generates, reduced to what matters here.
host_block() {  # host_block ALIAS PORT IDENTITY [JUMP_ALIAS CONFIG]
    cat <<EOF
Host $1
  HostName 127.0.0.1
  Port $2
  User root
  IdentityFile $3
  IdentitiesOnly yes
  BatchMode yes
  HostKeyAlias $1
  StrictHostKeyChecking yes
  UserKnownHostsFile $T/known_hosts
  GlobalKnownHostsFile /dev/null
  ConnectTimeout 3
  ExitOnForwardFailure yes
  LocalForward 127.0.0.1:$(free_port) 127.0.0.1:$TARGET
EOF
    # The jump as warren generates it: what ProxyJump would run, with the
    # hop logging to $WARREN_SSH_LOG (here unset: stderr, with the rest).
    [[ -n "${4:-}" ]] && echo "  ProxyCommand ssh -v -E \"\${WARREN_SSH_LOG:-/dev/stderr}\" -F '$5' -W '[%h]:%p' $4"
    true
}
{
    echo "warren-demo $HOSTKEY_PUB"
    echo "warren-demo-jump1 $HOSTKEY_PUB"
    echo "warren-closed $HOSTKEY_PUB"
} > "$T/known_hosts"
{
    host_block warren-demo "$SSHD_PORT" "$T/id_ed25519"
    host_block warren-demo-jump1 "$SSHD_PORT" "$T/id_ed25519"
} > "$T/direct.cfg"
{
    host_block warren-demo-jump1 "$SSHD_PORT" "$T/id_ed25519"
    host_block warren-demo "$SSHD_PORT" "$T/id_ed25519" warren-demo-jump1 "$T/jump.cfg"
} > "$T/jump.cfg"
{
    host_block warren-demo-jump1 "$SSHD_PORT" "$T/id_ed25519"
    host_block warren-demo "$CLOSED" "$T/id_ed25519" warren-demo-jump1 "$T/jump-closed.cfg"
} > "$T/jump-closed.cfg"
host_block warren-demo "$SSHD_PORT" "$T/stranger_key" > "$T/stranger.cfg"

save() {        # save SITUATION RAW STATUS
    tr -d '\r' < "$2" > "$OUT/$1.txt"
    echo "$3" > "$OUT/$1.exit"
    echo "recorded $1 (exit $3, $(wc -l < "$OUT/$1.txt") lines)"
}

record_w() {    # record_w SITUATION CONFIG TARGET_PORT: ssh -vv -W, stdin /dev/null, exits by itself
    # stderr through a pipe, as warren reads it: a jump hop opens the log
    # path again, and in a regular file the outer ssh would write over it.
    { local rc=0; timeout 20 ssh -vv -F "$2" -W "127.0.0.1:$3" warren-demo < /dev/null 2>&1 > /dev/null || rc=$?; echo "$rc" > "$T/$1.rc"; } | cat > "$T/$1.raw"
    save "$1" "$T/$1.raw" "$(cat "$T/$1.rc")"
}

record_w w_reachable "$T/direct.cfg" "$TARGET"
record_w w_target_refused "$T/direct.cfg" "$CLOSED"
record_w w_auth_failed "$T/stranger.cfg" "$TARGET"
record_w w_proxyjump_reachable "$T/jump.cfg" "$TARGET"
record_w w_proxyjump_target_refused "$T/jump.cfg" "$CLOSED"
record_w w_proxyjump_hop_refused "$T/jump-closed.cfg" "$TARGET"

# The session form, for tunnels with no TCP target: it stays up; stop it
# once it says it entered the session, as warren does.
rc=0
ssh -v -F "$T/direct.cfg" -o SessionType=none -o ClearAllForwardings=yes warren-demo < /dev/null 2> "$T/session_ok.raw" &
SSH=$!
STARTED+=("$SSH")
for _ in $(seq 100); do
    grep -q "Entering interactive session" "$T/session_ok.raw" && break
    sleep 0.05
done
kill -TERM "$SSH"
wait "$SSH" || rc=$?
save session_ok "$T/session_ok.raw" "$rc"
