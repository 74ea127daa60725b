/* SPDX-License-Identifier: MIT */
/* COM1: a 16550A UART with FIFOs as far as a Linux console needs (divisor latch, IER/IIR with
 * received-data and THR-empty interrupts, LSR, MCR loopback, scratch). Transmitted bytes go at once
 * to a ring buffer (read back by offset), to every output fd (log file, stdout) and to attached console
 * sockets; console input is queued for RBR. Thread-safe: vCPU threads do I/O, the main thread feeds
 * input and reads the ring. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_RING_SIZE (1U << 20)
#define SERIAL_MAX_CLIENTS 8

typedef struct Serial Serial;
/* Called with the new level of the interrupt line whenever it may have changed. */
typedef void (*SerialIrqFn)(void *userdata, bool level);

int serial_new(size_t ring_size, Serial **ret);
Serial *serial_free(Serial *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Serial *, serial_free);

void serial_set_irq(Serial *s, SerialIrqFn fn, void *userdata);
/* A plain fd (file, tty, pipe) that receives every transmitted byte; the caller keeps ownership. */
int serial_add_output_fd(Serial *s, int fd);
/* A console socket: gets the output (bytes are dropped when it cannot keep up); takes ownership. */
int serial_attach_client(Serial *s, int fd);
void serial_detach_client(Serial *s, int fd);

/* The UART registers, for snapshots (queued input and the output ring are not part of it). */
typedef struct SerialState {
        uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, thr_pending;
} SerialState;
void serial_get_state(Serial *s, SerialState *ret);
void serial_set_state(Serial *s, const SerialState *st);

/* Port access at offset 0..7 from the base; data is 1 byte. */
void serial_io(Serial *s, unsigned offset, bool is_write, uint8_t *data);
/* Queues console input; returns how many bytes were accepted. */
size_t serial_input(Serial *s, const uint8_t *data, size_t len);

/* Up to max bytes of output from offset. When offset has already been overwritten, reading starts at
 * the oldest byte kept, and *ret_offset says where. */
int serial_read_ring(Serial *s, uint64_t offset, size_t max, uint8_t **ret_data, size_t *ret_len,
                     uint64_t *ret_offset, uint64_t *ret_next_offset);
uint64_t serial_output_total(Serial *s);
/* Monotonic time (µs) of the first transmitted byte, 0 while none. */
uint64_t serial_first_byte_usec(Serial *s);
