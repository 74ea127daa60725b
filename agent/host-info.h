/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

/* What GET /v1/host reports: identity, CPU, KVM API version and capabilities, module state. */
int host_info_build(json_object **ret);

/* KVM_CHECK_EXTENSION on /dev/kvm for the capabilities this product cares about, name -> value. */
int host_kvm_capabilities(int kvm_fd, json_object **ret);

/* "module" or "builtin" for kvm, and every parameter of kvm, kvm_intel, kvm_amd under
 * root/sys/module (root "" on a real host). */
int host_kvm_modules(const char *root, json_object **ret_modules);

/* /dev/kvm usable: open, KVM_GET_API_VERSION, KVM_CREATE_VM, close. Writes what failed. */
int host_kvm_probe(char *detail, size_t n);
