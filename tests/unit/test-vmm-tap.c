/* SPDX-License-Identifier: MIT */
/* tap_open() against paths that are not the tun device, and the error sentences of tap_strerror(). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "dev/tap.h"
#include "test.h"

TEST(tap_missing_tun_device) {
        int fd = -1;
        char path[512], buf[256];
        snprintf(path, sizeof path, "%s/no-such-tun", test_tmpdir());
        CHECK_EQ_INT(tap_open(path, "tap0", &fd), -ENOENT);
        CHECK_EQ_INT(fd, -1);
        CHECK_CONTAINS(tap_strerror(-ENOENT, "tap0", buf, sizeof buf), "no tun/tap driver");
}

TEST(tap_not_a_tun_device) {
        int fd = -1;
        char path[512];
        snprintf(path, sizeof path, "%s/plain-file", test_tmpdir());
        int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT(f >= 0);
        close(f);
        /* TUNSETIFF on a regular file */
        CHECK_EQ_INT(tap_open(path, "tap0", &fd), -ENOTTY);
        CHECK_EQ_INT(fd, -1);
}

TEST(tap_invalid_names) {
        int fd = -1;
        CHECK_EQ_INT(tap_open("/dev/null", "", &fd), -EINVAL);
        CHECK_EQ_INT(tap_open("/dev/null", "a-name-longer-than-ifnamsiz", &fd), -EINVAL);
        CHECK_EQ_INT(tap_open("/dev/null", "a/b", &fd), -EINVAL);
        CHECK_EQ_INT(tap_open("/dev/null", NULL, &fd), -EINVAL);
        CHECK_EQ_INT(fd, -1);
}

TEST(tap_error_sentences) {
        char buf[256];
        CHECK_CONTAINS(tap_strerror(-EPERM, "tap7", buf, sizeof buf),
                       "tap \"tap7\" does not exist and creating it needs CAP_NET_ADMIN");
        CHECK_CONTAINS(tap_strerror(EPERM, "tap7", buf, sizeof buf), "CAP_NET_ADMIN"); /* sign does not matter */
        CHECK_CONTAINS(tap_strerror(-EBUSY, "tap7", buf, sizeof buf), "in use");
        CHECK_CONTAINS(tap_strerror(-EACCES, "tap7", buf, sizeof buf), "no permission to open /dev/net/tun");
        CHECK_CONTAINS(tap_strerror(-EINVAL, "x", buf, sizeof buf), "not a valid interface name");
        CHECK_CONTAINS(tap_strerror(-EIO, "tap7", buf, sizeof buf), "cannot attach tap \"tap7\"");
}

/* On a host with /dev/net/tun and CAP_NET_ADMIN: a fresh tap is created with the virtio header. */
TEST(tap_create_real) {
        int fd = -1;
        if (access(TAP_DEV_PATH, R_OK | W_OK) < 0) {
                test_skip("no usable /dev/net/tun on this host");
                return;
        }
        int r = tap_open(TAP_DEV_PATH, "kvmfltest0", &fd);
        if (r == -EPERM) {
                test_skip("creating a tap needs CAP_NET_ADMIN, which this test does not have");
                return;
        }
        ASSERT_EQ_INT(r, 0);
        int flags = fcntl(fd, F_GETFL), fdflags = fcntl(fd, F_GETFD);
        CHECK(flags & O_NONBLOCK);
        CHECK(fdflags & FD_CLOEXEC);
        /* nothing to read on a tap that is down */
        char frame[64];
        CHECK(read(fd, frame, sizeof frame) < 0);
        /* a second non-persistent open of the same name while the first is attached */
        int fd2 = -1;
        CHECK(tap_open(TAP_DEV_PATH, "kvmfltest0", &fd2) < 0);
        close(fd);
}
