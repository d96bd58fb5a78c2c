// SPDX-License-Identifier: MIT
/*
 * aws: one signed request with retries (see aws.h). It owns the loop
 *
 *	creds_get -> sigv4_sign -> http_perform -> decode error -> retry_decide
 *	-> sleep backoff -> again
 *
 * and the per-attempt debug log line (method, path, status, latency,
 * attempt, request id; never a header value that carries a secret). It knows
 * nothing of what the requests mean.
 */
#include "s3vfs/aws.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "s3vfs/creds.h"
#include "s3vfs/ddb.h"
#include "s3vfs/log.h"
#include "s3vfs/sigv4.h"
#include "s3vfs/xml.h"

#define AWS_MAX_HEADERS 32

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

static uint64_t rand64(void)
{
	uint64_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint64_t)mono_ms() * 6364136223846793005ull;
	return r;
}

void aws_parse_error_body(const struct aws_endpoint *ep, const struct http_response *r,
			  struct aws_error *err)
{
	const char *body = buf_str(&r->body);
	size_t n = buf_len(&r->body);
	int rc = -EPROTO;

	if (n > 0)
		rc = ep->json_errors ? ddb_parse_error(body, n, err)
				     : xml_parse_error(body, n, err);
	if (rc < 0 && n > 0 && !err->message[0])
		snprintf(err->message, sizeof(err->message), "unparsable error reply (%zu bytes)",
			 n);
	if (!err->request_id[0]) {
		const char *id = http_response_header(r, "x-amz-request-id");
		if (!id)
			id = http_response_header(r, "x-amzn-requestid");
		if (id)
			snprintf(err->request_id, sizeof(err->request_id), "%s", id);
	}
}

/* Split "Name: value" into the signer's header form (pointers into scratch). */
static int split_header(const char *line, char *scratch, size_t cap, struct sigv4_header *out)
{
	size_t n = strlen(line);
	if (n >= cap)
		return -E2BIG;
	memcpy(scratch, line, n + 1);
	char *colon = strchr(scratch, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ')
		v++;
	out->name = scratch;
	out->value = v;
	return 0;
}

/* Everything one attempt needs that is built once per call. */
struct prepared {
	struct buf url;
	char payload_hash[65];
	const char *hash; /* payload_hash or the caller's */
};

static int prepare(const struct aws_endpoint *ep, const struct aws_call *call, struct prepared *p)
{
	int rc = 0;

	buf_init(&p->url, 16 * 1024);
	rc = buf_printf(&p->url, "%s%s%s%s", ep->base_url, call->path, call->query ? "?" : "",
			call->query ? call->query : "");
	if (rc < 0)
		return rc;
	if (call->payload_hash) {
		p->hash = call->payload_hash;
	} else if (!call->body) {
		p->hash = SIGV4_EMPTY_SHA256;
	} else if (call->body->fd < 0) {
		sigv4_sha256_hex(call->body->data, call->body->len, p->payload_hash);
		p->hash = p->payload_hash;
	} else {
		p->hash = SIGV4_UNSIGNED_PAYLOAD;
	}
	return 0;
}

/* Sign and send one attempt with fresh credentials and a fresh date. */
static int attempt(struct aws_client *ac, const struct aws_endpoint *ep,
		   const struct aws_call *call, const struct prepared *p, struct http_response *out)
{
	struct sigv4_header sh[AWS_MAX_HEADERS + 1];
	char scratch[AWS_MAX_HEADERS][1024];
	struct buf lines[AWS_MAX_HEADERS + 4];
	const char *linep[AWS_MAX_HEADERS + 5];
	struct buf hostline;
	struct sigv4_output so;
	struct creds cr = { 0 };
	size_t nh = 0, nl = 0;
	int rc = 0;

	if (call->nheaders > AWS_MAX_HEADERS)
		return -E2BIG;
	buf_init(&hostline, 1024);
	sigv4_output_init(&so);
	rc = creds_get(ac->creds, &cr);
	if (rc < 0)
		goto out;
	sh[nh].name = "host";
	sh[nh++].value = ep->host;
	for (size_t i = 0; i < call->nheaders; i++) {
		rc = split_header(call->headers[i], scratch[i], sizeof(scratch[i]), &sh[nh++]);
		if (rc < 0)
			goto out;
	}
	struct sigv4_input in = {
		.method = call->method,
		.path = call->path,
		.query = call->query,
		.headers = sh,
		.nheaders = nh,
		.payload_hash = p->hash,
		.region = ep->region,
		.service = ep->service,
		.now = time(NULL) + atomic_load(&ac->clock_skew_s),
		.flags = ep->sign_flags,
	};
	struct sigv4_creds sc = { cr.access_key, cr.secret_key, cr.session_token };
	rc = sigv4_sign(&in, &sc, &so);
	if (rc < 0)
		goto out;

	/* Send the Host we signed: libcurl's own would drop a default port. */
	rc = buf_printf(&hostline, "Host: %s", ep->host);
	if (rc < 0)
		goto out;
	linep[nl++] = buf_str(&hostline);
	for (size_t i = 0; i < call->nheaders; i++)
		linep[nl++] = call->headers[i];
	for (size_t i = 0; i < so.nadd; i++) {
		buf_init(&lines[i], 8192);
		rc = buf_printf(&lines[i], "%s: %s", so.add[i].name, so.add[i].value);
		linep[nl++] = buf_str(&lines[i]);
		if (rc < 0) {
			for (size_t j = 0; j <= i; j++)
				buf_cleanup(&lines[j]);
			goto out;
		}
	}
	struct http_request req = {
		.method = call->method,
		.url = buf_str(&p->url),
		.headers = linep,
		.nheaders = nl,
		.body = call->body,
		.sink = call->sink,
		.sink_arg = call->sink_arg,
		.max_body = call->max_body,
		.op = call->op,
	};
	rc = http_perform(ac->http, &req, out);
	for (size_t i = 0; i < so.nadd; i++)
		buf_cleanup(&lines[i]);
out:
	buf_cleanup(&hostline);
	sigv4_output_cleanup(&so);
	creds_cleanup(&cr);
	return rc;
}

/* Learn the server's clock from its Date header after a skew error. */
static void learn_skew(struct aws_client *ac, const struct http_response *r)
{
	const char *date = http_response_header(r, "date");
	if (!date)
		return;
	time_t server = curl_getdate(date, NULL);
	if (server <= 0)
		return;
	long skew = (long)(server - time(NULL));
	atomic_store(&ac->clock_skew_s, skew);
	log_warn("clock skew of %ld s against the server; signing with its clock", skew);
}

static void log_attempt(const struct aws_call *call, const struct http_response *r, int rc, int n,
			const struct aws_error *err)
{
	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	const char *id = http_response_header(r, "x-amz-request-id");
	if (!id)
		id = http_response_header(r, "x-amzn-requestid");
	if (rc < 0)
		log_debug("%s %s%s%s -> %s (%ld ms, attempt %d)", call->method, call->path,
			  call->query ? "?" : "", call->query ? call->query : "", r->errmsg,
			  r->elapsed_ms, n);
	else
		log_debug("%s %s%s%s -> %ld %s(%ld ms, attempt %d, id %s)", call->method,
			  call->path, call->query ? "?" : "", call->query ? call->query : "",
			  r->status, err && err->code[0] ? err->code : "", r->elapsed_ms, n,
			  id ? id : "-");
}

int aws_perform(struct aws_client *ac, const struct aws_endpoint *ep, const struct aws_call *call,
		struct http_response *out, struct aws_error *err)
{
	struct aws_error local;
	struct prepared p;
	long t0 = mono_ms();
	int rc = 0;

	if (!err)
		err = &local;
	aws_error_clear(err);
	rc = prepare(ep, call, &p);
	if (rc < 0)
		goto out;
	for (int n = 1;; n++) {
		http_response_cleanup(out);
		http_response_init(out);
		aws_error_clear(err);
		rc = attempt(ac, ep, call, &p, out);
		if (rc == 0 && ((out->status >= 200 && out->status < 300) || out->status == 304)) {
			log_attempt(call, out, rc, n, NULL);
			break;
		}
		err->status = out->status;
		if (rc < 0) {
			err->transport = rc;
			snprintf(err->message, sizeof(err->message), "%s", out->errmsg);
		} else {
			aws_parse_error_body(ep, out, err);
			if (strcmp(err->code, "RequestTimeTooSkewed") == 0)
				learn_skew(ac, out);
		}
		log_attempt(call, out, rc, n, err);
		rc = aws_error_errno(err);
		long wait = 0;
		if (out->sink_bytes > 0 ||
		    !retry_decide(&ac->retry, err, n, mono_ms() - t0, rand64(), &wait))
			break;
		if (ac->stats)
			atomic_fetch_add(&ac->stats->retries, 1);
		sleep_ms(wait);
	}
out:
	buf_cleanup(&p.url);
	return rc;
}
