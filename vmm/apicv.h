/* SPDX-License-Identifier: MIT */
/* APIC virtualization controls of one VM: the x2APIC API flags set at creation, PIT reinjection
 * switched at run time (KVM_REINJECT_CONTROL; reinjection inhibits AVIC), and a vCPU's local APIC
 * state (KVM_GET_LAPIC plus the APIC base MSR) decoded register by register. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "json-util.h"
#include "kvm-compat.h"
#include "spec.h"

#define MSR_IA32_APICBASE 0x1b
#define APICV_VCPU_CALL_TIMEOUT_MS 2000

typedef struct Vm Vm;

/* KVM_ENABLE_CAP(KVM_CAP_X2APIC_API) with the spec's flags, when any is set; must run before the
 * first vCPU is created. Errors name $.x2apic_api. */
int apicv_setup_x2apic_api(int vm_fd, const VmSpec *spec, JsonError *e);

/* Decodes a local APIC register page as KVM_GET_LAPIC returns it, with the APIC base MSR, into
 * {"mode", "apic_base", "id", "version", "tpr", "ppr", "ldr", "dfr", "svr", "isr", "tmr", "irr",
 * "esr", "icr", "lvt", "timer"} (docs/vmm-protocol.md). x2apic_32bit_ids: KVM_X2APIC_API_USE_32BIT_IDS
 * is on, so an x2APIC's ID register holds the whole 32-bit ID instead of bits 31:24. Pure. */
int lapic_decode(const struct kvm_lapic_state *lapic, uint64_t apic_base, bool x2apic_32bit_ids, json_object **ret);

/* The control methods "lapic", "pit_reinject" and "apicv_config". */
bool apicv_control_method(const char *method);
/* 1 with *ret the result, 0 with *ret_error an error object {"code", "message"} for the caller, or
 * -errno. */
int apicv_control_call(Vm *vm, const char *method, json_object *params, json_object **ret, json_object **ret_error);
