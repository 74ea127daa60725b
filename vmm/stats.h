/* SPDX-License-Identifier: MIT */
/* KVM binary statistics (KVM_GET_STATS_FD): header, descriptors and data decoded into
 * {"name": value} with value an integer, or an array for histograms. */
#pragma once

#include <json-c/json.h>

int kvm_stats_read_json(int stats_fd, json_object **ret);
