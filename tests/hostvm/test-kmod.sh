#!/bin/bash
# kvmfleet-load in the test host: real module insertion pinned to CPU 0, parameters, drift, reload.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
if [ ! -x "$here/../../$BUILD/kvmfleet-load" ]; then
        echo "not ok - kmod_in_test_host: $BUILD/kvmfleet-load is not built"
        exit 1
fi
exec bash "$here/hostvm.sh" --timeout 180 "$here/guest/kmod.sh"
