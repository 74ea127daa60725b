/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Reads a whole file (at most max bytes, else -EFBIG) and NUL-terminates it. */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size);
/* First line without its newline. */
int read_one_line_file(const char *path, char **ret);
/* Writes via a temporary file in the same directory, fsync, rename: readers see old or new, never half. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
int write_string_file(const char *path, const char *s); /* plain open(O_WRONLY|O_TRUNC) + write, for sysfs */
int loop_write(int fd, const void *buf, size_t n);
ssize_t loop_read(int fd, void *buf, size_t n); /* reads until n bytes or EOF */
int mkdir_p(const char *path, mode_t mode);
int fd_set_nonblock(int fd, int on);
