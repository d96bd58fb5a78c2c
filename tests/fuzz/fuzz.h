/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h: what the libFuzzer targets share: the entry point's prototype, a
 * check that aborts with a message (libFuzzer then saves the input as a
 * crash), and the split of one input into NUL-terminated fields. Helpers are
 * static inline: each target is one translation unit and keeps no state
 * between inputs.
 */
#ifndef S3VFS_FUZZ_H
#define S3VFS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test failed: report it and crash. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__,        \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Out of memory in the harness itself (libFuzzer's malloc limit normally
 * reports it first): abort, saying it was not the code under test. */
#define FUZZ_OOM(p)                                                                                \
	do {                                                                                       \
		if (!(p)) {                                                                        \
			fprintf(stderr, "harness out of memory\n");                                \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FUZZ_FIELDS_MAX 32

/*
 * The input cut at NUL bytes into at most FUZZ_FIELDS_MAX strings (the
 * last one ends at the next NUL, if any). Fields past the input's end are "".
 */
struct fuzz_fields {
	char *mem;
	const char *f[FUZZ_FIELDS_MAX];
	size_t n; /* fields actually present in the input */
};

static inline void fuzz_fields_split(struct fuzz_fields *ff, const uint8_t *data, size_t size)
{
	char *p;
	char *end;

	ff->mem = malloc(size + 1);
	FUZZ_OOM(ff->mem);
	if (size)
		memcpy(ff->mem, data, size);
	ff->mem[size] = '\0';
	p = ff->mem;
	end = ff->mem + size;
	ff->n = 0;
	while (ff->n < FUZZ_FIELDS_MAX) {
		char *z;

		ff->f[ff->n++] = p;
		z = memchr(p, '\0', (size_t)(end - p));
		if (!z)
			break;
		p = z + 1;
	}
	for (size_t i = ff->n; i < FUZZ_FIELDS_MAX; i++)
		ff->f[i] = "";
}

static inline void fuzz_fields_free(struct fuzz_fields *ff)
{
	free(ff->mem);
	ff->mem = NULL;
}

/* A NUL-terminated copy of data[0..size) (cut at the first NUL). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_OOM(s);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Is s[0..n) well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
static inline bool fuzz_utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t len;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3F);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

#endif
