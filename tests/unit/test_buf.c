// SPDX-License-Identifier: MIT
/*
 * test_buf: the growable buffer (buf.c) against its contract in buf.h: init
 * cannot fail, the hard cap, -E2BIG frees, always NUL-terminated, buf_str()
 * never NULL, printf growth past the 256-byte stack buffer, take and reset.
 */
#include "s3vfs/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* An empty buffer in every observable way. */
static void check_empty(const struct buf *b)
{
	CHECK_INT(buf_len(b), 0);
	CHECK(buf_str(b) != NULL);
	CHECK_STR(buf_str(b), "");
}

static void test_init(void)
{
	struct buf b;

	memset(&b, 0x5a, sizeof(b));
	buf_init(&b, 100);
	CHECK(b.ptr == NULL);
	CHECK_INT(b.cap, 100);
	check_empty(&b);
	CHECK(buf_take(&b) == NULL);
	buf_cleanup(&b);
	buf_cleanup(&b); /* twice is fine */
	check_empty(&b);
}

static void test_append(void)
{
	struct buf b;

	buf_init(&b, BUF_CAP_SMALL);
	CHECK_INT(buf_add(&b, "abc", 3), 0);
	CHECK_INT(buf_addstr(&b, "def"), 0);
	CHECK_INT(buf_addc(&b, 'g'), 0);
	CHECK_INT(buf_add(&b, NULL, 0), 0);
	CHECK_INT(buf_addstr(&b, ""), 0);
	CHECK_STR(buf_str(&b), "abcdefg");
	CHECK_INT(buf_len(&b), 7);
	CHECK_INT(b.ptr[7], '\0');

	/* Binary data: embedded NULs count, a NUL still terminates. */
	CHECK_INT(buf_add(&b, "x\0y", 3), 0);
	CHECK_INT(buf_len(&b), 10);
	CHECK(memcmp(buf_str(&b), "abcdefgx\0y", 11) == 0);
	CHECK_INT(buf_addc(&b, '\0'), 0);
	CHECK_INT(buf_len(&b), 11);
	buf_cleanup(&b);
	check_empty(&b);

	/* Growth by single bytes: content intact, terminated at every step. */
	buf_init(&b, 1 << 20);
	int bad = 0;
	for (int i = 0; i < 100000; i++) {
		if (buf_addc(&b, (char)('a' + i % 26)) != 0 || b.ptr[buf_len(&b)] != '\0')
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(buf_len(&b), 100000);
	for (int i = 0; i < 100000; i++) {
		if (buf_str(&b)[i] != (char)('a' + i % 26))
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK(b.alloc <= (1 << 20) + 1);
	buf_cleanup(&b);
}

/* ---- the cap ---- */

static const struct {
	size_t cap;
	size_t first;  /* bytes appended first */
	size_t second; /* then these */
	int want;      /* rc of the second append */
} cap_rows[] = {
	{ 0, 0, 0, 0 },
	{ 0, 0, 1, -E2BIG },
	{ 1, 0, 1, 0 },
	{ 1, 1, 1, -E2BIG },
	{ 10, 5, 5, 0 },
	{ 10, 5, 6, -E2BIG },
	{ 10, 0, 11, -E2BIG },
	{ 10, 10, 0, 0 },
	{ 63, 60, 3, 0 },
	{ 64, 60, 4, 0 }, /* the first allocation is 64: needs 65 with the NUL */
	{ 65, 60, 5, 0 },
	{ 100, 64, 36, 0 },
	{ 100, 64, 37, -E2BIG },
	{ 1000, 999, 1, 0 },
	{ 1000, 999, 2, -E2BIG },
	{ 1000, 0, SIZE_MAX, -E2BIG }, /* no overflow in len + n */
	{ 1000, 10, SIZE_MAX - 5, -E2BIG },
};

static void test_cap(void)
{
	static char src[2048];

	memset(src, 'q', sizeof(src));
	for (size_t i = 0; i < ARRAY_SIZE(cap_rows); i++) {
		struct buf b;
		size_t second = cap_rows[i].second;

		buf_init(&b, cap_rows[i].cap);
		CHECK_INT(buf_add(&b, src, cap_rows[i].first), 0);
		/* A huge n must be refused before anything reads src. */
		int rc = buf_add(&b, src, second);
		if (rc != cap_rows[i].want)
			fprintf(stderr, "cap row %zu\n", i);
		CHECK_INT(rc, cap_rows[i].want);
		if (rc == 0) {
			CHECK_INT(buf_len(&b), cap_rows[i].first + second);
			CHECK(b.alloc <= cap_rows[i].cap + 1);
			CHECK_INT(buf_str(&b)[buf_len(&b)], '\0');
		} else {
			/* E2BIG freed the buffer and left it usable. */
			CHECK(b.ptr == NULL);
			CHECK_INT(b.alloc, 0);
			check_empty(&b);
			CHECK_INT(b.cap, cap_rows[i].cap);
			if (cap_rows[i].cap > 0) {
				CHECK_INT(buf_addc(&b, 'z'), 0);
				CHECK_STR(buf_str(&b), "z");
			}
		}
		buf_cleanup(&b);
	}

	/* addstr and addc honour the cap the same way. */
	struct buf b;
	buf_init(&b, 3);
	CHECK_INT(buf_addstr(&b, "abc"), 0);
	CHECK_INT(buf_addc(&b, 'd'), -E2BIG);
	check_empty(&b);
	CHECK_INT(buf_addstr(&b, "abcd"), -E2BIG);
	check_empty(&b);
	buf_cleanup(&b);
}

/* ---- printf ---- */

static int call_vprintf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int call_vprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

static void test_printf(void)
{
	struct buf b;
	char want[4096];
	char big[3000];

	buf_init(&b, BUF_CAP_SMALL);
	CHECK_INT(buf_printf(&b, "%d-%s-%c", 42, "x", 'y'), 0);
	CHECK_STR(buf_str(&b), "42-x-y");
	CHECK_INT(buf_printf(&b, "%s", ""), 0);
	CHECK_STR(buf_str(&b), "42-x-y");
	CHECK_INT(call_vprintf(&b, "[%05u]", 7u), 0);
	CHECK_STR(buf_str(&b), "42-x-y[00007]");
	buf_cleanup(&b);

	/* Lengths around the 256-byte stack buffer and well past it: each
	 * appended after a prefix, so growth copies the old content. */
	static const size_t lens[] = { 254, 255, 256, 257, 300, 1000, 2999 };
	memset(big, 'w', sizeof(big));
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		big[lens[i]] = '\0';
		buf_init(&b, BUF_CAP_SMALL);
		CHECK_INT(buf_addstr(&b, "pre:"), 0);
		CHECK_INT(buf_printf(&b, "%s|%d", big, (int)lens[i]), 0);
		snprintf(want, sizeof(want), "pre:%s|%d", big, (int)lens[i]);
		CHECK_STR(buf_str(&b), want);
		CHECK_INT(buf_len(&b), strlen(want));
		/* vprintf takes the same two-pass path. */
		buf_reset(&b);
		CHECK_INT(call_vprintf(&b, "%s|%d", big, (int)lens[i]), 0);
		CHECK_STR(buf_str(&b), want + 4);
		buf_cleanup(&b);
		big[lens[i]] = 'w';
	}

	/* Width-generated output past 256 bytes. */
	buf_init(&b, BUF_CAP_SMALL);
	CHECK_INT(buf_printf(&b, "%0600d", 5), 0);
	CHECK_INT(buf_len(&b), 600);
	CHECK_INT(buf_str(&b)[0], '0');
	CHECK_INT(buf_str(&b)[599], '5');
	buf_cleanup(&b);

	/* Over the cap, short and long paths: -E2BIG, freed. */
	buf_init(&b, 10);
	CHECK_INT(buf_printf(&b, "%s", "12345"), 0);
	CHECK_INT(buf_printf(&b, "%s", "123456"), -E2BIG);
	check_empty(&b);
	CHECK_INT(buf_printf(&b, "%0400d", 1), -E2BIG);
	check_empty(&b);
	CHECK(b.ptr == NULL);
	CHECK_INT(buf_printf(&b, "%d", 1234567890), 0); /* exactly the cap */
	CHECK_STR(buf_str(&b), "1234567890");
	buf_cleanup(&b);
}

/* ---- take and reset ---- */

static void test_take_reset(void)
{
	struct buf b;

	buf_init(&b, BUF_CAP_SMALL);
	CHECK_INT(buf_addstr(&b, "hello"), 0);
	char *p = buf_take(&b);
	CHECK_STR(p, "hello");
	free(p);
	check_empty(&b);
	CHECK(b.ptr == NULL);
	CHECK_INT(b.alloc, 0);
	CHECK_INT(b.cap, BUF_CAP_SMALL);
	CHECK(buf_take(&b) == NULL);

	/* Usable after take. */
	CHECK_INT(buf_addstr(&b, "again"), 0);
	CHECK_STR(buf_str(&b), "again");

	/* Reset empties but keeps the memory. */
	char *before = b.ptr;
	size_t alloc = b.alloc;
	buf_reset(&b);
	check_empty(&b);
	CHECK(b.ptr == before);
	CHECK_INT(b.alloc, alloc);
	CHECK_INT(buf_addstr(&b, "xy"), 0);
	CHECK_STR(buf_str(&b), "xy");
	CHECK(b.ptr == before);

	/* Take of an empty buffer is NULL, even when it holds memory (after
	 * reset, or after a zero-length append), and frees that memory. */
	buf_reset(&b);
	CHECK(buf_take(&b) == NULL);
	check_empty(&b);
	CHECK(b.ptr == NULL);
	CHECK_INT(buf_add(&b, "", 0), 0);
	CHECK(buf_take(&b) == NULL);
	check_empty(&b);

	/* Reset of a never-used buffer is harmless. */
	buf_reset(&b);
	check_empty(&b);

	/* Taken memory is the caller's: the buffer does not touch it again. */
	CHECK_INT(buf_addstr(&b, "mine"), 0);
	p = buf_take(&b);
	CHECK_INT(buf_addstr(&b, "other"), 0);
	CHECK_STR(p, "mine");
	CHECK_STR(buf_str(&b), "other");
	free(p);
	buf_cleanup(&b);
	check_empty(&b);
}

int main(void)
{
	test_init();
	test_append();
	test_cap();
	test_printf();
	test_take_reset();
	return unit_end("buf");
}
