/* SPDX-License-Identifier: MIT */
/* unit: see unit.h. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

int unit_passed;
int unit_failed;

void unit_check(int ok, const char *expr, const char *file, int line)
{
	if (ok) {
		unit_passed++;
		return;
	}
	unit_failed++;
	fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
}

void unit_check_str(const char *got, const char *want, const char *expr, const char *file, int line)
{
	if (got && want && strcmp(got, want) == 0) {
		unit_passed++;
		return;
	}
	unit_failed++;
	fprintf(stderr, "FAIL %s:%d: %s\n  got:  %s\n  want: %s\n", file, line, expr,
		got ? got : "(null)", want ? want : "(null)");
}

void unit_check_int(long long got, long long want, const char *expr, const char *file, int line)
{
	if (got == want) {
		unit_passed++;
		return;
	}
	unit_failed++;
	fprintf(stderr, "FAIL %s:%d: %s = %lld, want %lld\n", file, line, expr, got, want);
}

const char *unit_datadir(void)
{
	const char *d = getenv("S3VFS_TESTDATA");
	return d ? d : "tests/data";
}

char *unit_read_file(const char *path, size_t *out_len)
{
	char full[4096];
	if (path[0] == '/')
		snprintf(full, sizeof(full), "%s", path);
	else
		snprintf(full, sizeof(full), "%s/%s", unit_datadir(), path);
	FILE *f = fopen(full, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *data = malloc(cap);
	while (data) {
		size_t n = fread(data + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
		if (cap - len - 1 == 0) {
			char *bigger = realloc(data, cap * 2);
			if (!bigger) {
				free(data);
				data = NULL;
				break;
			}
			data = bigger;
			cap *= 2;
		}
	}
	fclose(f);
	if (!data)
		return NULL;
	data[len] = '\0';
	if (out_len)
		*out_len = len;
	return data;
}

int unit_end(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
