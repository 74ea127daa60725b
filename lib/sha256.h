/* SPDX-License-Identifier: MIT */
/* SHA-256 (FIPS 180-4) for snapshot checksums: small enough to keep in lib/ rather than link a crypto
 * library into every program. Not constant-time; never use it for secrets. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE (SHA256_DIGEST_SIZE * 2 + 1)

typedef struct Sha256 {
        uint32_t h[8];
        uint64_t length; /* bytes hashed so far */
        uint8_t block[64];
        size_t fill;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
void sha256_final(Sha256 *s, uint8_t digest[SHA256_DIGEST_SIZE]);
/* The digest of data as 64 lowercase hex digits. */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_SIZE]);
void sha256_digest_to_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char hex[SHA256_HEX_SIZE]);
/* Reads fd to its end: the digest as hex and the number of bytes read. */
int sha256_fd(int fd, char hex[SHA256_HEX_SIZE], uint64_t *ret_size);
