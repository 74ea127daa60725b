/* SPDX-License-Identifier: MIT */
#include "dev/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"

int tap_open(const char *tun_path, const char *name, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
        int hdr_size = TAP_VNET_HDR_SIZE;

        if (!name || name[0] == '\0' || strlen(name) >= IFNAMSIZ || strchr(name, '/'))
                return -EINVAL;
        fd = open(tun_path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        memcpy(ifr.ifr_name, name, strlen(name));
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return -errno;
        if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
                return -errno;
        if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

const char *tap_strerror(int err, const char *name, char *buf, size_t size) {
        switch (-abs(err)) {
        case -ENOENT:
        case -ENODEV:
        case -ENXIO:
                snprintf(buf, size, "cannot open %s: this host has no tun/tap driver (%s)", TAP_DEV_PATH,
                         strerror(abs(err)));
                break;
        case -EPERM:
                snprintf(buf, size,
                         "tap \"%s\" does not exist and creating it needs CAP_NET_ADMIN, or it belongs to another "
                         "user or group (create it with: ip tuntap add dev %s mode tap vnet_hdr user USER)",
                         name, name);
                break;
        case -EACCES:
                snprintf(buf, size, "no permission to open %s", TAP_DEV_PATH);
                break;
        case -EBUSY:
                snprintf(buf, size, "tap \"%s\" is in use by another process, or is not a tap with a virtio-net header",
                         name);
                break;
        case -EINVAL:
                snprintf(buf, size, "\"%s\" is not a valid interface name, or names a device that is not a tap",
                         name);
                break;
        default:
                snprintf(buf, size, "cannot attach tap \"%s\": %s", name, strerror(abs(err)));
                break;
        }
        return buf;
}
