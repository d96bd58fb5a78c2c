// SPDX-License-Identifier: MIT
/*
 * ddb: the DynamoDB client (see ddb.h). It owns the JSON of requests and
 * replies (building them, capping and validating what comes back) and the few
 * table operations the chains need. Signing, sending, retrying and the
 * error-to-errno table belong to aws.c and s3_err.c; it knows nothing of
 * chains, paths, S3 objects or what the items mean. A client is immutable
 * once built, so any thread may use it without a lock.
 */
#include "s3vfs/ddb.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3vfs/aws.h"
#include "s3vfs/sigv4.h"

#define DDB_MAX_REPLY	   (16u * 1024 * 1024) /* replies and error bodies */
#define DDB_MAX_PAGES	   10000	       /* Query pages per ddb_query() */
#define DDB_POLL_MS	   100		       /* DescribeTable interval while waiting */
#define DDB_MAX_OP	   64		       /* operation name, for the X-Amz-Target header */
#define DDB_MAX_ATTR_NAME  255		       /* key attribute names (DynamoDB's limit) */
#define DDB_TARGET	   "X-Amz-Target: DynamoDB_20120810."
#define DDB_CONTENT_TYPE   "Content-Type: application/x-amz-json-1.0"
#define DDB_DEFAULT_REGION "us-east-1"

struct ddb_client {
	struct aws_client ac;
	struct aws_endpoint ep; /* points into the strings below */
	char *base_url;		/* "https://dynamodb.us-east-1.amazonaws.com", no trailing '/' */
	char *host;		/* authority of base_url: host[:port] */
	char *region;
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_xdigit(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "host", "host:port", "[v6]", "[v6]:port". Nothing else (no userinfo). */
static int check_authority(const char *a, size_t n)
{
	size_t i = 0;
	long port = 0;

	if (n == 0 || n > 261)
		return -EINVAL;
	if (a[0] == '[') {
		for (i = 1; i < n && (is_xdigit(a[i]) || a[i] == ':' || a[i] == '.'); i++)
			;
		if (i == 1 || i >= n || a[i] != ']')
			return -EINVAL;
		i++;
	} else {
		while (i < n && (is_alpha(a[i]) || is_digit(a[i]) || a[i] == '.' || a[i] == '-' ||
				 a[i] == '_'))
			i++;
		if (i == 0)
			return -EINVAL;
	}
	if (i == n)
		return 0;
	if (a[i] != ':' || n - i < 2 || n - i > 6)
		return -EINVAL;
	for (i++; i < n; i++) {
		if (!is_digit(a[i]))
			return -EINVAL;
		port = port * 10 + (a[i] - '0');
	}
	return port >= 1 && port <= 65535 ? 0 : -EINVAL;
}

/*
 * "scheme://host[:port][/]" into the base URL (no trailing slash) and the
 * Host value, both lowercased. The Host value is signed, so it must be what
 * libcurl sends: libcurl leaves out the scheme's default port, and so do we.
 */
static int parse_endpoint(const char *url, char **out_base, char **out_host)
{
	bool https = strncmp(url, "https://", 8) == 0;
	size_t skip = https ? 8 : 7;

	if (!https && strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	const char *auth = url + skip;
	size_t n = strcspn(auth, "/?#");
	/* DynamoDB's path is always "/": an endpoint with a path is a mistake. */
	if (auth[n] && strcmp(auth + n, "/") != 0)
		return -EINVAL;
	if (check_authority(auth, n) < 0)
		return -EINVAL;
	const char *dflt = https ? ":443" : ":80";
	size_t hn = n;
	if (n > strlen(dflt) && strncmp(auth + n - strlen(dflt), dflt, strlen(dflt)) == 0)
		hn = n - strlen(dflt);
	char *base = strndup(url, skip + n);
	char *host = strndup(auth, hn);
	if (!base || !host) {
		free(base);
		free(host);
		return -ENOMEM;
	}
	for (char *p = base; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	*out_base = base;
	*out_host = host;
	return 0;
}

/* Regions are used in the default host name and the signing scope. */
static bool region_ok(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!(r[i] >= 'a' && r[i] <= 'z') && !is_digit(r[i]) && r[i] != '-')
			return false;
	}
	return true;
}

int ddb_client_new(const struct ddb_config *cfg, struct http_client *http,
		   struct creds_provider *creds, struct stats *stats,
		   const struct retry_policy *retry, struct ddb_client **out)
{
	const char *region = cfg && cfg->region ? cfg->region : DDB_DEFAULT_REGION;
	const char *endpoint = cfg ? cfg->endpoint : NULL;
	struct ddb_client *c = NULL;
	char dflt[128];
	int rc = 0;

	if (!http || !creds || !out || !region_ok(region))
		return -EINVAL;
	if (!endpoint) {
		/* The China partition lives under amazonaws.com.cn. */
		bool cn = strncmp(region, "cn-", 3) == 0;
		snprintf(dflt, sizeof(dflt), "https://dynamodb.%s.amazonaws.com%s", region,
			 cn ? ".cn" : "");
		endpoint = dflt;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = parse_endpoint(endpoint, &c->base_url, &c->host);
	if (rc < 0)
		goto out;
	c->region = strdup(region);
	if (!c->region) {
		rc = -ENOMEM;
		goto out;
	}
	c->ac.http = http;
	c->ac.creds = creds;
	c->ac.stats = stats;
	if (retry)
		c->ac.retry = *retry;
	else
		retry_policy_default(&c->ac.retry);
	atomic_init(&c->ac.clock_skew_s, 0);
	c->ep = (struct aws_endpoint){
		.base_url = c->base_url,
		.host = c->host,
		.service = "dynamodb",
		.region = c->region,
		.sign_flags = SIGV4_NORMALIZE_PATH | SIGV4_DOUBLE_ENCODE,
		.json_errors = true,
	};
	*out = c;
	c = NULL;
out:
	ddb_client_free(c);
	return rc;
}

void ddb_client_free(struct ddb_client *c)
{
	if (!c)
		return;
	free(c->base_url);
	free(c->host);
	free(c->region);
	free(c);
}

/* Parse a capped JSON document that must be an object. -EPROTO, -ENOMEM. */
static int load_object(const char *data, size_t n, json_t **out)
{
	json_error_t jerr;

	if (!data || n == 0 || n > DDB_MAX_REPLY)
		return -EPROTO;
	json_t *v = json_loadb(data, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		return json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : -EPROTO;
	if (!json_is_object(v)) {
		json_decref(v);
		return -EPROTO;
	}
	*out = v;
	return 0;
}

/*
 * The error code is "__type" (older replies: "code"), in the awsJson rules:
 * drop anything from the first ':' on, then keep what follows the last '#'.
 * "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException" ->
 * "ConditionalCheckFailedException". Missing fields leave code or message "".
 */
int ddb_parse_error(const char *data, size_t n, struct aws_error *err)
{
	json_t *doc = NULL;
	char code[sizeof(err->code)] = "";

	if (load_object(data, n, &doc) < 0)
		return -EPROTO;
	const char *type = json_string_value(json_object_get(doc, "__type"));
	if (!type)
		type = json_string_value(json_object_get(doc, "code"));
	const char *msg = json_string_value(json_object_get(doc, "message"));
	if (!msg)
		msg = json_string_value(json_object_get(doc, "Message"));
	if (type) {
		size_t end = strcspn(type, ":");
		size_t start = end;
		while (start > 0 && type[start - 1] != '#')
			start--;
		snprintf(code, sizeof(code), "%.*s", (int)(end - start), type + start);
	}
	aws_error_set(err, err->status, code, msg ? msg : "");
	json_decref(doc);
	return 0;
}

/* A reply that parsed but does not have the shape the operation promises. */
static int bad_reply(struct aws_error *err, long status, const char *what)
{
	err->status = status;
	snprintf(err->message, sizeof(err->message), "malformed DynamoDB reply: %s", what);
	return -EPROTO;
}

/* Operation names go into a header: letters only, bounded. */
static bool op_ok(const char *op)
{
	size_t n = op ? strlen(op) : 0;

	if (n == 0 || n > DDB_MAX_OP)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_alpha(op[i]))
			return false;
	}
	return true;
}

static enum stat_op op_stat(const char *op)
{
	static const struct {
		const char *name;
		enum stat_op op;
	} map[] = {
		{ "GetItem", STAT_DDB_GET },
		{ "PutItem", STAT_DDB_PUT },
		{ "UpdateItem", STAT_DDB_UPDATE },
		{ "DeleteItem", STAT_DDB_DELETE },
		{ "Query", STAT_DDB_QUERY },
		{ "CreateTable", STAT_DDB_CREATE_TABLE },
		{ "DescribeTable", STAT_DDB_DESCRIBE_TABLE },
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (strcmp(op, map[i].name) == 0)
			return map[i].op;
	}
	return STAT_OTHER;
}

int ddb_call(struct ddb_client *c, const char *op, json_t *req, json_t **out_reply,
	     struct aws_error *err)
{
	struct aws_error local;
	struct http_response r;
	char target[sizeof(DDB_TARGET) + DDB_MAX_OP];
	const char *headers[2] = { DDB_CONTENT_TYPE, target };
	struct http_body body = { .fd = -1 };
	char *text = NULL;
	json_t *reply = NULL;
	int rc = 0;

	if (!err)
		err = &local;
	aws_error_clear(err);
	http_response_init(&r);
	if (!op_ok(op) || !json_is_object(req)) {
		rc = -EINVAL;
		goto out;
	}
	snprintf(target, sizeof(target), DDB_TARGET "%s", op);
	text = json_dumps(req, JSON_COMPACT);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	body.data = text;
	body.len = strlen(text);
	struct aws_call call = {
		.method = "POST",
		.path = "/",
		.headers = headers,
		.nheaders = ARRAY_SIZE(headers),
		.body = &body,
		.max_body = DDB_MAX_REPLY,
		.op = op_stat(op),
	};
	rc = aws_perform(&c->ac, &c->ep, &call, &r, err);
	if (rc < 0)
		goto out;
	rc = load_object(buf_str(&r.body), buf_len(&r.body), &reply);
	if (rc == -EPROTO)
		bad_reply(err, r.status, "not a JSON object");
	if (rc < 0)
		goto out;
	if (out_reply) {
		*out_reply = reply;
		reply = NULL;
	}
out:
	json_decref(reply);
	free(text);
	http_response_cleanup(&r);
	return rc;
}

/* Pack failures are invalid input (NULL, bad UTF-8) unless memory ran out. */
static int pack_errno(const json_error_t *jerr)
{
	return json_error_code(jerr) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
}

/* Set o[key] to the string s (copied). -EINVAL for NULL or invalid UTF-8. */
static int set_str(json_t *o, const char *key, const char *s)
{
	json_error_t jerr;
	json_t *v = json_pack_ex(&jerr, 0, "s", s);

	if (!v)
		return pack_errno(&jerr);
	return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

/* Set o[key] to the object v (borrowed, so referenced). */
static int set_obj(json_t *o, const char *key, json_t *v)
{
	if (!json_is_object(v))
		return -EINVAL;
	return json_object_set(o, key, v) < 0 ? -ENOMEM : 0;
}

bool ddb_table_name_ok(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n < 3 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_alpha(t[i]) && !is_digit(t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return false;
	}
	return true;
}

/* A request body {"TableName": table}. */
static int new_request(const char *table, json_t **out)
{
	json_t *req = NULL;
	int rc = 0;

	if (!ddb_table_name_ok(table))
		return -EINVAL;
	req = json_object();
	if (!req)
		return -ENOMEM;
	rc = set_str(req, "TableName", table);
	if (rc < 0) {
		json_decref(req);
		return rc;
	}
	*out = req;
	return 0;
}

/* Add the condition (under expr_key) and its names and values, if any.
 * DynamoDB rejects empty name and value maps, so those are left out. */
static int add_cond(json_t *req, const struct ddb_cond *cond, const char *expr_key)
{
	int rc = 0;

	if (!cond)
		return 0;
	if (cond->condition) {
		rc = set_str(req, expr_key, cond->condition);
		if (rc < 0)
			return rc;
	}
	if (cond->names && json_object_size(cond->names) > 0) {
		rc = set_obj(req, "ExpressionAttributeNames", cond->names);
		if (rc < 0)
			return rc;
	}
	if (cond->values && json_object_size(cond->values) > 0)
		rc = set_obj(req, "ExpressionAttributeValues", cond->values);
	return rc;
}

/* A request {"TableName", "Key"} (the shape of every single-item operation). */
static int new_key_request(const char *table, json_t *key, json_t **out)
{
	json_t *req = NULL;
	int rc = 0;

	rc = new_request(table, &req);
	if (rc < 0)
		return rc;
	rc = set_obj(req, "Key", key);
	if (rc < 0) {
		json_decref(req);
		return rc;
	}
	*out = req;
	return 0;
}

int ddb_get_item(struct ddb_client *c, const char *table, json_t *key, bool consistent,
		 json_t **out_item, struct aws_error *err)
{
	struct aws_error local;
	json_t *req = NULL, *reply = NULL;
	int rc = 0;

	if (!err)
		err = &local;
	rc = new_key_request(table, key, &req);
	if (rc < 0)
		goto out;
	if (consistent && json_object_set_new(req, "ConsistentRead", json_true()) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ddb_call(c, "GetItem", req, &reply, err);
	if (rc < 0)
		goto out;
	json_t *item = json_object_get(reply, "Item");
	if (!item) {
		rc = -ENOENT;
		goto out;
	}
	if (!json_is_object(item)) {
		rc = bad_reply(err, 200, "Item");
		goto out;
	}
	*out_item = json_incref(item);
out:
	json_decref(reply);
	json_decref(req);
	return rc;
}

int ddb_put_item(struct ddb_client *c, const char *table, json_t *item, const struct ddb_cond *cond,
		 struct aws_error *err)
{
	json_t *req = NULL;
	int rc = 0;

	rc = new_request(table, &req);
	if (rc < 0)
		goto out;
	rc = set_obj(req, "Item", item);
	if (rc < 0)
		goto out;
	rc = add_cond(req, cond, "ConditionExpression");
	if (rc < 0)
		goto out;
	rc = ddb_call(c, "PutItem", req, NULL, err);
out:
	json_decref(req);
	return rc;
}

int ddb_update_item(struct ddb_client *c, const char *table, json_t *key, const char *update,
		    const struct ddb_cond *cond, json_t **out_attrs, struct aws_error *err)
{
	struct aws_error local;
	json_t *req = NULL, *reply = NULL;
	int rc = 0;

	if (!err)
		err = &local;
	rc = new_key_request(table, key, &req);
	if (rc < 0)
		goto out;
	rc = set_str(req, "UpdateExpression", update);
	if (rc < 0)
		goto out;
	rc = add_cond(req, cond, "ConditionExpression");
	if (rc < 0)
		goto out;
	rc = set_str(req, "ReturnValues", out_attrs ? "ALL_NEW" : "NONE");
	if (rc < 0)
		goto out;
	rc = ddb_call(c, "UpdateItem", req, out_attrs ? &reply : NULL, err);
	if (rc < 0 || !out_attrs)
		goto out;
	json_t *attrs = json_object_get(reply, "Attributes");
	if (!json_is_object(attrs)) {
		rc = bad_reply(err, 200, "Attributes");
		goto out;
	}
	*out_attrs = json_incref(attrs);
out:
	json_decref(reply);
	json_decref(req);
	return rc;
}

int ddb_delete_item(struct ddb_client *c, const char *table, json_t *key,
		    const struct ddb_cond *cond, struct aws_error *err)
{
	json_t *req = NULL;
	int rc = 0;

	rc = new_key_request(table, key, &req);
	if (rc < 0)
		goto out;
	rc = add_cond(req, cond, "ConditionExpression");
	if (rc < 0)
		goto out;
	rc = ddb_call(c, "DeleteItem", req, NULL, err);
out:
	json_decref(req);
	return rc;
}

/* Hand one page's items to fn. The page is checked whole first, so a
 * malformed page delivers nothing. */
static int query_page(json_t *reply, int (*fn)(void *arg, json_t *item), void *arg,
		      struct aws_error *err)
{
	json_t *items = json_object_get(reply, "Items");
	size_t n = json_array_size(items);
	int rc = 0;

	if (!json_is_array(items))
		return bad_reply(err, 200, "Items");
	for (size_t i = 0; i < n; i++) {
		if (!json_is_object(json_array_get(items, i)))
			return bad_reply(err, 200, "Items");
	}
	for (size_t i = 0; i < n; i++) {
		rc = fn(arg, json_array_get(items, i));
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * Every page, following LastEvaluatedKey. Bounded: more than DDB_MAX_PAGES
 * pages is -E2BIG, and a server that hands back the key it was given (it
 * would loop for ever) is -EPROTO. fn's non-zero return stops and is returned.
 */
int ddb_query(struct ddb_client *c, const char *table, const struct ddb_cond *key_cond,
	      bool consistent, int (*fn)(void *arg, json_t *item), void *arg, struct aws_error *err)
{
	struct aws_error local;
	json_t *req = NULL, *reply = NULL;
	int rc = 0;

	if (!err)
		err = &local;
	if (!key_cond || !key_cond->condition || !fn)
		return -EINVAL;
	rc = new_request(table, &req);
	if (rc < 0)
		goto out;
	rc = add_cond(req, key_cond, "KeyConditionExpression");
	if (rc < 0)
		goto out;
	if (consistent && json_object_set_new(req, "ConsistentRead", json_true()) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	for (int page = 0;; page++) {
		if (page == DDB_MAX_PAGES) {
			rc = -E2BIG;
			goto out;
		}
		rc = ddb_call(c, "Query", req, &reply, err);
		if (rc < 0)
			goto out;
		rc = query_page(reply, fn, arg, err);
		if (rc != 0)
			goto out;
		json_t *next = json_object_get(reply, "LastEvaluatedKey");
		if (!next)
			break;
		if (!json_is_object(next) || json_object_size(next) == 0 ||
		    json_equal(next, json_object_get(req, "ExclusiveStartKey"))) {
			rc = bad_reply(err, 200, "LastEvaluatedKey");
			goto out;
		}
		rc = set_obj(req, "ExclusiveStartKey", next);
		if (rc < 0)
			goto out;
		json_decref(reply);
		reply = NULL;
	}
out:
	json_decref(reply);
	json_decref(req);
	return rc;
}

/* Append one key to KeySchema and its type to AttributeDefinitions. */
static int add_key(json_t *req, const char *name, const char *key_type, const char *attr_type)
{
	json_error_t jerr;
	json_t *ks = NULL, *ad = NULL;

	if (!name || name[0] == '\0' || strlen(name) > DDB_MAX_ATTR_NAME)
		return -EINVAL;
	ks = json_pack_ex(&jerr, 0, "{s:s, s:s}", "AttributeName", name, "KeyType", key_type);
	if (!ks)
		return pack_errno(&jerr);
	if (json_array_append_new(json_object_get(req, "KeySchema"), ks) < 0)
		return -ENOMEM;
	ad = json_pack_ex(&jerr, 0, "{s:s, s:s}", "AttributeName", name, "AttributeType",
			  attr_type);
	if (!ad)
		return pack_errno(&jerr);
	if (json_array_append_new(json_object_get(req, "AttributeDefinitions"), ad) < 0)
		return -ENOMEM;
	return 0;
}

/* ResourceInUseException (the table exists) comes back as -EEXIST. */
int ddb_create_table(struct ddb_client *c, const char *table, const char *hash_key,
		     const char *range_key, char range_type, struct aws_error *err)
{
	const char rtype[2] = { range_type, '\0' };
	json_t *req = NULL;
	int rc = 0;

	if (range_key && range_type != 'S' && range_type != 'N')
		return -EINVAL;
	rc = new_request(table, &req);
	if (rc < 0)
		goto out;
	if (json_object_set_new(req, "KeySchema", json_array()) < 0 ||
	    json_object_set_new(req, "AttributeDefinitions", json_array()) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = add_key(req, hash_key, "HASH", "S");
	if (rc < 0)
		goto out;
	if (range_key) {
		rc = add_key(req, range_key, "RANGE", rtype);
		if (rc < 0)
			goto out;
	}
	rc = set_str(req, "BillingMode", "PAY_PER_REQUEST");
	if (rc < 0)
		goto out;
	rc = ddb_call(c, "CreateTable", req, NULL, err);
out:
	json_decref(req);
	return rc;
}

/* ResourceNotFoundException (no such table) comes back as -ENOENT. */
int ddb_describe_table(struct ddb_client *c, const char *table, char **out_status,
		       struct aws_error *err)
{
	struct aws_error local;
	json_t *req = NULL, *reply = NULL;
	int rc = 0;

	if (!err)
		err = &local;
	rc = new_request(table, &req);
	if (rc < 0)
		goto out;
	rc = ddb_call(c, "DescribeTable", req, &reply, err);
	if (rc < 0)
		goto out;
	const char *status =
		json_string_value(json_object_get(json_object_get(reply, "Table"), "TableStatus"));
	if (!status || status[0] == '\0') {
		rc = bad_reply(err, 200, "Table.TableStatus");
		goto out;
	}
	char *copy = strdup(status);
	if (!copy) {
		rc = -ENOMEM;
		goto out;
	}
	*out_status = copy;
out:
	json_decref(reply);
	json_decref(req);
	return rc;
}

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Poll DescribeTable every DDB_POLL_MS. A table being deleted will never be
 * ACTIVE: -ENOENT at once rather than at the deadline. */
int ddb_wait_active(struct ddb_client *c, const char *table, long timeout_ms, struct aws_error *err)
{
	struct aws_error local;
	long deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int rc = 0;

	if (!err)
		err = &local;
	for (;;) {
		char *status = NULL;
		rc = ddb_describe_table(c, table, &status, err);
		if (rc < 0)
			return rc;
		bool active = strcmp(status, "ACTIVE") == 0;
		bool deleting = strcmp(status, "DELETING") == 0;
		free(status);
		if (active)
			return 0;
		if (deleting)
			return -ENOENT;
		long left = deadline - mono_ms();
		if (left <= 0) {
			snprintf(err->message, sizeof(err->message),
				 "table %s not ACTIVE after %ld ms", table, timeout_ms);
			return -ETIMEDOUT;
		}
		sleep_ms(left < DDB_POLL_MS ? left : DDB_POLL_MS);
	}
}

json_t *ddb_s(const char *s)
{
	return json_pack("{s:s}", "S", s);
}

json_t *ddb_n(long long n)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", n);
	return json_pack("{s:s}", "N", num);
}

/*
 * The string of attribute name with type tag type ("S", "N"): the attribute
 * must be an object with exactly that one member, a string without NUL bytes.
 */
static int attr_string(json_t *item, const char *name, const char *type, const char **out)
{
	if (!name)
		return -EINVAL;
	if (!json_is_object(item))
		return -EPROTO;
	json_t *attr = json_object_get(item, name);
	if (!attr)
		return -ENOENT;
	if (!json_is_object(attr) || json_object_size(attr) != 1)
		return -EPROTO;
	json_t *v = json_object_get(attr, type);
	const char *s = json_string_value(v);
	if (!s || strlen(s) != json_string_length(v))
		return -EPROTO;
	*out = s;
	return 0;
}

int ddb_item_str(json_t *item, const char *name, const char **out)
{
	return attr_string(item, name, "S", out);
}

/* Integers only: no fraction, exponent, sign '+', spaces, nor out of range. */
int ddb_item_int(json_t *item, const char *name, long long *out)
{
	const char *s = NULL;
	char *end = NULL;
	int rc = 0;

	rc = attr_string(item, name, "N", &s);
	if (rc < 0)
		return rc;
	if (!is_digit(s[0]) && !(s[0] == '-' && is_digit(s[1])))
		return -EPROTO;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EPROTO;
	*out = v;
	return 0;
}
