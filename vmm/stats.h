/* SPDX-License-Identifier: MIT */
/* KVM binary statistics (KVM_GET_STATS_FD): header, descriptors and data decoded into
 * {"name": value} with value an integer, or an array for histograms. With schema, each value is
 * instead {"type", "unit", "base", "exponent", "bucket_size"?, "value" | "values"}: type
 * cumulative|instant|peak|linear_hist|log_hist, unit none|bytes|seconds|cycles|boolean, and the
 * value in unit is value * base^exponent. */
#pragma once

#include <json-c/json.h>

#include <stdbool.h>

int kvm_stats_read_json(int stats_fd, bool schema, json_object **ret);
const char *kvm_stats_type_to_string(unsigned flags);
const char *kvm_stats_unit_to_string(unsigned flags);
