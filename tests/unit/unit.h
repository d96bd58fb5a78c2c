/* SPDX-License-Identifier: MIT */
/*
 * unit: the smallest test harness that does the job. CHECK* macros record a
 * failure with file and line and go on; unit_main_end() prints
 * "N passed, N failed" and returns the exit status.
 */
#ifndef S3VFS_UNIT_H
#define S3VFS_UNIT_H

#include <stddef.h>
#include <string.h>

extern int unit_passed;
extern int unit_failed;

void unit_check(int ok, const char *expr, const char *file, int line);
void unit_check_str(const char *got, const char *want, const char *expr, const char *file,
		    int line);
void unit_check_int(long long got, long long want, const char *expr, const char *file, int line);

#define CHECK(c)	unit_check(!!(c), #c, __FILE__, __LINE__)
#define CHECK_STR(g, w) unit_check_str((g), (w), #g, __FILE__, __LINE__)
#define CHECK_INT(g, w) unit_check_int((long long)(g), (long long)(w), #g, __FILE__, __LINE__)

/* Directory of the test data (S3VFS_TESTDATA), never NULL. */
const char *unit_datadir(void);
/* Read a whole file (relative to the data dir when not absolute); NULL on error.
 * *out_len gets its length; the result is NUL-terminated; caller frees. */
char *unit_read_file(const char *path, size_t *out_len);
/* Print the closing line; returns the exit status for main. */
int unit_end(const char *name);

#endif
