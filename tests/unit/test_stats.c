// SPDX-License-Identifier: MIT
/*
 * test_stats: the counters (stats.c): names of every operation, totals, and
 * the JSON document, parsed back with jansson and compared key by key.
 */
#include "s3vfs/stats.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static const struct {
	enum stat_op op;
	const char *name;
} name_rows[] = {
	{ STAT_HEAD, "head" },
	{ STAT_GET, "get" },
	{ STAT_PUT, "put" },
	{ STAT_DELETE, "delete" },
	{ STAT_DELETE_MULTI, "delete_multi" },
	{ STAT_COPY, "copy" },
	{ STAT_LIST, "list" },
	{ STAT_MPU_CREATE, "mpu_create" },
	{ STAT_MPU_PART, "mpu_part" },
	{ STAT_MPU_PART_COPY, "mpu_part_copy" },
	{ STAT_MPU_COMPLETE, "mpu_complete" },
	{ STAT_MPU_ABORT, "mpu_abort" },
	{ STAT_MPU_LIST, "mpu_list" },
	{ STAT_BUCKET, "bucket" },
	{ STAT_DDB_GET, "ddb_get_item" },
	{ STAT_DDB_PUT, "ddb_put_item" },
	{ STAT_DDB_UPDATE, "ddb_update_item" },
	{ STAT_DDB_DELETE, "ddb_delete_item" },
	{ STAT_DDB_QUERY, "ddb_query" },
	{ STAT_DDB_CREATE_TABLE, "ddb_create_table" },
	{ STAT_DDB_DESCRIBE_TABLE, "ddb_describe_table" },
	{ STAT_CREDS, "creds" },
	{ STAT_OTHER, "other" },
};
_Static_assert(ARRAY_SIZE(name_rows) == STAT_OP_COUNT, "a row for every operation");

static void test_names(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(name_rows); i++) {
		CHECK_INT(name_rows[i].op, i); /* rows in enum order */
		CHECK_STR(stats_op_name(name_rows[i].op), name_rows[i].name);
	}
	/* Names are unique: they are JSON keys. */
	for (int a = 0; a < STAT_OP_COUNT; a++)
		for (int b = a + 1; b < STAT_OP_COUNT; b++)
			CHECK(strcmp(stats_op_name(a), stats_op_name(b)) != 0);
	CHECK_STR(stats_op_name(STAT_OP_COUNT), "unknown");
	CHECK_STR(stats_op_name((enum stat_op) - 1), "unknown");
	CHECK_STR(stats_op_name((enum stat_op)1000), "unknown");
}

static void test_init_total(void)
{
	struct stats s;

	memset(&s, 0xAB, sizeof(s));
	stats_init(&s);
	CHECK_INT(stats_total_requests(&s), 0);
	for (int i = 0; i < STAT_OP_COUNT; i++) {
		CHECK_INT(atomic_load(&s.requests[i]), 0);
		CHECK_INT(atomic_load(&s.errors[i]), 0);
	}
	CHECK_INT(atomic_load(&s.retries), 0);
	CHECK_INT(atomic_load(&s.chain_conflicts), 0);

	for (int i = 0; i < STAT_OP_COUNT; i++)
		atomic_fetch_add(&s.requests[i], (uint64_t)i + 1);
	CHECK_INT(stats_total_requests(&s), STAT_OP_COUNT * (STAT_OP_COUNT + 1) / 2);
	atomic_fetch_add(&s.errors[STAT_GET], 5); /* errors are not requests */
	CHECK_INT(stats_total_requests(&s), STAT_OP_COUNT * (STAT_OP_COUNT + 1) / 2);
}

/* Counters are lock-free: N threads bumping one counter lose nothing. */
enum { THREADS = 8, BUMPS = 20000 };

static void *bump(void *arg)
{
	struct stats *s = arg;
	for (int i = 0; i < BUMPS; i++) {
		atomic_fetch_add_explicit(&s->requests[STAT_GET], 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->bytes_down, 10, memory_order_relaxed);
	}
	return NULL;
}

static void test_threads(void)
{
	struct stats s;
	pthread_t t[THREADS];

	stats_init(&s);
	for (int i = 0; i < THREADS; i++)
		CHECK_INT(pthread_create(&t[i], NULL, bump, &s), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(stats_total_requests(&s), THREADS * BUMPS);
	CHECK_INT(atomic_load(&s.bytes_down), 10LL * THREADS * BUMPS);
}

static long long json_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v)) {
		fprintf(stderr, "key %s: not an integer\n", key);
		return -1;
	}
	return json_integer_value(v);
}

static const char *const top_keys[] = {
	"requests",   "errors",	      "retries",	 "bytes_up",	  "bytes_down",
	"cache_hits", "cache_misses", "pending_uploads", "chain_commits", "chain_conflicts",
};

static void test_json(void)
{
	struct stats s;
	struct buf out;
	json_error_t jerr;

	stats_init(&s);
	for (int i = 0; i < STAT_OP_COUNT; i++) {
		atomic_store(&s.requests[i], (uint64_t)(i * 3 + 1));
		if (i % 2)
			atomic_store(&s.errors[i], (uint64_t)i);
	}
	atomic_store(&s.retries, 7);
	atomic_store(&s.bytes_up, 5000000000ULL); /* past 32 bits */
	atomic_store(&s.bytes_down, 123);
	atomic_store(&s.cache_hits, 11);
	atomic_store(&s.cache_misses, 12);
	atomic_store(&s.pending_uploads, 13);
	atomic_store(&s.chain_commits, 14);
	atomic_store(&s.chain_conflicts, 15);

	buf_init(&out, BUF_CAP_SMALL);
	CHECK_INT(buf_addstr(&out, "prefix:"), 0); /* stats_to_json appends */
	CHECK_INT(stats_to_json(&s, &out), 0);
	CHECK(strncmp(buf_str(&out), "prefix:{", 8) == 0);
	CHECK(strchr(buf_str(&out), '\n') == NULL); /* one line */

	json_t *root = json_loads(buf_str(&out) + 7, 0, &jerr);
	CHECK(root != NULL);
	if (!root) {
		fprintf(stderr, "json: %s at %d: %s\n", jerr.text, jerr.position, buf_str(&out));
		buf_cleanup(&out);
		return;
	}
	CHECK(json_is_object(root));
	CHECK_INT(json_object_size(root), ARRAY_SIZE(top_keys));
	for (size_t i = 0; i < ARRAY_SIZE(top_keys); i++)
		CHECK(json_object_get(root, top_keys[i]) != NULL);

	json_t *req = json_object_get(root, "requests");
	json_t *err = json_object_get(root, "errors");
	CHECK(json_is_object(req));
	CHECK(json_is_object(err));
	CHECK_INT(json_object_size(req), STAT_OP_COUNT + 1);
	CHECK_INT(json_object_size(err), STAT_OP_COUNT + 1);
	long long req_total = 0, err_total = 0;
	for (int i = 0; i < STAT_OP_COUNT; i++) {
		const char *name = stats_op_name(i);
		CHECK_INT(json_int(req, name), i * 3 + 1);
		CHECK_INT(json_int(err, name), i % 2 ? i : 0); /* zeros listed too */
		req_total += i * 3 + 1;
		err_total += i % 2 ? i : 0;
	}
	CHECK_INT(json_int(req, "total"), req_total);
	CHECK_INT(json_int(req, "total"), stats_total_requests(&s));
	CHECK_INT(json_int(err, "total"), err_total);
	CHECK_INT(json_int(root, "retries"), 7);
	CHECK_INT(json_int(root, "bytes_up"), 5000000000LL);
	CHECK_INT(json_int(root, "bytes_down"), 123);
	CHECK_INT(json_int(root, "cache_hits"), 11);
	CHECK_INT(json_int(root, "cache_misses"), 12);
	CHECK_INT(json_int(root, "pending_uploads"), 13);
	CHECK_INT(json_int(root, "chain_commits"), 14);
	CHECK_INT(json_int(root, "chain_conflicts"), 15);
	json_decref(root);
	buf_cleanup(&out);

	/* A fresh stats is all zeros and still complete. */
	stats_init(&s);
	buf_init(&out, BUF_CAP_SMALL);
	CHECK_INT(stats_to_json(&s, &out), 0);
	root = json_loads(buf_str(&out), 0, &jerr);
	CHECK(root != NULL);
	if (root) {
		CHECK_INT(json_int(json_object_get(root, "requests"), "total"), 0);
		CHECK_INT(json_int(json_object_get(root, "errors"), "head"), 0);
		CHECK_INT(json_int(root, "chain_conflicts"), 0);
		json_decref(root);
	}
	buf_cleanup(&out);

	/* UINT64_MAX prints in full (jansson's json_int_t is signed, so only
	 * the text is checked). */
	atomic_store(&s.retries, UINT64_MAX);
	buf_init(&out, BUF_CAP_SMALL);
	CHECK_INT(stats_to_json(&s, &out), 0);
	CHECK(strstr(buf_str(&out), "\"retries\":18446744073709551615,") != NULL);
	buf_cleanup(&out);

	/* Over the buffer's cap: -E2BIG, buffer freed and empty. At the exact
	 * length it fits; one byte less fails, whichever append crosses it. */
	buf_init(&out, BUF_CAP_SMALL);
	CHECK_INT(stats_to_json(&s, &out), 0);
	size_t len = buf_len(&out);
	buf_cleanup(&out);
	buf_init(&out, len);
	CHECK_INT(stats_to_json(&s, &out), 0);
	CHECK_INT(buf_len(&out), len);
	buf_cleanup(&out);
	int bad = 0;
	for (size_t cap = 0; cap < len; cap++) {
		buf_init(&out, cap);
		if (stats_to_json(&s, &out) != -E2BIG || buf_len(&out) != 0 || out.ptr)
			bad++;
		buf_cleanup(&out);
	}
	CHECK_INT(bad, 0);
}

int main(void)
{
	test_names();
	test_init_total();
	test_threads();
	test_json();
	return unit_end("stats");
}
