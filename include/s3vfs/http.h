/* SPDX-License-Identifier: MIT */
/*
 * http: performs one HTTP request over libcurl, and nothing else (no signing,
 * no retries, no error decoding).
 *
 * One struct http_client per process: it owns a libcurl share handle so that
 * connections, TLS sessions and DNS answers are reused across requests and
 * threads. http_perform() is thread-safe. TLS verification is on unless the
 * config turns it off. The header keeps libcurl out of its callers.
 */
#ifndef S3VFS_HTTP_H
#define S3VFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3vfs/buf.h"
#include "s3vfs/compiler.h"
#include "s3vfs/stats.h"

struct http_client;

struct http_config {
	long connect_timeout_ms; /* default 10000 */
	long low_speed_time_s; /* abort a transfer slower than low_speed_limit for this long; 30 */
	long low_speed_limit;  /* bytes per second; default 1 */
	long timeout_ms;       /* whole attempt; 0 = no limit besides low speed (default) */
	bool insecure;	       /* skip TLS peer/host verification */
	const char *ca_file;   /* CA bundle, NULL = system default */
	bool verbose;	       /* libcurl's own trace to stderr (never with secrets: debug only) */
};

void http_config_default(struct http_config *c);

/* 0, -ENOMEM, -EIO (libcurl init failed). */
int http_client_new(const struct http_config *cfg, struct stats *stats,
		    struct http_client **out) WARN_UNUSED;
void http_client_free(struct http_client *c);

/* Body sink: receives the body of a 2xx response. Return 0 or a negative errno to abort. */
typedef int (*http_sink_fn)(void *arg, const void *data, size_t n);

/* Request body: either memory (data) or a file descriptor read with pread. */
struct http_body {
	const void *data; /* used when fd < 0 */
	int fd;		  /* -1 for none */
	uint64_t offset;  /* start in fd */
	uint64_t len;
};

struct http_request {
	const char *method;
	const char *url;
	const char *const *headers; /* "Name: value" lines */
	size_t nheaders;
	const struct http_body *body; /* NULL for none */
	http_sink_fn sink;	      /* NULL: a 2xx body is collected into the response */
	void *sink_arg;
	size_t max_body; /* cap for a collected body; 0 = 16 MiB */
	enum stat_op op;
	long connect_timeout_ms; /* 0: the client's */
	long timeout_ms;	 /* whole attempt; 0: the client's */
};

struct http_header {
	char *name; /* lowercased */
	char *value;
};

struct http_response {
	long status; /* 0 until a status line arrives */
	struct http_header *headers;
	size_t nheaders;
	struct buf body;     /* collected body (2xx without sink, or any non-2xx) */
	uint64_t sink_bytes; /* bytes handed to the sink (also those it refused) */
	bool sink_failed;    /* the sink returned an error: the attempt ended there */
	long elapsed_ms;
	char errmsg[256]; /* transport failure text (libcurl's), "" if none */
};

void http_response_init(struct http_response *r);
void http_response_cleanup(struct http_response *r);
/* Value of the header with this lowercase name, NULL if absent. Borrowed. */
const char *http_response_header(const struct http_response *r, const char *lname);

/*
 * Perform one attempt. Returns 0 when a complete response arrived, whatever
 * its status. Transport failures: -ETIMEDOUT, -ECONNRESET, -ECONNREFUSED,
 * -EHOSTUNREACH (DNS or route), -EPROTO (malformed response, truncated body),
 * -EIO (other), -E2BIG (collected body over its cap, or headers over 256 KiB),
 * or the sink's own negative errno. The response may hold partial data on error.
 */
int http_perform(struct http_client *c, const struct http_request *req,
		 struct http_response *out) WARN_UNUSED;

#endif
