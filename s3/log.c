// SPDX-License-Identifier: MIT
/*
 * log: the process's log sink (see log.h). The level and the syslog switch
 * are the only mutable globals of the project; they are set at start-up
 * and read with relaxed atomics afterwards.
 */
#include "s3vfs/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = LOG_LVL_WARN;
static _Atomic int log_syslog;

void log_set_level(enum log_level lvl)
{
	atomic_store(&log_level, (int)lvl);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

bool log_enabled(enum log_level lvl)
{
	return (int)lvl <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int log_parse_level(const char *s, enum log_level *out_lvl)
{
	static const struct {
		const char *name;
		enum log_level lvl;
	} names[] = {
		{ "error", LOG_LVL_ERROR }, { "err", LOG_LVL_ERROR },	 { "crit", LOG_LVL_ERROR },
		{ "warn", LOG_LVL_WARN },   { "warning", LOG_LVL_WARN }, { "info", LOG_LVL_INFO },
		{ "debug", LOG_LVL_DEBUG }, { "dbg", LOG_LVL_DEBUG },
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out_lvl = names[i].lvl;
			return 0;
		}
	}
	return -EINVAL;
}

void log_use_syslog(const char *ident)
{
	if (ident) {
		openlog(ident, LOG_PID, LOG_DAEMON);
		atomic_store(&log_syslog, 1);
	} else {
		atomic_store(&log_syslog, 0);
		closelog();
	}
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warn", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048];
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	if (atomic_load(&log_syslog)) {
		syslog(prio[lvl], "%s: %s", tags[lvl], line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per message keeps lines whole between threads. */
	fprintf(stderr, "s3vfs[%d] %s.%03ldZ %s: %s\n", (int)getpid(), stamp, ts.tv_nsec / 1000000,
		tags[lvl], line);
}

bool log_header_is_secret(const char *name, size_t len)
{
	static const char *const secret[] = { "authorization",
					      "x-amz-security-token",
					      "x-aws-ec2-metadata-token",
					      "proxy-authorization",
					      "cookie",
					      "set-cookie" };
	for (size_t i = 0; i < ARRAY_SIZE(secret); i++) {
		if (strlen(secret[i]) == len && strncasecmp(name, secret[i], len) == 0)
			return true;
	}
	return false;
}
