/* Tiny runtime shared by the test guests: port I/O, the COM1 UART, the debug-exit port. */
#pragma once

#include <stdint.h>

#define GUEST_MAX_VCPUS 8
#define DEBUG_EXIT_PORT 0x501
#define COM1 0x3f8

static inline void outb(uint16_t port, uint8_t v) {
        __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
        uint8_t v;
        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
        return v;
}
static inline void cpu_relax(void) {
        __asm__ volatile("pause");
}

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus);

void print_lock(void);
void print_unlock(void);
void putc_raw(char c);
void puts_raw(const char *s);
void put_hex(uint64_t v);
void put_dec(uint64_t v);
/* Value of "key=N" on the kernel command line (decimal or 0x hex), or def. */
uint64_t cmdline_get(const uint8_t *boot_params, const char *key, uint64_t def);
__attribute__((noreturn)) void debug_exit(uint8_t code);
__attribute__((noreturn)) void halt_forever(void);
