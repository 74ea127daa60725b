/* Every vCPU says hello over COM1; vCPU 0 waits for all of them and leaves through the debug-exit
 * port with the code given as "exit=N" on the command line (default 0). With "wait=1", vCPU 0 first
 * waits for one byte of console input and echoes it ("got X"). With "halt=1" vCPU 0 halts for ever
 * instead of leaving: an idle VM for density measurements. */
#include "guest.h"

static volatile uint64_t arrived;

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        uint64_t expected = n_vcpus < GUEST_MAX_VCPUS ? n_vcpus : GUEST_MAX_VCPUS;

        if (vcpu == 0 && cmdline_get(boot_params, "wait", 0)) {
                while (!(inb(COM1 + 5) & 0x01))
                        cpu_relax();
                puts_raw("got ");
                putc_raw((char) inb(COM1));
                puts_raw("\n");
        }
        print_lock();
        puts_raw("hello from vcpu ");
        put_dec(vcpu);
        puts_raw(" of ");
        put_dec(n_vcpus);
        puts_raw("\n");
        print_unlock();
        __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
        if (vcpu != 0)
                halt_forever();
        while (__atomic_load_n(&arrived, __ATOMIC_SEQ_CST) < expected)
                cpu_relax();
        print_lock();
        puts_raw("hello: all ");
        put_dec(expected);
        puts_raw(" vcpus ran\n");
        print_unlock();
        if (cmdline_get(boot_params, "halt", 0))
                halt_forever();
        debug_exit((uint8_t) cmdline_get(boot_params, "exit", 0));
}
