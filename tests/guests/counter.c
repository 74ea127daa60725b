/* Counts forever on vCPU 0 and prints "tick N" every "every=N" iterations (default 4096), so that a
 * paused VM visibly stops printing and a resumed one goes on where it was. */
#include "guest.h"

static volatile uint64_t counter;

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        uint64_t every = cmdline_get(boot_params, "every", 4096), ticks = 0;

        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        if (!every)
                every = 1;
        for (;;) {
                counter++;
                if (counter % every == 0) {
                        puts_raw("tick ");
                        put_dec(++ticks);
                        puts_raw("\n");
                }
        }
}
