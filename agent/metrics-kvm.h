/* SPDX-License-Identifier: MIT */
/* KVM binary statistics (the VMM's `stats` method with schema, vmm/stats.h) as Prometheus families:
 * kvmfleet_kvm_vm_<stat> with labels vm_uuid and vm_name, kvmfleet_kvm_vcpu_<stat> with vcpu too.
 * Names follow the Prometheus conventions: cumulative stats are counters ending in _total, values
 * are scaled to base units (a KVM "_ns" stat in seconds becomes "_seconds"), bytes end in _bytes,
 * instant and peak values are gauges, and KVM's linear and logarithmic histograms are histograms
 * with the exact integer bucket bounds (_sum from the companion cumulative stat when KVM has one,
 * e.g. halt_wait_ns for halt_wait_hist). */
#pragma once

#include <json-c/json.h>
#include <stdio.h>

/* vms: an array of {"uuid", "name", "stats": {"vm": {...}, "vcpus": [{"index", "stats": {...}}]}}.
 * Each family is written once, with the samples of every VM (and vCPU) together, as the text
 * format requires. Stats of unknown types or units were left out by the VMM already. */
int metrics_write_kvm_stats(FILE *f, json_object *vms);

/* The Prometheus name for a KVM stat (without the kvmfleet_kvm_vm_/vcpu_ prefix) and the factor
 * that turns its raw values into that unit. Exposed for tests. */
int metrics_kvm_stat_name(const char *kvm_name, json_object *schema, char *buf, size_t size, double *ret_scale);
