/* SPDX-License-Identifier: MIT */
/*
 * aws: one signed AWS request with retries, shared by the S3 and DynamoDB
 * clients. It signs (sigv4), performs (http), decodes an error reply into a
 * struct aws_error (S3 XML or DynamoDB JSON), asks retry whether to go on,
 * sleeps the backoff and counts. It knows nothing of objects or tables.
 *
 * A request whose body sink already received bytes is not retried here (the
 * bytes cannot be taken back); the caller resumes (s3_get does, by range).
 */
#ifndef S3VFS_AWS_H
#define S3VFS_AWS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "s3vfs/compiler.h"
#include "s3vfs/http.h"
#include "s3vfs/retry.h"
#include "s3vfs/s3_err.h"

struct creds_provider;

/* Where and how to sign: one per service endpoint. Strings borrowed. */
struct aws_endpoint {
	const char *
		base_url; /* "http://127.0.0.1:7480", "https://bucket.s3.eu-west-1.amazonaws.com" */
	const char *host; /* Host header value, e.g. "127.0.0.1:7480" */
	const char *service; /* "s3", "dynamodb" */
	const char *region;
	unsigned sign_flags; /* SIGV4_* */
	bool json_errors;    /* DynamoDB: error bodies are JSON, else S3 XML */
};

struct aws_call {
	const char *method;
	const char *path;	    /* encoded, starting with '/' */
	const char *query;	    /* encoded "a=b&c=d", NULL for none */
	const char *const *headers; /* extra "Name: value" lines, sent and signed */
	size_t nheaders;
	const struct http_body *body; /* NULL for none */
	const char *payload_hash;     /* NULL: SHA-256 of a memory body (or of empty) */
	http_sink_fn sink;
	void *sink_arg;
	size_t max_body;
	enum stat_op op;
};

struct aws_client {
	struct http_client *http;     /* borrowed */
	struct creds_provider *creds; /* borrowed */
	struct stats *stats;	      /* borrowed, may be NULL */
	struct retry_policy retry;
	/* Server time minus our time, learnt from a RequestTimeTooSkewed reply
	 * and added to the signing clock. Zero-initialize. */
	_Atomic long clock_skew_s;
};

/*
 * Perform with retries. Returns 0 for a 2xx or 304 response (out->status
 * tells which), else the mapped negative errno with err filled. out holds the
 * last attempt's response in both cases; the caller cleans it up.
 */
int aws_perform(struct aws_client *ac, const struct aws_endpoint *ep, const struct aws_call *call,
		struct http_response *out, struct aws_error *err) WARN_UNUSED;

/* Parse an error reply body into err (code, message, request id); keeps status. */
void aws_parse_error_body(const struct aws_endpoint *ep, const struct http_response *r,
			  struct aws_error *err);

#endif
