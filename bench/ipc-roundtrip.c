/* SPDX-License-Identifier: MIT */
/* The floor under every exchange between two processes on this machine: one byte there and back
 * over a unix SOCK_SEQPACKET pair (the VMM's control socket type), with the two processes pinned to
 * two given CPUs, the same one or two different ones. A REST change crosses processes four times
 * (client to agent, agent to VMM and back, agent to client), so where a wake-up across CPUs is
 * expensive (a virtual machine whose idle CPUs halt into the hypervisor, say) that shows up in
 * every REST figure and in none of the raw ioctl ones; bench-memslot-rest.sh prints this first.
 *
 * Usage: ipc-roundtrip CPU_A CPU_B [ROUNDS]   (default 20000 rounds)
 * Prints: the median and p99 of a round trip in microseconds. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int pin(int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        return sched_setaffinity(0, sizeof set, &set);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s CPU_A CPU_B [ROUNDS]\n", argv[0]);
                return 2;
        }
        int a = atoi(argv[1]), b = atoi(argv[2]);
        size_t rounds = argc > 3 ? strtoul(argv[3], NULL, 10) : 20000;
        if (rounds == 0 || rounds > 10000000) {
                fprintf(stderr, "ROUNDS: 1 to 10000000\n");
                return 2;
        }
        uint64_t *t = calloc(rounds, sizeof *t);
        int sv[2];
        if (!t || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                perror("setup");
                return 1;
        }
        pid_t child = fork();
        if (child < 0) {
                perror("fork");
                return 1;
        }
        char byte = 0;
        if (child == 0) {
                close(sv[0]);
                if (pin(b) < 0)
                        _exit(3);
                while (read(sv[1], &byte, 1) == 1)
                        if (write(sv[1], &byte, 1) != 1)
                                _exit(1);
                _exit(0);
        }
        close(sv[1]);
        if (pin(a) < 0) {
                fprintf(stderr, "cannot run on CPU %d: %s\n", a, strerror(errno));
                kill(child, SIGKILL);
                return 1;
        }
        for (size_t i = 0; i < rounds; i++) {
                uint64_t t0 = now_ns();
                if (send(sv[0], &byte, 1, MSG_NOSIGNAL) != 1 || recv(sv[0], &byte, 1, 0) != 1) {
                        int status = 0;
                        kill(child, SIGKILL);
                        waitpid(child, &status, 0);
                        if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
                                fprintf(stderr, "cannot run on CPU %d\n", b);
                        else
                                fprintf(stderr, "round %zu: the other side went away\n", i);
                        return 1;
                }
                t[i] = now_ns() - t0;
        }
        close(sv[0]);
        int status = 0;
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "the CPU %d side failed (cannot run there?)\n", b);
                return 1;
        }
        qsort(t, rounds, sizeof *t, cmp_u64);
        size_t p99 = rounds * 99 / 100;
        printf("%.1f %.1f\n", (double) t[rounds / 2] / 1000.0, (double) t[p99 >= rounds ? rounds - 1 : p99] / 1000.0);
        free(t);
        return 0;
}
