#!/usr/bin/env bash
# Start (or stop) a two-node Ray cluster on this machine: a head and one worker node, both on 127.0.0.1.
#   bash clusters/local-two-nodes.sh start   # then: adaptune search --address 127.0.0.1:6390
#   bash clusters/local-two-nodes.sh stop    # note: `ray stop` stops every Ray process of this user on the host
# Token authentication stays on: ~/.ray/auth_token is generated once if missing (never printed) and made
# readable by its owner only; the head, the worker node and every client on this host read it from there with
# RAY_AUTH_MODE=token. (`ray start --head` alone turns token auth on only when that file already exists.)
set -euo pipefail
RAY="${RAY:-$(dirname "$0")/../.venv/bin/ray}"
PORT="${PORT:-6390}"
CPUS_PER_NODE="${CPUS_PER_NODE:-1}"
case "${1:-start}" in
  start)
    "$RAY" get-auth-token --generate >/dev/null
    if [ -f "$HOME/.ray/auth_token" ]; then chmod 600 "$HOME/.ray/auth_token"; fi
    RAY_AUTH_MODE=token "$RAY" start --head --port="$PORT" --node-ip-address=127.0.0.1 --num-cpus="$CPUS_PER_NODE" \
      --dashboard-host=127.0.0.1 --dashboard-port=8266 --disable-usage-stats
    RAY_AUTH_MODE=token "$RAY" start --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 \
      --num-cpus="$CPUS_PER_NODE" --disable-usage-stats
    echo "cluster up: adaptune search --address 127.0.0.1:$PORT"
    ;;
  stop)
    "$RAY" stop --force
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
