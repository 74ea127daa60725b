#include "guest.h"

static volatile uint32_t print_spin;

void print_lock(void) {
        while (__atomic_exchange_n(&print_spin, 1, __ATOMIC_ACQUIRE))
                cpu_relax();
}

void print_unlock(void) {
        __atomic_store_n(&print_spin, 0, __ATOMIC_RELEASE);
}

void putc_raw(char c) {
        while (!(inb(COM1 + 5) & 0x20))
                cpu_relax();
        outb(COM1, (uint8_t) c);
}

void puts_raw(const char *s) {
        while (*s)
                putc_raw(*s++);
}

void put_hex(uint64_t v) {
        char buf[19];
        int i = 18;
        buf[i] = 0;
        do {
                buf[--i] = "0123456789abcdef"[v & 0xf];
                v >>= 4;
        } while (v);
        buf[--i] = 'x';
        buf[--i] = '0';
        puts_raw(buf + i);
}

void put_dec(uint64_t v) {
        char buf[21];
        int i = 20;
        buf[i] = 0;
        do {
                buf[--i] = (char) ('0' + v % 10);
                v /= 10;
        } while (v);
        puts_raw(buf + i);
}

uint64_t cmdline_get(const uint8_t *boot_params, const char *key, uint64_t def) {
        uint32_t ptr = boot_params ? *(const uint32_t *) (boot_params + 0x228) : 0; /* hdr.cmd_line_ptr */
        const char *s;
        if (!boot_params)
                return def;
        s = (const char *) (uintptr_t) ptr;
        if (!ptr)
                return def;
        while (*s) {
                const char *k = key, *p = s;
                while (*k && *p == *k) {
                        k++;
                        p++;
                }
                if (!*k && *p == '=') {
                        uint64_t v = 0;
                        p++;
                        if (p[0] == '0' && p[1] == 'x') {
                                for (p += 2;; p++) {
                                        if (*p >= '0' && *p <= '9')
                                                v = v * 16 + (uint64_t) (*p - '0');
                                        else if (*p >= 'a' && *p <= 'f')
                                                v = v * 16 + (uint64_t) (*p - 'a' + 10);
                                        else
                                                break;
                                }
                        } else
                                for (; *p >= '0' && *p <= '9'; p++)
                                        v = v * 10 + (uint64_t) (*p - '0');
                        return v;
                }
                while (*s && *s != ' ')
                        s++;
                while (*s == ' ')
                        s++;
        }
        return def;
}

void halt_forever(void) {
        for (;;)
                __asm__ volatile("cli; hlt");
}

void debug_exit(uint8_t code) {
        outb(DEBUG_EXIT_PORT, code);
        halt_forever();
}
