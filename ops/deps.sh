#!/bin/sh
# Installs roost's Debian build and test dependencies when any is missing.
# Safe to run often: it only calls apt-get when dpkg lacks a package.
set -e
PKGS="build-essential pkg-config libuv1-dev libhiredis-dev libexpat1-dev
libprotobuf-c-dev protobuf-c-compiler libssl-dev libidn11-dev libcyaml-dev
libhttp-parser-dev redis-server check python3 python3-slixmpp python3-pytest
python3-yaml"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
