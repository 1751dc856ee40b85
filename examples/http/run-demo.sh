#!/usr/bin/env bash
# Run the http example against a loopback server that this script starts and always stops.
set -euo pipefail
cd "$(dirname "$0")/../.."
faice=${FAICE:-.venv/bin/faice}
python=${PYTHON:-.venv/bin/python}
mkdir -p outputs/http-uploads
port_file=$(mktemp)
"$python" examples/http/server.py --root examples/http/www --uploads outputs/http-uploads --port-file "$port_file" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$port_file"' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")
"$faice" exec examples/http/red.yml --var "server=127.0.0.1:$port" --non-interactive --outdir outputs/http
echo "uploaded by red-connector-http:"
cat outputs/http-uploads/results/out.txt
