#!/bin/sh
# Runs each test binary given; fails if any fails, after running them all.
rc=0
for t in "$@"; do
    echo "== $t"
    CK_FORK=yes "$t" || rc=1
done
exit $rc
