/* SPDX-License-Identifier: MIT */
#include "dev/serial.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "fd-util.h"

#define UART_RBR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_DCD 0x80

#define RX_SIZE 4096
#define MAX_OUTPUT_FDS 4

struct Serial {
        pthread_mutex_t lock;
        uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
        bool thr_pending; /* THR-empty interrupt waiting to be seen */
        uint8_t rx[RX_SIZE];
        size_t rx_head, rx_len;
        bool irq_level;
        SerialIrqFn irq_fn;
        void *irq_userdata;

        uint8_t *ring;
        size_t ring_size;
        uint64_t total;
        uint64_t first_byte_usec;

        int output_fds[MAX_OUTPUT_FDS];
        size_t n_output_fds;
        int clients[SERIAL_MAX_CLIENTS];
};

int serial_new(size_t ring_size, Serial **ret) {
        Serial *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->ring = malloc(ring_size);
        if (!s->ring) {
                free(s);
                return -ENOMEM;
        }
        s->ring_size = ring_size;
        pthread_mutex_init(&s->lock, NULL);
        s->dll = 0x0c; /* 9600 baud */
        s->mcr = 0x08; /* OUT2 */
        for (size_t i = 0; i < SERIAL_MAX_CLIENTS; i++)
                s->clients[i] = -1;
        *ret = s;
        return 0;
}

Serial *serial_free(Serial *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < SERIAL_MAX_CLIENTS; i++)
                safe_close(s->clients[i]);
        pthread_mutex_destroy(&s->lock);
        free(s->ring);
        free(s);
        return NULL;
}

void serial_set_irq(Serial *s, SerialIrqFn fn, void *userdata) {
        pthread_mutex_lock(&s->lock);
        s->irq_fn = fn;
        s->irq_userdata = userdata;
        pthread_mutex_unlock(&s->lock);
}

int serial_add_output_fd(Serial *s, int fd) {
        int r = 0;
        pthread_mutex_lock(&s->lock);
        if (s->n_output_fds >= MAX_OUTPUT_FDS)
                r = -ENOSPC;
        else
                s->output_fds[s->n_output_fds++] = fd;
        pthread_mutex_unlock(&s->lock);
        return r;
}

int serial_attach_client(Serial *s, int fd) {
        int r = -EBUSY;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < SERIAL_MAX_CLIENTS; i++)
                if (s->clients[i] < 0) {
                        s->clients[i] = fd;
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                safe_close(fd);
        return r;
}

void serial_detach_client(Serial *s, int fd) {
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < SERIAL_MAX_CLIENTS; i++)
                if (s->clients[i] == fd)
                        s->clients[i] = safe_close(fd);
        pthread_mutex_unlock(&s->lock);
}

static uint8_t iir_locked(Serial *s) {
        uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
        if ((s->ier & IER_RDI) && s->rx_len > 0)
                return fifo | IIR_RDI;
        if ((s->ier & IER_THRI) && s->thr_pending)
                return fifo | IIR_THRI;
        return fifo | IIR_NO_INT;
}

static void update_irq_locked(Serial *s) {
        bool level = !(iir_locked(s) & IIR_NO_INT);
        if (level != s->irq_level) {
                s->irq_level = level;
                if (s->irq_fn)
                        s->irq_fn(s->irq_userdata, level);
        }
}

void serial_get_state(Serial *s, SerialState *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = (SerialState){ .ier = s->ier, .lcr = s->lcr, .mcr = s->mcr, .scr = s->scr, .dll = s->dll,
                              .dlm = s->dlm, .fcr = s->fcr, .thr_pending = s->thr_pending };
        pthread_mutex_unlock(&s->lock);
}

void serial_set_state(Serial *s, const SerialState *st) {
        pthread_mutex_lock(&s->lock);
        s->ier = st->ier, s->lcr = st->lcr, s->mcr = st->mcr, s->scr = st->scr;
        s->dll = st->dll, s->dlm = st->dlm, s->fcr = st->fcr, s->thr_pending = st->thr_pending != 0;
        /* The interrupt controller's restored state already carries the line's level. */
        s->irq_level = !(iir_locked(s) & IIR_NO_INT);
        pthread_mutex_unlock(&s->lock);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static void rx_push_locked(Serial *s, uint8_t c) {
        if (s->rx_len >= RX_SIZE)
                return;
        s->rx[(s->rx_head + s->rx_len) % RX_SIZE] = c;
        s->rx_len++;
}

static void transmit_locked(Serial *s, uint8_t c) {
        if (s->mcr & MCR_LOOP) {
                rx_push_locked(s, c);
                return;
        }
        if (s->total == 0)
                s->first_byte_usec = now_usec();
        s->ring[s->total % s->ring_size] = c;
        s->total++;
        for (size_t i = 0; i < s->n_output_fds; i++)
                (void) loop_write(s->output_fds[i], &c, 1);
        for (size_t i = 0; i < SERIAL_MAX_CLIENTS; i++)
                if (s->clients[i] >= 0)
                        (void) send(s->clients[i], &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static uint8_t msr_locked(Serial *s) {
        if (s->mcr & MCR_LOOP) /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
                return (uint8_t) (((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3) | ((s->mcr & 0x04) << 4) |
                                  ((s->mcr & 0x08) << 4));
        return MSR_DCD | MSR_DSR | MSR_CTS;
}

void serial_io(Serial *s, unsigned offset, bool is_write, uint8_t *data) {
        pthread_mutex_lock(&s->lock);
        bool dlab = s->lcr & LCR_DLAB;
        if (is_write) {
                uint8_t v = *data;
                switch (offset) {
                case UART_RBR:
                        if (dlab)
                                s->dll = v;
                        else {
                                transmit_locked(s, v);
                                s->thr_pending = true; /* transmitted at once: THR is empty again */
                        }
                        break;
                case UART_IER:
                        if (dlab)
                                s->dlm = v;
                        else {
                                if ((v & IER_THRI) && !(s->ier & IER_THRI))
                                        s->thr_pending = true;
                                s->ier = v & 0x0f;
                        }
                        break;
                case UART_IIR:
                        s->fcr = v & 0xc9;
                        if (v & FCR_CLEAR_RX)
                                s->rx_len = 0;
                        break;
                case UART_LCR:
                        s->lcr = v;
                        break;
                case UART_MCR:
                        s->mcr = v & 0x1f;
                        break;
                case UART_SCR:
                        s->scr = v;
                        break;
                default: /* LSR and MSR are read-only */
                        break;
                }
        } else {
                uint8_t v = 0;
                switch (offset) {
                case UART_RBR:
                        if (dlab)
                                v = s->dll;
                        else if (s->rx_len > 0) {
                                v = s->rx[s->rx_head];
                                s->rx_head = (s->rx_head + 1) % RX_SIZE;
                                s->rx_len--;
                        }
                        break;
                case UART_IER:
                        v = dlab ? s->dlm : s->ier;
                        break;
                case UART_IIR:
                        v = iir_locked(s);
                        if ((v & 0x0f) == IIR_THRI)
                                s->thr_pending = false;
                        break;
                case UART_LCR:
                        v = s->lcr;
                        break;
                case UART_MCR:
                        v = s->mcr;
                        break;
                case UART_LSR:
                        v = LSR_THRE | LSR_TEMT | (s->rx_len > 0 ? LSR_DR : 0);
                        break;
                case UART_MSR:
                        v = msr_locked(s);
                        break;
                case UART_SCR:
                        v = s->scr;
                        break;
                default:
                        v = 0xff;
                        break;
                }
                *data = v;
        }
        update_irq_locked(s);
        pthread_mutex_unlock(&s->lock);
}

size_t serial_input(Serial *s, const uint8_t *data, size_t len) {
        size_t n = 0;
        pthread_mutex_lock(&s->lock);
        for (; n < len && s->rx_len < RX_SIZE; n++)
                rx_push_locked(s, data[n]);
        update_irq_locked(s);
        pthread_mutex_unlock(&s->lock);
        return n;
}

int serial_read_ring(Serial *s, uint64_t offset, size_t max, uint8_t **ret_data, size_t *ret_len,
                     uint64_t *ret_offset, uint64_t *ret_next_offset) {
        pthread_mutex_lock(&s->lock);
        uint64_t oldest = s->total > s->ring_size ? s->total - s->ring_size : 0;
        uint64_t start = MAX(offset, oldest);
        if (start > s->total)
                start = s->total;
        size_t len = (size_t) MIN((uint64_t) max, s->total - start);
        uint8_t *buf = malloc(len + 1);
        if (!buf) {
                pthread_mutex_unlock(&s->lock);
                return -ENOMEM;
        }
        for (size_t i = 0; i < len; i++)
                buf[i] = s->ring[(start + i) % s->ring_size];
        buf[len] = 0;
        pthread_mutex_unlock(&s->lock);
        *ret_data = buf;
        *ret_len = len;
        *ret_offset = start;
        *ret_next_offset = start + len;
        return 0;
}

uint64_t serial_output_total(Serial *s) {
        pthread_mutex_lock(&s->lock);
        uint64_t t = s->total;
        pthread_mutex_unlock(&s->lock);
        return t;
}

uint64_t serial_first_byte_usec(Serial *s) {
        pthread_mutex_lock(&s->lock);
        uint64_t t = s->first_byte_usec;
        pthread_mutex_unlock(&s->lock);
        return t;
}
