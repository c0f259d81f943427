#!/bin/sh
# Builds the local base image roost/bookworm-slim from a debootstrap rootfs
# and `docker import`, for machines that cannot pull from an image registry.
#
#   docker/make-base.sh [IMAGE]        default IMAGE: roost/bookworm-slim:local
#
# Environment: MIRROR (default: the first deb.debian.org-style URI of this
# host's apt sources, else http://deb.debian.org/debian), SUITE (bookworm).
# The rootfs is trimmed like Debian's own -slim images (no docs, man pages
# or locales) and its apt is pointed at the same mirror, so the Dockerfile's
# `apt-get install` steps work with `docker build --network host`.
set -eu

IMAGE=${1:-roost/bookworm-slim:local}
SUITE=${SUITE:-bookworm}

if docker image inspect "$IMAGE" >/dev/null 2>&1 && [ -z "${FORCE:-}" ]; then
    echo "make-base: $IMAGE exists (FORCE=1 rebuilds)"
    exit 0
fi

if [ -z "${MIRROR:-}" ]; then
    # deb822 sources first, then one-line sources; take the first http URI.
    MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
             sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*debian\)[[:space:]]*$/\1/p' | head -1)
    if [ -z "$MIRROR" ]; then
        MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                 sed -n 's/^deb[[:space:]]\{1,\}\(http[^[:space:]]*debian\)[[:space:]].*/\1/p' | head -1)
    fi
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

command -v debootstrap >/dev/null || { echo "make-base: debootstrap is not installed" >&2; exit 1; }

ROOT=$(mktemp -d /tmp/roost-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT INT TERM

echo "make-base: debootstrap $SUITE from $MIRROR into $ROOT"
debootstrap --variant=minbase --components=main "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || {
    tail -30 "$ROOT.log" >&2
    rm -f "$ROOT.log"
    exit 1
}
rm -f "$ROOT.log"

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
EOF
# Security updates live beside the main archive on Debian's mirrors.
case "$MIRROR" in
*/debian) echo "deb ${MIRROR}-security $SUITE-security main" >>"$ROOT/etc/apt/sources.list" ;;
esac
# The slim trimming: what Debian's docker images drop.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Check-Valid-Until "false";
EOF
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
       "$ROOT"/usr/share/doc/*/changelog* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/*

echo "make-base: importing as $IMAGE"
tar -C "$ROOT" -c . | docker import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    - "$IMAGE"
docker image ls "$IMAGE"
