/* SPDX-License-Identifier: MIT */
/*
 * ddb: the DynamoDB operations the chains need, over aws.c, with JSON from
 * jansson. Items, keys and expression values are DynamoDB's own JSON
 * ({"pk": {"S": "x"}, "version": {"N": "4"}}), as json_t objects.
 *
 * Requests are signed with the generic SigV4 rules, sent as POST / with
 * X-Amz-Target: DynamoDB_20120810.<Op> and Content-Type
 * application/x-amz-json-1.0. A failed condition returns -ECANCELED with
 * err->code "ConditionalCheckFailedException", distinct from every other
 * error. Replies are capped at 16 MiB and parsed with jansson's limits; a
 * malformed reply is -EPROTO. Thread-safe.
 */
#ifndef S3VFS_DDB_H
#define S3VFS_DDB_H

#include <stdbool.h>

#include <jansson.h>

#include "s3vfs/compiler.h"
#include "s3vfs/http.h"
#include "s3vfs/retry.h"
#include "s3vfs/s3_err.h"

struct creds_provider;

struct ddb_config {
	const char *
		endpoint; /* "http://127.0.0.1:8000"; NULL: https://dynamodb.REGION.amazonaws.com */
	const char *region; /* NULL: us-east-1 */
};

struct ddb_client;

int ddb_client_new(const struct ddb_config *cfg, struct http_client *http,
		   struct creds_provider *creds, struct stats *stats,
		   const struct retry_policy *retry, struct ddb_client **out) WARN_UNUSED;
void ddb_client_free(struct ddb_client *c);

/*
 * A conditional write: condition NULL for none; names ("#v" -> "version")
 * and values (":e" -> {"N":"3"}) may be NULL. Borrowed.
 */
struct ddb_cond {
	const char *condition;
	json_t *names;
	json_t *values;
};

/* Low level: call operation op ("GetItem") with body req (borrowed). On 0,
 * *out_reply (may be NULL) is the parsed reply, caller json_decref()s. */
int ddb_call(struct ddb_client *c, const char *op, json_t *req, json_t **out_reply,
	     struct aws_error *err) WARN_UNUSED;

/* GetItem. -ENOENT if there is no such item; else *out_item (caller decrefs). */
int ddb_get_item(struct ddb_client *c, const char *table, json_t *key, bool consistent,
		 json_t **out_item, struct aws_error *err) WARN_UNUSED;
int ddb_put_item(struct ddb_client *c, const char *table, json_t *item, const struct ddb_cond *cond,
		 struct aws_error *err) WARN_UNUSED;
/* UpdateItem with update expression (SET ...). out_attrs (ALL_NEW) may be NULL. */
int ddb_update_item(struct ddb_client *c, const char *table, json_t *key, const char *update,
		    const struct ddb_cond *cond, json_t **out_attrs,
		    struct aws_error *err) WARN_UNUSED;
int ddb_delete_item(struct ddb_client *c, const char *table, json_t *key,
		    const struct ddb_cond *cond, struct aws_error *err) WARN_UNUSED;
/* Query with key condition; every page, calling fn per item (borrowed). */
int ddb_query(struct ddb_client *c, const char *table, const struct ddb_cond *key_cond,
	      bool consistent, int (*fn)(void *arg, json_t *item), void *arg,
	      struct aws_error *err) WARN_UNUSED;
/* CreateTable with a string hash key (and optional string/number range key:
 * range_type 'S' or 'N', NULL range for none), PAY_PER_REQUEST. -EEXIST if it exists. */
int ddb_create_table(struct ddb_client *c, const char *table, const char *hash_key,
		     const char *range_key, char range_type, struct aws_error *err) WARN_UNUSED;
/* DescribeTable: *out_status "ACTIVE", "CREATING", ... (caller frees). -ENOENT if missing. */
int ddb_describe_table(struct ddb_client *c, const char *table, char **out_status,
		       struct aws_error *err) WARN_UNUSED;
/* Wait (bounded by timeout_ms) until the table is ACTIVE. -ETIMEDOUT. */
int ddb_wait_active(struct ddb_client *c, const char *table, long timeout_ms,
		    struct aws_error *err) WARN_UNUSED;

/* Table names: 3 to 255 of [A-Za-z0-9_.-] (DynamoDB's rule, checked before a
 * request is signed: a bad name is -EINVAL from every call). */
bool ddb_table_name_ok(const char *t);

/* Parse a DynamoDB error reply ({"__type": "com.amazonaws...#Code", "message": ...}). 0 or -EPROTO.
 */
int ddb_parse_error(const char *data, size_t n, struct aws_error *err) WARN_UNUSED;

/* Attribute value helpers: {"S": s}, {"N": "<n>"}. New references. */
json_t *ddb_s(const char *s);
json_t *ddb_n(long long n);
/* Read attribute name of an item as string / integer. -ENOENT, -EPROTO (wrong type). */
int ddb_item_str(json_t *item, const char *name, const char **out) WARN_UNUSED;
int ddb_item_int(json_t *item, const char *name, long long *out) WARN_UNUSED;

#endif
