/* SPDX-License-Identifier: MIT */
#include "cpuid.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "str-util.h"
#include "sysroot.h"

const CpuidLeafId cpuid_leaves[CPUID_N_LEAVES] = {
        { 0x0, 0 },        { 0x1, 0 },        { 0x7, 0 },        { 0xD, 1 },
        { 0x80000000, 0 }, { 0x80000001, 0 }, { 0x80000008, 0 }, { 0x8000000A, 0 },
};

enum { EAX, EBX, ECX, EDX };
static const char *const reg_names[] = { "eax", "ebx", "ecx", "edx" };

typedef struct CpuidField {
        uint32_t leaf, subleaf;
        unsigned reg, lo, width;
        const char *name;
} CpuidField;

#define F(l, s, r, b, n) { l, s, r, b, 1, n }
#define W(l, s, r, b, w, n) { l, s, r, b, w, n }
/* Names as Linux's /proc/cpuinfo spells them where it has one. */
static const CpuidField cpuid_fields[] = {
        W(0x0, 0, EAX, 0, 32, "max_basic_leaf"),
        W(0x0, 0, EBX, 0, 32, "vendor_id[0:3]"),
        W(0x0, 0, EDX, 0, 32, "vendor_id[4:7]"),
        W(0x0, 0, ECX, 0, 32, "vendor_id[8:11]"),
        W(0x1, 0, EAX, 0, 4, "stepping"),
        W(0x1, 0, EAX, 4, 4, "model"),
        W(0x1, 0, EAX, 8, 4, "family"),
        W(0x1, 0, EAX, 12, 2, "processor_type"),
        W(0x1, 0, EAX, 16, 4, "extended_model"),
        W(0x1, 0, EAX, 20, 8, "extended_family"),
        W(0x1, 0, EBX, 0, 8, "brand_index"),
        W(0x1, 0, EBX, 8, 8, "clflush_size"),
        W(0x1, 0, EBX, 16, 8, "logical_processor_count"),
        W(0x1, 0, EBX, 24, 8, "initial_apic_id"),
        F(0x1, 0, ECX, 0, "pni"), F(0x1, 0, ECX, 1, "pclmulqdq"), F(0x1, 0, ECX, 2, "dtes64"),
        F(0x1, 0, ECX, 3, "monitor"), F(0x1, 0, ECX, 4, "ds_cpl"), F(0x1, 0, ECX, 5, "vmx"),
        F(0x1, 0, ECX, 6, "smx"), F(0x1, 0, ECX, 7, "est"), F(0x1, 0, ECX, 8, "tm2"),
        F(0x1, 0, ECX, 9, "ssse3"), F(0x1, 0, ECX, 10, "cid"), F(0x1, 0, ECX, 11, "sdbg"),
        F(0x1, 0, ECX, 12, "fma"), F(0x1, 0, ECX, 13, "cx16"), F(0x1, 0, ECX, 14, "xtpr"),
        F(0x1, 0, ECX, 15, "pdcm"), F(0x1, 0, ECX, 17, "pcid"), F(0x1, 0, ECX, 18, "dca"),
        F(0x1, 0, ECX, 19, "sse4_1"), F(0x1, 0, ECX, 20, "sse4_2"), F(0x1, 0, ECX, 21, "x2apic"),
        F(0x1, 0, ECX, 22, "movbe"), F(0x1, 0, ECX, 23, "popcnt"), F(0x1, 0, ECX, 24, "tsc_deadline_timer"),
        F(0x1, 0, ECX, 25, "aes"), F(0x1, 0, ECX, 26, "xsave"), F(0x1, 0, ECX, 27, "osxsave"),
        F(0x1, 0, ECX, 28, "avx"), F(0x1, 0, ECX, 29, "f16c"), F(0x1, 0, ECX, 30, "rdrand"),
        F(0x1, 0, ECX, 31, "hypervisor"),
        F(0x1, 0, EDX, 0, "fpu"), F(0x1, 0, EDX, 1, "vme"), F(0x1, 0, EDX, 2, "de"), F(0x1, 0, EDX, 3, "pse"),
        F(0x1, 0, EDX, 4, "tsc"), F(0x1, 0, EDX, 5, "msr"), F(0x1, 0, EDX, 6, "pae"), F(0x1, 0, EDX, 7, "mce"),
        F(0x1, 0, EDX, 8, "cx8"), F(0x1, 0, EDX, 9, "apic"), F(0x1, 0, EDX, 11, "sep"), F(0x1, 0, EDX, 12, "mtrr"),
        F(0x1, 0, EDX, 13, "pge"), F(0x1, 0, EDX, 14, "mca"), F(0x1, 0, EDX, 15, "cmov"), F(0x1, 0, EDX, 16, "pat"),
        F(0x1, 0, EDX, 17, "pse36"), F(0x1, 0, EDX, 18, "pn"), F(0x1, 0, EDX, 19, "clflush"),
        F(0x1, 0, EDX, 21, "dts"), F(0x1, 0, EDX, 22, "acpi"), F(0x1, 0, EDX, 23, "mmx"),
        F(0x1, 0, EDX, 24, "fxsr"), F(0x1, 0, EDX, 25, "sse"), F(0x1, 0, EDX, 26, "sse2"),
        F(0x1, 0, EDX, 27, "ss"), F(0x1, 0, EDX, 28, "ht"), F(0x1, 0, EDX, 29, "tm"), F(0x1, 0, EDX, 31, "pbe"),
        W(0x7, 0, EAX, 0, 32, "max_leaf7_subleaf"),
        F(0x7, 0, EBX, 0, "fsgsbase"), F(0x7, 0, EBX, 1, "tsc_adjust"), F(0x7, 0, EBX, 2, "sgx"),
        F(0x7, 0, EBX, 3, "bmi1"), F(0x7, 0, EBX, 4, "hle"), F(0x7, 0, EBX, 5, "avx2"),
        F(0x7, 0, EBX, 6, "fdp_excptn_only"), F(0x7, 0, EBX, 7, "smep"), F(0x7, 0, EBX, 8, "bmi2"),
        F(0x7, 0, EBX, 9, "erms"), F(0x7, 0, EBX, 10, "invpcid"), F(0x7, 0, EBX, 11, "rtm"),
        F(0x7, 0, EBX, 12, "cqm"), F(0x7, 0, EBX, 13, "zero_fcs_fds"), F(0x7, 0, EBX, 14, "mpx"),
        F(0x7, 0, EBX, 15, "rdt_a"), F(0x7, 0, EBX, 16, "avx512f"), F(0x7, 0, EBX, 17, "avx512dq"),
        F(0x7, 0, EBX, 18, "rdseed"), F(0x7, 0, EBX, 19, "adx"), F(0x7, 0, EBX, 20, "smap"),
        F(0x7, 0, EBX, 21, "avx512ifma"), F(0x7, 0, EBX, 23, "clflushopt"), F(0x7, 0, EBX, 24, "clwb"),
        F(0x7, 0, EBX, 25, "intel_pt"), F(0x7, 0, EBX, 26, "avx512pf"), F(0x7, 0, EBX, 27, "avx512er"),
        F(0x7, 0, EBX, 28, "avx512cd"), F(0x7, 0, EBX, 29, "sha_ni"), F(0x7, 0, EBX, 30, "avx512bw"),
        F(0x7, 0, EBX, 31, "avx512vl"),
        F(0x7, 0, ECX, 0, "prefetchwt1"), F(0x7, 0, ECX, 1, "avx512vbmi"), F(0x7, 0, ECX, 2, "umip"),
        F(0x7, 0, ECX, 3, "pku"), F(0x7, 0, ECX, 4, "ospke"), F(0x7, 0, ECX, 5, "waitpkg"),
        F(0x7, 0, ECX, 6, "avx512_vbmi2"), F(0x7, 0, ECX, 7, "shstk"), F(0x7, 0, ECX, 8, "gfni"),
        F(0x7, 0, ECX, 9, "vaes"), F(0x7, 0, ECX, 10, "vpclmulqdq"), F(0x7, 0, ECX, 11, "avx512_vnni"),
        F(0x7, 0, ECX, 12, "avx512_bitalg"), F(0x7, 0, ECX, 13, "tme"), F(0x7, 0, ECX, 14, "avx512_vpopcntdq"),
        F(0x7, 0, ECX, 16, "la57"), W(0x7, 0, ECX, 17, 5, "mawau"), F(0x7, 0, ECX, 22, "rdpid"),
        F(0x7, 0, ECX, 23, "kl"), F(0x7, 0, ECX, 24, "bus_lock_detect"), F(0x7, 0, ECX, 25, "cldemote"),
        F(0x7, 0, ECX, 27, "movdiri"), F(0x7, 0, ECX, 28, "movdir64b"), F(0x7, 0, ECX, 29, "enqcmd"),
        F(0x7, 0, ECX, 30, "sgx_lc"), F(0x7, 0, ECX, 31, "pks"),
        F(0x7, 0, EDX, 2, "avx512_4vnniw"), F(0x7, 0, EDX, 3, "avx512_4fmaps"), F(0x7, 0, EDX, 4, "fsrm"),
        F(0x7, 0, EDX, 5, "uintr"), F(0x7, 0, EDX, 8, "avx512_vp2intersect"), F(0x7, 0, EDX, 9, "srbds_ctrl"),
        F(0x7, 0, EDX, 10, "md_clear"), F(0x7, 0, EDX, 11, "rtm_always_abort"), F(0x7, 0, EDX, 13, "tsx_force_abort"),
        F(0x7, 0, EDX, 14, "serialize"), F(0x7, 0, EDX, 15, "hybrid_cpu"), F(0x7, 0, EDX, 16, "tsxldtrk"),
        F(0x7, 0, EDX, 18, "pconfig"), F(0x7, 0, EDX, 19, "arch_lbr"), F(0x7, 0, EDX, 20, "ibt"),
        F(0x7, 0, EDX, 22, "amx_bf16"), F(0x7, 0, EDX, 23, "avx512_fp16"), F(0x7, 0, EDX, 24, "amx_tile"),
        F(0x7, 0, EDX, 25, "amx_int8"), F(0x7, 0, EDX, 26, "spec_ctrl"), F(0x7, 0, EDX, 27, "intel_stibp"),
        F(0x7, 0, EDX, 28, "flush_l1d"), F(0x7, 0, EDX, 29, "arch_capabilities"),
        F(0x7, 0, EDX, 30, "core_capabilities"), F(0x7, 0, EDX, 31, "spec_ctrl_ssbd"),
        F(0xD, 1, EAX, 0, "xsaveopt"), F(0xD, 1, EAX, 1, "xsavec"), F(0xD, 1, EAX, 2, "xgetbv1"),
        F(0xD, 1, EAX, 3, "xsaves"), F(0xD, 1, EAX, 4, "xfd"),
        W(0xD, 1, EBX, 0, 32, "xsave_size_xcr0_xss"),
        W(0xD, 1, ECX, 0, 32, "xss_supported_low"), W(0xD, 1, EDX, 0, 32, "xss_supported_high"),
        W(0x80000000, 0, EAX, 0, 32, "max_extended_leaf"),
        F(0x80000001, 0, ECX, 0, "lahf_lm"), F(0x80000001, 0, ECX, 1, "cmp_legacy"),
        F(0x80000001, 0, ECX, 2, "svm"), F(0x80000001, 0, ECX, 3, "extapic"),
        F(0x80000001, 0, ECX, 4, "cr8_legacy"), F(0x80000001, 0, ECX, 5, "abm"),
        F(0x80000001, 0, ECX, 6, "sse4a"), F(0x80000001, 0, ECX, 7, "misalignsse"),
        F(0x80000001, 0, ECX, 8, "3dnowprefetch"), F(0x80000001, 0, ECX, 9, "osvw"),
        F(0x80000001, 0, ECX, 10, "ibs"), F(0x80000001, 0, ECX, 11, "xop"),
        F(0x80000001, 0, ECX, 12, "skinit"), F(0x80000001, 0, ECX, 13, "wdt"),
        F(0x80000001, 0, ECX, 15, "lwp"), F(0x80000001, 0, ECX, 16, "fma4"),
        F(0x80000001, 0, ECX, 17, "tce"), F(0x80000001, 0, ECX, 19, "nodeid_msr"),
        F(0x80000001, 0, ECX, 21, "tbm"), F(0x80000001, 0, ECX, 22, "topoext"),
        F(0x80000001, 0, ECX, 23, "perfctr_core"), F(0x80000001, 0, ECX, 24, "perfctr_nb"),
        F(0x80000001, 0, ECX, 26, "bpext"), F(0x80000001, 0, ECX, 27, "ptsc"),
        F(0x80000001, 0, ECX, 28, "perfctr_llc"), F(0x80000001, 0, ECX, 29, "mwaitx"),
        F(0x80000001, 0, EDX, 11, "syscall"), F(0x80000001, 0, EDX, 19, "mp"), F(0x80000001, 0, EDX, 20, "nx"),
        F(0x80000001, 0, EDX, 22, "mmxext"), F(0x80000001, 0, EDX, 25, "fxsr_opt"),
        F(0x80000001, 0, EDX, 26, "pdpe1gb"), F(0x80000001, 0, EDX, 27, "rdtscp"), F(0x80000001, 0, EDX, 29, "lm"),
        F(0x80000001, 0, EDX, 30, "3dnowext"), F(0x80000001, 0, EDX, 31, "3dnow"),
        W(0x80000008, 0, EAX, 0, 8, "maxphyaddr"), W(0x80000008, 0, EAX, 8, 8, "virtual_address_bits"),
        W(0x80000008, 0, EAX, 16, 8, "guest_phys_address_bits"),
        F(0x80000008, 0, EBX, 0, "clzero"), F(0x80000008, 0, EBX, 1, "irperf"),
        F(0x80000008, 0, EBX, 2, "xsaveerptr"), F(0x80000008, 0, EBX, 4, "rdpru"),
        F(0x80000008, 0, EBX, 9, "wbnoinvd"), F(0x80000008, 0, EBX, 12, "amd_ibpb"),
        F(0x80000008, 0, EBX, 14, "amd_ibrs"), F(0x80000008, 0, EBX, 15, "amd_stibp"),
        F(0x80000008, 0, EBX, 16, "ibrs_always_on"), F(0x80000008, 0, EBX, 17, "amd_stibp_always_on"),
        F(0x80000008, 0, EBX, 18, "amd_ibrs_preferred"), F(0x80000008, 0, EBX, 19, "amd_ibrs_same_mode"),
        F(0x80000008, 0, EBX, 23, "amd_ppin"), F(0x80000008, 0, EBX, 24, "amd_ssbd"),
        F(0x80000008, 0, EBX, 25, "virt_ssbd"), F(0x80000008, 0, EBX, 26, "amd_ssb_no"),
        F(0x80000008, 0, EBX, 27, "cppc"), F(0x80000008, 0, EBX, 28, "amd_psfd"),
        W(0x80000008, 0, ECX, 0, 8, "core_count_minus_one"), W(0x80000008, 0, ECX, 12, 4, "apic_id_size"),
        W(0x8000000A, 0, EAX, 0, 8, "svm_revision"), W(0x8000000A, 0, EBX, 0, 32, "nasid"),
        F(0x8000000A, 0, EDX, 0, "npt"), F(0x8000000A, 0, EDX, 1, "lbrv"), F(0x8000000A, 0, EDX, 2, "svm_lock"),
        F(0x8000000A, 0, EDX, 3, "nrip_save"), F(0x8000000A, 0, EDX, 4, "tsc_scale"),
        F(0x8000000A, 0, EDX, 5, "vmcb_clean"), F(0x8000000A, 0, EDX, 6, "flushbyasid"),
        F(0x8000000A, 0, EDX, 7, "decodeassists"), F(0x8000000A, 0, EDX, 10, "pausefilter"),
        F(0x8000000A, 0, EDX, 12, "pfthreshold"), F(0x8000000A, 0, EDX, 13, "avic"),
        F(0x8000000A, 0, EDX, 15, "v_vmsave_vmload"), F(0x8000000A, 0, EDX, 16, "vgif"),
        F(0x8000000A, 0, EDX, 17, "gmet"), F(0x8000000A, 0, EDX, 18, "x2avic"),
        F(0x8000000A, 0, EDX, 19, "sss_check"), F(0x8000000A, 0, EDX, 20, "v_spec_ctrl"),
        F(0x8000000A, 0, EDX, 21, "rogpt"), F(0x8000000A, 0, EDX, 24, "host_mce_override"),
        F(0x8000000A, 0, EDX, 25, "tlbictl"), F(0x8000000A, 0, EDX, 26, "vnmi"),
        F(0x8000000A, 0, EDX, 27, "ibs_virt"), F(0x8000000A, 0, EDX, 28, "ext_lvt_offset_fault_chg"),
        F(0x8000000A, 0, EDX, 29, "vmcb_addr_chk"), F(0x8000000A, 0, EDX, 30, "bus_lock_threshold"),
};
#undef F
#undef W

typedef struct VmxMsrBit {
        uint32_t msr;
        unsigned bit;
        const char *name;
} VmxMsrBit;

/* The allowed-1 half (bits 63:32) of the control MSRs, and the capability MSRs' flags. The TRUE_*
 * MSRs (0x48D-0x490) share the names of their counterparts. */
static const VmxMsrBit vmx_msr_bits[] = {
        { 0x480, 48, "vmx_basic_32bit_addresses" }, { 0x480, 49, "vmx_dual_monitor" },
        { 0x480, 54, "vmx_ins_outs_info" }, { 0x480, 55, "vmx_true_ctls" }, { 0x480, 56, "vmx_no_hw_errcode" },
        { 0x481, 32 + 0, "vmx_ext_intr_exiting" }, { 0x481, 32 + 3, "vmx_nmi_exiting" },
        { 0x481, 32 + 5, "vnmi" }, { 0x481, 32 + 6, "preemption_timer" }, { 0x481, 32 + 7, "posted_intr" },
        { 0x482, 32 + 2, "vmx_intr_window_exiting" }, { 0x482, 32 + 3, "vmx_tsc_offsetting" },
        { 0x482, 32 + 7, "vmx_hlt_exiting" }, { 0x482, 32 + 9, "vmx_invlpg_exiting" },
        { 0x482, 32 + 10, "vmx_mwait_exiting" }, { 0x482, 32 + 11, "vmx_rdpmc_exiting" },
        { 0x482, 32 + 12, "vmx_rdtsc_exiting" }, { 0x482, 32 + 15, "vmx_cr3_load_exiting" },
        { 0x482, 32 + 16, "vmx_cr3_store_exiting" }, { 0x482, 32 + 17, "vmx_tertiary_controls" },
        { 0x482, 32 + 19, "vmx_cr8_load_exiting" }, { 0x482, 32 + 20, "vmx_cr8_store_exiting" },
        { 0x482, 32 + 21, "tpr_shadow" }, { 0x482, 32 + 22, "vmx_nmi_window_exiting" },
        { 0x482, 32 + 23, "vmx_mov_dr_exiting" }, { 0x482, 32 + 24, "vmx_unconditional_io_exiting" },
        { 0x482, 32 + 25, "vmx_io_bitmaps" }, { 0x482, 32 + 27, "vmx_monitor_trap_flag" },
        { 0x482, 32 + 28, "vmx_msr_bitmaps" }, { 0x482, 32 + 29, "vmx_monitor_exiting" },
        { 0x482, 32 + 30, "vmx_pause_exiting" }, { 0x482, 32 + 31, "vmx_secondary_controls" },
        { 0x483, 32 + 2, "vmx_exit_save_debug_controls" }, { 0x483, 32 + 9, "vmx_exit_host_addr_space_size" },
        { 0x483, 32 + 12, "vmx_exit_load_perf_global_ctrl" }, { 0x483, 32 + 15, "vmx_exit_ack_intr_on_exit" },
        { 0x483, 32 + 18, "vmx_exit_save_pat" }, { 0x483, 32 + 19, "vmx_exit_load_pat" },
        { 0x483, 32 + 20, "vmx_exit_save_efer" }, { 0x483, 32 + 21, "vmx_exit_load_efer" },
        { 0x483, 32 + 22, "vmx_exit_save_preemption_timer" }, { 0x483, 32 + 23, "vmx_exit_clear_bndcfgs" },
        { 0x483, 32 + 24, "vmx_exit_conceal_pt" }, { 0x483, 32 + 25, "vmx_exit_clear_rtit_ctl" },
        { 0x483, 32 + 28, "vmx_exit_load_cet_state" },
        { 0x484, 32 + 2, "vmx_entry_load_debug_controls" }, { 0x484, 32 + 9, "vmx_entry_ia32e_mode" },
        { 0x484, 32 + 10, "vmx_entry_smm" }, { 0x484, 32 + 13, "vmx_entry_load_perf_global_ctrl" },
        { 0x484, 32 + 14, "vmx_entry_load_pat" }, { 0x484, 32 + 15, "vmx_entry_load_efer" },
        { 0x484, 32 + 16, "vmx_entry_load_bndcfgs" }, { 0x484, 32 + 17, "vmx_entry_conceal_pt" },
        { 0x484, 32 + 18, "vmx_entry_load_rtit_ctl" }, { 0x484, 32 + 20, "vmx_entry_load_cet_state" },
        { 0x485, 5, "vmx_misc_store_lma" }, { 0x485, 6, "vmx_misc_activity_hlt" },
        { 0x485, 7, "vmx_misc_activity_shutdown" }, { 0x485, 8, "vmx_misc_activity_wait_sipi" },
        { 0x485, 14, "vmx_misc_intel_pt" }, { 0x485, 15, "vmx_misc_rdmsr_in_smm" },
        { 0x485, 28, "vmx_misc_smm_monitor_ctl" }, { 0x485, 29, "vmx_misc_vmwrite_any_field" },
        { 0x485, 30, "vmx_misc_zero_len_ins" },
        { 0x48B, 32 + 0, "flexpriority" }, { 0x48B, 32 + 1, "ept" }, { 0x48B, 32 + 2, "vmx_desc_exiting" },
        { 0x48B, 32 + 3, "vmx_rdtscp" }, { 0x48B, 32 + 4, "vmx_virtual_x2apic" }, { 0x48B, 32 + 5, "vpid" },
        { 0x48B, 32 + 6, "vmx_wbinvd_exiting" }, { 0x48B, 32 + 7, "vmx_unrestricted_guest" },
        { 0x48B, 32 + 8, "vmx_apic_register_virt" }, { 0x48B, 32 + 9, "vmx_virtual_intr_delivery" },
        { 0x48B, 32 + 10, "vmx_ple" }, { 0x48B, 32 + 11, "vmx_rdrand_exiting" },
        { 0x48B, 32 + 12, "vmx_invpcid" }, { 0x48B, 32 + 13, "vmx_vmfunc" },
        { 0x48B, 32 + 14, "vmx_shadow_vmcs" }, { 0x48B, 32 + 15, "vmx_encls_exiting" },
        { 0x48B, 32 + 16, "vmx_rdseed_exiting" }, { 0x48B, 32 + 17, "pml" },
        { 0x48B, 32 + 18, "vmx_ept_violation_ve" }, { 0x48B, 32 + 19, "vmx_conceal_pt" },
        { 0x48B, 32 + 20, "vmx_xsaves" }, { 0x48B, 32 + 22, "vmx_ept_mode_based_exec" },
        { 0x48B, 32 + 23, "vmx_ept_subpage_write" }, { 0x48B, 32 + 24, "vmx_pt_guest_phys" },
        { 0x48B, 32 + 25, "vmx_tsc_scaling" }, { 0x48B, 32 + 26, "vmx_user_wait_pause" },
        { 0x48B, 32 + 28, "vmx_enclv_exiting" }, { 0x48B, 32 + 31, "vmx_bus_lock_detection" },
        { 0x48C, 0, "ept_execute_only" }, { 0x48C, 6, "ept_page_walk_4" }, { 0x48C, 7, "ept_page_walk_5" },
        { 0x48C, 8, "ept_uc_memtype" }, { 0x48C, 14, "ept_wb_memtype" }, { 0x48C, 16, "ept_2mb_pages" },
        { 0x48C, 17, "ept_1gb_pages" }, { 0x48C, 20, "invept" }, { 0x48C, 21, "ept_ad" },
        { 0x48C, 22, "ept_advanced_exit_info" }, { 0x48C, 23, "ept_supervisor_shadow_stack" },
        { 0x48C, 25, "invept_single_context" }, { 0x48C, 26, "invept_all_context" },
        { 0x48C, 32, "invvpid" }, { 0x48C, 40, "invvpid_individual_addr" },
        { 0x48C, 41, "invvpid_single_context" }, { 0x48C, 42, "invvpid_all_context" },
        { 0x48C, 43, "invvpid_single_context_retain_globals" },
        { 0x491, 0, "vmx_vmfunc_eptp_switching" },
};

/* The cpuid and msr drivers take the offset as a register number, so adjacent leaves or MSRs do not
 * overlap. A regular file standing in for them in a test tree can't do that: there each record sits
 * at number * record size. */
static int fake_file_scale(int fd, size_t record, uint64_t *offset) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISREG(st.st_mode)) {
                if (*offset > INT64_MAX / record)
                        return -EINVAL;
                *offset *= record;
        }
        return 0;
}

int cpuid_read_dev(const char *sysroot, unsigned cpu, uint32_t leaf, uint32_t subleaf, CpuidRegs *ret) {
        char path[4096];
        uint32_t buf[4];
        int r = sysroot_path(path, sizeof path, sysroot, "/dev/cpu/%u/cpuid", cpu);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        /* The cpuid driver takes the leaf from the low and the subleaf from the high 32 bits of the offset. */
        uint64_t offset = (uint64_t) leaf | ((uint64_t) subleaf << 32);
        r = fake_file_scale(fd, sizeof buf, &offset);
        if (r < 0)
                return r;
        ssize_t n = pread(fd, buf, sizeof buf, (off_t) offset);
        if (n < 0)
                return negative_errno();
        if (n != (ssize_t) sizeof buf)
                return -EIO;
        *ret = (CpuidRegs){ buf[0], buf[1], buf[2], buf[3] };
        return 0;
}

int cpuid_read_pinned(unsigned cpu, uint32_t leaf, uint32_t subleaf, CpuidRegs *ret) {
        cpu_set_t old, want;
        unsigned a, b, c, d;

        if (cpu >= CPU_SETSIZE)
                return -EINVAL;
        if (sched_getaffinity(0, sizeof old, &old) < 0)
                return negative_errno();
        CPU_ZERO(&want);
        CPU_SET(cpu, &want);
        if (sched_setaffinity(0, sizeof want, &want) < 0)
                return negative_errno();
        int r = 0;
        if (sched_getcpu() != (int) cpu)
                r = -EAGAIN;
        else {
                __cpuid_count(leaf, subleaf, a, b, c, d);
                if (sched_getcpu() != (int) cpu)
                        r = -EAGAIN;
        }
        if (sched_setaffinity(0, sizeof old, &old) < 0 && r == 0)
                r = negative_errno();
        if (r < 0)
                return r;
        *ret = (CpuidRegs){ a, b, c, d };
        return 0;
}

int msr_read_dev(const char *sysroot, unsigned cpu, uint32_t msr, uint64_t *ret) {
        char path[4096];
        uint64_t v;
        int r = sysroot_path(path, sizeof path, sysroot, "/dev/cpu/%u/msr", cpu);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        uint64_t offset = msr;
        r = fake_file_scale(fd, sizeof v, &offset);
        if (r < 0)
                return r;
        ssize_t n = pread(fd, &v, sizeof v, (off_t) offset);
        if (n < 0)
                return negative_errno();
        if (n != (ssize_t) sizeof v)
                return -EIO;
        *ret = v;
        return 0;
}

CpuVendor cpuid_vendor(const CpuidRegs *leaf0) {
        char id[13];
        memcpy(id, &leaf0->ebx, 4);
        memcpy(id + 4, &leaf0->edx, 4);
        memcpy(id + 8, &leaf0->ecx, 4);
        id[12] = 0;
        if (streq(id, "GenuineIntel"))
                return CPU_VENDOR_INTEL;
        /* Hygon's Dhyana runs kvm_amd. */
        if (streq(id, "AuthenticAMD") || streq(id, "HygonGenuine"))
                return CPU_VENDOR_AMD;
        return CPU_VENDOR_UNKNOWN;
}

const char *cpu_vendor_to_string(CpuVendor v) {
        switch (v) {
        case CPU_VENDOR_INTEL: return "intel";
        case CPU_VENDOR_AMD: return "amd";
        case CPU_VENDOR_UNKNOWN: break;
        }
        return "unknown";
}

static int cpuid_read_one(const char *sysroot, unsigned cpu, uint32_t leaf, uint32_t subleaf, bool allow_pinned,
                          CpuidSource *source, CpuidRegs *ret) {
        int r = cpuid_read_dev(sysroot, cpu, leaf, subleaf, ret);
        if (r >= 0) {
                *source = CPUID_SOURCE_DEV;
                return r;
        }
        if (r != -ENOENT || !allow_pinned)
                return r;
        *source = CPUID_SOURCE_PINNED;
        return cpuid_read_pinned(cpu, leaf, subleaf, ret);
}

int cpu_snapshot_read(const char *sysroot, unsigned cpu, CpuVendor vendor, bool allow_pinned, CpuSnapshot *ret) {
        CpuSnapshot s = { .cpu = cpu };
        uint32_t max_basic = 0, max_ext = 0;

        for (size_t i = 0; i < CPUID_N_LEAVES; i++) {
                uint32_t leaf = cpuid_leaves[i].leaf;
                bool ext = leaf >= 0x80000000u;
                if (leaf != 0 && leaf != 0x80000000u && leaf > (ext ? max_ext : max_basic))
                        continue; /* beyond the max leaf the CPU answers with unrelated data */
                int r = cpuid_read_one(sysroot, cpu, leaf, cpuid_leaves[i].subleaf, allow_pinned, &s.source, &s.regs[i]);
                if (r < 0)
                        return r;
                s.present[i] = true;
                if (leaf == 0)
                        max_basic = s.regs[i].eax;
                else if (leaf == 0x80000000u)
                        max_ext = s.regs[i].eax;
        }

        if (vendor == CPU_VENDOR_INTEL) {
                for (unsigned i = 0; i < VMX_N_MSRS; i++) {
                        int r = msr_read_dev(sysroot, cpu, VMX_MSR_FIRST + i, &s.msrs[i]);
                        if (r == -EIO)
                                continue; /* this CPU lacks the MSR: the read faults */
                        if (r < 0) {
                                s.msr_error = r;
                                break;
                        }
                        s.msr_present[i] = true;
                }
                s.msrs_read = s.msr_error == 0;
        }
        *ret = s;
        return 0;
}

static int leaf_index(uint32_t leaf, uint32_t subleaf) {
        for (int i = 0; i < CPUID_N_LEAVES; i++)
                if (cpuid_leaves[i].leaf == leaf && cpuid_leaves[i].subleaf == subleaf)
                        return i;
        return -1;
}

void cpu_snapshot_mask(CpuSnapshot *s) {
        int i = leaf_index(0x1, 0);
        s->regs[i].ebx &= 0x00ffffffu; /* initial APIC ID */
        i = leaf_index(0xD, 1);
        s->regs[i].ebx = 0; /* XSAVE size for the XCR0|XSS this CPU runs with right now */
}

static uint32_t reg_get(const CpuidRegs *r, unsigned reg) {
        switch (reg) {
        case EAX: return r->eax;
        case EBX: return r->ebx;
        case ECX: return r->ecx;
        default: return r->edx;
        }
}

const char *cpuid_bit_name(uint32_t leaf, uint32_t subleaf, unsigned reg, unsigned bit, unsigned *ret_lo,
                           unsigned *ret_width) {
        for (size_t i = 0; i < ELEMENTSOF(cpuid_fields); i++) {
                const CpuidField *f = &cpuid_fields[i];
                if (f->leaf == leaf && f->subleaf == subleaf && f->reg == reg && bit >= f->lo && bit < f->lo + f->width) {
                        if (ret_lo)
                                *ret_lo = f->lo;
                        if (ret_width)
                                *ret_width = f->width;
                        return f->name;
                }
        }
        return NULL;
}

const char *vmx_msr_bit_name(uint32_t msr, unsigned bit) {
        if (msr >= 0x48D && msr <= 0x490)
                msr -= 0x48D - 0x481; /* TRUE_PINBASED.. TRUE_ENTRY use the controls' layout */
        for (size_t i = 0; i < ELEMENTSOF(vmx_msr_bits); i++)
                if (vmx_msr_bits[i].msr == msr && vmx_msr_bits[i].bit == bit)
                        return vmx_msr_bits[i].name;
        return NULL;
}

static void leaf_label(char *buf, size_t n, uint32_t leaf, uint32_t subleaf) {
        if (leaf == 0x7 || leaf == 0xD)
                snprintf(buf, n, "0x%" PRIx32 ".%" PRIu32, leaf, subleaf);
        else
                snprintf(buf, n, "0x%" PRIx32, leaf);
}

static int diff_append(CpuDifference **diffs, size_t *n, const CpuDifference *d) {
        CpuDifference *a = realloc(*diffs, (*n + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        a[(*n)++] = *d;
        *diffs = a;
        return 0;
}

int cpu_snapshot_compare(const CpuSnapshot *target, const CpuSnapshot *other, CpuDifference **diffs, size_t *n_diffs) {
        int added = 0;

        for (size_t i = 0; i < CPUID_N_LEAVES; i++) {
                CpuidRegs zero = { 0 };
                const CpuidRegs *t = target->present[i] ? &target->regs[i] : &zero;
                const CpuidRegs *o = other->present[i] ? &other->regs[i] : &zero;
                for (unsigned reg = EAX; reg <= EDX; reg++) {
                        uint32_t tv = reg_get(t, reg), ov = reg_get(o, reg), x = tv ^ ov;
                        while (x) {
                                unsigned bit = __builtin_ctz(x), lo = bit, width = 1;
                                const char *name = cpuid_bit_name(cpuid_leaves[i].leaf, cpuid_leaves[i].subleaf, reg,
                                                                  bit, &lo, &width);
                                CpuDifference d = { .cpu = other->cpu, .bit = lo, .width = width };
                                uint32_t mask = width >= 32 ? 0xffffffffu : ((1u << width) - 1);
                                leaf_label(d.leaf, sizeof d.leaf, cpuid_leaves[i].leaf, cpuid_leaves[i].subleaf);
                                strscpy(d.reg, sizeof d.reg, reg_names[reg]);
                                if (name)
                                        strscpy(d.feature, sizeof d.feature, name);
                                else
                                        snprintf(d.feature, sizeof d.feature, "%s.%s[%u]", d.leaf, d.reg, bit);
                                d.target_value = (tv >> lo) & mask;
                                d.value = (ov >> lo) & mask;
                                if (diff_append(diffs, n_diffs, &d) < 0)
                                        return -ENOMEM;
                                added++;
                                x &= ~(mask << lo);
                        }
                }
        }

        if (target->msrs_read && other->msrs_read)
                for (unsigned i = 0; i < VMX_N_MSRS; i++) {
                        uint64_t tv = target->msr_present[i] ? target->msrs[i] : 0;
                        uint64_t ov = other->msr_present[i] ? other->msrs[i] : 0;
                        uint64_t x = tv ^ ov;
                        while (x) {
                                unsigned bit = __builtin_ctzll(x);
                                uint32_t msr = VMX_MSR_FIRST + i;
                                const char *name = vmx_msr_bit_name(msr, bit);
                                CpuDifference d = { .cpu = other->cpu, .bit = bit, .width = 1 };
                                snprintf(d.leaf, sizeof d.leaf, "msr 0x%" PRIx32, msr);
                                strscpy(d.reg, sizeof d.reg, "msr");
                                if (name)
                                        strscpy(d.feature, sizeof d.feature, name);
                                else
                                        snprintf(d.feature, sizeof d.feature, "msr_0x%" PRIx32 "[%u]", msr, bit);
                                d.target_value = (tv >> bit) & 1;
                                d.value = (ov >> bit) & 1;
                                if (diff_append(diffs, n_diffs, &d) < 0)
                                        return -ENOMEM;
                                added++;
                                x &= x - 1;
                        }
                }
        return added;
}

int cpu_list_parse(const char *s, unsigned **ret, size_t *ret_n) {
        _cleanup_free_ char *copy = strdup(s);
        _cleanup_free_ unsigned *cpus = NULL;
        size_t n = 0;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(strstrip(copy), ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                unsigned a, b;
                char *dash = strchr(tok, '-');
                if (dash) {
                        *dash = 0;
                        if (safe_atou(tok, &a) < 0 || safe_atou(dash + 1, &b) < 0 || b < a)
                                return -EINVAL;
                } else if (safe_atou(tok, &a) < 0)
                        return -EINVAL;
                else
                        b = a;
                if (b >= 65536)
                        return -ERANGE;
                unsigned *m = realloc(cpus, (n + (b - a) + 1) * sizeof *m);
                if (!m)
                        return -ENOMEM;
                cpus = m;
                for (unsigned c = a; c <= b; c++)
                        cpus[n++] = c;
        }
        if (n == 0)
                return -EINVAL;
        *ret = TAKE_PTR(cpus);
        *ret_n = n;
        return 0;
}

int online_cpus_read(const char *sysroot, unsigned **ret, size_t *ret_n) {
        char path[4096];
        _cleanup_free_ char *line = NULL;
        int r = sysroot_path(path, sizeof path, sysroot, "/sys/devices/system/cpu/online");
        if (r < 0)
                return r;
        r = read_one_line_file(path, &line);
        if (r < 0)
                return r;
        return cpu_list_parse(line, ret, ret_n);
}
