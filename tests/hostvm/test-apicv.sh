#!/bin/bash
# Live APICv/AVIC inhibit tracking in the test host, on real modular kvm-amd (Linux 6.1): VMs created
# at the same time each get their own kvm_apicv_inhibit_changed events, named by the 6.1 numbering;
# PATCH pit_reinject moves PIT_REINJ in the live bitmap while AVIC is on.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
for f in kvmfleetd kvmfleetctl kvmfleet-load kvmfleet-vmm guests/hello.elf; do
        if [ ! -e "$here/../../$BUILD/$f" ]; then
                echo "not ok - apicv_in_test_host: $BUILD/$f is not built"
                exit 1
        fi
done
exec bash "$here/hostvm.sh" --timeout 120 --file "$here/../../$BUILD/guests/hello.elf:/hello.elf" "$here/guest/apicv.sh"
