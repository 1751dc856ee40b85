#!/usr/bin/env bash
# Run the ssh example against a loopback sshd that this script starts and always stops: key logins
# for you only, a throwaway host key, the "server's" files in a scratch copy of examples/ssh/remote.
# The host key faice remembers on first use goes to the scratch directory too (XDG_DATA_HOME);
# the experiment is recorded in your usual state file.
set -euo pipefail
cd "$(dirname "$0")/../.."
faice=${FAICE:-.venv/bin/faice}
sshd=${SSHD:-$(command -v sshd || echo /usr/sbin/sshd)}
[ -x "$sshd" ] || { echo "run-demo.sh: sshd is missing (Debian: apt-get install openssh-server)" >&2; exit 3; }
db=${FAICE_DB:-${XDG_DATA_HOME:-$HOME/.local/share}/faice/faice.db}
work=$(mktemp -d "${TMPDIR:-/tmp}/faice-ssh-demo.XXXXXX")
server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/user_key"
cp "$work/user_key.pub" "$work/authorized_keys"
cp -r examples/ssh/remote "$work/remote"
chmod 755 "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers $(id -un)
Subsystem sftp internal-sftp
PidFile none
CONFIG
[ "$(id -u)" != 0 ] || mkdir -p /run/sshd
"$sshd" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# mount: true needs sshfs, and as a user other than root 'user_allow_other' in /etc/fuse.conf
mount=()
if ! command -v sshfs >/dev/null || { [ "$(id -u)" != 0 ] && ! grep -qx user_allow_other /etc/fuse.conf 2>/dev/null; }; then
	echo "run-demo.sh: mounting is not possible here; the corpus is copied instead (--no-mount)"
	mount=(--no-mount)
fi
FAICE_VAR_ssh_port=$port FAICE_VAR_ssh_user=$(id -un) FAICE_VAR_ssh_key=$(cat "$work/user_key") FAICE_VAR_ssh_root=$work/remote \
	XDG_DATA_HOME=$work/data "$faice" --db "$db" exec examples/ssh/red.yml --non-interactive --outdir outputs/ssh "${mount[@]}"
echo "uploaded by red-connector-ssh to $work/remote/results/matches.txt:"
cat "$work/remote/results/matches.txt"
