/* SPDX-License-Identifier: MIT */
/* Create + delete of a 2 MiB user memslot through the agent's REST API against the same two
 * KVM_SET_USER_MEMORY_REGION ioctls on a VM of this program's own, interleaved per iteration, so
 * that the difference is the agent's (and its VMM's) overhead and not a slow client's: the HTTP
 * client here is a few hundred lines of C over the unix socket, with one kept connection.
 *
 * The raw side runs on two VMs of its own: one with no vCPU (the baseline the overhead is quoted
 * against) and one whose vCPU is halted inside KVM_RUN, as the VMM's is: KVM kicks every vCPU on each
 * memslot update (x86's kvm_arch_memslots_updated), so a VM with a halted vCPU pays for waking it,
 * and that part is KVM's, not the agent's.
 *
 * The client waits for a response as libcurl (kvmfleetctl) does, in poll() and then recv(). A
 * recv() that blocks on a unix stream socket is also woken when the server reads the request (the
 * kernel wakes every sleeper on the sender's socket once the skb is freed, and only poll-style
 * waiters filter that wake-up by event), which costs the server an inter-processor interrupt per
 * request that no ordinary client causes.
 *
 * One agent at a time: a second agent answering interleaved pairs on the same CPUs leaves its own
 * after-reply work (its result row, its memslot pool's spare) on the first one's measurement.
 *
 * Usage: memslot-rest API_SOCKET VM ITERATIONS [BARE_SOCKET]
 *   API_SOCKET   the agent's unix socket; VM a running VM's name or uuid
 *   BARE_SOCKET  optional: bench/bare-http listening on a unix socket; the same POST + DELETE
 *                exchange against it is the HTTP floor of libmicrohttpd plus this client
 * Prints one line per measurement: name, median and p99 in microseconds. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SLOT_SIZE (2u << 20)
#define SLOT_GPA (1ull << 30)
#define BOOT_SIZE (16u << 20)
#define RESPONSE_MAX 65536

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int connect_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* One HTTP/1.1 exchange on fd: sends the request, reads one response with a Content-Length.
 * Returns the status; the body (NUL-terminated) is left in buf. */
static int http_exchange(int fd, const char *method, const char *path, const char *body, char *buf, size_t size,
                         const char **ret_body) {
        char req[1024];
        int n = body ? snprintf(req, sizeof req,
                                "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\n\r\n%s", method, path, strlen(body), body)
                     : snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method, path);
        if (n < 0 || (size_t) n >= sizeof req)
                return -ENAMETOOLONG;
        if (send(fd, req, (size_t) n, MSG_NOSIGNAL) != n)
                return -EIO;
        size_t got = 0, need = 0;
        char *hdr_end = NULL;
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                if (poll(&pfd, 1, -1) < 0)
                        return -errno;
                ssize_t k = recv(fd, buf + got, size - 1 - got, 0);
                if (k <= 0)
                        return k < 0 ? -errno : -ECONNRESET;
                got += (size_t) k;
                buf[got] = 0;
                if (!hdr_end) {
                        hdr_end = strstr(buf, "\r\n\r\n");
                        if (!hdr_end)
                                continue;
                        const char *cl = strcasestr(buf, "\r\nContent-Length:");
                        if (!cl || cl > hdr_end)
                                return -EPROTO;
                        need = (size_t) (hdr_end + 4 - buf) + strtoull(cl + 17, NULL, 10);
                        if (need >= size)
                                return -EMSGSIZE;
                }
                if (got >= need)
                        break;
        }
        int status;
        if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
                return -EPROTO;
        *ret_body = hdr_end + 4;
        return status;
}

typedef struct Series {
        const char *name;
        double *us;
        size_t n;
} Series;

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double percentile(Series *s, double p) {
        size_t i = (size_t) ((double) s->n * p);
        return s->us[i >= s->n ? s->n - 1 : i];
}

static void record(Series *s, uint64_t t0, uint64_t t1) {
        s->us[s->n++] = (double) (t1 - t0) / 1000.0;
}

/* POST a 2 MiB slot and DELETE it again; the slot id comes from the 201's body. */
static int rest_pair(int fd, const char *vm, char *buf) {
        char path[256];
        const char *body;
        snprintf(path, sizeof path, "/v1/vms/%s/memslots", vm);
        int st = http_exchange(fd, "POST", path, "{\"gpa\":1073741824,\"size\":2097152}", buf, RESPONSE_MAX, &body);
        if (st != 201) {
                fprintf(stderr, "POST %s: %d %s\n", path, st, st > 0 ? body : strerror(-st));
                return -EIO;
        }
        const char *slot = strstr(body, "\"slot\":");
        if (!slot) {
                fprintf(stderr, "POST %s: no slot in %s\n", path, body);
                return -EPROTO;
        }
        snprintf(path, sizeof path, "/v1/vms/%s/memslots/%lu", vm, strtoul(slot + 7, NULL, 10));
        st = http_exchange(fd, "DELETE", path, NULL, buf, RESPONSE_MAX, &body);
        if (st != 200) {
                fprintf(stderr, "DELETE %s: %d %s\n", path, st, st > 0 ? body : strerror(-st));
                return -EIO;
        }
        return 0;
}

/* The same shapes of exchange against bench/bare-http, which answers anything with a fixed body. */
static int bare_pair(int fd, char *buf) {
        const char *body;
        int st = http_exchange(fd, "POST", "/v1/vms/bench/memslots", "{\"gpa\":1073741824,\"size\":2097152}", buf,
                               RESPONSE_MAX, &body);
        if (st == 200)
                st = http_exchange(fd, "DELETE", "/v1/vms/bench/memslots/1", NULL, buf, RESPONSE_MAX, &body);
        if (st != 200) {
                fprintf(stderr, "bare-http: %d %s\n", st, st > 0 ? body : strerror(-st));
                return -EIO;
        }
        return 0;
}

static int region(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *host) {
        struct kvm_userspace_memory_region r = {
                .slot = slot, .guest_phys_addr = gpa, .memory_size = size, .userspace_addr = (uintptr_t) host,
        };
        return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

typedef struct RawVm {
        int vm_fd, vcpu_fd;
        void *boot, *slot_mem;
        pthread_t vcpu_thread;
} RawVm;

static void *vcpu_run(void *userdata) {
        RawVm *v = userdata;
        /* HLT with an in-kernel irqchip and no interrupt source: blocks in the kernel until the
         * process exits */
        ioctl(v->vcpu_fd, KVM_RUN, 0);
        return NULL;
}

/* A VM like the VMM's (RAM first, then an in-kernel irqchip), with a vCPU halted in KVM_RUN if asked. */
static int raw_vm_new(int kvm, bool with_vcpu, RawVm *v) {
        v->vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
        if (v->vm_fd < 0)
                return -errno;
        v->boot = mmap(NULL, BOOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        v->slot_mem = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (v->boot == MAP_FAILED || v->slot_mem == MAP_FAILED)
                return -errno;
        if (region(v->vm_fd, 0, 0, BOOT_SIZE, v->boot) < 0 || ioctl(v->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
                return -errno;
        if (!with_vcpu)
                return 0;
        ((uint8_t *) v->boot)[0x1000] = 0xf4; /* hlt */
        v->vcpu_fd = ioctl(v->vm_fd, KVM_CREATE_VCPU, 0);
        if (v->vcpu_fd < 0)
                return -errno;
        struct kvm_sregs sregs;
        struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
        if (ioctl(v->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
                return -errno;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        if (ioctl(v->vcpu_fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->vcpu_fd, KVM_SET_REGS, &regs) < 0)
                return -errno;
        int r = pthread_create(&v->vcpu_thread, NULL, vcpu_run, v);
        if (r)
                return -r;
        /* the vCPU is halted once a memslot change wakes it (KVM counts it in halt_wakeup) */
        usleep(20000);
        return 0;
}

static int raw_pair(RawVm *v) {
        if (region(v->vm_fd, 1, SLOT_GPA, SLOT_SIZE, v->slot_mem) < 0 || region(v->vm_fd, 1, SLOT_GPA, 0, v->slot_mem) < 0)
                return -errno;
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 4 || argc > 5) {
                fprintf(stderr, "usage: memslot-rest API_SOCKET VM ITERATIONS [BARE_SOCKET]\n");
                return 2;
        }
        const char *api = argv[1], *vm = argv[2], *bare = argc == 5 ? argv[4] : NULL;
        size_t iterations = strtoul(argv[3], NULL, 10);
        if (iterations == 0)
                return fprintf(stderr, "ITERATIONS must be positive\n"), 2;

        int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0)
                return perror("/dev/kvm"), 1;
        RawVm raw_vm = {}, halted_vm = {};
        int r = raw_vm_new(kvm, false, &raw_vm);
        if (r >= 0)
                r = raw_vm_new(kvm, true, &halted_vm);
        if (r < 0)
                return fprintf(stderr, "raw VM setup: %s\n", strerror(-r)), 1;

        Series raw = { .name = "raw KVM_SET_USER_MEMORY_REGION x2 (C)" },
               halted = { .name = "raw x2 on a VM with a halted vCPU" },
               kept = { .name = "REST POST + DELETE, one kept connection" },
               fresh = { .name = "REST POST + DELETE, new connection each" },
               floor = { .name = "bare libmicrohttpd POST + DELETE, kept" };
        Series *all[] = { &raw, &halted, &kept, &fresh, &floor };
        const size_t n_series = sizeof all / sizeof all[0];
        for (size_t i = 0; i < n_series; i++)
                if (!(all[i]->us = calloc(iterations, sizeof(double))))
                        return perror("calloc"), 1;
        static char buf[RESPONSE_MAX];
        int api_fd = connect_unix(api);
        if (api_fd < 0)
                return fprintf(stderr, "%s: %s\n", api, strerror(-api_fd)), 1;
        int bare_fd = -1;
        if (bare && (bare_fd = connect_unix(bare)) < 0)
                return fprintf(stderr, "%s: %s\n", bare, strerror(-bare_fd)), 1;
        /* One untimed round of each: first-use costs (statement preparation, page faults) are not the
         * steady state this measures. */
        if (rest_pair(api_fd, vm, buf) < 0 || (bare_fd >= 0 && bare_pair(bare_fd, buf) < 0))
                return 1;

        for (size_t i = 0; i < iterations; i++) {
                uint64_t t0 = now_ns();
                if (raw_pair(&raw_vm) < 0)
                        return perror("KVM_SET_USER_MEMORY_REGION"), 1;
                record(&raw, t0, now_ns());

                t0 = now_ns();
                if (raw_pair(&halted_vm) < 0)
                        return perror("KVM_SET_USER_MEMORY_REGION"), 1;
                record(&halted, t0, now_ns());

                t0 = now_ns();
                if (rest_pair(api_fd, vm, buf) < 0)
                        return 1;
                record(&kept, t0, now_ns());

                t0 = now_ns();
                int fd = connect_unix(api);
                if (fd < 0 || rest_pair(fd, vm, buf) < 0)
                        return 1;
                close(fd);
                record(&fresh, t0, now_ns());

                if (bare_fd >= 0) {
                        t0 = now_ns();
                        if (bare_pair(bare_fd, buf) < 0)
                                return 1;
                        record(&floor, t0, now_ns());
                }
        }
        for (size_t i = 0; i < n_series; i++)
                qsort(all[i]->us, all[i]->n, sizeof(double), cmp_double);
        double raw_median = percentile(&raw, 0.5), halted_median = percentile(&halted, 0.5);
        printf("create+delete of a 2 MiB slot, %zu interleaved runs each, median / p99 us (C client, unix socket)\n",
               iterations);
        for (size_t i = 0; i < n_series; i++) {
                Series *s = all[i];
                if (!s->n)
                        continue;
                double m = percentile(s, 0.5);
                printf("  %-44s %9.1f / %9.1f", s->name, m, percentile(s, 0.99));
                if (s != &raw && s != &floor)
                        printf("   %+8.1f us over raw (%.1fx)", m - raw_median, m / raw_median);
                if (s == &kept || s == &fresh)
                        printf(", %+8.1f over raw with a halted vCPU", m - halted_median);
                printf("\n");
                free(s->us);
        }
        close(api_fd);
        if (bare_fd >= 0)
                close(bare_fd);
        /* the halted vCPU thread ends with the process */
        return 0;
}
