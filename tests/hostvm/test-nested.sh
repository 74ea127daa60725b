#!/bin/bash
# Nested state in the test host, on real kvm-amd with nested=1: the svm-l2 guest's L1 VMRUNs a
# counting L2; the VM is paused while the vCPU is in guest mode; GET nested-state shows format svm,
# guest_mode and the VMCB the guest printed; GET --raw → PUT of the unchanged blob works and the L2
# goes on to its VMMCALL, which L1 sees as exit code 0x81. Then cpu.nested is refused at start once
# kvm_amd.nested=0 is reloaded.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
for f in kvmfleetd kvmfleetctl kvmfleet-load kvmfleet-vmm guests/svm-l2.elf; do
        if [ ! -e "$here/../../$BUILD/$f" ]; then
                echo "not ok - nested_in_test_host: $BUILD/$f is not built"
                exit 1
        fi
done
exec bash "$here/hostvm.sh" --timeout 300 --file "$here/../../$BUILD/guests/svm-l2.elf:/svm-l2.elf" "$here/guest/nested.sh"
