#!/usr/bin/env bash
# faice serve and faice submit: a one-node CC-Agency on loopback, which this script starts (with
# a throwaway state file and an admin user) and always stops.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
faice=$(realpath "${FAICE:-$here/../../.venv/bin/faice}")
cd "$here"
work=$(mktemp -d)
db=$work/faice.db
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$password" | "$faice" --db "$db" users add demo --admin --password-stdin
"$faice" --db "$db" serve --port 0 --jobs 2 2>"$work/serve.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
url=
for _ in $(seq 200); do
	url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/serve.log" | head -1 || true)
	[ -n "$url" ] && break
	kill -0 $server 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$url" ] || { echo "faice serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
echo "faice serve is listening on $url"
FAICE_AGENCY_USER=demo FAICE_AGENCY_PASSWORD=$password "$faice" submit red.yml --url "$url" --wait --non-interactive
echo "what the server recorded (the same state file, read by faice list):"
"$faice" --db "$db" list
echo "results on the server:"
cat "$work"/outputs/*/batch_1/out.txt
