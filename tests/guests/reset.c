/* Asks the keyboard controller for a system reset (0xfe to port 0x64). */
#include "guest.h"

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        (void) boot_params;
        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        puts_raw("reset: pulsing the i8042 reset line\n");
        outb(0x64, 0xfe);
        puts_raw("reset: still running\n");
        debug_exit(0xee);
}
