// SPDX-License-Identifier: MIT
/*
 * s3: the S3 operations of one bucket (see s3.h). Owns the bucket's
 * endpoint (path-style or virtual-hosted addressing), the encoding of keys
 * into paths and queries, the request headers of each operation and the
 * decoding of their replies. Signing, retries and transport live in aws.c
 * and below; this module knows nothing of files, paths, SQLite or FUSE.
 */
#include "s3vfs/s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "s3vfs/aws.h"
#include "s3vfs/log.h"
#include "s3vfs/sigv4.h"

#define S3_MAX_RESUMES 5
#define S3_HDR_MAX     (S3_MAX_META + 12)

struct s3_client {
	struct aws_client ac;
	struct aws_endpoint ep;
	char *base_url; /* scheme://host[:port] of requests */
	char *host;	/* Host header */
	char *region;
	char *bucket;
	bool path_style;
};

/* ---- set-up ---------------------------------------------------------- */

static bool bucket_name_ok(const char *b)
{
	size_t n = strlen(b);
	if (n < 1 || n > 255)
		return false;
	for (const char *p = b; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Split "scheme://host[:port][/]" into scheme and authority. -EINVAL. */
static int parse_endpoint(const char *url, char **out_scheme, char **out_auth)
{
	const char *sep = strstr(url, "://");
	const char *scheme = "https";
	size_t slen = 5;
	const char *auth = url;

	if (sep) {
		scheme = url;
		slen = (size_t)(sep - url);
		auth = sep + 3;
		if (!((slen == 4 && strncmp(url, "http", 4) == 0) ||
		      (slen == 5 && strncmp(url, "https", 5) == 0)))
			return -EINVAL;
	}
	size_t alen = strcspn(auth, "/?#");
	if (alen == 0 || auth[alen] == '?' || auth[alen] == '#' ||
	    (auth[alen] == '/' && auth[alen + 1] != '\0'))
		return -EINVAL;
	for (size_t i = 0; i < alen; i++) {
		if (auth[i] == '@' || auth[i] == ' ' || (unsigned char)auth[i] < 0x21)
			return -EINVAL;
	}
	*out_scheme = strndup(scheme, slen);
	*out_auth = strndup(auth, alen);
	if (!*out_scheme || !*out_auth) {
		free(*out_scheme);
		free(*out_auth);
		return -ENOMEM;
	}
	return 0;
}

static int build_urls(struct s3_client *c, const struct s3_config *cfg)
{
	char *scheme = NULL, *auth = NULL;
	char dflt[128];
	struct buf b;
	int rc = 0;

	snprintf(dflt, sizeof(dflt), "https://s3.%s.amazonaws.com", c->region);
	rc = parse_endpoint(cfg->endpoint ? cfg->endpoint : dflt, &scheme, &auth);
	if (rc < 0)
		return rc;
	buf_init(&b, 1024);
	if (c->path_style)
		rc = buf_printf(&b, "%s://%s", scheme, auth);
	else
		rc = buf_printf(&b, "%s://%s.%s", scheme, c->bucket, auth);
	if (rc == 0) {
		c->base_url = buf_take(&b);
		c->host = strdup(strstr(c->base_url, "://") + 3);
		if (!c->host)
			rc = -ENOMEM;
	}
	free(scheme);
	free(auth);
	return rc;
}

int s3_client_new(const struct s3_config *cfg, struct http_client *http,
		  struct creds_provider *creds, struct stats *stats,
		  const struct retry_policy *retry, struct s3_client **out)
{
	int rc = 0;

	if (!cfg->bucket || !bucket_name_ok(cfg->bucket))
		return -EINVAL;
	struct s3_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ac.http = http;
	c->ac.creds = creds;
	c->ac.stats = stats;
	if (retry)
		c->ac.retry = *retry;
	else
		retry_policy_default(&c->ac.retry);
	atomic_init(&c->ac.clock_skew_s, 0);
	c->path_style = cfg->path_style;
	c->region = strdup(cfg->region ? cfg->region : "us-east-1");
	c->bucket = strdup(cfg->bucket);
	if (!c->region || !c->bucket) {
		rc = -ENOMEM;
		goto out_err;
	}
	rc = build_urls(c, cfg);
	if (rc < 0)
		goto out_err;
	c->ep.base_url = c->base_url;
	c->ep.host = c->host;
	c->ep.service = "s3";
	c->ep.region = c->region;
	c->ep.sign_flags = SIGV4_CONTENT_SHA256;
	c->ep.json_errors = false;
	*out = c;
	return 0;
out_err:
	s3_client_free(c);
	return rc;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	free(c->base_url);
	free(c->host);
	free(c->region);
	free(c->bucket);
	free(c);
}

const char *s3_client_bucket(const struct s3_client *c)
{
	return c->bucket;
}

/* ---- small helpers ------------------------------------------------------ */

void s3_object_info_cleanup(struct s3_object_info *i)
{
	for (size_t k = 0; k < i->nmeta; k++) {
		free(i->meta[k].name);
		free(i->meta[k].value);
	}
	i->nmeta = 0;
}

const char *s3_object_info_meta(const struct s3_object_info *i, const char *name)
{
	for (size_t k = 0; k < i->nmeta; k++) {
		if (strcmp(i->meta[k].name, name) == 0)
			return i->meta[k].value;
	}
	return NULL;
}

/* "/bucket/key" (path style) or "/key", key URI-encoded. */
static int object_path(const struct s3_client *c, const char *key, struct buf *out)
{
	int rc = 0;

	if (strlen(key) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	buf_init(out, 4 * S3_KEY_MAX + 512);
	rc = buf_addc(out, '/');
	if (rc == 0 && c->path_style) {
		rc = buf_addstr(out, c->bucket);
		if (rc == 0 && key[0])
			rc = buf_addc(out, '/');
	}
	if (rc == 0)
		rc = sigv4_uri_encode(out, key, strlen(key), true);
	return rc;
}

/* Append "&name=value" (value encoded; no '&' before the first). */
static int query_add(struct buf *q, const char *name, const char *value)
{
	int rc = 0;

	if (!value)
		return 0;
	if (buf_len(q))
		rc = buf_addc(q, '&');
	if (rc == 0)
		rc = buf_addstr(q, name);
	if (rc == 0)
		rc = buf_addc(q, '=');
	if (rc == 0)
		rc = sigv4_uri_encode(q, value, strlen(value), false);
	return rc;
}

/* A header line list that owns its strings. */
struct hdrs {
	char *line[S3_HDR_MAX];
	size_t n;
};

static void hdrs_cleanup(struct hdrs *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->line[i]);
	h->n = 0;
}

/* Values with CR, LF or NUL could inject headers: refuse them. */
static bool header_value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return false;
	}
	return true;
}

static int hdrs_add(struct hdrs *h, const char *name, const char *value)
{
	struct buf b;
	int rc = 0;

	if (!value)
		return 0;
	if (h->n >= S3_HDR_MAX)
		return -E2BIG;
	if (!header_value_ok(value) || !header_value_ok(name))
		return -EINVAL;
	buf_init(&b, 16 * 1024);
	rc = buf_printf(&b, "%s: %s", name, value);
	if (rc < 0)
		return rc;
	h->line[h->n++] = buf_take(&b);
	return 0;
}

static int hdrs_add_put_opts(struct hdrs *h, const struct s3_put_opts *o)
{
	char name[160];
	int rc = 0;

	if (!o)
		return 0;
	rc = hdrs_add(h, "Content-Type", o->content_type);
	for (size_t i = 0; rc == 0 && i < o->nmeta; i++) {
		const char *n = o->meta[i].name;
		for (const char *p = n; *p; p++) {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			      *p == '_'))
				return -EINVAL;
		}
		if (!n[0] || strlen(n) > 128)
			return -EINVAL;
		snprintf(name, sizeof(name), "x-amz-meta-%s", n);
		rc = hdrs_add(h, name, o->meta[i].value);
	}
	return rc;
}

/* Base64 MD5 of a body (memory or file). */
static int body_md5_b64(const struct http_body *b, char out[32])
{
	unsigned char md[16];
	unsigned int mdlen = 0;
	int rc = 0;

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	if (b && b->fd < 0) {
		EVP_DigestUpdate(ctx, b->data, b->len);
	} else if (b) {
		char chunk[65536];
		uint64_t done = 0;
		while (done < b->len) {
			size_t want = b->len - done < sizeof(chunk) ? b->len - done : sizeof(chunk);
			ssize_t got = pread(b->fd, chunk, want, (off_t)(b->offset + done));
			if (got <= 0) {
				rc = got < 0 ? -errno : -EIO;
				goto out;
			}
			EVP_DigestUpdate(ctx, chunk, (size_t)got);
			done += (uint64_t)got;
		}
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_EncodeBlock((unsigned char *)out, md, 16);
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static uint64_t parse_u64(const char *s, bool *ok)
{
	char *end = NULL;
	*ok = false;
	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || (*end && *end != '\r'))
		return 0;
	*ok = true;
	return v;
}

/* Fill info from a HEAD/GET reply's headers. -EPROTO on a malformed length. */
static int info_from_response(const struct http_response *r, struct s3_object_info *info)
{
	const char *v;
	bool ok = true;

	if (r->status == 304) {
		info->not_modified = true;
		return 0;
	}
	info->not_modified = false;
	v = http_response_header(r, "content-range"); /* "bytes a-b/total" */
	if (v && strchr(v, '/')) {
		info->size = parse_u64(strchr(v, '/') + 1, &ok);
	} else {
		v = http_response_header(r, "content-length");
		info->size = v ? parse_u64(v, &ok) : 0;
	}
	if (!ok)
		return -EPROTO;
	v = http_response_header(r, "etag");
	snprintf(info->etag, sizeof(info->etag), "%s", v ? v : "");
	v = http_response_header(r, "last-modified");
	info->last_modified = v ? curl_getdate(v, NULL) : 0;
	if (info->last_modified < 0)
		info->last_modified = 0;
	v = http_response_header(r, "content-type");
	snprintf(info->content_type, sizeof(info->content_type), "%s", v ? v : "");
	s3_object_info_cleanup(info);
	for (size_t i = 0; i < r->nheaders && info->nmeta < S3_MAX_META; i++) {
		const char *n = r->headers[i].name;
		if (strncmp(n, "x-amz-meta-", 11) != 0)
			continue;
		struct s3_meta *m = &info->meta[info->nmeta];
		m->name = strdup(n + 11);
		m->value = strdup(r->headers[i].value);
		if (!m->name || !m->value) {
			free(m->name);
			free(m->value);
			return -ENOMEM;
		}
		info->nmeta++;
	}
	return 0;
}

/* Perform a call on the bucket; the common tail of every operation. */
static int call(struct s3_client *c, const char *method, const char *key, const char *query,
		const struct hdrs *h, const struct http_body *body, const char *payload_hash,
		enum stat_op op, struct http_response *resp, struct aws_error *err)
{
	struct buf path;
	int rc = 0;

	rc = object_path(c, key, &path);
	if (rc < 0)
		return rc;
	struct aws_call ac = {
		.method = method,
		.path = buf_str(&path),
		.query = query && query[0] ? query : NULL,
		.headers = h ? (const char *const *)h->line : NULL,
		.nheaders = h ? h->n : 0,
		.body = body,
		.payload_hash = payload_hash,
		.op = op,
	};
	rc = aws_perform(&c->ac, &c->ep, &ac, resp, err);
	buf_cleanup(&path);
	return rc;
}

static void copy_etag(const struct http_response *r, char *out)
{
	const char *v = http_response_header(r, "etag");
	if (out)
		snprintf(out, S3_ETAG_MAX, "%s", v ? v : "");
}

/* ---- objects ------------------------------------------------------------ */

int s3_head(struct s3_client *c, const char *key, const char *if_none_match,
	    struct s3_object_info *out, struct aws_error *err)
{
	struct http_response r;
	struct hdrs h = { 0 };
	int rc = 0;

	http_response_init(&r);
	rc = hdrs_add(&h, "If-None-Match", if_none_match);
	if (rc == 0)
		rc = call(c, "HEAD", key, NULL, &h, NULL, NULL, STAT_HEAD, &r, err);
	if (rc == 0)
		rc = info_from_response(&r, out);
	hdrs_cleanup(&h);
	http_response_cleanup(&r);
	return rc;
}

struct get_state {
	const struct s3_get_opts *opts;
	uint64_t done; /* bytes delivered to the sink over all attempts */
	char etag[S3_ETAG_MAX];
	bool have_info;
};

static int get_headers(const struct get_state *g, struct hdrs *h)
{
	uint64_t start = g->opts->offset + g->done;
	char range[64];
	int rc = 0;

	if (start > 0 || g->opts->len > 0) {
		if (g->opts->len > 0)
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, start,
				 g->opts->offset + g->opts->len - 1);
		else
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", start);
		rc = hdrs_add(h, "Range", range);
	}
	if (rc == 0 && g->have_info && g->etag[0])
		rc = hdrs_add(h, "If-Match", g->etag); /* resume: same version only */
	else if (rc == 0)
		rc = hdrs_add(h, "If-Match", g->opts->if_match);
	if (rc == 0 && !g->have_info)
		rc = hdrs_add(h, "If-None-Match", g->opts->if_none_match);
	return rc;
}

/* Did the reply bring every byte it announced? */
static int get_check_length(const struct http_response *r)
{
	const char *v = http_response_header(r, "content-length");
	bool ok = false;
	uint64_t want = v ? parse_u64(v, &ok) : r->sink_bytes;

	if (v && !ok)
		return -EPROTO;
	return want == r->sink_bytes ? 0 : -EPROTO;
}

/* The sink of one GET attempt: before the first byte, the reply must be the
 * range that was asked for (a server answering another range, or ignoring a
 * range past 0, would make wrong bytes look right). */
struct range_sink {
	http_sink_fn sink;
	void *arg;
	const struct http_response *r;
	uint64_t start;
	uint64_t end; /* last byte asked for; UINT64_MAX: to the end */
	bool ranged;
	bool checked;
};

static int check_range(const struct range_sink *s)
{
	if (!s->ranged)
		return 0;
	if (s->r->status != 206)
		return s->start == 0 && s->r->status == 200 ? 0 : -EPROTO;
	const char *cr = http_response_header(s->r, "content-range");
	uint64_t a, b;
	char *end = NULL;
	if (!cr || strncmp(cr, "bytes ", 6) != 0)
		return -EPROTO;
	errno = 0;
	a = strtoull(cr + 6, &end, 10);
	if (errno || *end != '-')
		return -EPROTO;
	b = strtoull(end + 1, &end, 10);
	if (errno || *end != '/' || a != s->start || b < a || b > s->end)
		return -EPROTO;
	return 0;
}

static int range_sink_write(void *arg, const void *data, size_t n)
{
	struct range_sink *s = arg;
	if (!s->checked) {
		int rc = check_range(s);
		if (rc < 0) {
			log_error("GET: the reply is not the range asked for (%" PRIu64
				  "-): refused",
				  s->start);
			return rc;
		}
		s->checked = true;
	}
	return s->sink(s->arg, data, n);
}

int s3_get(struct s3_client *c, const char *key, const struct s3_get_opts *opts, http_sink_fn sink,
	   void *sink_arg, struct s3_object_info *out, struct aws_error *err)
{
	static const struct s3_get_opts none = { 0 };
	struct get_state g = { .opts = opts ? opts : &none };
	struct s3_object_info local = { 0 };
	int rc = 0;

	if (!out)
		out = &local;
	for (int resumes = 0;; resumes++) {
		struct http_response r;
		struct hdrs h = { 0 };
		http_response_init(&r);
		rc = get_headers(&g, &h);
		struct range_sink rs = {
			.sink = sink,
			.arg = sink_arg,
			.r = &r,
			.start = g.opts->offset + g.done,
			.end = g.opts->len ? g.opts->offset + g.opts->len - 1 : UINT64_MAX,
			.ranged = g.opts->offset + g.done > 0 || g.opts->len > 0,
		};
		if (rc == 0) {
			struct buf path;
			rc = object_path(c, key, &path);
			if (rc == 0) {
				struct aws_call ac = {
					.method = "GET",
					.path = buf_str(&path),
					.headers = (const char *const *)h.line,
					.nheaders = h.n,
					.sink = sink ? range_sink_write : NULL,
					.sink_arg = sink ? (void *)&rs : NULL,
					.op = STAT_GET,
				};
				rc = aws_perform(&c->ac, &c->ep, &ac, &r, err);
				buf_cleanup(&path);
			}
		}
		if (rc == 0 && !g.have_info)
			rc = info_from_response(&r, out);
		if (rc == 0 && r.status != 304)
			rc = get_check_length(&r);
		if (!g.have_info && r.status >= 200 && r.status < 300) {
			snprintf(g.etag, sizeof(g.etag), "%s", out->etag);
			g.have_info = true;
		}
		g.done += r.sink_bytes;
		bool resume =
			rc < 0 && r.sink_bytes > 0 && !r.sink_failed && g.have_info &&
			resumes < S3_MAX_RESUMES &&
			(rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPROTO || rc == -EIO);
		if (rc == -EAGAIN && g.done > 0 && r.status == 412)
			rc = -ESTALE; /* the object changed under a resumed read */
		hdrs_cleanup(&h);
		http_response_cleanup(&r);
		if (!resume)
			break;
		log_info("GET %s broke after %" PRIu64 " bytes; resuming", key, g.done);
	}
	if (out == &local)
		s3_object_info_cleanup(&local);
	return rc;
}

int s3_put(struct s3_client *c, const char *key, const struct http_body *body,
	   const struct s3_put_opts *opts, char *out_etag, struct aws_error *err)
{
	static const struct http_body empty = { .data = "", .fd = -1 };
	struct http_response r;
	struct hdrs h = { 0 };
	char md5[32];
	int rc = 0;

	if (!body)
		body = &empty;
	http_response_init(&r);
	rc = hdrs_add_put_opts(&h, opts);
	if (rc == 0 && opts && opts->content_md5) {
		rc = body_md5_b64(body, md5);
		if (rc == 0)
			rc = hdrs_add(&h, "Content-MD5", md5);
	}
	if (rc == 0 && opts)
		rc = hdrs_add(&h, "If-None-Match", opts->if_none_match);
	if (rc == 0 && opts)
		rc = hdrs_add(&h, "If-Match", opts->if_match);
	if (rc == 0)
		rc = call(c, "PUT", key, NULL, &h, body, SIGV4_UNSIGNED_PAYLOAD, STAT_PUT, &r, err);
	if (rc == 0)
		copy_etag(&r, out_etag);
	hdrs_cleanup(&h);
	http_response_cleanup(&r);
	return rc;
}

int s3_delete(struct s3_client *c, const char *key, struct aws_error *err)
{
	struct http_response r;
	int rc = 0;

	http_response_init(&r);
	rc = call(c, "DELETE", key, NULL, NULL, NULL, NULL, STAT_DELETE, &r, err);
	http_response_cleanup(&r);
	return rc;
}

struct delete_errors {
	struct aws_error *err;
	unsigned failed;
};

static int on_delete_error(void *arg, const char *key, const char *code)
{
	struct delete_errors *d = arg;
	if (d->failed++ == 0 && d->err) {
		snprintf(d->err->code, sizeof(d->err->code), "%s", code);
		snprintf(d->err->message, sizeof(d->err->message), "delete of %s failed", key);
	}
	log_warn("DeleteObjects: %s: %s", key, code);
	return 0;
}

static int delete_batch(struct s3_client *c, const char *const *keys, size_t n,
			struct delete_errors *d, struct aws_error *err)
{
	struct http_response r;
	struct hdrs h = { 0 };
	struct buf xml;
	char md5[32];
	int rc = 0;

	http_response_init(&r);
	buf_init(&xml, n * (6 * S3_KEY_MAX + 40) + 256);
	rc = buf_addstr(&xml, "<Delete><Quiet>true</Quiet>");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = buf_addstr(&xml, "<Object><Key>");
		if (rc == 0)
			rc = xml_escape(&xml, keys[i]);
		if (rc == 0)
			rc = buf_addstr(&xml, "</Key></Object>");
	}
	if (rc == 0)
		rc = buf_addstr(&xml, "</Delete>");
	struct http_body body = { .data = buf_str(&xml), .fd = -1, .len = buf_len(&xml) };
	if (rc == 0)
		rc = body_md5_b64(&body, md5);
	if (rc == 0)
		rc = hdrs_add(&h, "Content-MD5", md5);
	if (rc == 0)
		rc = hdrs_add(&h, "Content-Type", "application/xml");
	if (rc == 0)
		rc = call(c, "POST", "", "delete", &h, &body, NULL, STAT_DELETE_MULTI, &r, err);
	if (rc == 0)
		rc = xml_parse_delete_result(buf_str(&r.body), buf_len(&r.body), on_delete_error,
					     d);
	hdrs_cleanup(&h);
	buf_cleanup(&xml);
	http_response_cleanup(&r);
	return rc;
}

int s3_delete_many(struct s3_client *c, const char *const *keys, size_t n, struct aws_error *err)
{
	struct delete_errors d = { .err = err };
	int rc = 0, first = 0;

	for (size_t i = 0; i < n; i += S3_DELETE_BATCH) {
		size_t m = n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH;
		rc = delete_batch(c, keys + i, m, &d, err);
		/* A key with a character XML 1.0 cannot carry makes the whole
		 * request malformed: delete that batch one key at a time. */
		if (rc == -EINVAL) {
			rc = 0;
			for (size_t k = 0; k < m; k++) {
				int krc = s3_delete(c, keys[i + k], err);
				if (krc < 0 && rc == 0)
					rc = krc;
			}
		}
		if (rc < 0 && first == 0)
			first = rc;
	}
	if (first == 0 && d.failed > 0)
		first = -EIO;
	return first;
}

/* "x-amz-copy-source: /bucket/encoded-key" */
static int copy_source(const struct s3_client *c, const char *src, struct hdrs *h)
{
	struct buf v;
	int rc = 0;

	if (strlen(src) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	buf_init(&v, 4 * S3_KEY_MAX + 512);
	rc = buf_printf(&v, "/%s/", c->bucket);
	if (rc == 0)
		rc = sigv4_uri_encode(&v, src, strlen(src), true);
	if (rc == 0)
		rc = hdrs_add(h, "x-amz-copy-source", buf_str(&v));
	buf_cleanup(&v);
	return rc;
}

/* A copy reply may be 200 with an <Error> body: that is a failure. */
static int copy_result(const struct http_response *r, const char *root, char *out_etag,
		       struct aws_error *err)
{
	char *etag = NULL;
	struct aws_error local;
	if (!err)
		err = &local;
	int rc = xml_get_field(buf_str(&r->body), buf_len(&r->body), root, "ETag", &etag, err);
	if (rc == -EREMOTEIO) {
		err->status = r->status;
		return aws_error_errno(err);
	}
	if (rc == -ENOENT)
		return rc; /* a well-formed result without an ETag */
	if (rc < 0)
		return -EPROTO;
	if (out_etag)
		snprintf(out_etag, S3_ETAG_MAX, "%s", etag);
	free(etag);
	return 0;
}

int s3_copy(struct s3_client *c, const char *src, const char *dst, const struct s3_put_opts *opts,
	    const char *src_if_match, char *out_etag, struct aws_error *err)
{
	struct http_response r;
	struct hdrs h = { 0 };
	int rc = 0;

	http_response_init(&r);
	rc = copy_source(c, src, &h);
	if (rc == 0)
		rc = hdrs_add(&h, "x-amz-metadata-directive", opts ? "REPLACE" : "COPY");
	if (rc == 0)
		rc = hdrs_add_put_opts(&h, opts);
	if (rc == 0)
		rc = hdrs_add(&h, "x-amz-copy-source-if-match", src_if_match);
	if (rc == 0)
		rc = call(c, "PUT", dst, NULL, &h, NULL, NULL, STAT_COPY, &r, err);
	if (rc == 0)
		rc = copy_result(&r, "CopyObjectResult", out_etag, err);
	if (rc == -ENOENT)
		rc = -EPROTO;
	hdrs_cleanup(&h);
	http_response_cleanup(&r);
	return rc;
}

/* ---- listings ----------------------------------------------------------- */

/* One hex digit's value, or -1. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Ceph RGW sends NextContinuationToken unencoded even with encoding-type=url,
 * as a character reference when the key has a control character ("&#x01;"),
 * which XML 1.0 forbids: the page would not parse (botocore fails on it
 * too). Keys arrive encoded, so such a reference can only be in the token:
 * the filter turns it into '?' (the token is then wrong in that rare case
 * only). A reference split across chunks is held back until it is whole.
 */
struct list_filter {
	struct xml_list_parser *p;
	char ref[16]; /* a character reference being read, from '&' */
	size_t nref;
};

/* Is "&#...;" (with the ';') a reference to a character XML 1.0 forbids? */
static bool ref_forbidden(const char *r, size_t n)
{
	unsigned long v = 0;
	bool hex = n > 3 && r[2] == 'x';
	size_t i = hex ? 3 : 2;

	if (n < 4 || r[1] != '#' || r[n - 1] != ';' || i >= n - 1)
		return false;
	for (; i < n - 1; i++) {
		int d = hex ? hexval(r[i]) : (r[i] >= '0' && r[i] <= '9' ? r[i] - '0' : -1);
		if (d < 0)
			return false;
		v = v * (hex ? 16 : 10) + (unsigned long)d;
	}
	return v < 0x20 && v != '\t' && v != '\n' && v != '\r';
}

static int filter_out(struct list_filter *f, const char *data, size_t n)
{
	return n ? xml_list_parser_feed(f->p, data, n) : 0;
}

/* The held reference is complete (or cannot be one): pass it on, or '?'. */
static int filter_ref_end(struct list_filter *f)
{
	int rc = ref_forbidden(f->ref, f->nref) ? filter_out(f, "?", 1)
						: filter_out(f, f->ref, f->nref);
	f->nref = 0;
	return rc;
}

static int list_sink(void *arg, const void *data, size_t n)
{
	struct list_filter *f = arg;
	const char *p = data, *run = data;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		char c = p[i];
		if (f->nref == 0 && c != '&')
			continue;
		if (f->nref == 0) {
			rc = filter_out(f, run, (size_t)(p + i - run));
			f->ref[f->nref++] = c;
		} else {
			f->ref[f->nref++] = c;
			if (c == ';' || f->nref == sizeof(f->ref) || c == '<')
				rc = filter_ref_end(f);
		}
		run = p + i + 1;
	}
	if (rc == 0 && f->nref == 0)
		rc = filter_out(f, run, (size_t)(p + n - run));
	return rc;
}

/*
 * Listings ask for encoding-type=url: XML 1.0 cannot carry keys with most
 * control characters, so S3 sends keys percent-encoded (space as '+', as
 * botocore reads them) and we decode them before the caller sees them.
 */
/* The entries of one listing page, held until the page is whole: a reply
 * cut midway is asked again without the caller seeing any entry twice. */
struct page_buf {
	struct s3_list_entry *v;
	size_t n, cap;
};

static void page_buf_cleanup(struct page_buf *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free((char *)b->v[i].key);
		free((char *)b->v[i].etag);
		free((char *)b->v[i].upload_id);
	}
	free(b->v);
	memset(b, 0, sizeof(*b));
}

static int page_buf_add(void *arg, const struct s3_list_entry *e)
{
	struct page_buf *b = arg;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct s3_list_entry *v = realloc(b->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	struct s3_list_entry *d = &b->v[b->n];
	*d = *e;
	d->key = strdup(e->key);
	d->etag = strdup(e->etag ? e->etag : "");
	d->upload_id = e->upload_id ? strdup(e->upload_id) : NULL;
	if (!d->key || !d->etag || (e->upload_id && !d->upload_id)) {
		free((char *)d->key);
		free((char *)d->etag);
		free((char *)d->upload_id);
		return -ENOMEM;
	}
	b->n++;
	return 0;
}

struct list_decode {
	s3_list_fn fn;
	void *arg;
};

/* Decode s (percent and '+') into out. -EPROTO on a bad escape or a NUL. */
static int url_decode(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s; s++) {
		char c = *s;
		if (c == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
			if (lo < 0)
				return -EPROTO;
			c = (char)(hi << 4 | lo);
			s += 2;
			if (c == '\0')
				return -EPROTO;
		} else if (c == '+') {
			c = ' ';
		}
		if (n + 1 >= cap)
			return -EPROTO;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

static int on_encoded_entry(void *arg, const struct s3_list_entry *e)
{
	struct list_decode *d = arg;
	char key[S3_KEY_MAX + 1];
	struct s3_list_entry de = *e;

	if (url_decode(e->key, key, sizeof(key)) < 0) {
		log_warn("listing: skipping a key the server sent badly encoded");
		return 0;
	}
	de.key = key;
	return d->fn(d->arg, &de);
}

/* GET a listing (query built by the caller) through the streaming parser. */
static int list_call_once(struct s3_client *c, const char *query, enum stat_op op, s3_list_fn fn,
			  void *arg, struct xml_list_result *res, struct aws_error *err)
{
	struct list_decode dec = { fn, arg };
	struct list_filter filter = { 0 };
	struct xml_list_parser *p = NULL;
	struct http_response r;
	struct buf q;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	http_response_init(&r);
	buf_init(&q, 16 * 1024);
	rc = buf_printf(&q, "%s&encoding-type=url", query);
	if (rc == 0)
		rc = xml_list_parser_new(on_encoded_entry, &dec, &p);
	filter.p = p;
	if (rc < 0)
		goto out;
	struct buf path;
	rc = object_path(c, "", &path);
	if (rc < 0)
		goto out;
	struct aws_call ac = {
		.method = "GET",
		.path = buf_str(&path),
		.query = buf_str(&q),
		.sink = list_sink,
		.sink_arg = &filter,
		.op = op,
	};
	rc = aws_perform(&c->ac, &c->ep, &ac, &r, err);
	buf_cleanup(&path);
	if (rc == 0 && filter.nref)
		rc = filter_ref_end(&filter);
	if (rc == 0)
		rc = xml_list_parser_finish(p, res);
out:
	xml_list_parser_free(p);
	buf_cleanup(&q);
	http_response_cleanup(&r);
	return rc;
}

#define LIST_PAGE_TRIES 3

/* A listing page, asked again (bounded) when its reply breaks midway; the
 * caller gets its entries only once the page is whole. */
static int list_call(struct s3_client *c, const char *query, enum stat_op op, s3_list_fn fn,
		     void *arg, struct xml_list_result *res, struct aws_error *err)
{
	int rc = 0;

	for (int tries = 1;; tries++) {
		struct page_buf b = { 0 };
		rc = list_call_once(c, query, op, page_buf_add, &b, res, err);
		if (rc == 0) {
			for (size_t i = 0; rc == 0 && i < b.n; i++)
				rc = fn(arg, &b.v[i]);
			page_buf_cleanup(&b);
			return rc; /* the caller's own answer: never asked again */
		}
		page_buf_cleanup(&b);
		bool broken = rc == -EPROTO || rc == -ECONNRESET || rc == -ETIMEDOUT ||
			      rc == -EPIPE || rc == -ECONNABORTED || rc == -EIO;
		if (rc == 0 || !broken || tries >= LIST_PAGE_TRIES || (err && err->status >= 400)) {
			if (rc == -EPROTO || rc == -E2BIG)
				log_error("malformed listing reply from the server (%s)",
					  rc == -E2BIG ? "over a size limit"
						       : "cut short or not valid XML");
			return rc;
		}
		xml_list_result_cleanup(res);
		log_info("listing reply broke (%s); asking for the page again", strerror(-rc));
	}
}

int s3_list_page(struct s3_client *c, const struct s3_list_opts *opts, s3_list_fn fn, void *arg,
		 char **out_next, struct aws_error *err)
{
	struct xml_list_result res;
	struct buf q;
	char mk[16];
	int rc = 0;

	*out_next = NULL;
	buf_init(&q, 16 * 1024);
	rc = buf_addstr(&q, "list-type=2");
	if (rc == 0)
		rc = query_add(&q, "prefix", opts->prefix && opts->prefix[0] ? opts->prefix : NULL);
	if (rc == 0)
		rc = query_add(&q, "delimiter", opts->delimiter);
	if (rc == 0)
		rc = query_add(&q, "start-after", opts->start_after);
	if (rc == 0)
		rc = query_add(&q, "continuation-token", opts->continuation);
	if (rc == 0 && opts->max_keys > 0) {
		snprintf(mk, sizeof(mk), "%d", opts->max_keys);
		rc = query_add(&q, "max-keys", mk);
	}
	if (rc == 0)
		rc = list_call(c, buf_str(&q), STAT_LIST, fn, arg, &res, err);
	if (rc == 0) {
		if (res.truncated && !res.next_token) {
			log_error("listing is truncated but has no continuation token");
			rc = -EPROTO;
		} else if (res.truncated) {
			*out_next = res.next_token;
			res.next_token = NULL;
		}
		xml_list_result_cleanup(&res);
	}
	buf_cleanup(&q);
	return rc;
}

int s3_list(struct s3_client *c, const char *prefix, const char *delimiter, s3_list_fn fn,
	    void *arg, struct aws_error *err)
{
	struct s3_list_opts o = { .prefix = prefix, .delimiter = delimiter };
	char *token = NULL;
	int rc = 0;

	do {
		char *next = NULL;
		o.continuation = token;
		rc = s3_list_page(c, &o, fn, arg, &next, err);
		if (rc == 0 && next && token && strcmp(next, token) == 0) {
			log_error("listing repeats its continuation token");
			rc = -EPROTO;
		}
		free(token);
		token = next;
	} while (rc == 0 && token);
	free(token);
	return rc;
}

static int on_collect_key(void *arg, const struct s3_list_entry *e)
{
	struct s3_key_list *l = arg;
	if (e->is_prefix)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char **k = realloc(l->keys, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		l->keys = k;
		l->cap = cap;
	}
	l->keys[l->n] = strdup(e->key);
	return l->keys[l->n++] ? 0 : -ENOMEM;
}

int s3_list_keys(struct s3_client *c, const char *prefix, struct s3_key_list *out,
		 struct aws_error *err)
{
	return s3_list(c, prefix, NULL, on_collect_key, out, err);
}

void s3_key_list_cleanup(struct s3_key_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	l->keys = NULL;
	l->n = l->cap = 0;
}

/* ---- multipart ---------------------------------------------------------- */

int s3_mpu_create(struct s3_client *c, const char *key, const struct s3_put_opts *opts,
		  char **out_upload_id, struct aws_error *err)
{
	struct http_response r;
	struct hdrs h = { 0 };
	int rc = 0;

	http_response_init(&r);
	rc = hdrs_add_put_opts(&h, opts);
	/* Without a type, libcurl would send its form type with the POST and
	 * the object would keep it: give it the type S3 gives a PUT without. */
	if (rc == 0 && !(opts && opts->content_type))
		rc = hdrs_add(&h, "Content-Type", "binary/octet-stream");
	if (rc == 0)
		rc = call(c, "POST", key, "uploads", &h, NULL, NULL, STAT_MPU_CREATE, &r, err);
	if (rc == 0) {
		rc = xml_get_field(buf_str(&r.body), buf_len(&r.body),
				   "InitiateMultipartUploadResult", "UploadId", out_upload_id, err);
		if (rc == -EREMOTEIO)
			rc = aws_error_errno(err);
		else if (rc < 0)
			rc = -EPROTO;
	}
	hdrs_cleanup(&h);
	http_response_cleanup(&r);
	return rc;
}

static int upload_query(struct buf *q, int part_number, const char *upload_id)
{
	char num[16];
	int rc = 0;

	if (part_number < 1 || part_number > S3_PARTS_MAX)
		return -EINVAL;
	buf_init(q, 4096);
	snprintf(num, sizeof(num), "%d", part_number);
	rc = query_add(q, "partNumber", num);
	if (rc == 0)
		rc = query_add(q, "uploadId", upload_id);
	return rc;
}

int s3_mpu_part(struct s3_client *c, const char *key, const char *upload_id, int part_number,
		const struct http_body *body, bool content_md5, char *out_etag,
		struct aws_error *err)
{
	struct http_response r;
	struct hdrs h = { 0 };
	struct buf q;
	char md5[32];
	int rc = 0;

	http_response_init(&r);
	rc = upload_query(&q, part_number, upload_id);
	if (rc == 0 && content_md5) {
		rc = body_md5_b64(body, md5);
		if (rc == 0)
			rc = hdrs_add(&h, "Content-MD5", md5);
	}
	if (rc == 0)
		rc = call(c, "PUT", key, buf_str(&q), &h, body, SIGV4_UNSIGNED_PAYLOAD,
			  STAT_MPU_PART, &r, err);
	if (rc == 0)
		copy_etag(&r, out_etag);
	hdrs_cleanup(&h);
	buf_cleanup(&q);
	http_response_cleanup(&r);
	return rc;
}

int s3_mpu_part_copy(struct s3_client *c, const char *key, const char *upload_id, int part_number,
		     const char *src, uint64_t offset, uint64_t len, const char *src_if_match,
		     char *out_etag, struct aws_error *err)
{
	struct http_response r;
	struct hdrs h = { 0 };
	struct buf q;
	char range[64];
	int rc = 0;

	if (len == 0)
		return -EINVAL;
	http_response_init(&r);
	rc = upload_query(&q, part_number, upload_id);
	if (rc == 0)
		rc = copy_source(c, src, &h);
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, offset, offset + len - 1);
	if (rc == 0)
		rc = hdrs_add(&h, "x-amz-copy-source-range", range);
	if (rc == 0)
		rc = hdrs_add(&h, "x-amz-copy-source-if-match", src_if_match);
	if (rc == 0)
		rc = call(c, "PUT", key, buf_str(&q), &h, NULL, NULL, STAT_MPU_PART_COPY, &r, err);
	if (rc == 0)
		rc = copy_result(&r, "CopyPartResult", out_etag, err);
	if (rc == -ENOENT)
		rc = -EPROTO;
	hdrs_cleanup(&h);
	buf_cleanup(&q);
	http_response_cleanup(&r);
	return rc;
}

/*
 * The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then
 * "-N". Ceph RGW (Pacific) answers CompleteMultipartUpload with an empty
 * <ETag>, so we derive it rather than pay a HEAD. -EPROTO if a part's ETag
 * is not a plain MD5.
 */
static int multipart_etag(const char *const *etags, int nparts, char *out)
{
	unsigned char md[16], all_md[16];
	unsigned int len = 0;
	int rc = 0;

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	for (int i = 0; i < nparts && rc == 0; i++) {
		const char *e = etags[i];
		if (*e == '"')
			e++;
		for (int k = 0; k < 16; k++) {
			int hi = hexval(e[2 * k]), lo = hi < 0 ? -1 : hexval(e[2 * k + 1]);
			if (lo < 0) {
				rc = -EPROTO;
				break;
			}
			md[k] = (unsigned char)(hi << 4 | lo);
		}
		EVP_DigestUpdate(ctx, md, sizeof(md));
	}
	EVP_DigestFinal_ex(ctx, all_md, &len);
	EVP_MD_CTX_free(ctx);
	if (rc < 0)
		return rc;
	char *p = out;
	*p++ = '"';
	for (int k = 0; k < 16; k++)
		p += snprintf(p, 3, "%02x", all_md[k]);
	snprintf(p, S3_ETAG_MAX - 33, "-%d\"", nparts);
	return 0;
}

static int complete_result(const struct http_response *r, const char *const *etags, int nparts,
			   char *out_etag, struct aws_error *err)
{
	char etag[S3_ETAG_MAX] = "";
	int rc = copy_result(r, "CompleteMultipartUploadResult", etag, err);

	if ((rc == 0 && (!etag[0] || strcmp(etag, "\"\"") == 0)) || rc == -ENOENT)
		rc = multipart_etag(etags, nparts, etag);
	if (rc == 0 && out_etag)
		snprintf(out_etag, S3_ETAG_MAX, "%s", etag);
	return rc;
}

int s3_mpu_complete(struct s3_client *c, const char *key, const char *upload_id,
		    const char *const *etags, int nparts, char *out_etag, struct aws_error *err)
{
	struct http_response r;
	struct hdrs h = { 0 };
	struct buf q, xml;
	int rc = 0;

	if (nparts < 1 || nparts > S3_PARTS_MAX)
		return -EINVAL;
	http_response_init(&r);
	buf_init(&q, 4096);
	buf_init(&xml, (size_t)nparts * 160 + 128);
	rc = query_add(&q, "uploadId", upload_id);
	if (rc == 0)
		rc = buf_addstr(&xml, "<CompleteMultipartUpload>");
	for (int i = 0; rc == 0 && i < nparts; i++) {
		rc = buf_printf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>", i + 1);
		if (rc == 0)
			rc = xml_escape(&xml, etags[i]);
		if (rc == 0)
			rc = buf_addstr(&xml, "</ETag></Part>");
	}
	if (rc == 0)
		rc = buf_addstr(&xml, "</CompleteMultipartUpload>");
	if (rc == 0)
		rc = hdrs_add(&h, "Content-Type", "application/xml");
	struct http_body body = { .data = buf_str(&xml), .fd = -1, .len = buf_len(&xml) };
	if (rc == 0)
		rc = call(c, "POST", key, buf_str(&q), &h, &body, NULL, STAT_MPU_COMPLETE, &r, err);
	if (rc == 0)
		rc = complete_result(&r, etags, nparts, out_etag, err);
	hdrs_cleanup(&h);
	buf_cleanup(&q);
	buf_cleanup(&xml);
	http_response_cleanup(&r);
	return rc;
}

int s3_mpu_abort(struct s3_client *c, const char *key, const char *upload_id, struct aws_error *err)
{
	struct http_response r;
	struct buf q;
	int rc = 0;

	http_response_init(&r);
	buf_init(&q, 4096);
	rc = query_add(&q, "uploadId", upload_id);
	if (rc == 0)
		rc = call(c, "DELETE", key, buf_str(&q), NULL, NULL, NULL, STAT_MPU_ABORT, &r, err);
	if (rc == -ENOENT)
		rc = 0; /* already gone: the goal is reached */
	buf_cleanup(&q);
	http_response_cleanup(&r);
	return rc;
}

int s3_mpu_list(struct s3_client *c, const char *prefix, s3_list_fn fn, void *arg,
		struct aws_error *err)
{
	char *key_marker = NULL, *id_marker = NULL;
	int rc = 0;

	for (int page = 0; page < 100000; page++) {
		struct xml_list_result res;
		struct buf q;
		buf_init(&q, 16 * 1024);
		rc = buf_addstr(&q, "uploads");
		if (rc == 0)
			rc = query_add(&q, "prefix", prefix && prefix[0] ? prefix : NULL);
		if (rc == 0)
			rc = query_add(&q, "key-marker", key_marker);
		if (rc == 0)
			rc = query_add(&q, "upload-id-marker", id_marker);
		if (rc == 0)
			rc = list_call(c, buf_str(&q), STAT_MPU_LIST, fn, arg, &res, err);
		buf_cleanup(&q);
		free(key_marker);
		free(id_marker);
		key_marker = id_marker = NULL;
		if (rc < 0)
			break;
		bool more = res.truncated && res.next_key_marker;
		key_marker = res.next_key_marker;
		id_marker = res.next_upload_id_marker;
		res.next_key_marker = res.next_upload_id_marker = NULL;
		xml_list_result_cleanup(&res);
		if (!more)
			break;
	}
	free(key_marker);
	free(id_marker);
	return rc;
}

/* ---- buckets ------------------------------------------------------------ */

int s3_bucket_create(struct s3_client *c, struct aws_error *err)
{
	struct http_response r;
	struct buf xml;
	int rc = 0;

	http_response_init(&r);
	buf_init(&xml, 1024);
	struct http_body body = { .fd = -1 };
	if (strcmp(c->region, "us-east-1") != 0) {
		rc = buf_addstr(&xml, "<CreateBucketConfiguration><LocationConstraint>");
		if (rc == 0)
			rc = xml_escape(&xml, c->region);
		if (rc == 0)
			rc = buf_addstr(&xml, "</LocationConstraint></CreateBucketConfiguration>");
		body.data = buf_str(&xml);
		body.len = buf_len(&xml);
	}
	if (rc == 0)
		rc = call(c, "PUT", "", NULL, NULL, body.len ? &body : NULL, NULL, STAT_BUCKET, &r,
			  err);
	if (rc == -EEXIST && err && strcmp(err->code, "BucketAlreadyOwnedByYou") == 0)
		rc = 0;
	buf_cleanup(&xml);
	http_response_cleanup(&r);
	return rc;
}

int s3_bucket_head(struct s3_client *c, struct aws_error *err)
{
	struct http_response r;
	int rc = 0;

	http_response_init(&r);
	rc = call(c, "HEAD", "", NULL, NULL, NULL, NULL, STAT_BUCKET, &r, err);
	http_response_cleanup(&r);
	return rc;
}
