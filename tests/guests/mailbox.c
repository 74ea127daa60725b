/* Does memory work the test asks for at run time, so that memslot changes can be checked from inside
 * the guest. vCPU 0 polls a mailbox at guest physical MAILBOX_GPA (identity mapped, in boot RAM below
 * 1 MiB); the test writes it through the VMM's memory.write method:
 *   struct { u64 seq, done, op, gpa, count, pattern, result, value; }
 * It fills op/gpa/count/pattern, then bumps seq (0 in fresh RAM, so a command posted before the guest
 * starts is not lost); the guest runs the op and sets done = seq.
 *   op 1 write: the word at gpa + i*4096 = pattern + i for i < count (one word per page)
 *   op 2 read:  result = how many of those words differ from pattern + i, value = the first word read
 *   op 3 exit:  debug-exit with code pattern & 0xff
 * Reads of a guest physical address with no memslot exit to the VMM as MMIO and read all ones. */
#include "guest.h"

#define MAILBOX_GPA 0x80000
#define OP_WRITE 1
#define OP_READ 2
#define OP_EXIT 3

struct mailbox {
        uint64_t seq, done, op, gpa, count, pattern, result, value;
};

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        volatile struct mailbox *mb = (volatile struct mailbox *) (uintptr_t) MAILBOX_GPA;
        uint64_t seen = 0;

        (void) boot_params;
        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        puts_raw("mailbox: ready\n");
        for (;;) {
                uint64_t seq = __atomic_load_n(&mb->seq, __ATOMIC_ACQUIRE);
                if (seq == seen) {
                        cpu_relax();
                        continue;
                }
                uint64_t op = mb->op, gpa = mb->gpa, count = mb->count, pattern = mb->pattern;
                uint64_t mismatches = 0, first = 0;
                for (uint64_t i = 0; i < count; i++) {
                        volatile uint64_t *word = (volatile uint64_t *) (uintptr_t) (gpa + i * 4096);
                        if (op == OP_WRITE)
                                *word = pattern + i;
                        else if (op == OP_READ) {
                                uint64_t v = *word;
                                if (i == 0)
                                        first = v;
                                mismatches += v != pattern + i;
                        }
                }
                if (op == OP_EXIT)
                        debug_exit((uint8_t) pattern);
                mb->result = mismatches;
                mb->value = first;
                seen = seq;
                __atomic_store_n(&mb->done, seq, __ATOMIC_RELEASE);
        }
}
