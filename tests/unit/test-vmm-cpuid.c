/* SPDX-License-Identifier: MIT */
#include <asm/kvm_para.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpuid.h"
#include "test.h"

static struct kvm_cpuid2 *base_cpuid(void) {
        struct kvm_cpuid2 *c = calloc(1, sizeof *c + 3 * sizeof(struct kvm_cpuid_entry2));
        c->nent = 3;
        c->entries[0] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0x00000800, .ecx = 0x80000001 };
        c->entries[1] = (struct kvm_cpuid_entry2){ .function = KVM_CPUID_SIGNATURE, .eax = KVM_CPUID_FEATURES };
        c->entries[2] = (struct kvm_cpuid_entry2){ .function = KVM_CPUID_FEATURES,
                                                   .eax = (1u << KVM_FEATURE_PV_EOI) | (1u << KVM_FEATURE_PV_UNHALT) |
                                                          (1u << KVM_FEATURE_CLOCKSOURCE2) };
        return c;
}

TEST(tsc_deadline_bit_set_in_leaf_1) {
        struct kvm_cpuid2 *c = base_cpuid();
        CHECK(!(c->entries[0].ecx & (1u << 24)));
        CHECK(x86_cpuid_set_tsc_deadline(c));
        CHECK(c->entries[0].ecx & (1u << 24));
        CHECK_EQ_U64(c->entries[0].ecx & ~(1u << 24), 0x80000001); /* nothing else changed */
        c->entries[0].function = 7;
        CHECK(!x86_cpuid_set_tsc_deadline(c));
        free(c);
}

TEST(kvm_pv_features_cleared_per_spec) {
        struct kvm_cpuid2 *c = base_cpuid(), *v = NULL;
        CHECK_EQ_U64(x86_cpuid_kvm_pv_features(c), (1u << 6) | (1u << 7) | (1u << 3));
        ASSERT_EQ_INT(x86_cpuid_for_vcpu(c, 1, 2, false, 1u << KVM_FEATURE_PV_EOI, &v), 0);
        CHECK_EQ_U64(x86_cpuid_kvm_pv_features(v), (1u << 7) | (1u << 3));
        CHECK_EQ_U64(v->entries[0].ebx >> 24, 1); /* APIC ID of vCPU 1 */
        CHECK_EQ_U64((v->entries[0].ebx >> 16) & 0xff, 2);
        CHECK_EQ_U64(x86_cpuid_kvm_pv_features(c), (1u << 6) | (1u << 7) | (1u << 3)); /* base untouched */
        free(v);
        v = NULL;
        ASSERT_EQ_INT(x86_cpuid_for_vcpu(c, 0, 1, false, 0, &v), 0);
        CHECK_EQ_U64(x86_cpuid_kvm_pv_features(v), x86_cpuid_kvm_pv_features(c));
        free(v);
        c->entries[2].function = 0x80000000;
        CHECK_EQ_U64(x86_cpuid_kvm_pv_features(c), 0);
        free(c);
}
