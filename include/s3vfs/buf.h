/* SPDX-License-Identifier: MIT */
/*
 * buf: the one growable byte buffer (curl dynbuf's contract).
 *
 * buf_init() cannot fail. Every buffer has a hard size cap given at init;
 * an append that would pass it fails with -E2BIG. The content is always
 * NUL-terminated (buf_str() never returns NULL). On any failed append the
 * buffer frees its memory and is left empty, so callers need no extra
 * cleanup on the error path beyond what they already do. buf_take() moves
 * ownership of the bytes to the caller and leaves the buffer empty.
 * Not thread-safe: a buffer belongs to one thread at a time.
 */
#ifndef S3VFS_BUF_H
#define S3VFS_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "s3vfs/compiler.h"

struct buf {
	char *ptr;    /* NULL until the first append */
	size_t len;   /* bytes used, not counting the terminating NUL */
	size_t alloc; /* bytes allocated */
	size_t cap;   /* hard limit on len */
};

/* Default cap for small text buffers (headers, keys, URLs). */
#define BUF_CAP_SMALL (64 * 1024)

void buf_init(struct buf *b, size_t cap);
void buf_cleanup(struct buf *b);
/* Empty the buffer but keep its memory. */
void buf_reset(struct buf *b);

/* Append bytes. 0, -ENOMEM or -E2BIG (buffer freed on failure). */
int buf_add(struct buf *b, const void *data, size_t n) WARN_UNUSED;
int buf_addstr(struct buf *b, const char *s) WARN_UNUSED;
int buf_addc(struct buf *b, char c) WARN_UNUSED;
int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3) WARN_UNUSED;
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) PRINTF_LIKE(2, 0) WARN_UNUSED;

/* The content, always NUL-terminated; "" when empty. Borrowed. */
const char *buf_str(const struct buf *b);
size_t buf_len(const struct buf *b);

/* Hand the content to the caller (free() it); NULL if empty. Buffer left empty. */
char *buf_take(struct buf *b);

#endif
