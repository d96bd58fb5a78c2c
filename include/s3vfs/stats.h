/* SPDX-License-Identifier: MIT */
/*
 * stats: request counters of one mount (or one ctl run).
 *
 * Every HTTP attempt sent is counted once under its operation (a retried
 * request counts each attempt, and once more under `retries`). Counters are
 * atomics: any thread may bump them without a lock. The filesystem exposes
 * them as JSON; tests assert request budgets with them.
 */
#ifndef S3VFS_STATS_H
#define S3VFS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "s3vfs/buf.h"
#include "s3vfs/compiler.h"

enum stat_op {
	STAT_HEAD,
	STAT_GET,
	STAT_PUT,
	STAT_DELETE,
	STAT_DELETE_MULTI,
	STAT_COPY,
	STAT_LIST,
	STAT_MPU_CREATE,
	STAT_MPU_PART,
	STAT_MPU_PART_COPY,
	STAT_MPU_COMPLETE,
	STAT_MPU_ABORT,
	STAT_MPU_LIST,
	STAT_BUCKET,
	STAT_DDB_GET,
	STAT_DDB_PUT,
	STAT_DDB_UPDATE,
	STAT_DDB_DELETE,
	STAT_DDB_QUERY,
	STAT_DDB_CREATE_TABLE,
	STAT_DDB_DESCRIBE_TABLE,
	STAT_CREDS,
	STAT_OTHER,
	STAT_OP_COUNT
};

struct stats {
	_Atomic uint64_t requests[STAT_OP_COUNT]; /* attempts sent */
	_Atomic uint64_t errors[STAT_OP_COUNT];	  /* attempts that ended in an error */
	_Atomic uint64_t retries;
	_Atomic uint64_t bytes_up;
	_Atomic uint64_t bytes_down;
	/* Filled by the layers above the wire (cache, chains); here so that one
	 * JSON document carries everything. */
	_Atomic uint64_t cache_hits;
	_Atomic uint64_t cache_misses;
	_Atomic uint64_t pending_uploads;
	_Atomic uint64_t chain_commits;
	_Atomic uint64_t chain_conflicts;
};

void stats_init(struct stats *s);
/* Stable snake_case name of an operation ("head", "list", "ddb_update_item"). */
const char *stats_op_name(enum stat_op op);
/* Sum of requests over all operations. */
uint64_t stats_total_requests(const struct stats *s);
/* Append the counters as one JSON object to out. 0, -ENOMEM, -E2BIG. */
int stats_to_json(const struct stats *s, struct buf *out) WARN_UNUSED;

#endif
