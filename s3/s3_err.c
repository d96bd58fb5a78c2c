// SPDX-License-Identifier: MIT
/*
 * s3_err: the details of a failed S3/DynamoDB request (see s3_err.h) and the
 * one table that turns them into a negative errno. It owns the mapping policy
 * and the log text of an error; it knows nothing of how the request was sent,
 * how the error body was parsed, or what operation the caller was doing
 * (callers refine -EAGAIN from PreconditionFailed, -ECANCELED from a failed
 * DynamoDB condition, and so on, as their operation calls for).
 */
#include "s3vfs/s3_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * Service error code -> errno. S3 codes come from the XML <Code>; DynamoDB
 * codes are the part of "__type" after '#'. One table for both services: the
 * names do not collide. A code not listed here falls back to the status class.
 */
static const struct {
	const char *code;
	int err; /* positive errno */
} code_map[] = {
	/* S3: the object or container is not there. */
	{ "NoSuchKey", ENOENT },
	{ "NoSuchBucket", ENOENT },
	{ "NoSuchUpload", ENOENT },
	{ "NoSuchVersion", ENOENT },
	/* S3: credentials, signature, account. A skewed clock is a signing
	 * failure as far as the caller can tell. */
	{ "AccessDenied", EACCES },
	{ "InvalidAccessKeyId", EACCES },
	{ "SignatureDoesNotMatch", EACCES },
	{ "AccountProblem", EACCES },
	{ "AllAccessDisabled", EACCES },
	{ "RequestTimeTooSkewed", EACCES },
	{ "ExpiredToken", EACCES },
	{ "InvalidToken", EACCES },
	/* S3: a condition (If-Match, If-None-Match) did not hold, or a
	 * concurrent conditional write won. -EAGAIN is deliberately generic:
	 * a create-if-absent caller turns it into -EEXIST, a compare-and-swap
	 * caller re-reads and tries again. */
	{ "PreconditionFailed", EAGAIN },
	{ "ConditionalRequestConflict", EAGAIN },
	{ "OperationAborted", EAGAIN },
	/* S3: buckets. */
	{ "BucketAlreadyOwnedByYou", EEXIST },
	{ "BucketAlreadyExists", EEXIST },
	{ "BucketNotEmpty", ENOTEMPTY },
	{ "InvalidBucketName", EINVAL },
	{ "TooManyBuckets", EDQUOT },
	{ "QuotaExceeded", EDQUOT },
	/* S3: sizes and names. */
	{ "EntityTooLarge", EFBIG },
	{ "KeyTooLongError", ENAMETOOLONG },
	{ "InvalidObjectName", ENAMETOOLONG },
	/* S3: a malformed request is our bug, not the user's; -EINVAL says so.
	 * InvalidRange too: reads past the end are clipped by the caller
	 * before a request is sent, so one that reaches S3 is a bug. */
	{ "EntityTooSmall", EINVAL },
	{ "InvalidPart", EINVAL },
	{ "InvalidPartOrder", EINVAL },
	{ "InvalidArgument", EINVAL },
	{ "InvalidRequest", EINVAL },
	{ "InvalidRange", EINVAL },
	{ "MalformedXML", EINVAL },
	{ "MissingContentLength", EINVAL },
	/* S3: the bytes were damaged on the way. */
	{ "BadDigest", EIO },
	{ "InvalidDigest", EIO },
	{ "IncompleteBody", EIO },
	/* S3: the service is busy or broken. */
	{ "SlowDown", EAGAIN },
	{ "ServiceUnavailable", EAGAIN },
	{ "Throttling", EAGAIN },
	{ "InternalError", EIO },
	{ "RequestTimeout", ETIMEDOUT },
	{ "NotImplemented", ENOSYS },
	{ "MethodNotAllowed", EPERM },

	/* DynamoDB: a ConditionExpression did not hold (the chain's "lost the
	 * race" signal), or a transaction was cancelled, usually for the same
	 * reason. */
	{ "ConditionalCheckFailedException", ECANCELED },
	{ "TransactionCanceledException", ECANCELED },
	{ "ResourceNotFoundException", ENOENT },
	{ "ResourceInUseException", EEXIST },
	{ "ProvisionedThroughputExceededException", EAGAIN },
	{ "ThrottlingException", EAGAIN },
	{ "RequestLimitExceeded", EAGAIN },
	{ "TransactionConflictException", EAGAIN },
	{ "ValidationException", EINVAL },
	{ "SerializationException", EINVAL },
	{ "AccessDeniedException", EACCES },
	{ "UnrecognizedClientException", EACCES },
	{ "MissingAuthenticationTokenException", EACCES },
	{ "IncompleteSignatureException", EACCES },
	{ "InvalidSignatureException", EACCES },
	{ "ExpiredTokenException", EACCES },
	{ "InternalServerError", EIO },
	{ "ItemCollectionSizeLimitExceededException", ENOSPC },
};

/* DynamoDB's "__type" is "com.amazonaws.dynamodb.v20120810#ThrottlingException";
 * the code is what follows the last '#'. S3 codes have no '#'. */
static const char *code_suffix(const char *code)
{
	const char *hash = strrchr(code, '#');
	return hash ? hash + 1 : code;
}

/*
 * Copy src into dst[size] for logging: truncated on a UTF-8 character
 * boundary, control characters (newlines, escapes) replaced by '?' so that a
 * server message cannot forge log lines.
 */
static void copy_text(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	if (src) {
		n = strnlen(src, size);
		if (n == size) {
			n = size - 1;
			/* Back off over continuation bytes to the lead byte,
			 * then drop the incomplete character. */
			while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
				n--;
		}
		memmove(dst, src, n); /* src may be dst itself */
	}
	dst[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)dst[i];
		if (c < 0x20 || c == 0x7f)
			dst[i] = '?';
	}
}

void aws_error_clear(struct aws_error *e)
{
	memset(e, 0, sizeof(*e));
}

/* Leaves request_id and transport alone: the HTTP layer fills those from the
 * response headers and the transfer, before or after the body is parsed. */
void aws_error_set(struct aws_error *e, long status, const char *code, const char *message)
{
	e->status = status;
	copy_text(e->code, sizeof(e->code), code ? code_suffix(code) : NULL);
	copy_text(e->message, sizeof(e->message), message);
}

static int status_errno(long status)
{
	if (status >= 500) {
		switch (status) {
		case 501:
			return -ENOSYS;
		case 503: /* S3 sends SlowDown as 503 */
			return -EAGAIN;
		default:
			return -EIO;
		}
	}
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
	case 410:
		return -ENOENT;
	case 405:
		return -EPERM;
	case 408:
		return -ETIMEDOUT;
	case 409:
		return -EBUSY;
	case 411: /* Length Required: our request was malformed */
		return -EINVAL;
	case 412:
		return -EAGAIN;
	case 413:
		return -EFBIG;
	case 414:
		return -ENAMETOOLONG;
	case 416:
		return -EINVAL;
	case 429:
		return -EAGAIN;
	default:
		/* Other 4xx, and anything below 400: this is only called on
		 * failure, so a 2xx/3xx here means a response we could not
		 * use (bad body, unexpected redirect). */
		return -EIO;
	}
}

int aws_error_errno(const struct aws_error *e)
{
	if (e->transport)
		return e->transport < 0 ? e->transport : -e->transport;
	if (e->code[0]) {
		const char *code = code_suffix(e->code);
		for (size_t i = 0; i < ARRAY_SIZE(code_map); i++) {
			if (strcmp(code, code_map[i].code) == 0)
				return -code_map[i].err;
		}
	}
	if (e->status == 0)
		return -EIO; /* failed, but neither a response nor a transport error */
	return status_errno(e->status);
}

/* snprintf at *off into out[outlen], keeping *off within the buffer. */
static void PRINTF_LIKE(4, 5) put(char *out, size_t outlen, size_t *off, const char *fmt, ...)
{
	va_list ap;

	if (*off >= outlen - 1)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(out + *off, outlen - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off += (size_t)n;
	if (*off > outlen - 1)
		*off = outlen - 1;
}

/*
 * "404 NoSuchKey (request id X): message", leaving out what is unknown;
 * "transport error -110 (Connection timed out)" when no response came.
 * Always NUL-terminated, truncated to outlen. Returns out ("" if outlen is 0).
 */
const char *aws_error_str(const struct aws_error *e, char *out, unsigned outlen)
{
	size_t off = 0;

	if (!out || outlen == 0)
		return "";
	out[0] = '\0';
	if (e->transport) {
		char tmp[128];
		int err = e->transport < 0 ? -e->transport : e->transport;
		/* GNU strerror_r (the build defines _GNU_SOURCE): thread-safe,
		 * returns a pointer to either tmp or a static string. */
		const char *txt = strerror_r(err, tmp, sizeof(tmp));
		put(out, outlen, &off, "transport error %d (%s)", -err, txt);
		if (e->status)
			put(out, outlen, &off, " after status %ld", e->status);
	} else {
		put(out, outlen, &off, "%ld", e->status);
		if (e->code[0])
			put(out, outlen, &off, " %s", e->code);
	}
	if (e->request_id[0])
		put(out, outlen, &off, " (request id %s)", e->request_id);
	if (e->message[0])
		put(out, outlen, &off, ": %s", e->message);
	return out;
}
