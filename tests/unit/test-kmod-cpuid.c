/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fd-util.h"
#include "kmod/cpuid.h"
#include "fake-cpu.h"
#include "test.h"

/* An AMD CPU like QEMU's "-cpu max": svm, npt, vgif; apic_id differs per CPU. */
static void fake_amd_cpu(const char *root, unsigned cpu, uint32_t svm_edx) {
        fake_cpuid(root, cpu, 0x0, 0, (CpuidRegs){ 0xd, 0x68747541, 0x444d4163, 0x69746e65 }); /* AuthenticAMD */
        fake_cpuid(root, cpu, 0x1, 0, (CpuidRegs){ 0x00a00f11, 0x00020800 | (cpu << 24), 0xfef83203, 0x078bfbff });
        fake_cpuid(root, cpu, 0x7, 0, (CpuidRegs){ 0, 0x219c07ab, 0x0040069c, 0 });
        fake_cpuid(root, cpu, 0xD, 1, (CpuidRegs){ 0xf, 0x340 + cpu * 8, 0, 0 });
        fake_cpuid(root, cpu, 0x80000000, 0, (CpuidRegs){ 0x8000000a, 0x68747541, 0x444d4163, 0x69746e65 });
        fake_cpuid(root, cpu, 0x80000001, 0, (CpuidRegs){ 0x00a00f11, 0, 0x00000177, 0x2fd3fbff });
        fake_cpuid(root, cpu, 0x80000008, 0, (CpuidRegs){ 0x3030, 0, 1, 0 });
        fake_cpuid(root, cpu, 0x8000000A, 0, (CpuidRegs){ 1, 0x10, 0, svm_edx });
}

TEST(bit_names) {
        unsigned lo, width;
        CHECK_STREQ(cpuid_bit_name(0x80000001, 0, 2, 2, NULL, NULL), "svm");
        CHECK_STREQ(cpuid_bit_name(0x1, 0, 2, 5, NULL, NULL), "vmx");
        CHECK_STREQ(cpuid_bit_name(0x1, 0, 2, 21, NULL, NULL), "x2apic");
        CHECK_STREQ(cpuid_bit_name(0x8000000A, 0, 3, 0, NULL, NULL), "npt");
        CHECK_STREQ(cpuid_bit_name(0x8000000A, 0, 3, 3, NULL, NULL), "nrip_save");
        CHECK_STREQ(cpuid_bit_name(0x8000000A, 0, 3, 13, NULL, NULL), "avic");
        CHECK_STREQ(cpuid_bit_name(0x8000000A, 0, 3, 16, NULL, NULL), "vgif");
        CHECK_STREQ(cpuid_bit_name(0x8000000A, 0, 3, 18, NULL, NULL), "x2avic");
        CHECK_STREQ(cpuid_bit_name(0xD, 1, 0, 3, NULL, NULL), "xsaves");
        CHECK_STREQ(cpuid_bit_name(0x80000008, 0, 0, 5, &lo, &width), "maxphyaddr");
        CHECK_EQ_INT(lo, 0);
        CHECK_EQ_INT(width, 8);
        CHECK(cpuid_bit_name(0x8000000A, 0, 3, 31, NULL, NULL) == NULL);
        CHECK_STREQ(vmx_msr_bit_name(0x48B, 33), "ept");
        CHECK_STREQ(vmx_msr_bit_name(0x48B, 37), "vpid");
        CHECK_STREQ(vmx_msr_bit_name(0x481, 39), "posted_intr");
        CHECK_STREQ(vmx_msr_bit_name(0x48D, 39), "posted_intr"); /* TRUE_PINBASED */
        CHECK_STREQ(vmx_msr_bit_name(0x48C, 21), "ept_ad");
        CHECK(vmx_msr_bit_name(0x48B, 1) == NULL);
}

TEST(vendor_from_leaf0) {
        CpuidRegs intel = { 0x1b, 0x756e6547, 0x6c65746e, 0x49656e69 };
        CpuidRegs amd = { 0xd, 0x68747541, 0x444d4163, 0x69746e65 };
        CpuidRegs other = { 0xd, 1, 2, 3 };
        CHECK_EQ_INT(cpuid_vendor(&intel), CPU_VENDOR_INTEL);
        CHECK_EQ_INT(cpuid_vendor(&amd), CPU_VENDOR_AMD);
        CHECK_EQ_INT(cpuid_vendor(&other), CPU_VENDOR_UNKNOWN);
        CHECK_STREQ(cpu_vendor_to_string(CPU_VENDOR_AMD), "amd");
}

TEST(read_fake_cpuid_at_leaf_subleaf_offset) {
        char root[512];
        CpuidRegs r;
        snprintf(root, sizeof root, "%s/read", test_tmpdir());
        fake_cpuid(root, 3, 0xD, 1, (CpuidRegs){ 1, 2, 3, 4 });
        fake_cpuid(root, 3, 0xD, 0, (CpuidRegs){ 5, 6, 7, 8 });
        ASSERT_EQ_INT(cpuid_read_dev(root, 3, 0xD, 1, &r), 0);
        CHECK_EQ_INT(r.eax, 1);
        CHECK_EQ_INT(r.edx, 4);
        ASSERT_EQ_INT(cpuid_read_dev(root, 3, 0xD, 0, &r), 0);
        CHECK_EQ_INT(r.ecx, 7);
        CHECK_EQ_INT(cpuid_read_dev(root, 4, 0xD, 0, &r), -ENOENT);
        /* Past the end of the sparse file the read is short. */
        CHECK_EQ_INT(cpuid_read_dev(root, 3, 0x80000001, 5, &r), -EIO);
}

TEST(equal_cpus_masked_apic_ids) {
        char root[512];
        CpuSnapshot a, b;
        CpuDifference *d = NULL;
        size_t n = 0;
        snprintf(root, sizeof root, "%s/equal", test_tmpdir());
        fake_amd_cpu(root, 0, 0x1000f);
        fake_amd_cpu(root, 1, 0x1000f);
        ASSERT_EQ_INT(cpu_snapshot_read(root, 0, CPU_VENDOR_AMD, false, &a), 0);
        ASSERT_EQ_INT(cpu_snapshot_read(root, 1, CPU_VENDOR_AMD, false, &b), 0);
        CHECK(a.present[7]);
        CHECK(!a.msrs_read);
        /* Unmasked, the APIC ID and the XSAVE size differ. */
        CHECK_EQ_INT(cpu_snapshot_compare(&a, &b, &d, &n), 2);
        free(d);
        d = NULL;
        n = 0;
        cpu_snapshot_mask(&a);
        cpu_snapshot_mask(&b);
        CHECK_EQ_INT(cpu_snapshot_compare(&a, &b, &d, &n), 0);
        CHECK_EQ_INT(n, 0);
        free(d);
}

TEST(two_cpu_divergence_names_the_bits) {
        char root[512];
        CpuSnapshot a, b;
        CpuDifference *d = NULL;
        size_t n = 0;
        snprintf(root, sizeof root, "%s/diverge", test_tmpdir());
        fake_amd_cpu(root, 0, 0x1000f);
        fake_amd_cpu(root, 1, 0x0000e); /* CPU 1: no npt, no vgif */
        ASSERT_EQ_INT(cpu_snapshot_read(root, 0, CPU_VENDOR_AMD, false, &a), 0);
        ASSERT_EQ_INT(cpu_snapshot_read(root, 1, CPU_VENDOR_AMD, false, &b), 0);
        cpu_snapshot_mask(&a);
        cpu_snapshot_mask(&b);
        ASSERT_EQ_INT(cpu_snapshot_compare(&a, &b, &d, &n), 2);
        CHECK_STREQ(d[0].feature, "npt");
        CHECK_EQ_INT(d[0].cpu, 1);
        CHECK_STREQ(d[0].leaf, "0x8000000a");
        CHECK_STREQ(d[0].reg, "edx");
        CHECK_EQ_INT(d[0].bit, 0);
        CHECK_EQ_INT(d[0].target_value, 1);
        CHECK_EQ_INT(d[0].value, 0);
        CHECK_STREQ(d[1].feature, "vgif");
        CHECK_EQ_INT(d[1].bit, 16);
        free(d);
}

TEST(leaf_beyond_max_is_absent) {
        char root[512];
        CpuSnapshot a;
        snprintf(root, sizeof root, "%s/maxleaf", test_tmpdir());
        fake_amd_cpu(root, 0, 0x1000f);
        fake_cpuid(root, 0, 0x80000000, 0, (CpuidRegs){ 0x80000008, 0, 0, 0 });
        ASSERT_EQ_INT(cpu_snapshot_read(root, 0, CPU_VENDOR_AMD, false, &a), 0);
        CHECK(a.present[6]);
        CHECK(!a.present[7]);
        CHECK_EQ_INT(a.regs[7].edx, 0);
}

TEST(intel_vmx_msr_divergence) {
        char root[512];
        CpuSnapshot a, b;
        CpuDifference *d = NULL;
        size_t n = 0;
        snprintf(root, sizeof root, "%s/intel", test_tmpdir());
        for (unsigned cpu = 0; cpu < 2; cpu++) {
                fake_cpuid(root, cpu, 0x0, 0, (CpuidRegs){ 0xd, 0x756e6547, 0x6c65746e, 0x49656e69 });
                fake_cpuid(root, cpu, 0x1, 0, (CpuidRegs){ 0x906ea, cpu << 24, 0x7ffafbff, 0xbfebfbff });
                fake_cpuid(root, cpu, 0x7, 0, (CpuidRegs){ 0, 0, 0, 0 });
                fake_cpuid(root, cpu, 0xD, 1, (CpuidRegs){ 0xf, 0, 0, 0 });
                fake_cpuid(root, cpu, 0x80000000, 0, (CpuidRegs){ 0x80000008, 0, 0, 0 });
                fake_cpuid(root, cpu, 0x80000001, 0, (CpuidRegs){ 0, 0, 0x121, 0x2c100800 });
                fake_cpuid(root, cpu, 0x80000008, 0, (CpuidRegs){ 0x3027, 0, 0, 0 });
                for (uint32_t msr = 0x480; msr <= 0x490; msr++)
                        fake_msr(root, cpu, msr, msr == 0x48B ? (cpu ? 0x1ULL << 32 : 0x23ULL << 32) : 0x1234);
        }
        ASSERT_EQ_INT(cpu_snapshot_read(root, 0, CPU_VENDOR_INTEL, false, &a), 0);
        ASSERT_EQ_INT(cpu_snapshot_read(root, 1, CPU_VENDOR_INTEL, false, &b), 0);
        CHECK(a.msrs_read);
        CHECK(a.msr_present[0xB]);
        CHECK(!a.msr_present[0x11]); /* 0x491 past the end of the fake file: like a faulting read */
        CHECK(!a.present[7]);        /* 0x8000000A beyond Intel's max extended leaf */
        cpu_snapshot_mask(&a);
        cpu_snapshot_mask(&b);
        ASSERT_EQ_INT(cpu_snapshot_compare(&a, &b, &d, &n), 2);
        CHECK_STREQ(d[0].feature, "ept");
        CHECK_STREQ(d[0].leaf, "msr 0x48b");
        CHECK_EQ_INT(d[0].bit, 33);
        CHECK_STREQ(d[1].feature, "vpid");
        free(d);
}

TEST(cpu_lists) {
        unsigned *c = NULL;
        size_t n = 0;
        ASSERT_EQ_INT(cpu_list_parse("0-2,5\n", &c, &n), 0);
        ASSERT_EQ_INT(n, 4);
        CHECK_EQ_INT(c[2], 2);
        CHECK_EQ_INT(c[3], 5);
        free(c);
        CHECK_EQ_INT(cpu_list_parse("3-1", &c, &n), -EINVAL);
        CHECK_EQ_INT(cpu_list_parse("", &c, &n), -EINVAL);
        CHECK_EQ_INT(cpu_list_parse("x", &c, &n), -EINVAL);
}
