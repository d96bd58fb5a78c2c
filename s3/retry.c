// SPDX-License-Identifier: MIT
/*
 * retry: the policy for failed attempts (see retry.h). It owns two decisions,
 * "is this failure transient?" and "may we try again, after how long?", as
 * pure functions of the error, the attempt count, the elapsed time and a
 * random value supplied by the caller. It must not sleep, read a clock, draw
 * random numbers or know which operation failed: the HTTP layer does those.
 */
#include "s3vfs/retry.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

/* Eight attempts, full jitter from 200 ms doubling to 10 s: about 11 s of
 * waiting on average (at most 23 s), so that a mount rides out an outage of
 * a few seconds or a burst of throttling, and a dead endpoint still fails
 * within half a minute. */
void retry_policy_default(struct retry_policy *p)
{
	p->max_attempts = 8;
	p->base_ms = 200;
	p->max_backoff_ms = 10000;
	p->max_total_ms = 60000;
}

/*
 * Transport failures worth another attempt: the connection broke, timed out,
 * or could not be made (the HTTP layer maps DNS failures to -EHOSTUNREACH or
 * -EAGAIN), or the body was cut short (-EPROTO). Not retried: -E2BIG (a
 * response over its cap will be over it again), -ENOMEM, -ECANCELED (we
 * aborted on purpose), -EINVAL (our bug), and anything not listed.
 */
static bool transport_retryable(int err)
{
	switch (err < 0 ? -err : err) {
	case ETIMEDOUT:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ENETUNREACH:
	case ENETDOWN:
	case ENETRESET:
	case EPROTO:
	case EPIPE:
	case EIO:
	case EAGAIN:
		return true;
	default:
		return false;
	}
}

/*
 * Service codes that are transient whatever their status (several come as
 * 400 or 403). S3: SlowDown, InternalError, RequestTimeout (the socket was
 * idle too long), RequestTimeTooSkewed (retried: the signer may take the
 * server's Date into account; the attempt budget bounds it otherwise),
 * BadDigest and XAmzContentSHA256Mismatch (the body was damaged on the way:
 * it is read again from its source and sent again).
 * DynamoDB: throttling, transaction conflicts, internal errors.
 */
static const char *const retryable_codes[] = {
	"SlowDown",
	"InternalError",
	"RequestTimeout",
	"BadDigest",
	"XAmzContentSHA256Mismatch",
	"RequestTimeTooSkewed",
	"ServiceUnavailable",
	"Throttling",
	"ThrottlingException",
	"ProvisionedThroughputExceededException",
	"RequestLimitExceeded",
	"TransactionConflictException",
	"InternalServerError",
};

bool retry_is_retryable(const struct aws_error *e)
{
	if (e->transport)
		return transport_retryable(e->transport);
	if (e->code[0]) {
		/* aws_error_set strips DynamoDB's "prefix#"; be lenient if a
		 * caller filled code by hand. */
		const char *hash = strrchr(e->code, '#');
		const char *code = hash ? hash + 1 : e->code;
		for (size_t i = 0; i < ARRAY_SIZE(retryable_codes); i++) {
			if (strcmp(code, retryable_codes[i]) == 0)
				return true;
		}
	}
	if (e->status == 429)
		return true;
	/* 5xx is the server's trouble, except 501: asking again will not
	 * make it implement the method. */
	return e->status >= 500 && e->status <= 599 && e->status != 501;
}

/* min(max_backoff, base << (attempt - 1)) without overflowing the shift. */
static long backoff_cap(const struct retry_policy *p, int attempt)
{
	long base = p->base_ms > 0 ? p->base_ms : 0;
	long max = p->max_backoff_ms > 0 ? p->max_backoff_ms : 0;
	int shift = attempt - 1;

	if (base == 0 || max == 0)
		return 0;
	/* base <= max >> shift  <=>  base << shift <= max, with no overflow. */
	if (shift >= (int)(sizeof(long) * CHAR_BIT) - 1 || base > (max >> shift))
		return max;
	return base << shift;
}

bool retry_decide(const struct retry_policy *p, const struct aws_error *e, int attempt,
		  long elapsed_ms, uint64_t rnd, long *out_wait_ms)
{
	assert(attempt >= 1);
	if (attempt < 1)
		attempt = 1; /* NDEBUG builds: treat as the first attempt */
	if (attempt >= p->max_attempts || !retry_is_retryable(e))
		return false;

	long cap = backoff_cap(p, attempt);
	long wait = (long)(rnd % ((uint64_t)cap + 1)); /* full jitter: [0, cap] */

	if (elapsed_ms < 0)
		elapsed_ms = 0;
	/* elapsed + wait > max_total, written so that it cannot overflow. */
	if (elapsed_ms > p->max_total_ms || wait > p->max_total_ms - elapsed_ms)
		return false;
	*out_wait_ms = wait;
	return true;
}
