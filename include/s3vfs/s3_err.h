/* SPDX-License-Identifier: MIT */
/*
 * s3_err: what went wrong in a request, and the one table that maps it to errno.
 *
 * struct aws_error carries the details (HTTP status, service error code,
 * message, request id) beside the negative errno that functions return, for
 * logging. Both S3 (XML) and DynamoDB (JSON, "__type") codes are mapped here.
 */
#ifndef S3VFS_S3_ERR_H
#define S3VFS_S3_ERR_H

#include "s3vfs/compiler.h"

struct aws_error {
	long status;	      /* HTTP status, 0 if no response was received */
	char code[64];	      /* "NoSuchKey", "ConditionalCheckFailedException", "" */
	char message[256];    /* server's message, truncated; never contains secrets */
	char request_id[128]; /* x-amz-request-id / x-amzn-RequestId */
	int transport;	      /* negative errno of a transport failure, else 0 */
};

void aws_error_clear(struct aws_error *e);
void aws_error_set(struct aws_error *e, long status, const char *code, const char *message);

/*
 * Map an error to a negative errno. The code wins over the status when it is
 * known (NoSuchKey -> -ENOENT, AccessDenied -> -EACCES, PreconditionFailed ->
 * -EAGAIN, ConditionalCheckFailedException -> -ECANCELED, ...); else by status
 * class (404 -> -ENOENT, 403 -> -EACCES, 5xx -> -EIO, ...). A transport
 * failure returns e->transport.
 */
int aws_error_errno(const struct aws_error *e);

/* Short human text for logs: "404 NoSuchKey (request id X): message". */
const char *aws_error_str(const struct aws_error *e, char *out, unsigned outlen);

#endif
