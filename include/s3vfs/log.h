/* SPDX-License-Identifier: MIT */
/*
 * log: the one log sink (the only mutable global the project has).
 *
 * Messages go to stderr (foreground) or syslog (daemon). Callers must never
 * pass secrets (secret keys, session tokens, Authorization headers, signatures)
 * to these functions; log_redact_header() helps when dumping headers.
 * Thread-safe: one message is one write.
 */
#ifndef S3VFS_LOG_H
#define S3VFS_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "s3vfs/compiler.h"

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug" (also "crit"/"err"/"dbg" as s3fs does). -EINVAL. */
int log_parse_level(const char *s, enum log_level *out_lvl) WARN_UNUSED;
/* Send further messages to syslog with this ident (NULL: back to stderr). */
void log_use_syslog(const char *ident);
bool log_enabled(enum log_level lvl);

void log_msg(enum log_level lvl, const char *fmt, ...) PRINTF_LIKE(2, 3);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_LVL_DEBUG))                                                    \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                       \
	} while (0)

/* True for header names whose values must never be logged (authorization,
 * x-amz-security-token, ...). Case-insensitive. */
bool log_header_is_secret(const char *name, size_t len);

#endif
