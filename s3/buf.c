// SPDX-License-Identifier: MIT
/*
 * buf: the growable byte buffer (see buf.h). Owns its memory and nothing
 * else; knows nothing of what the bytes mean.
 */
#include "s3vfs/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t cap)
{
	b->ptr = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

void buf_cleanup(struct buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->alloc = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

int buf_add(struct buf *b, const void *data, size_t n)
{
	if (n > b->cap || b->len > b->cap - n) {
		buf_cleanup(b);
		return -E2BIG;
	}
	size_t need = b->len + n + 1;
	if (need > b->alloc) {
		size_t a = b->alloc ? b->alloc : 64;
		while (a < need)
			a *= 2;
		if (a > b->cap + 1)
			a = b->cap + 1;
		char *p = realloc(b->ptr, a);
		if (!p) {
			buf_cleanup(b);
			return -ENOMEM;
		}
		b->ptr = p;
		b->alloc = a;
	}
	if (n)
		memcpy(b->ptr + b->len, data, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;

	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		buf_cleanup(b);
		return -EINVAL;
	}
	if ((size_t)n < sizeof(small))
		return buf_add(b, small, (size_t)n);

	char *big = malloc((size_t)n + 1);
	if (!big) {
		buf_cleanup(b);
		return -ENOMEM;
	}
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	int rc = buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *buf_str(const struct buf *b)
{
	return b->ptr ? b->ptr : "";
}

size_t buf_len(const struct buf *b)
{
	return b->len;
}

char *buf_take(struct buf *b)
{
	char *p = b->ptr;

	/* "NULL if empty" (buf.h), also when memory is held after a reset or a
	 * zero-length append. */
	if (b->len == 0) {
		free(p);
		p = NULL;
	}
	b->ptr = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}
