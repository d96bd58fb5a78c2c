// SPDX-License-Identifier: MIT
/*
 * test_retry: the retry policy (retry.c) and the error mapping it reads
 * (s3_err.c). Tables of (status, code, transport) rows for the errno map and
 * for "retryable?", then the budgets of retry_decide and the bounds of its
 * backoff over many random values.
 */
#include "s3vfs/retry.h"
#include "s3vfs/s3_err.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

static struct aws_error make_err(long status, const char *code, int transport)
{
	struct aws_error e;

	aws_error_clear(&e);
	aws_error_set(&e, status, code, NULL);
	e.transport = transport;
	return e;
}

/* ---- aws_error_errno: the mapping table ---- */

static const struct {
	long status;
	const char *code;
	int transport;
	int want;
} errno_rows[] = {
	/* S3 codes */
	{ 404, "NoSuchKey", 0, -ENOENT },
	{ 404, "NoSuchBucket", 0, -ENOENT },
	{ 404, "NoSuchUpload", 0, -ENOENT },
	{ 403, "AccessDenied", 0, -EACCES },
	{ 403, "InvalidAccessKeyId", 0, -EACCES },
	{ 403, "SignatureDoesNotMatch", 0, -EACCES },
	{ 403, "AccountProblem", 0, -EACCES },
	{ 403, "AllAccessDisabled", 0, -EACCES },
	{ 403, "RequestTimeTooSkewed", 0, -EACCES },
	{ 412, "PreconditionFailed", 0, -EAGAIN },
	{ 409, "BucketAlreadyOwnedByYou", 0, -EEXIST },
	{ 409, "BucketAlreadyExists", 0, -EEXIST },
	{ 409, "BucketNotEmpty", 0, -ENOTEMPTY },
	{ 400, "EntityTooLarge", 0, -EFBIG },
	{ 400, "EntityTooSmall", 0, -EINVAL },
	{ 400, "InvalidPart", 0, -EINVAL },
	{ 400, "InvalidPartOrder", 0, -EINVAL },
	{ 400, "InvalidArgument", 0, -EINVAL },
	{ 400, "InvalidRequest", 0, -EINVAL },
	{ 416, "InvalidRange", 0, -EINVAL },
	{ 400, "KeyTooLongError", 0, -ENAMETOOLONG },
	{ 400, "InvalidObjectName", 0, -ENAMETOOLONG },
	{ 503, "SlowDown", 0, -EAGAIN },
	{ 503, "ServiceUnavailable", 0, -EAGAIN },
	{ 400, "Throttling", 0, -EAGAIN },
	{ 500, "InternalError", 0, -EIO },
	{ 400, "RequestTimeout", 0, -ETIMEDOUT },
	{ 501, "NotImplemented", 0, -ENOSYS },
	{ 405, "MethodNotAllowed", 0, -EPERM },
	{ 400, "InvalidBucketName", 0, -EINVAL },
	{ 403, "QuotaExceeded", 0, -EDQUOT },
	/* DynamoDB codes, bare and with the "__type" prefix */
	{ 400, "ConditionalCheckFailedException", 0, -ECANCELED },
	{ 400, "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", 0, -ECANCELED },
	{ 400, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", 0, -ENOENT },
	{ 400, "ResourceInUseException", 0, -EEXIST },
	{ 400, "ProvisionedThroughputExceededException", 0, -EAGAIN },
	{ 400, "ThrottlingException", 0, -EAGAIN },
	{ 400, "RequestLimitExceeded", 0, -EAGAIN },
	{ 400, "com.amazon.coral.validate#ValidationException", 0, -EINVAL },
	{ 400, "SerializationException", 0, -EINVAL },
	{ 400, "AccessDeniedException", 0, -EACCES },
	{ 400, "UnrecognizedClientException", 0, -EACCES },
	{ 403, "MissingAuthenticationTokenException", 0, -EACCES },
	{ 403, "IncompleteSignatureException", 0, -EACCES },
	{ 500, "InternalServerError", 0, -EIO },
	{ 400, "TransactionConflictException", 0, -EAGAIN },
	{ 400, "ItemCollectionSizeLimitExceededException", 0, -ENOSPC },
	/* the code wins over the status */
	{ 500, "NoSuchKey", 0, -ENOENT },
	{ 200, "AccessDenied", 0, -EACCES }, /* CopyObject: 200 with an error body */
	/* unknown code or no code: the status class decides */
	{ 404, "SomethingNew", 0, -ENOENT },
	{ 400, "", 0, -EINVAL },
	{ 401, NULL, 0, -EACCES },
	{ 403, NULL, 0, -EACCES },
	{ 404, NULL, 0, -ENOENT },
	{ 405, NULL, 0, -EPERM },
	{ 408, NULL, 0, -ETIMEDOUT },
	{ 409, NULL, 0, -EBUSY },
	{ 410, NULL, 0, -ENOENT },
	{ 411, NULL, 0, -EINVAL },
	{ 412, NULL, 0, -EAGAIN },
	{ 413, NULL, 0, -EFBIG },
	{ 414, NULL, 0, -ENAMETOOLONG },
	{ 416, NULL, 0, -EINVAL },
	{ 418, NULL, 0, -EIO },
	{ 429, NULL, 0, -EAGAIN },
	{ 500, NULL, 0, -EIO },
	{ 501, NULL, 0, -ENOSYS },
	{ 502, NULL, 0, -EIO },
	{ 503, NULL, 0, -EAGAIN },
	{ 504, NULL, 0, -EIO },
	{ 599, NULL, 0, -EIO },
	{ 200, NULL, 0, -EIO },
	{ 301, NULL, 0, -EIO },
	{ 304, NULL, 0, -EIO },
	{ 0, NULL, 0, -EIO },
	/* a transport failure wins over everything */
	{ 0, NULL, -ETIMEDOUT, -ETIMEDOUT },
	{ 0, NULL, -ECONNRESET, -ECONNRESET },
	{ 200, NULL, -EPROTO, -EPROTO },
	{ 404, "NoSuchKey", -ECONNRESET, -ECONNRESET },
	{ 0, NULL, ECONNREFUSED, -ECONNREFUSED }, /* sign slip: still negative */
};

static void test_errno_map(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(errno_rows); i++) {
		struct aws_error e =
			make_err(errno_rows[i].status, errno_rows[i].code, errno_rows[i].transport);
		int got = aws_error_errno(&e);
		if (got != errno_rows[i].want)
			fprintf(stderr, "errno row %zu: %ld %s %d\n", i, errno_rows[i].status,
				errno_rows[i].code ? errno_rows[i].code : "(null)",
				errno_rows[i].transport);
		CHECK_INT(got, errno_rows[i].want);
	}
}

/* ---- aws_error_set / aws_error_clear ---- */

static void test_set_clear(void)
{
	struct aws_error e;
	char longs[1024];

	memset(&e, 0x55, sizeof(e));
	aws_error_clear(&e);
	CHECK_INT(e.status, 0);
	CHECK_STR(e.code, "");
	CHECK_STR(e.message, "");
	CHECK_STR(e.request_id, "");
	CHECK_INT(e.transport, 0);

	aws_error_set(&e, 404, "NoSuchKey", "The specified key does not exist.");
	CHECK_INT(e.status, 404);
	CHECK_STR(e.code, "NoSuchKey");
	CHECK_STR(e.message, "The specified key does not exist.");

	/* DynamoDB __type keeps the part after the last '#'. */
	aws_error_set(&e, 400, "com.amazonaws.dynamodb.v20120810#ThrottlingException", "slow");
	CHECK_STR(e.code, "ThrottlingException");

	/* NULLs are empty strings. */
	aws_error_set(&e, 500, NULL, NULL);
	CHECK_STR(e.code, "");
	CHECK_STR(e.message, "");

	/* set leaves request_id and transport alone. */
	snprintf(e.request_id, sizeof(e.request_id), "%s", "REQ1");
	e.transport = -EPROTO;
	aws_error_set(&e, 200, "X", "y");
	CHECK_STR(e.request_id, "REQ1");
	CHECK_INT(e.transport, -EPROTO);

	/* Truncation: exactly fits, one over, far over. */
	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	aws_error_set(&e, 400, longs, longs);
	CHECK_INT(strlen(e.code), sizeof(e.code) - 1);
	CHECK_INT(strlen(e.message), sizeof(e.message) - 1);
	longs[sizeof(e.message) - 1] = '\0';
	aws_error_set(&e, 400, NULL, longs);
	CHECK_STR(e.message, longs);
	longs[sizeof(e.message) - 1] = 'a';
	longs[sizeof(e.message)] = '\0';
	aws_error_set(&e, 400, NULL, longs);
	CHECK_INT(strlen(e.message), sizeof(e.message) - 1);

	/* Truncation never splits a UTF-8 character: 254 ASCII then "é"
	 * (2 bytes) would need 257 bytes; the whole "é" goes. */
	memset(longs, 'b', 254);
	memcpy(longs + 254, "\xc3\xa9zz", 5);
	aws_error_set(&e, 400, NULL, longs);
	CHECK_INT(strlen(e.message), 254);
	CHECK_INT(e.message[253], 'b');
	/* 253 ASCII then "é" fits exactly (255 bytes). */
	memmove(longs + 253, "\xc3\xa9zz", 5);
	aws_error_set(&e, 400, NULL, longs);
	CHECK_INT(strlen(e.message), 255);
	CHECK(memcmp(e.message + 253, "\xc3\xa9", 2) == 0);
	/* A 4-byte character across the boundary. */
	memset(longs, 'c', 253);
	memcpy(longs + 253, "\xf0\x9f\x98\x80", 5);
	aws_error_set(&e, 400, NULL, longs);
	CHECK_INT(strlen(e.message), 253);

	/* Control characters cannot forge log lines. */
	aws_error_set(&e, 400, "Bad\nCode", "line1\nFAKE LOG\r\x1b[31m");
	CHECK_STR(e.code, "Bad?Code");
	CHECK_STR(e.message, "line1?FAKE LOG??[31m");
}

/* ---- aws_error_str ---- */

static void test_str(void)
{
	struct aws_error e;
	char out[512];
	char tiny[8];

	aws_error_clear(&e);
	aws_error_set(&e, 404, "NoSuchKey", "The specified key does not exist.");
	snprintf(e.request_id, sizeof(e.request_id), "%s", "4442587FB7D0A2F9");
	CHECK_STR(aws_error_str(&e, out, sizeof(out)),
		  "404 NoSuchKey (request id 4442587FB7D0A2F9): The specified key does not exist.");

	aws_error_set(&e, 503, NULL, NULL);
	e.request_id[0] = '\0';
	CHECK_STR(aws_error_str(&e, out, sizeof(out)), "503");

	aws_error_set(&e, 400, "com.amazonaws.dynamodb.v20120810#ValidationException", "bad");
	CHECK_STR(aws_error_str(&e, out, sizeof(out)), "400 ValidationException: bad");

	aws_error_clear(&e);
	e.transport = -ETIMEDOUT;
	CHECK_STR(aws_error_str(&e, out, sizeof(out)),
		  "transport error -110 (Connection timed out)");

	aws_error_set(&e, 200, NULL, NULL);
	e.transport = -EPROTO;
	CHECK_STR(aws_error_str(&e, out, sizeof(out)),
		  "transport error -71 (Protocol error) after status 200");

	/* Truncated, always terminated, returns out. */
	aws_error_clear(&e);
	aws_error_set(&e, 404, "NoSuchKey", "The specified key does not exist.");
	memset(tiny, 'x', sizeof(tiny));
	CHECK(aws_error_str(&e, tiny, sizeof(tiny)) == tiny);
	CHECK_STR(tiny, "404 NoS");
	CHECK_STR(aws_error_str(&e, tiny, 1), "");
	CHECK_STR(aws_error_str(&e, tiny, 0), "");
	CHECK_STR(aws_error_str(&e, tiny, 4), "404");
	CHECK_STR(aws_error_str(&e, tiny, 5), "404 ");
}

/* ---- retry_is_retryable ---- */

static const struct {
	long status;
	const char *code;
	int transport;
	bool want;
} retry_rows[] = {
	/* transport */
	{ 0, NULL, -ETIMEDOUT, true },
	{ 0, NULL, -ECONNRESET, true },
	{ 0, NULL, -ECONNREFUSED, true },
	{ 0, NULL, -EHOSTUNREACH, true },
	{ 0, NULL, -ENETUNREACH, true },
	{ 0, NULL, -EPROTO, true },
	{ 0, NULL, -EIO, true },
	{ 0, NULL, -EPIPE, true },
	{ 0, NULL, -ECONNABORTED, true },
	{ 0, NULL, -EAGAIN, true },
	{ 200, NULL, -EPROTO, true }, /* body cut short after the status */
	{ 0, NULL, -E2BIG, false },
	{ 0, NULL, -ENOMEM, false },
	{ 0, NULL, -ECANCELED, false },
	{ 0, NULL, -EINVAL, false },
	{ 0, NULL, -EACCES, false },
	{ 503, "SlowDown", -ECANCELED, false }, /* transport decides when set */
	/* status */
	{ 500, NULL, 0, true },
	{ 501, NULL, 0, false },
	{ 502, NULL, 0, true },
	{ 503, NULL, 0, true },
	{ 504, NULL, 0, true },
	{ 507, NULL, 0, true },
	{ 429, NULL, 0, true },
	{ 400, NULL, 0, false },
	{ 401, NULL, 0, false },
	{ 403, NULL, 0, false },
	{ 404, NULL, 0, false },
	{ 409, NULL, 0, false },
	{ 412, NULL, 0, false },
	{ 416, NULL, 0, false },
	{ 200, NULL, 0, false },
	{ 304, NULL, 0, false },
	{ 0, NULL, 0, false },
	{ 600, NULL, 0, false },
	/* retryable codes, whatever the status */
	{ 503, "SlowDown", 0, true },
	{ 500, "InternalError", 0, true },
	{ 200, "InternalError", 0, true }, /* CompleteMultipartUpload: 200 + error */
	{ 400, "RequestTimeout", 0, true },
	{ 400, "BadDigest", 0, true },
	{ 400, "XAmzContentSHA256Mismatch", 0, true },
	{ 403, "RequestTimeTooSkewed", 0, true },
	{ 400, "Throttling", 0, true },
	{ 400, "ThrottlingException", 0, true },
	{ 400, "com.amazonaws.dynamodb.v20120810#ThrottlingException", 0, true },
	{ 400, "ProvisionedThroughputExceededException", 0, true },
	{ 400, "RequestLimitExceeded", 0, true },
	{ 400, "TransactionConflictException", 0, true },
	{ 500, "InternalServerError", 0, true },
	/* other 4xx codes are not */
	{ 400, "ConditionalCheckFailedException", 0, false },
	{ 400, "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", 0, false },
	{ 412, "PreconditionFailed", 0, false },
	{ 404, "NoSuchKey", 0, false },
	{ 403, "AccessDenied", 0, false },
	{ 403, "SignatureDoesNotMatch", 0, false },
	{ 400, "ValidationException", 0, false },
	{ 400, "ResourceNotFoundException", 0, false },
	{ 400, "EntityTooSmall", 0, false },
	{ 501, "NotImplemented", 0, false },
	{ 409, "BucketNotEmpty", 0, false },
};

static void test_retryable(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(retry_rows); i++) {
		struct aws_error e =
			make_err(retry_rows[i].status, retry_rows[i].code, retry_rows[i].transport);
		bool got = retry_is_retryable(&e);
		if (got != retry_rows[i].want)
			fprintf(stderr, "retry row %zu: %ld %s %d\n", i, retry_rows[i].status,
				retry_rows[i].code ? retry_rows[i].code : "(null)",
				retry_rows[i].transport);
		CHECK_INT(got, retry_rows[i].want);
	}
}

/* ---- retry_decide: budgets ---- */

static void test_defaults(void)
{
	struct retry_policy p;

	retry_policy_default(&p);
	CHECK_INT(p.max_attempts, 8);
	CHECK_INT(p.base_ms, 200);
	CHECK_INT(p.max_backoff_ms, 10000);
	CHECK_INT(p.max_total_ms, 60000);
}

static void test_budgets(void)
{
	struct retry_policy p;
	struct aws_error busy = make_err(503, "SlowDown", 0);
	struct aws_error gone = make_err(404, "NoSuchKey", 0);
	long wait = -1;

	retry_policy_default(&p);
	p.max_attempts = 5; /* the arithmetic below, whatever the defaults */
	p.base_ms = 100;

	/* Attempts: 1..4 may retry, the 5th was the last. */
	for (int attempt = 1; attempt <= 4; attempt++)
		CHECK(retry_decide(&p, &busy, attempt, 0, 0, &wait));
	wait = -1;
	CHECK(!retry_decide(&p, &busy, 5, 0, 0, &wait));
	CHECK(!retry_decide(&p, &busy, 6, 0, 0, &wait));
	CHECK(!retry_decide(&p, &busy, INT_MAX, 0, 0, &wait));
	CHECK_INT(wait, -1); /* written only on true */

	/* Not retryable: no, even on the first attempt. */
	CHECK(!retry_decide(&p, &gone, 1, 0, 0, &wait));
	CHECK_INT(wait, -1);

	/* rnd 0: wait 0. rnd == cap: wait == cap. */
	CHECK(retry_decide(&p, &busy, 1, 0, 0, &wait));
	CHECK_INT(wait, 0);
	CHECK(retry_decide(&p, &busy, 1, 0, 100, &wait));
	CHECK_INT(wait, 100);
	CHECK(retry_decide(&p, &busy, 1, 0, 101, &wait));
	CHECK_INT(wait, 0);
	CHECK(retry_decide(&p, &busy, 3, 0, 400, &wait));
	CHECK_INT(wait, 400);

	/* Total time: elapsed + wait must not pass max_total. */
	CHECK(retry_decide(&p, &busy, 1, 60000, 0, &wait));
	CHECK_INT(wait, 0);
	CHECK(retry_decide(&p, &busy, 1, 59900, 100, &wait));
	CHECK_INT(wait, 100);
	wait = -1;
	CHECK(!retry_decide(&p, &busy, 1, 59901, 100, &wait));
	CHECK(!retry_decide(&p, &busy, 1, 60001, 0, &wait));
	CHECK(!retry_decide(&p, &busy, 1, LONG_MAX, 0, &wait));
	CHECK_INT(wait, -1);
	/* A negative elapsed (clock stepped back) counts as 0. */
	CHECK(retry_decide(&p, &busy, 1, -5000, 100, &wait));
	CHECK_INT(wait, 100);
	CHECK(retry_decide(&p, &busy, 1, LONG_MIN, 100, &wait)); /* no overflow */
	CHECK_INT(wait, 100);

	/* One attempt only: never retried. */
	p.max_attempts = 1;
	CHECK(!retry_decide(&p, &busy, 1, 0, 0, &wait));
	p.max_attempts = 0;
	CHECK(!retry_decide(&p, &busy, 1, 0, 0, &wait));

	/* Degenerate policies wait 0 instead of dividing by zero or shifting. */
	retry_policy_default(&p);
	p.base_ms = 0;
	CHECK(retry_decide(&p, &busy, 4, 0, UINT64_MAX, &wait));
	CHECK_INT(wait, 0);
	p.base_ms = 100;
	p.max_backoff_ms = -1;
	CHECK(retry_decide(&p, &busy, 4, 0, UINT64_MAX, &wait));
	CHECK_INT(wait, 0);
	retry_policy_default(&p);
	p.max_total_ms = -1;
	CHECK(!retry_decide(&p, &busy, 1, 0, 0, &wait));

	/* A transport error is retried under the same budget. */
	struct aws_error reset = make_err(0, NULL, -ECONNRESET);
	retry_policy_default(&p);
	CHECK(retry_decide(&p, &reset, 1, 0, 7, &wait));
	CHECK_INT(wait, 7);
}

/* ---- retry_decide: backoff bounds ---- */

/* splitmix64: a fixed, portable stream of random values for the test. */
static uint64_t next_rnd(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_backoff(void)
{
	struct retry_policy p;
	struct aws_error busy = make_err(500, NULL, 0);
	uint64_t state = 42;
	long wait = 0;

	retry_policy_default(&p);
	p.max_attempts = INT_MAX;
	p.max_total_ms = LONG_MAX;
	p.base_ms = 100;

	/* cap(attempt): 100, 200, 400, ... then 10000 forever, overflow or not. */
	static const struct {
		int attempt;
		long cap;
	} caps[] = {
		{ 1, 100 },    { 2, 200 },	{ 3, 400 },
		{ 4, 800 },    { 5, 1600 },	{ 6, 3200 },
		{ 7, 6400 },   { 8, 10000 },	{ 9, 10000 },
		{ 30, 10000 }, { 63, 10000 },	{ 64, 10000 },
		{ 65, 10000 }, { 1000, 10000 }, { INT_MAX - 1, 10000 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
		long max_seen = -1;
		int over = 0, undecided = 0;
		/* rnd == cap must give exactly cap: the cap is reachable. */
		CHECK(retry_decide(&p, &busy, caps[i].attempt, 0, (uint64_t)caps[i].cap, &wait));
		CHECK_INT(wait, caps[i].cap);
		CHECK(retry_decide(&p, &busy, caps[i].attempt, 0, (uint64_t)caps[i].cap + 1,
				   &wait));
		CHECK_INT(wait, 0);
		for (int n = 0; n < 20000; n++) {
			if (!retry_decide(&p, &busy, caps[i].attempt, 0, next_rnd(&state), &wait)) {
				undecided++;
				continue;
			}
			if (wait < 0 || wait > caps[i].cap)
				over++;
			if (wait > max_seen)
				max_seen = wait;
		}
		CHECK_INT(undecided, 0);
		CHECK_INT(over, 0);
		/* Full jitter spreads over the range: the top 10% is reached. */
		CHECK(max_seen >= caps[i].cap - caps[i].cap / 10);
	}

	/* Extreme values in the policy itself: no overflow, no UB (the
	 * sanitizers watch this test). */
	p.base_ms = LONG_MAX;
	p.max_backoff_ms = LONG_MAX;
	for (int attempt = 1; attempt < 200; attempt += 7) {
		CHECK(retry_decide(&p, &busy, attempt, 0, UINT64_MAX, &wait));
		CHECK(wait >= 0);
	}
	p.base_ms = 1;
	CHECK(retry_decide(&p, &busy, 63, 0, UINT64_MAX, &wait));
	CHECK(wait >= 0);
	CHECK(retry_decide(&p, &busy, 64, 0, (uint64_t)LONG_MAX, &wait));
	CHECK_INT(wait, LONG_MAX);
	p.base_ms = 3;
	p.max_backoff_ms = LONG_MAX / 2;
	CHECK(retry_decide(&p, &busy, 62, 0, (uint64_t)LONG_MAX / 2, &wait));
	CHECK_INT(wait, LONG_MAX / 2);
}

int main(void)
{
	test_errno_map();
	test_set_clear();
	test_str();
	test_retryable();
	test_defaults();
	test_budgets();
	test_backoff();
	return unit_end("retry");
}
