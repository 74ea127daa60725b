#!/bin/bash
# Snapshot → restore of a VM whose vCPU is in guest mode, in the test host (kvm-amd nested=1): the
# svm-l2 guest's L1 VMRUNs a counting L2; the VM is paused with the L2 running and snapshotted with
# its nested state; the original VM is deleted; a new VMM restores it paused, nested-state GET shows
# guest_mode and the same VMCB; after resume the L2 counts on from its tick and the L1 sees the
# VMMCALL exit (0x81) with the full count. A manifest claiming more nested state than the host's
# KVM_CAP_NESTED_STATE is refused without a VM.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
for f in kvmfleetd kvmfleetctl kvmfleet-load kvmfleet-vmm guests/svm-l2.elf; do
        if [ ! -e "$here/../../$BUILD/$f" ]; then
                echo "not ok - nested_snapshot_in_test_host: $BUILD/$f is not built"
                exit 1
        fi
done
exec bash "$here/hostvm.sh" --timeout 300 --file "$here/../../$BUILD/guests/svm-l2.elf:/svm-l2.elf" \
        "$here/guest/nested-snapshot.sh"
