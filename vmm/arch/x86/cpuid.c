/* SPDX-License-Identifier: MIT */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <asm/kvm_para.h>

#include "kvm.h"
#include "macro.h"

#define CPUID1_ECX_VMX (1u << 5)
#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define CPUID1_EDX_HTT (1u << 28)
#define CPUID80000001_ECX_SVM (1u << 2)

static size_t cpuid_size(unsigned nent) {
        return sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2);
}

int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **ret) {
        for (unsigned nent = 128; nent <= 4096; nent *= 2) {
                struct kvm_cpuid2 *c = calloc(1, cpuid_size(nent));
                if (!c)
                        return -ENOMEM;
                c->nent = nent;
                int r = __kvm_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
                if (r == 0) {
                        *ret = c;
                        return 0;
                }
                free(c);
                if (r != -E2BIG)
                        return r;
        }
        return -E2BIG;
}

bool x86_cpuid_set_tsc_deadline(struct kvm_cpuid2 *base) {
        for (unsigned i = 0; i < base->nent; i++)
                if (base->entries[i].function == 1) {
                        base->entries[i].ecx |= CPUID1_ECX_TSC_DEADLINE;
                        return true;
                }
        return false;
}

uint32_t x86_cpuid_kvm_pv_features(const struct kvm_cpuid2 *base) {
        for (unsigned i = 0; i < base->nent; i++)
                if (base->entries[i].function == KVM_CPUID_FEATURES)
                        return base->entries[i].eax;
        return 0;
}

int x86_cpuid_for_vcpu(const struct kvm_cpuid2 *base, unsigned vcpu_index, unsigned n_vcpus, bool nested,
                       uint32_t kvm_pv_off, struct kvm_cpuid2 **ret) {
        struct kvm_cpuid2 *c = malloc(cpuid_size(base->nent));
        if (!c)
                return -ENOMEM;
        memcpy(c, base, cpuid_size(base->nent));
        for (unsigned i = 0; i < c->nent; i++) {
                struct kvm_cpuid_entry2 *e = &c->entries[i];
                switch (e->function) {
                case 1:
                        e->ebx = (e->ebx & 0x0000ffff) | (MIN(n_vcpus, 255u) << 16) | (vcpu_index << 24);
                        if (n_vcpus > 1)
                                e->edx |= CPUID1_EDX_HTT;
                        e->ecx |= CPUID1_ECX_HYPERVISOR;
                        if (!nested)
                                e->ecx &= ~CPUID1_ECX_VMX;
                        break;
                case 4: /* cores per package - 1 in EAX[31:26] */
                        e->eax = (e->eax & 0x03ffffff) | ((MIN(n_vcpus, 64u) - 1) << 26);
                        break;
                case 0xb:
                case 0x1f: /* x2APIC ID of this vCPU */
                        e->edx = vcpu_index;
                        break;
                case KVM_CPUID_FEATURES:
                        e->eax &= ~kvm_pv_off;
                        break;
                case 0x80000001:
                        if (!nested)
                                e->ecx &= ~CPUID80000001_ECX_SVM;
                        break;
                case 0x80000008: /* AMD: number of cores - 1 */
                        e->ecx = (e->ecx & ~0xffu) | (MIN(n_vcpus, 256u) - 1);
                        break;
                default:
                        break;
                }
        }
        *ret = c;
        return 0;
}
