// SPDX-License-Identifier: MIT
/*
 * sigv4: AWS Signature Version 4 header signing (see sigv4.h). This module
 * owns the canonical request, the string to sign, the signing-key chain and
 * the S3 URI encoding rules, and nothing else: it performs no I/O, never reads
 * the clock, and knows nothing of where credentials come from, of HTTP
 * transport, of files or of retries. Every input is treated as untrusted
 * bytes: any string, however malformed, yields a signature or -EINVAL.
 */
#include "s3vfs/sigv4.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/*
 * Design: the canonical request of a header-signed request is
 *
 *	METHOD '\n' PATH '\n' QUERY '\n' HEADERS '\n' SIGNED_HEADERS '\n' PAYLOAD_HASH
 *
 * Invariants:
 * 1. PATH is in->path verbatim ("/" when empty) under S3 rules. With
 *    SIGV4_NORMALIZE_PATH empty, "." and ".." segments are removed first (a
 *    trailing '/' is kept; ".." never climbs above the root); with
 *    SIGV4_DOUBLE_ENCODE the result is then encoded once more (sigv4_uri_encode,
 *    '/' kept). A path signed verbatim must not contain spaces or control
 *    bytes: it could not be sent as is, and a line break would forge the
 *    structure of the canonical request.
 * 2. QUERY: the raw query is split on '&' (empty pieces dropped), each piece
 *    at its first '=' (no '=': empty value). Key and value are percent-decoded
 *    (a '%' not followed by two hex digits stays a literal '%') and encoded
 *    again with '/' encoded, so "%2f", "%2F" and "/" all sign as "%2F". The
 *    pairs are sorted bytewise by encoded key, then encoded value.
 * 3. HEADERS: the caller's headers plus x-amz-date (always),
 *    x-amz-content-sha256 (SIGV4_CONTENT_SHA256) and x-amz-security-token
 *    (session token). Names must be RFC 7230 tokens and are lowercased; values
 *    are trimmed and inner whitespace runs folded to one space; names are
 *    sorted bytewise and repeated names are joined with ',' in the order given.
 *    The caller may not pass the three headers the signer owns (-EINVAL).
 * 4. The signing key is HMAC("AWS4" secret, date) -> region -> service ->
 *    "aws4_request". The secret copy and every derived key are wiped before
 *    sigv4_sign() returns, on success and on failure alike.
 * 5. *out is replaced only on success: the result is built in a private
 *    sigv4_output and moved into *out at the end.
 */

#define SIGV4_ALGORITHM	  "AWS4-HMAC-SHA256"
#define SIGV4_CREQ_CAP	  (1024 * 1024)		    /* canonical request, and query/path scratch */
#define SIGV4_MAX_HEADERS 1024			    /* caller headers; more is certainly a bug */
#define SCOPE_FMT	  "%.8s/%s/%s/aws4_request" /* date, region, service */

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

/* One header of the signed set; offsets into a scratch buffer until sorted. */
struct hdr {
	size_t noff, nlen, voff, vlen;
	const char *name, *value;
	size_t order; /* position given, so that the sort is stable */
};

/* One query parameter, encoded; offsets into a scratch buffer until sorted. */
struct qparam {
	size_t koff, klen, voff, vlen;
	const char *key, *value;
};

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 7230 tchar: what a header name may contain. */
static bool is_tchar(unsigned char c)
{
	return is_unreserved(c) || (c != 0 && strchr("!#$%&'*+^`|", c) != NULL);
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Printable ASCII except space; stop bytes in `also_not` are refused too. */
static bool is_visible(const char *s, const char *also_not)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || strchr(also_not, c))
			return false;
	}
	return true;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_lower[in[i] >> 4];
		out[2 * i + 1] = hex_lower[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int sigv4_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash)
{
	int rc = 0;
	size_t run = 0; /* start of the pending run of bytes kept as they are */

	if (!out || (!s && n))
		return -EINVAL;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/'))
			continue;
		char esc[3] = { '%', hex_upper[c >> 4], hex_upper[c & 0xf] };
		rc = buf_add(out, s + run, i - run);
		if (!rc)
			rc = buf_add(out, esc, sizeof(esc));
		if (rc)
			return rc;
		run = i + 1;
	}
	return buf_add(out, s + run, n - run);
}

/* Percent-decode s[0..n) and encode the bytes again ('/' encoded): invariant 2. */
static int add_requoted(struct buf *b, const char *s, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		char c = s[i];
		if (c == '%' && n - i >= 3) {
			int hi = hex_value((unsigned char)s[i + 1]);
			int lo = hex_value((unsigned char)s[i + 2]);
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			}
		}
		rc = sigv4_uri_encode(b, &c, 1, false);
	}
	return rc;
}

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);

	if (c || x->klen != y->klen)
		return c ? c : (x->klen < y->klen ? -1 : 1);
	n = x->vlen < y->vlen ? x->vlen : y->vlen;
	c = memcmp(x->value, y->value, n);
	if (c || x->vlen != y->vlen)
		return c ? c : (x->vlen < y->vlen ? -1 : 1);
	return 0;
}

/* Split q on '&' into params encoded in work; *out_n params in p (room for all). */
static int parse_query(const char *q, struct buf *work, struct qparam *p, size_t *out_n)
{
	int rc = 0;
	size_t n = 0;

	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		if (len) {
			p[n].koff = buf_len(work);
			rc = add_requoted(work, q, klen);
			p[n].klen = buf_len(work) - p[n].koff;
			p[n].voff = buf_len(work);
			if (!rc && eq)
				rc = add_requoted(work, eq + 1, len - klen - 1);
			p[n].vlen = buf_len(work) - p[n].voff;
			if (rc)
				return rc;
			n++;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	*out_n = n;
	return 0;
}

/* Append the canonical query string (invariant 2). */
static int add_query(struct buf *creq, const char *q)
{
	int rc = 0;
	struct buf work;
	struct qparam *p = NULL;
	size_t count = 1, n = 0;

	buf_init(&work, SIGV4_CREQ_CAP);
	if (!q || !*q)
		goto out;
	for (const char *c = q; *c; c++)
		count += *c == '&';
	p = calloc(count, sizeof(*p));
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	rc = parse_query(q, &work, p, &n);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		p[i].key = buf_str(&work) + p[i].koff;
		p[i].value = buf_str(&work) + p[i].voff;
	}
	qsort(p, n, sizeof(*p), qparam_cmp);
	for (size_t i = 0; i < n && !rc; i++) {
		if (i)
			rc = buf_addc(creq, '&');
		if (!rc)
			rc = buf_add(creq, p[i].key, p[i].klen);
		if (!rc)
			rc = buf_addc(creq, '=');
		if (!rc)
			rc = buf_add(creq, p[i].value, p[i].vlen);
	}
out:
	free(p);
	buf_cleanup(&work);
	return rc;
}

/* Remove empty, "." and ".." segments of path into out (invariant 1). */
static int normalize_path(struct buf *out, const char *path)
{
	int rc = 0;
	size_t count = 1, nseg = 0, len = strlen(path);
	const char **seg = NULL;
	size_t *seglen = NULL;

	for (size_t i = 0; i < len; i++)
		count += path[i] == '/';
	seg = calloc(count, sizeof(*seg));
	seglen = calloc(count, sizeof(*seglen));
	if (!seg || !seglen) {
		rc = -ENOMEM;
		goto out;
	}
	for (const char *s = path; *s;) {
		size_t n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (nseg)
				nseg--;
		} else if (n && !(n == 1 && s[0] == '.')) {
			seg[nseg] = s;
			seglen[nseg++] = n;
		}
		s += n;
		if (*s == '/')
			s++;
	}
	rc = buf_addc(out, '/');
	for (size_t i = 0; i < nseg && !rc; i++) {
		rc = buf_add(out, seg[i], seglen[i]);
		if (!rc && (i + 1 < nseg || path[len - 1] == '/'))
			rc = buf_addc(out, '/');
	}
out:
	free(seglen);
	free(seg);
	return rc;
}

/* Append the canonical path (invariant 1). */
static int add_path(struct buf *creq, const char *path, unsigned flags)
{
	int rc = 0;
	struct buf norm;

	buf_init(&norm, SIGV4_CREQ_CAP);
	if (!*path)
		path = "/";
	if (flags & SIGV4_NORMALIZE_PATH) {
		rc = normalize_path(&norm, path);
		if (rc)
			goto out;
		path = buf_str(&norm);
	}
	if (flags & SIGV4_DOUBLE_ENCODE) {
		rc = sigv4_uri_encode(creq, path, strlen(path), true);
		goto out;
	}
	for (const char *c = path; *c; c++) {
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f) {
			rc = -EINVAL;
			goto out;
		}
	}
	rc = buf_addstr(creq, path);
out:
	buf_cleanup(&norm);
	return rc;
}

/* Append value trimmed, with inner whitespace runs folded to one space. */
static int add_folded(struct buf *b, const char *v)
{
	int rc = 0;

	while (is_space((unsigned char)*v))
		v++;
	while (*v && !rc) {
		size_t n = 0;
		while (v[n] && !is_space((unsigned char)v[n]))
			n++;
		rc = buf_add(b, v, n);
		v += n;
		while (is_space((unsigned char)*v))
			v++;
		if (*v && !rc)
			rc = buf_addc(b, ' ');
	}
	return rc;
}

/* Add one header to the signed set; own = name is one the signer adds. */
static int hdr_add(struct buf *work, struct hdr *h, size_t order, const char *name,
		   const char *value, bool own)
{
	int rc = 0;
	size_t n = name ? strlen(name) : 0;

	if (!n || !value)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!is_tchar((unsigned char)name[i]))
			return -EINVAL;
	}
	h->order = order;
	h->noff = buf_len(work);
	h->nlen = n;
	rc = buf_add(work, name, n);
	if (rc)
		return rc;
	char *lower = work->ptr + h->noff;
	for (size_t i = 0; i < n; i++) {
		if (lower[i] >= 'A' && lower[i] <= 'Z')
			lower[i] = (char)(lower[i] - 'A' + 'a');
	}
	/* lower is NUL-terminated here: buf keeps its content a C string. */
	if (!own &&
	    (strcmp(lower, "x-amz-date") == 0 || strcmp(lower, "x-amz-security-token") == 0 ||
	     strcmp(lower, "x-amz-content-sha256") == 0))
		return -EINVAL;
	h->voff = buf_len(work);
	rc = add_folded(work, value);
	h->vlen = buf_len(work) - h->voff;
	return rc;
}

static int hdr_name_cmp(const struct hdr *x, const struct hdr *y)
{
	size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
	int c = memcmp(x->name, y->name, n);

	if (c)
		return c;
	return x->nlen < y->nlen ? -1 : (x->nlen > y->nlen);
}

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = hdr_name_cmp(x, y);

	if (c)
		return c;
	return x->order < y->order ? -1 : (x->order > y->order);
}

/* Collect the caller's and the signer's headers into h (room for nheaders + 3). */
static int collect_headers(const struct sigv4_input *in, const char *amz_date, const char *token,
			   struct buf *work, struct hdr *h, size_t *out_n)
{
	int rc = 0;
	size_t n = 0;
	bool host = false;

	for (size_t i = 0; i < in->nheaders && !rc; i++, n++) {
		rc = hdr_add(work, &h[n], n, in->headers[i].name, in->headers[i].value, false);
		if (!rc && h[n].nlen == 4 && memcmp(work->ptr + h[n].noff, "host", 4) == 0)
			host = host || h[n].vlen > 0;
	}
	if (!rc && !host)
		rc = -EINVAL;
	if (!rc)
		rc = hdr_add(work, &h[n], n, "x-amz-date", amz_date, true);
	n++;
	if (!rc && (in->flags & SIGV4_CONTENT_SHA256)) {
		rc = hdr_add(work, &h[n], n, "x-amz-content-sha256", in->payload_hash, true);
		n++;
	}
	if (!rc && token) {
		rc = hdr_add(work, &h[n], n, "x-amz-security-token", token, true);
		n++;
	}
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		h[i].name = work->ptr + h[i].noff;
		h[i].value = work->ptr + h[i].voff;
	}
	*out_n = n;
	return 0;
}

/* Append the canonical headers to creq and the signed header list to signed_list. */
static int add_headers(struct buf *creq, struct buf *signed_list, const struct sigv4_input *in,
		       const char *amz_date, const char *token)
{
	int rc = 0;
	struct buf work;
	struct hdr *h = NULL;
	size_t n = 0;

	buf_init(&work, SIGV4_CREQ_CAP);
	if (in->nheaders > SIGV4_MAX_HEADERS) {
		rc = -E2BIG;
		goto out;
	}
	h = calloc(in->nheaders + 3, sizeof(*h));
	if (!h) {
		rc = -ENOMEM;
		goto out;
	}
	rc = collect_headers(in, amz_date, token, &work, h, &n);
	if (rc)
		goto out;
	qsort(h, n, sizeof(*h), hdr_cmp);
	for (size_t i = 0; i < n && !rc; i++) {
		if (i && hdr_name_cmp(&h[i - 1], &h[i]) == 0) {
			rc = buf_addc(creq, ',');
		} else {
			if (i)
				rc = buf_addc(creq, '\n');
			if (!rc && i)
				rc = buf_addc(signed_list, ';');
			if (!rc)
				rc = buf_add(signed_list, h[i].name, h[i].nlen);
			if (!rc)
				rc = buf_add(creq, h[i].name, h[i].nlen);
			if (!rc)
				rc = buf_addc(creq, ':');
		}
		if (!rc)
			rc = buf_add(creq, h[i].value, h[i].vlen);
	}
	if (!rc)
		rc = buf_addc(creq, '\n');
out:
	free(h);
	buf_cleanup(&work);
	return rc;
}

/* Build the whole canonical request (see the design block). */
static int canonical_request(const struct sigv4_input *in, const char *amz_date, const char *token,
			     struct buf *creq, struct buf *signed_list)
{
	int rc = 0;

	rc = buf_addstr(creq, in->method);
	if (!rc)
		rc = buf_addc(creq, '\n');
	if (!rc)
		rc = add_path(creq, in->path, in->flags);
	if (!rc)
		rc = buf_addc(creq, '\n');
	if (!rc)
		rc = add_query(creq, in->query);
	if (!rc)
		rc = buf_addc(creq, '\n');
	if (!rc)
		rc = add_headers(creq, signed_list, in, amz_date, token);
	if (!rc)
		rc = buf_addc(creq, '\n');
	if (!rc)
		rc = buf_add(creq, buf_str(signed_list), buf_len(signed_list));
	if (!rc)
		rc = buf_addc(creq, '\n');
	if (!rc)
		rc = buf_addstr(creq, in->payload_hash);
	return rc;
}

static int sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -ENOMEM;
	to_hex(md, 32, out);
	return 0;
}

void sigv4_sha256_hex(const void *data, size_t n, char out[65])
{
	if (sha256_hex(n ? data : "", n, out))
		out[0] = '\0';
}

static int hmac_sha256(const void *key, size_t klen, const void *data, size_t dlen,
		       unsigned char out[32])
{
	unsigned int mdlen = 0;

	if (klen > INT_MAX)
		return -E2BIG;
	if (!HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &mdlen) || mdlen != 32)
		return -ENOMEM;
	return 0;
}

/* The signature of sts, lowercase hex, into out (invariant 4). */
static int signature(const char *secret, const char *amz_date, const struct sigv4_input *in,
		     const struct buf *sts, char out[65])
{
	int rc = 0;
	size_t slen = strlen(secret);
	unsigned char k[32], k2[32];
	char *key = NULL;

	if (slen > SIZE_MAX - 5)
		return -E2BIG;
	key = malloc(slen + 5);
	if (!key)
		return -ENOMEM;
	memcpy(key, "AWS4", 4);
	memcpy(key + 4, secret, slen + 1);
	rc = hmac_sha256(key, slen + 4, amz_date, 8, k);
	if (!rc)
		rc = hmac_sha256(k, 32, in->region, strlen(in->region), k2);
	if (!rc)
		rc = hmac_sha256(k2, 32, in->service, strlen(in->service), k);
	if (!rc)
		rc = hmac_sha256(k, 32, "aws4_request", 12, k2);
	if (!rc)
		rc = hmac_sha256(k2, 32, buf_str(sts), buf_len(sts), k);
	if (!rc)
		to_hex(k, 32, out);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(key, slen + 5);
	free(key);
	return rc;
}

/* Write v (0 <= v < 10^width) as width decimal digits; returns the end. */
static char *put_digits(char *p, int v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + width;
}

static int format_amz_date(time_t t, char out[17])
{
	struct tm tm;
	char *p = out;

	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -EINVAL;
	p = put_digits(p, tm.tm_year + 1900, 4);
	p = put_digits(p, tm.tm_mon + 1, 2);
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	p = put_digits(p, tm.tm_min, 2);
	p = put_digits(p, tm.tm_sec, 2);
	*p++ = 'Z';
	*p = '\0';
	return 0;
}

/* On a time outside years 0..9999 out is "" (sigv4_sign() says -EINVAL). */
void sigv4_amz_date(time_t t, char out[17])
{
	if (format_amz_date(t, out))
		out[0] = '\0';
}

void sigv4_output_init(struct sigv4_output *out)
{
	buf_init(&out->canonical_request, SIGV4_CREQ_CAP);
	buf_init(&out->string_to_sign, BUF_CAP_SMALL);
	buf_init(&out->authorization, BUF_CAP_SMALL);
	memset(out->add, 0, sizeof(out->add));
	out->nadd = 0;
}

void sigv4_output_cleanup(struct sigv4_output *out)
{
	if (!out)
		return;
	buf_cleanup(&out->canonical_request);
	buf_cleanup(&out->string_to_sign);
	buf_cleanup(&out->authorization);
	for (size_t i = 0; i < out->nadd; i++)
		free(out->add[i].value);
	memset(out->add, 0, sizeof(out->add));
	out->nadd = 0;
}

static int validate(const struct sigv4_input *in, const struct sigv4_creds *creds)
{
	if (!in || !creds || !in->method || !in->path || !in->payload_hash)
		return -EINVAL;
	if (in->nheaders && !in->headers)
		return -EINVAL;
	if (!is_visible(in->method, "") || !is_visible(in->payload_hash, ""))
		return -EINVAL;
	/* These three end up in the credential scope, between '/'s. */
	if (!is_visible(in->region, "/") || !is_visible(in->service, "/") ||
	    !is_visible(creds->access_key, "/,"))
		return -EINVAL;
	if (!creds->secret_key)
		return -EINVAL;
	if (creds->session_token && !is_visible(creds->session_token, ""))
		return -EINVAL;
	return 0;
}

/* Append one header to o->add, copying value. */
static int out_add(struct sigv4_output *o, const char *name, const char *value)
{
	char *v = strdup(value);

	if (!v)
		return -ENOMEM;
	o->add[o->nadd].name = name;
	o->add[o->nadd++].value = v;
	return 0;
}

/* Fill o->add in the order sigv4.h gives (Authorization copied from o->authorization). */
static int fill_add(struct sigv4_output *o, const struct sigv4_input *in, const char *amz_date,
		    const char *token)
{
	int rc = 0;

	rc = out_add(o, "X-Amz-Date", amz_date);
	if (!rc && (in->flags & SIGV4_CONTENT_SHA256))
		rc = out_add(o, "X-Amz-Content-SHA256", in->payload_hash);
	if (!rc && token)
		rc = out_add(o, "X-Amz-Security-Token", token);
	if (!rc)
		rc = out_add(o, "Authorization", buf_str(&o->authorization));
	return rc;
}

int sigv4_sign(const struct sigv4_input *in, const struct sigv4_creds *creds,
	       struct sigv4_output *out)
{
	int rc = 0;
	struct sigv4_output o;
	struct buf signed_list;
	char amz_date[17], hash[65], sig[65];

	sigv4_output_init(&o);
	buf_init(&signed_list, BUF_CAP_SMALL);
	rc = out ? validate(in, creds) : -EINVAL;
	if (!rc)
		rc = format_amz_date(in->now, amz_date);
	if (!rc)
		rc = canonical_request(in, amz_date, creds->session_token, &o.canonical_request,
				       &signed_list);
	if (!rc)
		rc = sha256_hex(buf_str(&o.canonical_request), buf_len(&o.canonical_request), hash);
	if (!rc)
		rc = buf_printf(&o.string_to_sign, SIGV4_ALGORITHM "\n%s\n", amz_date);
	if (!rc)
		rc = buf_printf(&o.string_to_sign, SCOPE_FMT, amz_date, in->region, in->service);
	if (!rc)
		rc = buf_printf(&o.string_to_sign, "\n%s", hash);
	if (!rc)
		rc = signature(creds->secret_key, amz_date, in, &o.string_to_sign, sig);
	if (!rc)
		rc = buf_printf(&o.authorization, SIGV4_ALGORITHM " Credential=%s/",
				creds->access_key);
	if (!rc)
		rc = buf_printf(&o.authorization, SCOPE_FMT, amz_date, in->region, in->service);
	if (!rc)
		rc = buf_printf(&o.authorization, ", SignedHeaders=%s, Signature=%s",
				buf_str(&signed_list), sig);
	if (!rc)
		rc = fill_add(&o, in, amz_date, creds->session_token);
	if (rc)
		goto out;
	sigv4_output_cleanup(out);
	*out = o;
	sigv4_output_init(&o);
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	sigv4_output_cleanup(&o);
	buf_cleanup(&signed_list);
	return rc;
}
