#!/bin/bash
# Installs what kvmfleet needs to build and test, only when it is missing. Debian 12, as root.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

packages=(
        build-essential pkg-config make gcc
        libmicrohttpd-dev libjson-c-dev libsystemd-dev libsqlite3-dev libxml2-dev libkmod-dev
        libcurl4-openssl-dev
        curl jq python3 sqlite3 nodejs npm valgrind
        qemu-system-x86 busybox-static cpio kmod
        wrk
        libvirt-daemon-system libvirt-clients virtinst clang
        debhelper lintian debootstrap ansible ansible-lint prometheus scdoc bash-completion systemd-container
        e2fsprogs
)
missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
# An npm or node from elsewhere on PATH is fine for the tests.
if command -v node >/dev/null && command -v npm >/dev/null; then
        missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
        echo "deps: installing ${missing[*]}"
        if [ "$(id -u)" -ne 0 ]; then
                echo "deps: need root to install ${missing[*]}" >&2
                exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node packages for the API contract tests, into a local folder.
if [ ! -f tests/node/node_modules/.installed ] || [ tests/node/package.json -nt tests/node/node_modules/.installed ]; then
        echo "deps: installing npm packages into tests/node/node_modules"
        (cd tests/node && npm install --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null)
        touch tests/node/node_modules/.installed
fi
