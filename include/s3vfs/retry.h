/* SPDX-License-Identifier: MIT */
/*
 * retry: the policy that decides whether a failed attempt is tried again and
 * how long to wait first. Decisions only; no I/O, no sleeping, no clock.
 *
 * Retried: transport failures (reset, timeout, refused, DNS), HTTP 5xx, 429,
 * S3 SlowDown/InternalError/RequestTimeout/RequestTimeTooSkewed, DynamoDB
 * throttling codes. Not retried: any other 4xx. Bounded by attempts and by
 * total elapsed time. Backoff is exponential with full jitter.
 */
#ifndef S3VFS_RETRY_H
#define S3VFS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "s3vfs/s3_err.h"

struct retry_policy {
	int max_attempts;    /* total attempts including the first; default 5 */
	long base_ms;	     /* first backoff cap; default 100 */
	long max_backoff_ms; /* cap of one wait; default 10000 */
	long max_total_ms;   /* no new attempt after this much time; default 60000 */
};

void retry_policy_default(struct retry_policy *p);

/* Is this error worth another attempt, ignoring budgets? */
bool retry_is_retryable(const struct aws_error *e);

/*
 * Decide: attempt is the number of attempts already made (>= 1), elapsed_ms
 * the time since the first started. On true, *out_wait_ms is the backoff.
 * rnd is a random 64-bit value (full jitter: wait = rnd % (cap + 1)).
 */
bool retry_decide(const struct retry_policy *p, const struct aws_error *e, int attempt,
		  long elapsed_ms, uint64_t rnd, long *out_wait_ms);

#endif
