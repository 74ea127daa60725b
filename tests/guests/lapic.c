/* Programs vCPU 0's local APIC through its MMIO page and halts, so that the decoded LAPIC state
 * (GET /v1/vms/{id}/vcpus/0/lapic) can be compared with what was written: SVR software-enabled with
 * spurious vector "spurious=N", TPR "tpr=N", a masked periodic timer LVT with vector "timer=N",
 * initial count "count=N" and divide-by-16. Prints "lapic ready" once done. */
#include "guest.h"

#define APIC_MMIO 0xfee00000UL
#define APIC_TPR 0x80
#define APIC_SVR 0xf0
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_DIVIDE 0x3e0
#define APIC_SVR_ENABLE (1u << 8)
#define APIC_LVT_MASKED (1u << 16)
#define APIC_TIMER_PERIODIC (1u << 17)
#define APIC_DIVIDE_16 0x3

static void apic_write(unsigned reg, uint32_t v) {
        *(volatile uint32_t *) (APIC_MMIO + reg) = v;
}

static uint32_t apic_read(unsigned reg) {
        return *(volatile uint32_t *) (APIC_MMIO + reg);
}

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        uint32_t spurious = (uint32_t) cmdline_get(boot_params, "spurious", 0xff) & 0xff;
        uint32_t tpr = (uint32_t) cmdline_get(boot_params, "tpr", 0x20) & 0xff;
        uint32_t timer = (uint32_t) cmdline_get(boot_params, "timer", 0x40) & 0xff;
        uint32_t count = (uint32_t) cmdline_get(boot_params, "count", 0x100000);

        apic_write(APIC_SVR, APIC_SVR_ENABLE | spurious);
        apic_write(APIC_TPR, tpr);
        apic_write(APIC_TIMER_DIVIDE, APIC_DIVIDE_16);
        /* Masked: the timer counts but raises nothing, so IRR stays empty and the state is stable. */
        apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED | APIC_TIMER_PERIODIC | timer);
        apic_write(APIC_TIMER_INITIAL, count);

        print_lock();
        puts_raw("lapic ready svr=");
        put_hex(apic_read(APIC_SVR));
        puts_raw(" tpr=");
        put_hex(apic_read(APIC_TPR));
        puts_raw("\n");
        print_unlock();
        halt_forever();
}
