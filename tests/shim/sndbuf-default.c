/* SPDX-License-Identifier: MIT */
/* LD_PRELOAD shim for failure tests: a process that may not enlarge a socket's send buffer, as on a
 * host whose net.core.wmem_max is the default and that lacks CAP_NET_ADMIN. SO_SNDBUFFORCE fails
 * with EPERM and SO_SNDBUF is accepted but changes nothing, so every socket keeps the system's
 * default send buffer. Every other option goes to the real setsockopt() unchanged. */
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
        static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
        if (level == SOL_SOCKET && name == SO_SNDBUFFORCE) {
                errno = EPERM;
                return -1;
        }
        if (level == SOL_SOCKET && name == SO_SNDBUF)
                return 0;
        if (!real_setsockopt)
                real_setsockopt = (int (*)(int, int, int, const void *, socklen_t)) dlsym(RTLD_NEXT, "setsockopt");
        return real_setsockopt(fd, level, name, value, len);
}
