/* SPDX-License-Identifier: MIT */
/*
 * Compiler attributes shared by every module: fallible functions are
 * WARN_UNUSED, printf-like ones are PRINTF_LIKE.
 */
#ifndef S3VFS_COMPILER_H
#define S3VFS_COMPILER_H

#define WARN_UNUSED	  __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define ARRAY_SIZE(a)	  (sizeof(a) / sizeof((a)[0]))

#endif
