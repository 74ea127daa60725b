#!/bin/bash
# The agent's host KVM policy in the test host, on real modular kvm-amd: desired parameters through
# the REST API and kvmfleetctl, applied by POST /v1/host/kvm/reload (kvmfleet-load --reload), refused
# while a VM runs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
for f in kvmfleetd kvmfleetctl kvmfleet-load kvmfleet-vmm guests/hello.elf; do
        if [ ! -e "$here/../../$BUILD/$f" ]; then
                echo "not ok - host_kvm_in_test_host: $BUILD/$f is not built"
                exit 1
        fi
done
exec bash "$here/hostvm.sh" --timeout 240 --file "$here/../../$BUILD/guests/hello.elf:/hello.elf" "$here/guest/host-kvm.sh"
