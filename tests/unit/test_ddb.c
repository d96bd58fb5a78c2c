// SPDX-License-Identifier: MIT
/*
 * test_ddb: the DynamoDB client. Offline tables first (error replies,
 * attribute helpers, endpoint parsing); then every operation against a
 * scripted HTTP server in a thread on 127.0.0.1, which records each request
 * and answers with canned replies: request bodies, headers, pagination,
 * errno mapping and malformed replies are checked without a real DynamoDB.
 * JSON in this file is written with ' for " (see jq()).
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3vfs/creds.h"
#include "s3vfs/ddb.h"
#include "s3vfs/http.h"
#include "s3vfs/stats.h"
#include "unit.h"

#define MAX_JSON 4096

/* Test JSON is written with ' for ": turn it into JSON (static buffer, one at a time). */
static const char *jq(const char *s)
{
	static char out[MAX_JSON];
	size_t i = 0;

	for (; s[i] && i < sizeof(out) - 1; i++)
		out[i] = s[i] == '\'' ? '"' : s[i];
	out[i] = '\0';
	return out;
}

static json_t *jparse(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(jq(s), 0, &e);

	if (!v)
		fprintf(stderr, "bad test JSON: %s: %s\n", s, e.text);
	return v;
}

/* Compare got (JSON text or NULL) with want (test JSON). */
static void check_json_at(const char *got, const char *want, int line)
{
	json_t *g = got ? json_loads(got, 0, NULL) : NULL;
	json_t *w = jparse(want);
	int ok = g && w && json_equal(g, w);

	unit_check(ok, "json equal", __FILE__, line);
	if (!ok)
		fprintf(stderr, "  got:  %s\n  want: %s\n", got ? got : "(null)", jq(want));
	json_decref(g);
	json_decref(w);
}
#define CHECK_JSON(g, w) check_json_at((g), (w), __LINE__)

static void check_jv_at(json_t *got, const char *want, int line)
{
	char *s = got ? json_dumps(got, JSON_COMPACT) : NULL;

	check_json_at(s, want, line);
	free(s);
}
#define CHECK_JV(g, w) check_jv_at((g), (w), __LINE__)

/* ---- ddb_parse_error ---------------------------------------------------- */

static const struct {
	const char *body; /* test JSON */
	int rc;
	const char *code;
	const char *message;
} error_cases[] = {
	{ "{'__type':'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',"
	  "'message':'The conditional request failed'}",
	  0, "ConditionalCheckFailedException", "The conditional request failed" },
	{ "{'__type':'com.amazon.coral.validate#ValidationException','Message':'bad key'}", 0,
	  "ValidationException", "bad key" },
	{ "{'__type':'ResourceNotFoundException','message':'no table'}", 0,
	  "ResourceNotFoundException", "no table" },
	{ "{'__type':'aws.protocoltests#FooError:http://internal.amazon.com/coral/x/'}", 0,
	  "FooError", "" },
	{ "{'__type':'a#b#ThrottlingException'}", 0, "ThrottlingException", "" },
	{ "{'code':'SerializationException','message':'m'}", 0, "SerializationException", "m" },
	{ "{'message':'only a message'}", 0, "", "only a message" },
	{ "{'__type':42,'message':7}", 0, "", "" },
	{ "{'__type':'x#'}", 0, "", "" },
	{ "{}", 0, "", "" },
	{ "{'__type':'x#Code','message':'line1\\nline2\\u0007'}", 0, "Code", "line1?line2?" },
	{ "<html>Bad Gateway</html>", -EPROTO, "keep", "keep" },
	{ "{'__type':'x#Code','mess", -EPROTO, "keep", "keep" },
	{ "['__type','x#Code']", -EPROTO, "keep", "keep" },
	{ "'x#Code'", -EPROTO, "keep", "keep" },
	{ "{'__type':'x#A','__type':'x#B'}", -EPROTO, "keep", "keep" },
	{ "{'__type':'x#Code'} trailing", -EPROTO, "keep", "keep" },
	{ "", -EPROTO, "keep", "keep" },
};

static void test_parse_error_table(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		struct aws_error e;
		aws_error_clear(&e);
		e.status = 400;
		snprintf(e.code, sizeof(e.code), "keep");
		snprintf(e.message, sizeof(e.message), "keep");
		snprintf(e.request_id, sizeof(e.request_id), "rid");
		const char *body = jq(error_cases[i].body);
		int rc = ddb_parse_error(body, strlen(body), &e);
		CHECK_INT(rc, error_cases[i].rc);
		CHECK_STR(e.code, error_cases[i].code);
		CHECK_STR(e.message, error_cases[i].message);
		CHECK_INT(e.status, 400);
		CHECK_STR(e.request_id, "rid");
	}
}

/* Long strings are truncated into the fixed fields; over the cap is refused. */
static void test_parse_error_sizes(void)
{
	struct aws_error e;
	size_t big = 100 * 1024;
	char *body = malloc(big + 64);
	CHECK(body != NULL);
	if (!body)
		return;

	int n = snprintf(body, 64, "{\"__type\":\"x#Code\",\"message\":\"");
	memset(body + n, 'm', big);
	snprintf(body + n + big, 64 - (size_t)n, "\"}");
	aws_error_clear(&e);
	CHECK_INT(ddb_parse_error(body, strlen(body), &e), 0);
	CHECK_STR(e.code, "Code");
	CHECK_INT(strlen(e.message), sizeof(e.message) - 1);

	n = snprintf(body, 64, "{\"__type\":\"x#");
	memset(body + n, 'C', big);
	snprintf(body + n + big, 64 - (size_t)n, "\"}");
	aws_error_clear(&e);
	CHECK_INT(ddb_parse_error(body, strlen(body), &e), 0);
	CHECK_INT(strlen(e.code), sizeof(e.code) - 1);
	free(body);

	/* A two-byte character straddling the end of message[] is dropped whole. */
	char utf[600];
	n = snprintf(utf, sizeof(utf), "{\"message\":\"");
	memset(utf + n, 'a', sizeof(((struct aws_error *)0)->message) - 2);
	n += (int)sizeof(((struct aws_error *)0)->message) - 2;
	snprintf(utf + n, sizeof(utf) - (size_t)n, "\xc3\xa9\"}");
	aws_error_clear(&e);
	CHECK_INT(ddb_parse_error(utf, strlen(utf), &e), 0);
	CHECK_INT(strlen(e.message), sizeof(e.message) - 2);

	/* Over 16 MiB: refused before parsing. */
	size_t huge = 16u * 1024 * 1024 + 1;
	char *h = malloc(huge);
	CHECK(h != NULL);
	if (h) {
		memset(h, ' ', huge);
		h[0] = '{';
		h[huge - 2] = '}';
		aws_error_clear(&e);
		CHECK_INT(ddb_parse_error(h, huge, &e), -EPROTO);
		CHECK_INT(ddb_parse_error(h, huge - 1, &e), 0); /* exactly the cap */
		free(h);
	}
}

/* ---- attribute helpers -------------------------------------------------- */

static void test_values(void)
{
	json_t *v = ddb_s("héllo");
	CHECK_JV(v, "{'S':'héllo'}");
	json_decref(v);
	CHECK(ddb_s(NULL) == NULL);
	CHECK(ddb_s("\xff\xfe") == NULL); /* not UTF-8 */

	static const struct {
		long long n;
		const char *want;
	} nums[] = {
		{ 0, "{'N':'0'}" },
		{ -5, "{'N':'-5'}" },
		{ LLONG_MAX, "{'N':'9223372036854775807'}" },
		{ LLONG_MIN, "{'N':'-9223372036854775808'}" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
		v = ddb_n(nums[i].n);
		CHECK_JV(v, nums[i].want);
		json_decref(v);
	}
}

static const struct {
	const char *item;
	int rc;
	const char *want;
} str_cases[] = {
	{ "{'a':{'S':'x'}}", 0, "x" },
	{ "{'a':{'S':''}}", 0, "" },
	{ "{'b':{'S':'x'}}", -ENOENT, NULL },
	{ "{}", -ENOENT, NULL },
	{ "{'a':{'N':'1'}}", -EPROTO, NULL },
	{ "{'a':{'S':1}}", -EPROTO, NULL },
	{ "{'a':{'S':null}}", -EPROTO, NULL },
	{ "{'a':'x'}", -EPROTO, NULL },
	{ "{'a':{}}", -EPROTO, NULL },
	{ "{'a':{'S':'x','N':'1'}}", -EPROTO, NULL },
	{ "{'a':{'NULL':true}}", -EPROTO, NULL },
	{ "['a']", -EPROTO, NULL },
};

static void test_item_str(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(str_cases); i++) {
		json_t *item = jparse(str_cases[i].item);
		const char *out = "unset";
		CHECK_INT(ddb_item_str(item, "a", &out), str_cases[i].rc);
		CHECK_STR(out, str_cases[i].want ? str_cases[i].want : "unset");
		json_decref(item);
	}
	/* An embedded NUL (possible in a json_t built by hand) is not a C string. */
	json_t *item = json_pack("{s:{s:s%}}", "a", "S", "x\0y", (size_t)3);
	const char *out = NULL;
	CHECK(item != NULL);
	CHECK_INT(ddb_item_str(item, "a", &out), -EPROTO);
	CHECK_INT(ddb_item_str(NULL, "a", &out), -EPROTO);
	CHECK_INT(ddb_item_str(item, NULL, &out), -EINVAL);
	json_decref(item);
}

static const struct {
	const char *value;
	int rc;
	long long want;
} int_cases[] = {
	{ "0", 0, 0 },
	{ "42", 0, 42 },
	{ "-7", 0, -7 },
	{ "007", 0, 7 },
	{ "9223372036854775807", 0, LLONG_MAX },
	{ "-9223372036854775808", 0, LLONG_MIN },
	{ "9223372036854775808", -EPROTO, 0 },
	{ "-9223372036854775809", -EPROTO, 0 },
	{ "99999999999999999999999999999999999999", -EPROTO, 0 },
	{ "1.5", -EPROTO, 0 },
	{ "1E+3", -EPROTO, 0 },
	{ "+1", -EPROTO, 0 },
	{ " 1", -EPROTO, 0 },
	{ "1 ", -EPROTO, 0 },
	{ "", -EPROTO, 0 },
	{ "-", -EPROTO, 0 },
	{ "--1", -EPROTO, 0 },
	{ "0x10", -EPROTO, 0 },
	{ "abc", -EPROTO, 0 },
};

static void test_item_int(void)
{
	char text[256];

	for (size_t i = 0; i < ARRAY_SIZE(int_cases); i++) {
		snprintf(text, sizeof(text), "{'v':{'N':'%s'}}", int_cases[i].value);
		json_t *item = jparse(text);
		long long out = 12345;
		CHECK_INT(ddb_item_int(item, "v", &out), int_cases[i].rc);
		CHECK_INT(out, int_cases[i].rc == 0 ? int_cases[i].want : 12345);
		json_decref(item);
	}
	json_t *item = jparse("{'s':{'S':'1'},'n':{'N':1}}");
	long long out = 0;
	CHECK_INT(ddb_item_int(item, "s", &out), -EPROTO);
	CHECK_INT(ddb_item_int(item, "n", &out), -EPROTO);
	CHECK_INT(ddb_item_int(item, "missing", &out), -ENOENT);
	json_decref(item);
}

/* ---- a scripted HTTP server --------------------------------------------- */

#define FAKE_MAX   16
#define FAKE_CONNS 8

struct fake_req {
	char *head; /* request line and headers */
	char *body;
};

struct fake {
	int lfd;
	int port;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	pthread_mutex_t lock;
	/* protected by lock: */
	long status[FAKE_MAX];
	char *reply[FAKE_MAX]; /* served in order; the last one repeats */
	size_t nreply, next;
	struct fake_req req[FAKE_MAX];
	size_t nreq;
	size_t total; /* requests seen, including those not kept */
};

static void fake_reset(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->nreply; i++)
		free(f->reply[i]);
	for (size_t i = 0; i < f->nreq; i++) {
		free(f->req[i].head);
		free(f->req[i].body);
	}
	f->nreply = f->next = f->nreq = f->total = 0;
	pthread_mutex_unlock(&f->lock);
}

/* Queue a reply (test JSON, or raw text when raw). */
static void fake_push(struct fake *f, long status, const char *body, bool raw)
{
	pthread_mutex_lock(&f->lock);
	if (f->nreply < FAKE_MAX) {
		f->status[f->nreply] = status;
		f->reply[f->nreply++] = strdup(raw ? body : jq(body));
	}
	pthread_mutex_unlock(&f->lock);
}

/* Request i's head and body (borrowed; valid until fake_reset). */
static const struct fake_req *fake_req(struct fake *f, size_t i)
{
	static const struct fake_req none = { NULL, NULL };
	const struct fake_req *r = &none;

	pthread_mutex_lock(&f->lock);
	if (i < f->nreq)
		r = &f->req[i];
	pthread_mutex_unlock(&f->lock);
	return r;
}

static size_t fake_count(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	size_t n = f->total;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* If in holds one whole request, record it, answer it and return true. */
static bool fake_handle(struct fake *f, int fd, struct buf *in)
{
	const char *s = buf_str(in);
	const char *end = strstr(s, "\r\n\r\n");
	if (!end)
		return false;
	size_t head_len = (size_t)(end - s) + 4;
	unsigned long long clen = 0;
	const char *cl = strcasestr(s, "\r\ncontent-length:");
	if (cl && cl < end)
		clen = strtoull(cl + 17, NULL, 10);
	if (buf_len(in) < head_len + clen)
		return false;

	struct buf out;
	buf_init(&out, 1 << 20);
	pthread_mutex_lock(&f->lock);
	if (f->nreq < FAKE_MAX) {
		f->req[f->nreq].head = strndup(s, head_len - 4);
		f->req[f->nreq].body = strndup(s + head_len, clen);
		f->nreq++;
	}
	f->total++;
	long status = 500;
	const char *body = "{}";
	if (f->nreply > 0) {
		size_t k = f->next < f->nreply ? f->next++ : f->nreply - 1;
		status = f->status[k];
		body = f->reply[k];
	}
	int rc = buf_printf(&out,
			    "HTTP/1.1 %ld X\r\nContent-Type: application/x-amz-json-1.0\r\n"
			    "Content-Length: %zu\r\nx-amzn-RequestId: rid-%zu\r\n\r\n%s",
			    status, strlen(body), f->total, body);
	pthread_mutex_unlock(&f->lock);
	if (rc == 0)
		send_all(fd, buf_str(&out), buf_len(&out));
	buf_cleanup(&out);
	buf_reset(in);
	return true;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd pfd[FAKE_CONNS + 1];
	struct buf in[FAKE_CONNS + 1];
	nfds_t n = 1;

	pfd[0] = (struct pollfd){ .fd = f->lfd, .events = POLLIN };
	while (!atomic_load(&f->stop)) {
		if (poll(pfd, n, 50) <= 0)
			continue;
		for (nfds_t i = n; i-- > 1;) {
			char chunk[16384];
			ssize_t r = 0;
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = recv(pfd[i].fd, chunk, sizeof(chunk), 0);
			if (r > 0 && buf_add(&in[i], chunk, (size_t)r) == 0) {
				fake_handle(f, pfd[i].fd, &in[i]);
				continue;
			}
			close(pfd[i].fd);
			buf_cleanup(&in[i]);
			pfd[i] = pfd[n - 1];
			in[i] = in[n - 1];
			n--;
		}
		if ((pfd[0].revents & POLLIN) && n < FAKE_CONNS + 1) {
			int fd = accept(f->lfd, NULL, NULL);
			if (fd >= 0) {
				pfd[n] = (struct pollfd){ .fd = fd, .events = POLLIN };
				buf_init(&in[n], 1 << 20);
				n++;
			}
		}
	}
	for (nfds_t i = 1; i < n; i++) {
		close(pfd[i].fd);
		buf_cleanup(&in[i]);
	}
	return NULL;
}

static int fake_start(struct fake *f)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(f->lfd, 16) < 0 || getsockname(f->lfd, (struct sockaddr *)&a, &alen) < 0)
		return -errno;
	f->port = ntohs(a.sin_port);
	if (pthread_create(&f->thread, NULL, fake_main, f) != 0)
		return -EAGAIN;
	f->started = true;
	return 0;
}

static void fake_stop(struct fake *f)
{
	if (!f->started)
		return;
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	fake_reset(f);
	pthread_mutex_destroy(&f->lock);
}

/* ---- the client against the scripted server ------------------------------ */

struct env {
	struct fake fake;
	struct stats stats;
	struct http_client *http;
	struct creds_provider *creds;
	struct ddb_client *ddb;
	char url[64];
	char host[64];
};

static int env_setup(struct env *e)
{
	struct http_config hc;
	struct creds_config cc = { .access_key = "AKIDTEST",
				   .secret_key = "secret",
				   .no_imds = true };
	struct retry_policy rp;
	int rc = 0;

	stats_init(&e->stats);
	rc = fake_start(&e->fake);
	if (rc < 0)
		return rc;
	snprintf(e->url, sizeof(e->url), "http://LocalHost:%d/", e->fake.port);
	snprintf(e->host, sizeof(e->host), "Host: localhost:%d", e->fake.port);
	http_config_default(&hc);
	hc.timeout_ms = 10000;
	rc = http_client_new(&hc, &e->stats, &e->http);
	if (rc < 0)
		return rc;
	rc = creds_provider_new(&cc, e->http, &e->creds);
	if (rc < 0)
		return rc;
	retry_policy_default(&rp);
	rp.max_attempts = 1; /* scripted errors are answered once */
	struct ddb_config dc = { .endpoint = e->url, .region = "eu-west-3" };
	return ddb_client_new(&dc, e->http, e->creds, &e->stats, &rp, &e->ddb);
}

static void env_teardown(struct env *e)
{
	ddb_client_free(e->ddb);
	creds_provider_free(e->creds);
	http_client_free(e->http); /* closes the kept-alive connections first */
	fake_stop(&e->fake);
}

/* The request was a signed DynamoDB call of op with this body. */
static void check_request_at(struct env *e, size_t i, const char *op, const char *body, int line)
{
	const struct fake_req *r = fake_req(&e->fake, i);
	char target[96];

	snprintf(target, sizeof(target), "\r\nX-Amz-Target: DynamoDB_20120810.%s\r\n", op);
	unit_check(r->head && strncmp(r->head, "POST / HTTP/1.1\r\n", 17) == 0, "POST /", __FILE__,
		   line);
	unit_check(r->head && strstr(r->head, target) != NULL, "X-Amz-Target", __FILE__, line);
	unit_check(r->head && strstr(r->head, "\r\nContent-Type: application/x-amz-json-1.0\r\n"),
		   "Content-Type", __FILE__, line);
	unit_check(r->head && strstr(r->head, e->host), "Host", __FILE__, line);
	unit_check(r->head &&
			   strstr(r->head, "\r\nAuthorization: AWS4-HMAC-SHA256 "
					   "Credential=AKIDTEST/") &&
			   strstr(r->head, "/eu-west-3/dynamodb/aws4_request, "),
		   "Authorization", __FILE__, line);
	check_json_at(r->body, body, line);
}
#define CHECK_REQUEST(e, i, op, body) check_request_at((e), (i), (op), (body), __LINE__)

static void test_get_item(struct env *e)
{
	struct aws_error err;
	json_t *key = jparse("{'pk':{'S':'b/chain'}}");
	json_t *item = NULL;

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Item':{'pk':{'S':'b/chain'},'version':{'N':'4'}}}", false);
	CHECK_INT(ddb_get_item(e->ddb, "heads", key, true, &item, &err), 0);
	CHECK_REQUEST(e, 0, "GetItem",
		      "{'TableName':'heads','Key':{'pk':{'S':'b/chain'}},'ConsistentRead':true}");
	long long version = 0;
	CHECK_INT(ddb_item_int(item, "version", &version), 0);
	CHECK_INT(version, 4);
	json_decref(item);
	CHECK_INT(atomic_load(&e->stats.requests[STAT_DDB_GET]), 1);

	/* No Item: -ENOENT; eventually consistent leaves ConsistentRead out. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	item = NULL;
	CHECK_INT(ddb_get_item(e->ddb, "heads", key, false, &item, &err), -ENOENT);
	CHECK(item == NULL);
	CHECK_REQUEST(e, 0, "GetItem", "{'TableName':'heads','Key':{'pk':{'S':'b/chain'}}}");

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Item':'oops'}", false);
	CHECK_INT(ddb_get_item(e->ddb, "heads", key, true, &item, &err), -EPROTO);
	CHECK(item == NULL);

	/* Bad input fails before a request is sent. */
	fake_reset(&e->fake);
	CHECK_INT(ddb_get_item(e->ddb, "hd", key, true, &item, &err), -EINVAL);
	CHECK_INT(ddb_get_item(e->ddb, "heads/x", key, true, &item, &err), -EINVAL);
	CHECK_INT(ddb_get_item(e->ddb, NULL, key, true, &item, &err), -EINVAL);
	CHECK_INT(ddb_get_item(e->ddb, "heads", NULL, true, &item, &err), -EINVAL);
	CHECK_INT(fake_count(&e->fake), 0);
	json_decref(key);
}

static void test_put_delete(struct env *e)
{
	struct aws_error err;
	json_t *item = jparse("{'pk':{'S':'c'},'version':{'N':'1'}}");
	json_t *key = jparse("{'pk':{'S':'c'}}");
	json_t *names = jparse("{'#k':'pk'}");
	json_t *empty = json_object();
	struct ddb_cond cond = { "attribute_not_exists(#k)", names, empty };

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	CHECK_INT(ddb_put_item(e->ddb, "heads", item, &cond, &err), 0);
	CHECK_REQUEST(e, 0, "PutItem",
		      "{'TableName':'heads','Item':{'pk':{'S':'c'},'version':{'N':'1'}},"
		      "'ConditionExpression':'attribute_not_exists(#k)',"
		      "'ExpressionAttributeNames':{'#k':'pk'}}");

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	CHECK_INT(ddb_put_item(e->ddb, "heads", item, NULL, NULL), 0);
	CHECK_REQUEST(e, 0, "PutItem",
		      "{'TableName':'heads','Item':{'pk':{'S':'c'},'version':{'N':'1'}}}");

	fake_reset(&e->fake);
	fake_push(&e->fake, 400,
		  "{'__type':'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',"
		  "'message':'The conditional request failed'}",
		  false);
	CHECK_INT(ddb_put_item(e->ddb, "heads", item, &cond, &err), -ECANCELED);
	CHECK_STR(err.code, "ConditionalCheckFailedException");
	CHECK_INT(err.status, 400);

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	CHECK_INT(ddb_delete_item(e->ddb, "heads", key, NULL, &err), 0);
	CHECK_REQUEST(e, 0, "DeleteItem", "{'TableName':'heads','Key':{'pk':{'S':'c'}}}");
	CHECK_INT(atomic_load(&e->stats.requests[STAT_DDB_DELETE]), 1);

	json_t *vvals = jparse("{':v':{'N':'1'}}");
	struct ddb_cond vcond = { "version = :v", NULL, vvals };
	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	CHECK_INT(ddb_delete_item(e->ddb, "heads", key, &vcond, &err), 0);
	CHECK_REQUEST(e, 0, "DeleteItem",
		      "{'TableName':'heads','Key':{'pk':{'S':'c'}},"
		      "'ConditionExpression':'version = :v',"
		      "'ExpressionAttributeValues':{':v':{'N':'1'}}}");

	/* Not UTF-8 in an expression: -EINVAL, nothing sent. */
	fake_reset(&e->fake);
	struct ddb_cond bad = { "attribute_not_exists(\xff)", NULL, NULL };
	CHECK_INT(ddb_delete_item(e->ddb, "heads", key, &bad, &err), -EINVAL);
	CHECK_INT(ddb_put_item(e->ddb, "heads", NULL, NULL, &err), -EINVAL);
	CHECK_INT(fake_count(&e->fake), 0);
	json_decref(vvals);
	json_decref(empty);
	json_decref(names);
	json_decref(key);
	json_decref(item);
}

static void test_update_item(struct env *e)
{
	struct aws_error err;
	json_t *key = jparse("{'pk':{'S':'c'}}");
	json_t *names = jparse("{'#v':'version','#h':'head'}");
	json_t *values = jparse("{':e':{'N':'3'},':n':{'N':'4'},':h':{'S':'cs-4'}}");
	struct ddb_cond cond = { "#v = :e", names, values };
	json_t *attrs = NULL;

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Attributes':{'pk':{'S':'c'},'version':{'N':'4'}}}", false);
	CHECK_INT(
		ddb_update_item(e->ddb, "heads", key, "SET #v = :n, #h = :h", &cond, &attrs, &err),
		0);
	CHECK_REQUEST(e, 0, "UpdateItem",
		      "{'TableName':'heads','Key':{'pk':{'S':'c'}},"
		      "'UpdateExpression':'SET #v = :n, #h = :h','ConditionExpression':'#v = :e',"
		      "'ExpressionAttributeNames':{'#v':'version','#h':'head'},"
		      "'ExpressionAttributeValues':{':e':{'N':'3'},':n':{'N':'4'},"
		      "':h':{'S':'cs-4'}},'ReturnValues':'ALL_NEW'}");
	CHECK_JV(attrs, "{'pk':{'S':'c'},'version':{'N':'4'}}");
	json_decref(attrs);
	CHECK_INT(atomic_load(&e->stats.requests[STAT_DDB_UPDATE]), 1);

	/* Without out_attrs: ReturnValues NONE and the reply is not looked into. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	struct ddb_cond only_values = { NULL, NULL, values };
	CHECK_INT(ddb_update_item(e->ddb, "heads", key, "SET v = :n", &only_values, NULL, &err), 0);
	CHECK_REQUEST(e, 0, "UpdateItem",
		      "{'TableName':'heads','Key':{'pk':{'S':'c'}},'UpdateExpression':'SET v = :n',"
		      "'ExpressionAttributeValues':{':e':{'N':'3'},':n':{'N':'4'},"
		      "':h':{'S':'cs-4'}},'ReturnValues':'NONE'}");

	/* ALL_NEW promised but missing: -EPROTO. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	attrs = NULL;
	CHECK_INT(ddb_update_item(e->ddb, "heads", key, "SET v = :n", &cond, &attrs, &err),
		  -EPROTO);
	CHECK(attrs == NULL);

	/* The failed condition is -ECANCELED with the details beside it. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 400,
		  "{'__type':'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',"
		  "'message':'The conditional request failed'}",
		  false);
	CHECK_INT(ddb_update_item(e->ddb, "heads", key, "SET v = :n", &cond, &attrs, &err),
		  -ECANCELED);
	CHECK_STR(err.code, "ConditionalCheckFailedException");
	CHECK_STR(err.message, "The conditional request failed");
	CHECK_STR(err.request_id, "rid-1");
	CHECK_INT(err.status, 400);
	CHECK(attrs == NULL);

	fake_reset(&e->fake);
	CHECK_INT(ddb_update_item(e->ddb, "heads", key, NULL, &cond, NULL, &err), -EINVAL);
	CHECK_INT(fake_count(&e->fake), 0);
	json_decref(values);
	json_decref(names);
	json_decref(key);
}

struct collect {
	char seen[256];
	int calls;
	int stop_at; /* return -EINTR at this call; 0: never */
};

static int collect_fn(void *arg, json_t *item)
{
	struct collect *c = arg;
	const char *sk = NULL;
	size_t len = strlen(c->seen);

	c->calls++;
	if (ddb_item_str(item, "sk", &sk) == 0)
		snprintf(c->seen + len, sizeof(c->seen) - len, "%s%s", len ? "," : "", sk);
	return c->calls == c->stop_at ? -EINTR : 0;
}

static void test_query(struct env *e)
{
	struct aws_error err;
	json_t *values = jparse("{':p':{'S':'c'}}");
	struct ddb_cond kc = { "pk = :p", NULL, values };
	struct collect col = { .stop_at = 0 };

	fake_reset(&e->fake);
	fake_push(&e->fake, 200,
		  "{'Items':[{'sk':{'S':'1'}},{'sk':{'S':'2'}}],'Count':2,"
		  "'LastEvaluatedKey':{'pk':{'S':'c'},'sk':{'S':'2'}}}",
		  false);
	fake_push(&e->fake, 200,
		  "{'Items':[],'Count':0,'LastEvaluatedKey':{'pk':{'S':'c'},'sk':{'S':'3'}}}",
		  false);
	fake_push(&e->fake, 200, "{'Items':[{'sk':{'S':'4'}}],'Count':1}", false);
	CHECK_INT(ddb_query(e->ddb, "log", &kc, true, collect_fn, &col, &err), 0);
	CHECK_STR(col.seen, "1,2,4");
	CHECK_INT(fake_count(&e->fake), 3);
	CHECK_REQUEST(e, 0, "Query",
		      "{'TableName':'log','KeyConditionExpression':'pk = :p',"
		      "'ExpressionAttributeValues':{':p':{'S':'c'}},'ConsistentRead':true}");
	CHECK_REQUEST(e, 1, "Query",
		      "{'TableName':'log','KeyConditionExpression':'pk = :p',"
		      "'ExpressionAttributeValues':{':p':{'S':'c'}},'ConsistentRead':true,"
		      "'ExclusiveStartKey':{'pk':{'S':'c'},'sk':{'S':'2'}}}");
	CHECK_REQUEST(e, 2, "Query",
		      "{'TableName':'log','KeyConditionExpression':'pk = :p',"
		      "'ExpressionAttributeValues':{':p':{'S':'c'}},'ConsistentRead':true,"
		      "'ExclusiveStartKey':{'pk':{'S':'c'},'sk':{'S':'3'}}}");
	CHECK_INT(atomic_load(&e->stats.requests[STAT_DDB_QUERY]), 3);

	/* The callback stops the walk: its value comes back, no more pages. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 200,
		  "{'Items':[{'sk':{'S':'1'}},{'sk':{'S':'2'}}],"
		  "'LastEvaluatedKey':{'pk':{'S':'c'},'sk':{'S':'2'}}}",
		  false);
	memset(&col, 0, sizeof(col));
	col.stop_at = 1;
	CHECK_INT(ddb_query(e->ddb, "log", &kc, false, collect_fn, &col, &err), -EINTR);
	CHECK_STR(col.seen, "1");
	CHECK_INT(fake_count(&e->fake), 1);

	/* A server that repeats its key would loop for ever. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Items':[],'LastEvaluatedKey':{'pk':{'S':'c'}}}", false);
	memset(&col, 0, sizeof(col));
	CHECK_INT(ddb_query(e->ddb, "log", &kc, false, collect_fn, &col, &err), -EPROTO);
	CHECK_INT(fake_count(&e->fake), 2);

	/* Malformed pages deliver nothing. */
	static const char *const bad[] = {
		"{'Count':0}",
		"{'Items':{}}",
		"{'Items':[{'sk':{'S':'1'}},'x']}",
		"{'Items':[],'LastEvaluatedKey':'x'}",
		"{'Items':[],'LastEvaluatedKey':{}}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		fake_reset(&e->fake);
		fake_push(&e->fake, 200, bad[i], false);
		memset(&col, 0, sizeof(col));
		CHECK_INT(ddb_query(e->ddb, "log", &kc, false, collect_fn, &col, &err), -EPROTO);
		CHECK_INT(col.calls, 0);
	}

	struct ddb_cond nocond = { NULL, NULL, values };
	CHECK_INT(ddb_query(e->ddb, "log", &nocond, false, collect_fn, &col, &err), -EINVAL);
	CHECK_INT(ddb_query(e->ddb, "log", NULL, false, collect_fn, &col, &err), -EINVAL);
	CHECK_INT(ddb_query(e->ddb, "log", &kc, false, NULL, &col, &err), -EINVAL);
	json_decref(values);
}

static void test_tables(struct env *e)
{
	struct aws_error err;
	char *status = NULL;

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'TableDescription':{'TableStatus':'CREATING'}}", false);
	CHECK_INT(ddb_create_table(e->ddb, "log", "pk", "seq", 'N', &err), 0);
	CHECK_REQUEST(e, 0, "CreateTable",
		      "{'TableName':'log','KeySchema':[{'AttributeName':'pk','KeyType':'HASH'},"
		      "{'AttributeName':'seq','KeyType':'RANGE'}],"
		      "'AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'},"
		      "{'AttributeName':'seq','AttributeType':'N'}],"
		      "'BillingMode':'PAY_PER_REQUEST'}");

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{}", false);
	CHECK_INT(ddb_create_table(e->ddb, "heads", "pk", NULL, 0, &err), 0);
	CHECK_REQUEST(e, 0, "CreateTable",
		      "{'TableName':'heads','KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}],"
		      "'AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'}],"
		      "'BillingMode':'PAY_PER_REQUEST'}");

	fake_reset(&e->fake);
	fake_push(&e->fake, 400,
		  "{'__type':'com.amazonaws.dynamodb.v20120810#ResourceInUseException',"
		  "'message':'Table already exists: heads'}",
		  false);
	CHECK_INT(ddb_create_table(e->ddb, "heads", "pk", NULL, 0, &err), -EEXIST);
	CHECK_STR(err.code, "ResourceInUseException");

	fake_reset(&e->fake);
	CHECK_INT(ddb_create_table(e->ddb, "heads", "pk", "sk", 'B', &err), -EINVAL);
	CHECK_INT(ddb_create_table(e->ddb, "heads", "", NULL, 0, &err), -EINVAL);
	CHECK_INT(ddb_create_table(e->ddb, "heads", NULL, NULL, 0, &err), -EINVAL);
	CHECK_INT(fake_count(&e->fake), 0);

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Table':{'TableName':'heads','TableStatus':'CREATING'}}", false);
	CHECK_INT(ddb_describe_table(e->ddb, "heads", &status, &err), 0);
	CHECK_STR(status, "CREATING");
	free(status);
	CHECK_REQUEST(e, 0, "DescribeTable", "{'TableName':'heads'}");

	fake_reset(&e->fake);
	fake_push(&e->fake, 400,
		  "{'__type':'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException',"
		  "'message':'Requested resource not found'}",
		  false);
	status = NULL;
	CHECK_INT(ddb_describe_table(e->ddb, "heads", &status, &err), -ENOENT);
	CHECK(status == NULL);

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Table':{'TableStatus':7}}", false);
	CHECK_INT(ddb_describe_table(e->ddb, "heads", &status, &err), -EPROTO);
	CHECK(status == NULL);
}

static void test_wait_active(struct env *e)
{
	struct aws_error err;

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Table':{'TableStatus':'CREATING'}}", false);
	fake_push(&e->fake, 200, "{'Table':{'TableStatus':'CREATING'}}", false);
	fake_push(&e->fake, 200, "{'Table':{'TableStatus':'ACTIVE'}}", false);
	CHECK_INT(ddb_wait_active(e->ddb, "heads", 5000, &err), 0);
	CHECK_INT(fake_count(&e->fake), 3);

	/* Never ACTIVE: about timeout / 100 ms polls, then -ETIMEDOUT. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Table':{'TableStatus':'CREATING'}}", false);
	CHECK_INT(ddb_wait_active(e->ddb, "heads", 300, &err), -ETIMEDOUT);
	CHECK(fake_count(&e->fake) >= 2 && fake_count(&e->fake) <= 5);

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'Table':{'TableStatus':'DELETING'}}", false);
	CHECK_INT(ddb_wait_active(e->ddb, "heads", 5000, &err), -ENOENT);
	CHECK_INT(fake_count(&e->fake), 1);

	fake_reset(&e->fake);
	fake_push(&e->fake, 400, "{'__type':'x#ResourceNotFoundException'}", false);
	CHECK_INT(ddb_wait_active(e->ddb, "heads", 5000, &err), -ENOENT);
}

/* ddb_call itself: operation names, malformed replies, unparsable errors. */
static void test_call(struct env *e)
{
	struct aws_error err;
	json_t *req = jparse("{'Limit':1}");
	json_t *reply = NULL;

	fake_reset(&e->fake);
	fake_push(&e->fake, 200, "{'TableNames':['heads']}", false);
	CHECK_INT(ddb_call(e->ddb, "ListTables", req, &reply, &err), 0);
	CHECK_JV(reply, "{'TableNames':['heads']}");
	json_decref(reply);
	CHECK_REQUEST(e, 0, "ListTables", "{'Limit':1}");
	CHECK_INT(atomic_load(&e->stats.requests[STAT_OTHER]), 1);

	static const char *const bad_ops[] = { "", "Get Item", "GetItem\r\nX-Evil: 1", "Get.Item",
					       NULL };
	fake_reset(&e->fake);
	for (size_t i = 0; i < ARRAY_SIZE(bad_ops); i++)
		CHECK_INT(ddb_call(e->ddb, bad_ops[i], req, NULL, &err), -EINVAL);
	json_t *arr = json_array();
	CHECK_INT(ddb_call(e->ddb, "GetItem", arr, NULL, &err), -EINVAL);
	CHECK_INT(ddb_call(e->ddb, "GetItem", NULL, NULL, &err), -EINVAL);
	json_decref(arr);
	CHECK_INT(fake_count(&e->fake), 0);

	static const char *const bad_replies[] = {
		"", "not json", "[1,2]", "\"str\"", "{\"a\":1,\"a\":2}", "{\"a\":",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_replies); i++) {
		fake_reset(&e->fake);
		fake_push(&e->fake, 200, bad_replies[i], true);
		reply = NULL;
		CHECK_INT(ddb_call(e->ddb, "DescribeLimits", req, &reply, &err), -EPROTO);
		CHECK(reply == NULL);
		CHECK(strstr(err.message, "malformed") != NULL);
	}

	/* An error body that is not JSON: the status decides. */
	fake_reset(&e->fake);
	fake_push(&e->fake, 502, "<html>Bad Gateway</html>", true);
	CHECK_INT(ddb_call(e->ddb, "DescribeLimits", req, NULL, &err), -EIO);
	CHECK_INT(err.status, 502);
	CHECK_STR(err.code, "");

	fake_reset(&e->fake);
	fake_push(&e->fake, 400,
		  "{'__type':'com.amazon.coral.validate#ValidationException',"
		  "'message':'One or more parameter values were invalid'}",
		  false);
	CHECK_INT(ddb_call(e->ddb, "DescribeLimits", req, NULL, NULL), -EINVAL);
	json_decref(req);
}

/* Endpoints and regions accepted by ddb_client_new. */
static void test_config(struct env *e)
{
	static const struct {
		const char *endpoint;
		const char *region;
		int rc;
	} cases[] = {
		{ NULL, NULL, 0 },
		{ NULL, "cn-north-1", 0 },
		{ "http://127.0.0.1:8000", NULL, 0 },
		{ "http://127.0.0.1:8000/", "local", 0 },
		{ "https://dynamodb.eu-west-1.amazonaws.com", "eu-west-1", 0 },
		{ "http://[::1]:8000", NULL, 0 },
		{ "http://localhost", NULL, 0 },
		{ "127.0.0.1:8000", NULL, -EINVAL },
		{ "ftp://host", NULL, -EINVAL },
		{ "http://", NULL, -EINVAL },
		{ "http:///", NULL, -EINVAL },
		{ "http://h:0", NULL, -EINVAL },
		{ "http://h:65536", NULL, -EINVAL },
		{ "http://h:", NULL, -EINVAL },
		{ "http://h:80x", NULL, -EINVAL },
		{ "http://h:1234567", NULL, -EINVAL },
		{ "http://user@h", NULL, -EINVAL },
		{ "http://h/path", NULL, -EINVAL },
		{ "http://h?x=1", NULL, -EINVAL },
		{ "http://h#f", NULL, -EINVAL },
		{ "http://h h", NULL, -EINVAL },
		{ "http://[::1", NULL, -EINVAL },
		{ "http://[]:80", NULL, -EINVAL },
		{ NULL, "US-EAST-1", -EINVAL },
		{ NULL, "", -EINVAL },
		{ NULL, "us-east-1/x", -EINVAL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ddb_config dc = { cases[i].endpoint, cases[i].region };
		struct ddb_client *c = NULL;
		CHECK_INT(ddb_client_new(&dc, e->http, e->creds, NULL, NULL, &c), cases[i].rc);
		CHECK((c != NULL) == (cases[i].rc == 0));
		ddb_client_free(c);
	}
	struct ddb_client *c = NULL;
	CHECK_INT(ddb_client_new(NULL, e->http, e->creds, NULL, NULL, &c), 0);
	ddb_client_free(c);
	c = NULL;
	CHECK_INT(ddb_client_new(NULL, NULL, e->creds, NULL, NULL, &c), -EINVAL);
	CHECK_INT(ddb_client_new(NULL, e->http, NULL, NULL, NULL, &c), -EINVAL);
	CHECK(c == NULL);
	ddb_client_free(NULL);
}

/* Nothing listening: the transport error comes back as such. */
static void test_refused(struct env *e)
{
	struct aws_error err;
	struct retry_policy rp;
	struct ddb_client *c = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char url[64];

	/* A port that was just free: bound, noted, closed. */
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	      getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	retry_policy_default(&rp);
	rp.max_attempts = 1;
	struct ddb_config dc = { url, NULL };
	CHECK_INT(ddb_client_new(&dc, e->http, e->creds, NULL, &rp, &c), 0);
	char *status = NULL;
	CHECK_INT(ddb_describe_table(c, "heads", &status, &err), -ECONNREFUSED);
	CHECK_INT(err.transport, -ECONNREFUSED);
	ddb_client_free(c);
}

int main(void)
{
	struct env e;

	test_parse_error_table();
	test_parse_error_sizes();
	test_values();
	test_item_str();
	test_item_int();

	memset(&e, 0, sizeof(e));
	int rc = env_setup(&e);
	CHECK_INT(rc, 0);
	if (rc == 0) {
		test_get_item(&e);
		test_put_delete(&e);
		test_update_item(&e);
		test_query(&e);
		test_tables(&e);
		test_wait_active(&e);
		test_call(&e);
		test_config(&e);
		test_refused(&e);
	}
	env_teardown(&e);
	return unit_end("ddb");
}
