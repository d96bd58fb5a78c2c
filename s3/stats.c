// SPDX-License-Identifier: MIT
/*
 * stats: the request counters of one mount (see stats.h). It owns the
 * counters, the stable names of the operations, and the JSON document that
 * exposes them; it does not know when a request is sent or what a cache or a
 * chain is: the layers that do bump the counters. Counters are relaxed
 * atomics: each is exact on its own, a snapshot of several is not atomic.
 */
#include "s3vfs/stats.h"

#include <inttypes.h>

/* Names are part of the JSON interface that tests and tools read: keep them. */
static const char *const op_names[] = {
	[STAT_HEAD] = "head",
	[STAT_GET] = "get",
	[STAT_PUT] = "put",
	[STAT_DELETE] = "delete",
	[STAT_DELETE_MULTI] = "delete_multi",
	[STAT_COPY] = "copy",
	[STAT_LIST] = "list",
	[STAT_MPU_CREATE] = "mpu_create",
	[STAT_MPU_PART] = "mpu_part",
	[STAT_MPU_PART_COPY] = "mpu_part_copy",
	[STAT_MPU_COMPLETE] = "mpu_complete",
	[STAT_MPU_ABORT] = "mpu_abort",
	[STAT_MPU_LIST] = "mpu_list",
	[STAT_BUCKET] = "bucket",
	[STAT_DDB_GET] = "ddb_get_item",
	[STAT_DDB_PUT] = "ddb_put_item",
	[STAT_DDB_UPDATE] = "ddb_update_item",
	[STAT_DDB_DELETE] = "ddb_delete_item",
	[STAT_DDB_QUERY] = "ddb_query",
	[STAT_DDB_CREATE_TABLE] = "ddb_create_table",
	[STAT_DDB_DESCRIBE_TABLE] = "ddb_describe_table",
	[STAT_CREDS] = "creds",
	[STAT_OTHER] = "other",
};
_Static_assert(ARRAY_SIZE(op_names) == STAT_OP_COUNT, "one name per enum stat_op");

void stats_init(struct stats *s)
{
	for (int i = 0; i < STAT_OP_COUNT; i++) {
		atomic_init(&s->requests[i], 0);
		atomic_init(&s->errors[i], 0);
	}
	atomic_init(&s->retries, 0);
	atomic_init(&s->bytes_up, 0);
	atomic_init(&s->bytes_down, 0);
	atomic_init(&s->cache_hits, 0);
	atomic_init(&s->cache_misses, 0);
	atomic_init(&s->pending_uploads, 0);
	atomic_init(&s->chain_commits, 0);
	atomic_init(&s->chain_conflicts, 0);
}

/* "unknown" for a value outside the enum, so a bad caller logs, not crashes. */
const char *stats_op_name(enum stat_op op)
{
	if ((unsigned)op >= STAT_OP_COUNT)
		return "unknown";
	return op_names[op];
}

static uint64_t load(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

uint64_t stats_total_requests(const struct stats *s)
{
	uint64_t total = 0;

	for (int i = 0; i < STAT_OP_COUNT; i++)
		total += load(&s->requests[i]);
	return total;
}

/* {"head":N,...,"total":N}; total is the sum of the values printed, so the
 * document is consistent with itself even while counters move. */
static int ops_to_json(const _Atomic uint64_t *counters, struct buf *out)
{
	uint64_t total = 0;
	int rc = buf_addc(out, '{');

	for (int i = 0; i < STAT_OP_COUNT && rc == 0; i++) {
		uint64_t v = load(&counters[i]);
		total += v;
		rc = buf_printf(out, "\"%s\":%" PRIu64 ",", op_names[i], v);
	}
	if (rc == 0)
		rc = buf_printf(out, "\"total\":%" PRIu64 "}", total);
	return rc;
}

/*
 * One compact JSON object. "requests" and "errors" list every operation,
 * zeros included, plus "total": a fixed schema is easier to read from tests
 * and scripts than one whose keys come and go. Names are fixed ASCII, so no
 * escaping is needed.
 */
int stats_to_json(const struct stats *s, struct buf *out)
{
	const struct {
		const char *name;
		const _Atomic uint64_t *v;
	} scalars[] = {
		{ "retries", &s->retries },
		{ "bytes_up", &s->bytes_up },
		{ "bytes_down", &s->bytes_down },
		{ "cache_hits", &s->cache_hits },
		{ "cache_misses", &s->cache_misses },
		{ "pending_uploads", &s->pending_uploads },
		{ "chain_commits", &s->chain_commits },
		{ "chain_conflicts", &s->chain_conflicts },
	};
	int rc = buf_addstr(out, "{\"requests\":");

	if (rc == 0)
		rc = ops_to_json(s->requests, out);
	if (rc == 0)
		rc = buf_addstr(out, ",\"errors\":");
	if (rc == 0)
		rc = ops_to_json(s->errors, out);
	for (size_t i = 0; i < ARRAY_SIZE(scalars) && rc == 0; i++)
		rc = buf_printf(out, ",\"%s\":%" PRIu64, scalars[i].name, load(scalars[i].v));
	if (rc == 0)
		rc = buf_addc(out, '}');
	return rc;
}
