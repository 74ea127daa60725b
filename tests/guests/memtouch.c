/* Writes one 64-bit pattern word in every 4 KiB page of guest RAM above its own image (RAM from the
 * e820 map in the zero page, below 4 GiB), then reads every word back and sums them. Prints
 * "memtouch: region START-END pages=N", "memtouch: pages=N mismatches=M sum=0x..." and exits through
 * debug-exit with 0 when every page read back what was written, 1 otherwise. */
#include "guest.h"

extern uint8_t _end[];

static uint64_t pattern(uint64_t gpa) {
        return ((gpa >> 12) * 0x9e3779b97f4a7c15ULL) ^ 0xa5a5a5a5a5a5a5a5ULL;
}

static volatile uint64_t *slot(uint64_t gpa) {
        return (volatile uint64_t *) (uintptr_t) (gpa + ((gpa >> 12) & 511) * 8);
}

void guest_main(uint64_t vcpu, const uint8_t *bp, uint64_t n_vcpus) {
        uint8_t n;
        const uint8_t *table;
        uint64_t lowest = ((uint64_t) (uintptr_t) _end + 4095) & ~4095ULL;
        uint64_t pages = 0, mismatches = 0, sum = 0;

        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        if (!bp) {
                puts_raw("memtouch: no zero page, no e820 map\n");
                debug_exit(2);
        }
        n = bp[0x1e8];
        table = bp + 0x2d0;
        for (int pass = 0; pass < 2; pass++)
                for (uint8_t i = 0; i < n; i++) {
                        const uint8_t *e = table + i * 20;
                        uint64_t addr = *(const uint64_t *) e, size = *(const uint64_t *) (e + 8);
                        uint32_t type = *(const uint32_t *) (e + 16);
                        uint64_t start = addr < lowest ? lowest : addr, end = addr + size;
                        if (type != 1 || end <= start || end > (4ULL << 30))
                                continue;
                        if (pass == 0) {
                                print_lock();
                                puts_raw("memtouch: region ");
                                put_hex(start);
                                puts_raw("-");
                                put_hex(end);
                                puts_raw(" pages=");
                                put_dec((end - start) >> 12);
                                puts_raw("\n");
                                print_unlock();
                                for (uint64_t gpa = start; gpa < end; gpa += 4096)
                                        *slot(gpa) = pattern(gpa);
                        } else
                                for (uint64_t gpa = start; gpa < end; gpa += 4096) {
                                        uint64_t v = *slot(gpa);
                                        mismatches += v != pattern(gpa);
                                        sum += v;
                                        pages++;
                                }
                }
        print_lock();
        puts_raw("memtouch: pages=");
        put_dec(pages);
        puts_raw(" mismatches=");
        put_dec(mismatches);
        puts_raw(" sum=");
        put_hex(sum);
        puts_raw("\n");
        print_unlock();
        debug_exit(mismatches ? 1 : 0);
}
