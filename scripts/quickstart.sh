#!/usr/bin/env bash
# `make run`: Tollgate on a laptop, without Kubernetes.
#
# Builds the binaries, starts two echo backends (echo-v1 on 127.0.0.1:3001,
# echo-v2 on 127.0.0.1:3002) and the controller with an in-process data plane
# serving examples/quickstart/ on 127.0.0.1:8080, waits until the data plane
# is ready, prints commands to try, and runs until Ctrl-C, which stops
# everything it started.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
logs="${CARGO_TARGET_DIR:-$root/target}/quickstart"
manifests="examples/quickstart"
dataplane_admin="127.0.0.1:9901"
controller_admin="127.0.0.1:9902"

# Each background job gets its own process group, so stopping a job's group
# also stops anything it started, and Ctrl-C reaches only this script.
set -m
pids=()

stop_all() {
  trap - INT TERM EXIT
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  echo
  echo "quickstart stopped"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cargo build --bins
mkdir -p "$logs"

start_echo() { # name port
  SERVICE_NAME="$1" NAMESPACE=default POD_NAME="$1-0" \
    "$bin/tollgate-echo" --bind "127.0.0.1:$2" >"$logs/$1.log" 2>&1 &
  pids+=("$!")
}
start_echo echo-v1 3001
start_echo echo-v2 3002

"$bin/tollgate-controller" \
  --manifests "$manifests" \
  --with-dataplane \
  --admin-address "$controller_admin" \
  --dataplane-admin-address "$dataplane_admin" \
  >"$logs/controller.log" 2>&1 &
controller=$!
pids+=("$controller")

echo "waiting for the data plane (http://$dataplane_admin/readyz) ..."
for _ in $(seq 1 600); do
  if curl -fsS -o /dev/null "http://$dataplane_admin/readyz" 2>/dev/null; then
    ready=1
    break
  fi
  if ! kill -0 "$controller" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [[ -z "${ready:-}" ]]; then
  echo "the data plane did not become ready; logs are in $logs/" >&2
  exit 1
fi

cat <<EOF

Tollgate is serving $manifests on http://127.0.0.1:8080 (logs in $logs/).
Try:

  # weighted split: about 90% echo-v1, 10% echo-v2
  for i in \$(seq 20); do curl -s http://127.0.0.1:8080/ | grep '"service"'; done | sort | uniq -c

  # header match: always echo-v2
  curl -s -H 'X-Version: v2' http://127.0.0.1:8080/

  # redirect: 301 to /new
  curl -si http://127.0.0.1:8080/old

  # rate limit: 3 per minute per client, then 429 with Retry-After
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:8080/limited; done

  # status of every object, as the controller would write it to Kubernetes
  curl -s http://$controller_admin/status

Edit files in $manifests/ and the changes apply live. Ctrl-C stops everything.
Below: warnings and status changes (full log: $logs/controller.log).

EOF
# Keep the terminal readable: the commands above stay on screen, and only
# what a user acts on follows them.
tail -n +1 -F "$logs/controller.log" 2>/dev/null |
  grep --line-buffered -E 'WARN|ERROR|status changed|status removed|cannot' &
pids+=("$!")

# Run until Ctrl-C, or until one of the processes exits.
wait -n "${pids[@]}" || true
echo "a quickstart process exited; stopping the rest (logs in $logs/)" >&2
exit 1
