#!/usr/bin/env bash
# `make image-check`: install the tools if they are missing (Debian, as root), then run deploy/image/check.py
# with the Helm check's venv (it renders the chart with the same SDK). Arguments go to check.py.
# A CA for a TLS-intercepting proxy: IMAGE_BUILD_CA=FILE; by default the local CAs this machine trusts
# (/usr/local/share/ca-certificates/*.crt), if there are any.
set -euo pipefail
cd "$(dirname "$0")/../.."
HELM_PYTHON=${HELM_PYTHON:-.cache/helm-venv/bin/python}
# podman (with crun, conmon and its default config) builds with --isolation=chroot as root on the kernel's
# overlayfs: no buildah, fuse-overlayfs, uidmap or slirp4netns needed. debootstrap makes the base image.
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends \
        podman debootstrap >/dev/null
}
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    install || { apt-get update -q -o DPkg::Lock::Timeout=600 >/dev/null && install; }
fi
args=()
ca=${IMAGE_BUILD_CA:-}
if [[ -z $ca ]] && compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p .cache/image
    ca=.cache/image/build-ca.pem
    cat /usr/local/share/ca-certificates/*.crt >"$ca"
fi
[[ -n $ca ]] && args+=(--ca "$ca")
exec "$HELM_PYTHON" deploy/image/check.py "${args[@]}" "$@"
