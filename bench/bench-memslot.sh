#!/bin/bash
# Memslot operations through kvmfleet-vmm's control socket against the raw KVM ioctls, same run:
#  1. create + delete of a 2 MiB user slot: KVM_SET_USER_MEMORY_REGION (size 2 MiB, then 0) on a VM
#     of our own with an in-kernel irqchip (as the VMM's VM has), vs memslot.create + memslot.delete
#     (which also allocate, map and release the memfd backing).
#  2. dirty log of a 1 GiB slot with dirty logging on: KVM_GET_DIRTY_LOG (manual protection on, as in
#     the VMM) vs memslot.dirty_log (count + ranges; and with the base64 bitmap).
# The control socket is measured twice: one connection per request (vmm_control_call(), as the agent
# calls it) and one persistent connection. The VMM's guest (mailbox.elf) is paused so that no vCPU
# competes for the CPU. Medians and p99 of ITERATIONS (default 300) runs each.
# Usage: bench/bench-memslot.sh [ITERATIONS]   (BUILD=build by default)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ITERATIONS=${1:-300}
[ -x "$BUILD/kvmfleet-vmm" ] && [ -f "$BUILD/guests/mailbox.elf" ] && [ -f "$BUILD/vmm/control-client.o" ] ||
        { echo "build first: make" >&2; exit 1; }
tmp=$(mktemp -d)
vmm_pid=
cleanup() {
        [ -n "$vmm_pid" ] && kill "$vmm_pid" 2>/dev/null && wait "$vmm_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/bench.c" <<'EOF'
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
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
#include <linux/kvm.h>
#include "vmm/control-client.h"

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}
static void stats(double *v, int n, double *med, double *p99) {
        qsort(v, (size_t) n, sizeof *v, cmp);
        *med = v[n / 2];
        *p99 = v[(int) (n * 0.99)];
}
static void die(const char *what) {
        perror(what);
        exit(1);
}

static const char *sock_path;
static int conn = -1;

/* One request on the persistent connection; exits on an error reply unless any_reply. */
static void call_persistent_reply(const char *req, int any_reply) {
        static char buf[1 << 20];
        if (send(conn, req, strlen(req), 0) < 0)
                die("send");
        ssize_t n = recv(conn, buf, sizeof buf - 1, 0);
        if (n <= 0)
                die("recv");
        buf[n] = 0;
        if (!any_reply && !strstr(buf, "\"result\"")) {
                fprintf(stderr, "error reply to %s: %s\n", req, buf);
                exit(1);
        }
}
static void call_persistent(const char *req) {
        call_persistent_reply(req, 0);
}
static void call_per_connection(const char *method, const char *params) {
        json_object *p = json_tokener_parse(params), *res = NULL;
        char *code = NULL, *msg = NULL;
        int r = vmm_control_call(sock_path, method, p, 5000, &res, &code, &msg);
        if (r != 0) {
                fprintf(stderr, "%s failed: %d %s %s\n", method, r, code ? code : "", msg ? msg : "");
                exit(1);
        }
        json_object_put(res);
        json_object_put(p);
}

int main(int argc, char **argv) {
        int n = atoi(argv[2]);
        double *raw = calloc(n, sizeof *raw), *pc = calloc(n, sizeof *pc), *pers = calloc(n, sizeof *pers),
               *pbm = calloc(n, sizeof *pbm);
        double m1, q1, m2, q2, m3, q3, m4, q4;
        sock_path = argv[1];

        int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                die("KVM_CREATE_VM");
        if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
                die("KVM_CREATE_IRQCHIP");
        struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } };
        if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0)
                die("KVM_ENABLE_CAP");
        int mfd = memfd_create("bench", MFD_CLOEXEC);
        if (mfd < 0 || ftruncate(mfd, 1L << 30) < 0)
                die("memfd");
        void *mem = mmap(NULL, 1L << 30, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mfd, 0);
        if (mem == MAP_FAILED)
                die("mmap");

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
        conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (conn < 0 || connect(conn, (struct sockaddr *) &sa, sizeof sa) < 0)
                die("connect");
        call_persistent("{\"id\":1,\"method\":\"pause\"}");

        /* 1. create + delete of a 2 MiB slot, the three ways interleaved so drift hits all alike. */
        for (int i = 0; i < n; i++) {
                struct kvm_userspace_memory_region r = { .slot = 10, .guest_phys_addr = 1UL << 30,
                                                         .memory_size = 2 << 20, .userspace_addr = (uintptr_t) mem };
                double t0 = now_us();
                if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
                        die("create");
                r.memory_size = 0;
                if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
                        die("delete");
                double t1 = now_us();
                call_per_connection("memslot.create", "{\"slot\":10,\"gpa\":1073741824,\"size\":2097152}");
                call_per_connection("memslot.delete", "{\"slot\":10}");
                double t2 = now_us();
                call_persistent("{\"id\":2,\"method\":\"memslot.create\",\"params\":{\"slot\":10,\"gpa\":1073741824,\"size\":2097152}}");
                call_persistent("{\"id\":3,\"method\":\"memslot.delete\",\"params\":{\"slot\":10}}");
                double t3 = now_us();
                raw[i] = t1 - t0;
                pc[i] = t2 - t1;
                pers[i] = t3 - t2;
        }
        stats(raw, n, &m1, &q1);
        stats(pc, n, &m2, &q2);
        stats(pers, n, &m3, &q3);
        printf("create+delete of a 2 MiB slot (paused VM with in-kernel irqchip), %d runs each, median / p99 us\n", n);
        printf("  raw KVM_SET_USER_MEMORY_REGION x2       %9.1f / %9.1f\n", m1, q1);
        printf("  control socket, connection per request  %9.1f / %9.1f   overhead %+.1f us median\n", m2, q2, m2 - m1);
        printf("  control socket, persistent connection   %9.1f / %9.1f   overhead %+.1f us median\n", m3, q3, m3 - m1);

        /* The floor: a request the VMM answers without any work (an unknown method). */
        for (int i = 0; i < n; i++) {
                double t0 = now_us();
                call_persistent_reply("{\"id\":7,\"method\":\"memslot.none\"}", 1);
                raw[i] = now_us() - t0;
        }
        stats(raw, n, &m1, &q1);
        printf("control socket round trip without work (persistent connection): %.1f / %.1f us\n", m1, q1);

        /* 2. dirty log of a 1 GiB slot. */
        struct kvm_userspace_memory_region big = { .slot = 11, .flags = KVM_MEM_LOG_DIRTY_PAGES,
                                                   .guest_phys_addr = 1UL << 32, .memory_size = 1UL << 30,
                                                   .userspace_addr = (uintptr_t) mem };
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &big) < 0)
                die("create 1 GiB");
        call_persistent("{\"id\":4,\"method\":\"memslot.create\",\"params\":{\"slot\":11,\"gpa\":4294967296,\"size\":1073741824,\"flags\":{\"dirty_log\":true}}}");
        static uint64_t bitmap[(1UL << 30) / 4096 / 64];
        for (int i = 0; i < n; i++) {
                struct kvm_dirty_log log = { .slot = 11, .dirty_bitmap = bitmap };
                double t0 = now_us();
                if (ioctl(vm, KVM_GET_DIRTY_LOG, &log) < 0)
                        die("KVM_GET_DIRTY_LOG");
                double t1 = now_us();
                call_persistent("{\"id\":5,\"method\":\"memslot.dirty_log\",\"params\":{\"slot\":11}}");
                double t2 = now_us();
                call_persistent("{\"id\":6,\"method\":\"memslot.dirty_log\",\"params\":{\"slot\":11,\"bitmap\":true}}");
                double t3 = now_us();
                call_per_connection("memslot.dirty_log", "{\"slot\":11}");
                double t4 = now_us();
                raw[i] = t1 - t0;
                pers[i] = t2 - t1;
                pbm[i] = t3 - t2;
                pc[i] = t4 - t3;
        }
        stats(raw, n, &m1, &q1);
        stats(pers, n, &m2, &q2);
        stats(pbm, n, &m3, &q3);
        stats(pc, n, &m4, &q4);
        printf("dirty log of a 1 GiB slot (262144 pages, none dirty), %d runs each, median / p99 us\n", n);
        printf("  raw KVM_GET_DIRTY_LOG                   %9.1f / %9.1f\n", m1, q1);
        printf("  memslot.dirty_log, persistent           %9.1f / %9.1f   %.2fx raw\n", m2, q2, m2 / m1);
        printf("  memslot.dirty_log + bitmap, persistent  %9.1f / %9.1f   %.2fx raw\n", m3, q3, m3 / m1);
        printf("  memslot.dirty_log, connection/request   %9.1f / %9.1f   %.2fx raw\n", m4, q4, m4 / m1);
        return 0;
}
EOF
cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -Ilib $(pkg-config --cflags json-c) -o "$tmp/bench" "$tmp/bench.c" \
        "$BUILD/vmm/control-client.o" "$BUILD/libkvmfleet.a" $(pkg-config --libs json-c)

cat >"$tmp/spec.json" <<EOF
{"name": "bench-memslot", "vcpus": 1, "memory": "16MiB", "boot": {"kernel": "$PWD/$BUILD/guests/mailbox.elf"}}
EOF
"$BUILD/kvmfleet-vmm" --spec "$tmp/spec.json" --control "$tmp/control.sock" >/dev/null 2>&1 &
vmm_pid=$!
for _ in $(seq 500); do [ -S "$tmp/control.sock" ] && break; sleep 0.01; done
sleep 0.1
echo "bench/bench-memslot.sh $ITERATIONS (BUILD=$BUILD), $(uname -r), $(nproc) CPUs"
"$tmp/bench" "$tmp/control.sock" "$ITERATIONS"
