/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"
#include "test.h"

/* FIPS 180-4 / NIST CSRC example vectors. */
TEST(sha256_known_vectors) {
        static const struct {
                const char *in;
                const char *hex;
        } v[] = {
                { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
                { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
                { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
                { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
        };
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
                char hex[SHA256_HEX_SIZE];
                sha256_hex(v[i].in, strlen(v[i].in), hex);
                CHECK(strcmp(hex, v[i].hex) == 0);
        }
}

/* One million 'a', fed in uneven pieces so that every buffering path is taken. */
TEST(sha256_million_a_in_pieces) {
        static char buf[1000];
        uint8_t digest[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        Sha256 s;
        memset(buf, 'a', sizeof buf);
        sha256_init(&s);
        size_t done = 0, step = 1;
        while (done < 1000000) {
                size_t n = step < 1000000 - done ? step : 1000000 - done;
                if (n > sizeof buf)
                        n = sizeof buf;
                sha256_update(&s, buf, n);
                done += n;
                step = step * 7 % 997 + 1;
        }
        sha256_final(&s, digest);
        sha256_digest_to_hex(digest, hex);
        CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
}

TEST(sha256_fd_matches_buffer) {
        char path[512], a[SHA256_HEX_SIZE], b[SHA256_HEX_SIZE];
        static uint8_t data[200000];
        uint64_t size = 0;
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i * 31 + 7);
        snprintf(path, sizeof path, "%s/sha256-data", test_tmpdir());
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT(fd >= 0);
        unlink(path);
        ASSERT(write(fd, data, sizeof data) == (ssize_t) sizeof data);
        ASSERT(lseek(fd, 0, SEEK_SET) == 0);
        CHECK_EQ_INT(sha256_fd(fd, a, &size), 0);
        close(fd);
        CHECK_EQ_U64(size, sizeof data);
        sha256_hex(data, sizeof data, b);
        CHECK(strcmp(a, b) == 0);
}
