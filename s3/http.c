// SPDX-License-Identifier: MIT
/*
 * http: one HTTP attempt over libcurl (see http.h). Owns the libcurl share
 * handle (DNS cache and TLS sessions shared by all threads) and a pool of
 * idle easy handles: an easy handle keeps its connections open, so taking
 * the most recently returned handle reuses a warm keep-alive connection. It
 * must not know about signing, retries, S3 or error bodies.
 *
 * Lock order: pool_lock, then the share locks (libcurl takes those itself
 * inside curl_easy_perform, never while we hold pool_lock).
 */
#include "s3vfs/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "s3vfs/log.h"

#define HTTP_POOL_MAX	  64
#define HTTP_HEADERS_MAX  (256 * 1024)
#define HTTP_NHEADERS_MAX 256
#define HTTP_BODY_DEFAULT (16u * 1024 * 1024)

struct http_client {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	struct http_config cfg;
	char *ca_file;
	struct stats *stats; /* may be NULL; atomics */

	pthread_mutex_t pool_lock;
	CURL *pool[HTTP_POOL_MAX]; /* protected by pool_lock */
	int npool;		   /* protected by pool_lock */
};

/* State of one transfer, shared by the libcurl callbacks. */
struct xfer {
	const struct http_request *req;
	struct http_response *resp;
	size_t header_bytes;
	size_t max_body;
	uint64_t body_pos; /* read position in the request body */
	int rc;		   /* first error raised by a callback */
};

void http_config_default(struct http_config *c)
{
	memset(c, 0, sizeof(*c));
	c->connect_timeout_ms = 10000;
	c->low_speed_time_s = 30;
	c->low_speed_limit = 1;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct http_client *c = arg;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct http_client *c = arg;
	pthread_mutex_unlock(&c->share_locks[data]);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_client_new(const struct http_config *cfg, struct stats *stats, struct http_client **out)
{
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -EIO;

	struct http_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (cfg)
		c->cfg = *cfg;
	else
		http_config_default(&c->cfg);
	c->cfg.ca_file = NULL;
	if (cfg && cfg->ca_file) {
		c->ca_file = strdup(cfg->ca_file);
		if (!c->ca_file) {
			free(c);
			return -ENOMEM;
		}
	}
	c->stats = stats;
	pthread_mutex_init(&c->pool_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);

	c->share = curl_share_init();
	if (!c->share) {
		http_client_free(c);
		return -ENOMEM;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*out = c;
	return 0;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	free(c->ca_file);
	free(c);
}

static CURL *pool_take(struct http_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->npool > 0)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_reset(h); /* keeps the connection cache */
	else
		h = curl_easy_init();
	return h;
}

static void pool_give(struct http_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->npool < HTTP_POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

void http_response_init(struct http_response *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, HTTP_BODY_DEFAULT);
}

static void headers_free(struct http_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
}

void http_response_cleanup(struct http_response *r)
{
	headers_free(r);
	buf_cleanup(&r->body);
}

const char *http_response_header(const struct http_response *r, const char *lname)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcmp(r->headers[i].name, lname) == 0)
			return r->headers[i].value;
	}
	return NULL;
}

/* "HTTP/1.1 200 OK" -> 200; 0 if not a status line. */
static long parse_status_line(const char *line, size_t n)
{
	if (n < 12 || strncmp(line, "HTTP/", 5) != 0)
		return 0;
	const char *sp = memchr(line, ' ', n);
	if (!sp || (size_t)(sp - line) + 4 > n)
		return 0;
	long st = 0;
	for (int i = 1; i <= 3; i++) {
		char d = sp[i];
		if (d < '0' || d > '9')
			return 0;
		st = st * 10 + (d - '0');
	}
	return st;
}

static int header_add(struct http_response *r, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	if (!colon || colon == line)
		return 0; /* not a header line: ignore */
	size_t nlen = (size_t)(colon - line);
	const char *v = colon + 1;
	const char *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (r->nheaders >= HTTP_NHEADERS_MAX)
		return -E2BIG;

	struct http_header *hs = realloc(r->headers, (r->nheaders + 1) * sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	r->headers = hs;
	char *name = strndup(line, nlen);
	char *value = strndup(v, (size_t)(end - v));
	if (!name || !value) {
		free(name);
		free(value);
		return -ENOMEM;
	}
	for (char *p = name; *p; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	hs[r->nheaders].name = name;
	hs[r->nheaders].value = value;
	r->nheaders++;
	return 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	x->header_bytes += n;
	if (x->header_bytes > HTTP_HEADERS_MAX) {
		x->rc = -E2BIG;
		return 0;
	}
	long st = parse_status_line(data, n);
	if (st) {
		/* A new response (after 100 Continue): forget the previous headers. */
		x->resp->status = st;
		headers_free(x->resp);
		return n;
	}
	int rc = header_add(x->resp, data, n);
	if (rc < 0) {
		x->rc = rc;
		return 0;
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long st = x->resp->status;
	int rc;

	if (x->req->sink && st >= 200 && st < 300) {
		/* Counted even if the sink refuses them: they reached it, and the
		 * caller must not take the attempt for one that can be repeated. */
		rc = x->req->sink(x->req->sink_arg, data, n);
		x->resp->sink_bytes += n;
		x->resp->sink_failed = rc < 0;
	} else if (buf_len(&x->resp->body) + n > x->max_body) {
		rc = -E2BIG;
	} else {
		rc = buf_add(&x->resp->body, data, n);
	}
	if (rc < 0) {
		x->rc = rc;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	return n;
}

/* From this size a request body is sent through a larger buffer. */
#define HTTP_BIG_BODY (1L << 20)

static size_t on_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	const struct http_body *b = x->req->body;
	size_t want = size * nmemb;
	uint64_t left = b->len - x->body_pos;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (b->fd < 0) {
		memcpy(dst, (const char *)b->data + x->body_pos, want);
	} else {
		ssize_t got = pread(b->fd, dst, want, (off_t)(b->offset + x->body_pos));
		if (got <= 0) {
			x->rc = got < 0 ? -errno : -EIO;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)got;
	}
	x->body_pos += want;
	return want;
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct xfer *x = arg;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->req->body->len)
		return CURL_SEEKFUNC_FAIL;
	x->body_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int map_curl_error(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNRESET;
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -EPROTO;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return -EKEYREJECTED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static void set_method(CURL *h, const struct http_request *req)
{
	const char *m = req->method;
	bool has_body = req->body != NULL;

	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(m, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(has_body ? req->body->len : 0));
	} else if (strcmp(m, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(has_body ? req->body->len : 0));
	} else if (strcmp(m, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
}

static int setup(struct http_client *c, CURL *h, const struct http_request *req, struct xfer *x,
		 struct curl_slist **out_hdrs, char *errbuf)
{
	struct curl_slist *hdrs = NULL, *t;

	for (size_t i = 0; i < req->nheaders; i++) {
		t = curl_slist_append(hdrs, req->headers[i]);
		if (!t)
			goto nomem;
		hdrs = t;
	}
	/* No 100-continue round trip; no body content type guessed by libcurl. */
	t = curl_slist_append(hdrs, "Expect:");
	if (!t)
		goto nomem;
	hdrs = t;

	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	/* Keys may hold "./" and "../": send the path exactly as signed. */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms ? req->connect_timeout_ms
						 : c->cfg.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, c->cfg.low_speed_limit);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->cfg.low_speed_time_s);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
			 req->timeout_ms ? req->timeout_ms : c->cfg.timeout_ms);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->cfg.insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->cfg.insecure ? 0L : 2L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_VERBOSE, c->cfg.verbose ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (req->body) {
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		/* A large body goes out in 1 MiB reads and sends, not 64 KiB ones:
		 * a sixteenth of the system calls on the write path. */
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE,
				 req->body->len >= HTTP_BIG_BODY ? HTTP_BIG_BODY : 65536L);
	}
	set_method(h, req);
	*out_hdrs = hdrs;
	return 0;
nomem:
	curl_slist_free_all(hdrs);
	return -ENOMEM;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void count(struct http_client *c, const struct http_request *req,
		  const struct http_response *resp, int rc)
{
	if (!c->stats)
		return;
	enum stat_op op = req->op < STAT_OP_COUNT ? req->op : STAT_OTHER;
	atomic_fetch_add(&c->stats->requests[op], 1);
	if (rc < 0 || resp->status >= 400)
		atomic_fetch_add(&c->stats->errors[op], 1);
	if (req->body)
		atomic_fetch_add(&c->stats->bytes_up, req->body->len);
	atomic_fetch_add(&c->stats->bytes_down, resp->sink_bytes + buf_len(&resp->body));
}

int http_perform(struct http_client *c, const struct http_request *req, struct http_response *out)
{
	struct xfer x = { .req = req, .resp = out };
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0;

	x.max_body = req->max_body ? req->max_body : HTTP_BODY_DEFAULT;
	CURL *h = pool_take(c);
	if (!h)
		return -ENOMEM;
	rc = setup(c, h, req, &x, &hdrs, errbuf);
	if (rc < 0)
		goto out;

	long t0 = now_ms();
	CURLcode cc = curl_easy_perform(h);
	out->elapsed_ms = now_ms() - t0;
	if (cc != CURLE_OK) {
		rc = x.rc ? x.rc : map_curl_error(cc);
		snprintf(out->errmsg, sizeof(out->errmsg), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (x.rc) {
		rc = x.rc;
	} else {
		long st = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
		out->status = st;
	}
	count(c, req, out, rc);
out:
	/* Unhook everything that points into this call's stack before pooling. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_SHARE, NULL);
	curl_slist_free_all(hdrs);
	if (rc < 0)
		curl_easy_cleanup(h); /* its connection may be half-read: never reuse it */
	else
		pool_give(c, h);
	return rc;
}
