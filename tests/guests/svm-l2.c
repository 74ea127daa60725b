/* An L1 hypervisor in miniature, for nested state tests (tests/hostvm/test-nested.sh): on a vCPU with
 * SVM exposed (spec cpu.nested: true, kvm_amd nested=1) vCPU 0 turns on EFER.SVME, points
 * VM_HSAVE_PA at a page, builds a VMCB for an L2 that runs on L1's own page tables and VMRUNs it.
 * The L2 counts in memory, prints "l2 tick N" every "every=N" iterations (default 1000000) and
 * executes VMMCALL after "loops=N" iterations (default 20000000); L1 intercepts VMMCALL and prints
 * "svm-l2: vmexit code=0x81 counter=N" (then "svm-l2: done" and halts). At the start L1 prints
 * "svm-l2: vmcb=0x... hsave=0x...": the VMCB address KVM_GET_NESTED_STATE must report while the L2
 * runs. Without SVM it prints "svm-l2: no svm" and halts. */
#include "guest.h"

#define MSR_EFER 0xc0000080
#define MSR_VM_HSAVE_PA 0xc0010117
#define EFER_SVME (1ULL << 12)
#define VMEXIT_VMMCALL 0x81

/* VMCB control area offsets (AMD APM vol. 2, appendix B) */
#define VMCB_INTERCEPT_MISC1 0x00c /* bit 24 HLT, bit 31 shutdown */
#define VMCB_INTERCEPT_MISC2 0x010 /* bit 0 VMRUN (required), bit 1 VMMCALL */
#define VMCB_ASID 0x058
#define VMCB_VINTR 0x060           /* bit 24 V_INTR_MASKING */
#define VMCB_EXITCODE 0x070
/* state save area */
#define VMCB_ES 0x400
#define VMCB_CS 0x410
#define VMCB_SS 0x420
#define VMCB_DS 0x430
#define VMCB_GDTR 0x460
#define VMCB_IDTR 0x480
#define VMCB_CPL 0x4cb
#define VMCB_EFER 0x4d0
#define VMCB_CR4 0x548
#define VMCB_CR3 0x550
#define VMCB_CR0 0x558
#define VMCB_DR7 0x560
#define VMCB_DR6 0x568
#define VMCB_RFLAGS 0x570
#define VMCB_RIP 0x578
#define VMCB_RSP 0x5d8
#define VMCB_RAX 0x5f8
#define VMCB_G_PAT 0x668

static uint8_t vmcb[4096] __attribute__((aligned(4096)));
static uint8_t hsave[4096] __attribute__((aligned(4096)));
static uint8_t l2_stack[8192] __attribute__((aligned(4096)));
static volatile uint64_t l2_counter;
static uint64_t l2_loops, l2_every;

static inline uint64_t rdmsr(uint32_t msr) {
        uint32_t lo, hi;
        __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
        return ((uint64_t) hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v) {
        __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t) v), "d"((uint32_t) (v >> 32)));
}
static void put8(uint32_t off, uint8_t v) { vmcb[off] = v; }
static void put16(uint32_t off, uint16_t v) { *(volatile uint16_t *) &vmcb[off] = v; }
static void put32(uint32_t off, uint32_t v) { *(volatile uint32_t *) &vmcb[off] = v; }
static void put64(uint32_t off, uint64_t v) { *(volatile uint64_t *) &vmcb[off] = v; }
static uint64_t get64(uint32_t off) { return *(volatile uint64_t *) &vmcb[off]; }

static void segment(uint32_t off, uint16_t selector, uint16_t attrib) {
        put16(off, selector);
        put16(off + 2, attrib);
        put32(off + 4, 0xffffffff);
        put64(off + 8, 0);
}

static int has_svm(void) {
        uint32_t a, b, c, d;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000001), "c"(0));
        return (c >> 2) & 1;
}

__attribute__((noreturn)) static void l2_main(void) {
        for (;;) {
                uint64_t n = ++l2_counter;
                if (n % l2_every == 0) {
                        puts_raw("l2 tick ");
                        put_dec(n / l2_every);
                        puts_raw("\n");
                }
                if (n >= l2_loops)
                        __asm__ volatile("vmmcall" ::: "memory");
        }
}

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        struct __attribute__((packed)) {
                uint16_t limit;
                uint64_t base;
        } gdtr, idtr;
        uint64_t cr0, cr3, cr4, rax;
        uint16_t cs, ss, ds;

        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        l2_loops = cmdline_get(boot_params, "loops", 20000000);
        l2_every = cmdline_get(boot_params, "every", 1000000) ?: 1;
        if (!has_svm()) {
                puts_raw("svm-l2: no svm\n");
                halt_forever();
        }
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
        wrmsr(MSR_VM_HSAVE_PA, (uint64_t) (uintptr_t) hsave);

        __asm__ volatile("mov %%cr0, %0; mov %%cr3, %1; mov %%cr4, %2" : "=r"(cr0), "=r"(cr3), "=r"(cr4));
        __asm__ volatile("mov %%cs, %0; mov %%ss, %1; mov %%ds, %2" : "=r"(cs), "=r"(ss), "=r"(ds));
        __asm__ volatile("sgdt %0; sidt %1" : "=m"(gdtr), "=m"(idtr));

        put32(VMCB_INTERCEPT_MISC1, (1u << 24) | (1u << 31));
        put32(VMCB_INTERCEPT_MISC2, (1u << 0) | (1u << 1));
        put32(VMCB_ASID, 1);
        put32(VMCB_VINTR, 1u << 24);
        segment(VMCB_CS, cs, 0x029b); /* present, code, readable, accessed, L */
        segment(VMCB_SS, ss, 0x0c93); /* present, data, writable, accessed, D/B, G */
        segment(VMCB_DS, ds, 0x0c93);
        segment(VMCB_ES, ds, 0x0c93);
        put32(VMCB_GDTR + 4, gdtr.limit);
        put64(VMCB_GDTR + 8, gdtr.base);
        put32(VMCB_IDTR + 4, idtr.limit);
        put64(VMCB_IDTR + 8, idtr.base);
        put8(VMCB_CPL, 0);
        put64(VMCB_EFER, rdmsr(MSR_EFER));
        put64(VMCB_CR0, cr0);
        put64(VMCB_CR3, cr3);
        put64(VMCB_CR4, cr4);
        put64(VMCB_DR6, 0xffff0ff0);
        put64(VMCB_DR7, 0x400);
        put64(VMCB_RFLAGS, 0x2);
        put64(VMCB_RIP, (uint64_t) (uintptr_t) l2_main);
        put64(VMCB_RSP, (uint64_t) (uintptr_t) (l2_stack + sizeof l2_stack - 8));
        put64(VMCB_G_PAT, 0x0007040600070406ULL);

        print_lock();
        puts_raw("svm-l2: vmcb=");
        put_hex((uint64_t) (uintptr_t) vmcb);
        puts_raw(" hsave=");
        put_hex((uint64_t) (uintptr_t) hsave);
        puts_raw(" loops=");
        put_dec(l2_loops);
        puts_raw("\n");
        print_unlock();

        /* #VMEXIT restores only RAX, RSP and RIP of L1: every other register holds L2's values */
        rax = (uint64_t) (uintptr_t) vmcb;
        __asm__ volatile("push %%rbp\n\t"
                         "push %%rbx\n\t"
                         "push %%r12\n\t"
                         "push %%r13\n\t"
                         "push %%r14\n\t"
                         "push %%r15\n\t"
                         "vmrun\n\t"
                         "stgi\n\t"
                         "pop %%r15\n\t"
                         "pop %%r14\n\t"
                         "pop %%r13\n\t"
                         "pop %%r12\n\t"
                         "pop %%rbx\n\t"
                         "pop %%rbp"
                         : "+a"(rax)
                         :
                         : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc");

        puts_raw("svm-l2: vmexit code=");
        put_hex(get64(VMCB_EXITCODE));
        puts_raw(" counter=");
        put_dec(l2_counter);
        puts_raw("\n");
        puts_raw(get64(VMCB_EXITCODE) == VMEXIT_VMMCALL && l2_counter == l2_loops ? "svm-l2: done\n" : "svm-l2: unexpected exit\n");
        halt_forever();
}
