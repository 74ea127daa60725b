/* Configuration mechanism #1 for the test guests: bus 0, function 0. */
#pragma once

#include "guest.h"

static inline void outl(uint16_t port, uint32_t v) {
        __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint32_t inl(uint16_t port) {
        uint32_t v;
        __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
        return v;
}
static inline void outw(uint16_t port, uint16_t v) {
        __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint16_t inw(uint16_t port) {
        uint16_t v;
        __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
        return v;
}

static inline void pci_select(unsigned slot, unsigned reg) {
        outl(0xcf8, 0x80000000u | (slot << 11) | (reg & 0xfc));
}
static inline uint32_t pci_read32(unsigned slot, unsigned reg) {
        pci_select(slot, reg);
        return inl(0xcfc);
}
static inline uint16_t pci_read16(unsigned slot, unsigned reg) {
        pci_select(slot, reg);
        return inw((uint16_t) (0xcfc + (reg & 2)));
}
static inline uint8_t pci_read8(unsigned slot, unsigned reg) {
        pci_select(slot, reg);
        return inb((uint16_t) (0xcfc + (reg & 3)));
}
static inline void pci_write32(unsigned slot, unsigned reg, uint32_t v) {
        pci_select(slot, reg);
        outl(0xcfc, v);
}
static inline void pci_write16(unsigned slot, unsigned reg, uint16_t v) {
        pci_select(slot, reg);
        outw((uint16_t) (0xcfc + (reg & 2)), v);
}

/* Fixed-width lowercase hex, no prefix. */
static inline void put_hexw(uint64_t v, int digits) {
        for (int i = digits - 1; i >= 0; i--)
                putc_raw("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}
