/* SPDX-License-Identifier: MIT */
/*
 * sigv4: AWS Signature Version 4 header signing (OpenSSL), and the S3 URI
 * encoding rules. Pure functions: no I/O, no clock (the caller passes the time).
 *
 * S3 rules (flags SIGV4_CONTENT_SHA256): the path is signed exactly as sent
 * (no normalization, no second encoding) and x-amz-content-sha256 is added
 * and signed. Generic rules
 * (SIGV4_NORMALIZE_PATH | SIGV4_DOUBLE_ENCODE) are those of the AWS signing
 * test suite and of services such as DynamoDB (whose path is always "/").
 */
#ifndef S3VFS_SIGV4_H
#define S3VFS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "s3vfs/buf.h"
#include "s3vfs/compiler.h"

#define SIGV4_NORMALIZE_PATH 0x1u /* remove dot segments and empty segments */
#define SIGV4_DOUBLE_ENCODE  0x2u /* encode the (already encoded) path once more */
#define SIGV4_CONTENT_SHA256 0x4u /* add and sign x-amz-content-sha256 (S3) */

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string, lowercase hex. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_header {
	const char *name;  /* any case; signed lowercase */
	const char *value; /* trimmed and inner runs of spaces folded when signed */
};

struct sigv4_input {
	const char *method;
	const char *path;  /* the path as sent on the wire, already URI-encoded, "/" if empty */
	const char *query; /* raw query string without '?', NULL or "" for none */
	/* Headers to sign; must include "host". Do not include x-amz-date,
	 * x-amz-security-token or x-amz-content-sha256: the signer adds them. */
	const struct sigv4_header *headers;
	size_t nheaders;
	const char *payload_hash; /* lowercase hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD */
	const char *region;
	const char *service;
	time_t now; /* UTC seconds */
	unsigned flags;
};

struct sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL if none */
};

/* A header the caller must send with the request (value owned by the output). */
struct sigv4_out_header {
	const char *name;
	char *value;
};

struct sigv4_output {
	struct buf canonical_request;
	struct buf string_to_sign;
	struct buf authorization; /* the value of the Authorization header */
	/* Headers to add to the request, in this order: X-Amz-Date,
	 * X-Amz-Content-SHA256 (with SIGV4_CONTENT_SHA256), X-Amz-Security-Token
	 * (with a session token), Authorization. */
	struct sigv4_out_header add[4];
	size_t nadd;
};

void sigv4_output_init(struct sigv4_output *out);
void sigv4_output_cleanup(struct sigv4_output *out);

/* Sign. 0, -EINVAL (missing host, bad input), -ENOMEM, -E2BIG. */
int sigv4_sign(const struct sigv4_input *in, const struct sigv4_creds *creds,
	       struct sigv4_output *out) WARN_UNUSED;

/* Format t as "YYYYMMDDTHHMMSSZ" (out has room for 17 bytes). */
void sigv4_amz_date(time_t t, char out[17]);

/* Lowercase hex SHA-256 of data into out (65 bytes). */
void sigv4_sha256_hex(const void *data, size_t n, char out[65]);

/*
 * S3 URI encoding: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX
 * (uppercase hex); '/' is kept when keep_slash is true (object key in a
 * path), encoded otherwise (query values). Appends to out. 0, -ENOMEM, -E2BIG.
 */
int sigv4_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash) WARN_UNUSED;

#endif
