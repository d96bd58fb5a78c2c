// SPDX-License-Identifier: MIT
/*
 * fuzz_sigv4: SigV4 signing and S3 URI encoding (s3/sigv4.c) of arbitrary
 * bytes. The input is one control byte and NUL-separated fields:
 *
 *	byte 0:  bits 0-2 the SIGV4_* flags; bit 3 set: add "host: h.example"
 *	         ahead of the input's headers; bits 4-7 pick the time
 *	fields:  method, path, query, payload hash, region, service, access
 *	         key, secret key, session token ("" for none), then header
 *	         name, value, name, value, ...
 *
 * The bytes after the control byte are also URI-encoded whole (NULs too).
 * Properties, besides no crash, leak or UB:
 *  - sigv4_sign returns 0, -EINVAL, -E2BIG or -ENOMEM, and fills out only on 0;
 *  - no input can forge the canonical request's structure: it has exactly
 *    one line per signed header plus six, the signed list is lowercase
 *    tokens, strictly sorted, with host and x-amz-date;
 *  - the headers to add carry no control bytes (no header injection), the
 *    Authorization value has its fixed shape and a 64-hex signature, and the
 *    string to sign ends with the SHA-256 of the canonical request;
 *  - signing is deterministic, and canonical forms are fixed points: the
 *    canonical query (and path, without double encoding) signed again as
 *    input canonicalizes to itself;
 *  - sigv4_uri_encode's output is unreserved bytes, '/' (when kept) and
 *    %XX, and decodes back to its input.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "s3vfs/buf.h"
#include "s3vfs/sigv4.h"

#include "fuzz.h"

#define NFIXED	 9
#define MAX_HDRS ((FUZZ_FIELDS_MAX - NFIXED) / 2 + 1)

static const time_t times[16] = {
	1440938160,			     /* 20150830T123600Z, the AWS test suite's */
	1369353600,			     /* 20130524T000000Z, tests/data/sigv4-s3 */
	0,				     /* the epoch */
	-1,				     /* just before */
	253402300799,			     /* 9999-12-31T23:59:59, the last one */
	253402300800,			     /* year 10000: refused */
	-62167219200,			     /* 0000-01-01T00:00:00 */
	-62167219201,			     /* year -1: refused */
	951782400,			     /* 2000-02-29 */
	(time_t)0x7fffffffffffffffLL,	     /* gmtime fails */
	(time_t)(-0x7fffffffffffffffLL - 1), /* gmtime fails */
	4102444800,			     /* 2100-01-01 */
	86399,				     /* 1970-01-01T23:59:59 */
	1234567890,			     /* 2009 */
	2147483647,			     /* the last 32-bit second */
	2147483648,			     /* and the next */
};

/* Line i (0-based) of s: start and length. false if there is no such line. */
static bool line_of(const char *s, unsigned i, const char **out, size_t *len)
{
	for (; i > 0; i--) {
		s = strchr(s, '\n');
		if (!s)
			return false;
		s++;
	}
	*out = s;
	*len = strcspn(s, "\n");
	return true;
}

static char *line_dup(const char *s, unsigned i)
{
	const char *l = NULL;
	size_t n = 0;
	char *d;

	FUZZ_CHECK(line_of(s, i, &l, &n), "no line %u", i);
	d = malloc(n + 1);
	FUZZ_OOM(d);
	memcpy(d, l, n);
	d[n] = '\0';
	return d;
}

static bool is_hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static void check_signed_list(const char *list, size_t *out_n)
{
	const char *prev = NULL;
	size_t prev_len = 0, n = 0;
	bool host = false, date = false;

	for (const char *p = list;;) {
		size_t len = strcspn(p, ";");

		FUZZ_CHECK(len > 0, "empty signed header name in %s", list);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK(p[i] > 0x20 && p[i] < 0x7f && !(p[i] >= 'A' && p[i] <= 'Z') &&
					   p[i] != ':' && p[i] != ',',
				   "signed header byte 0x%02x", (unsigned char)p[i]);
		if (prev) {
			size_t m = prev_len < len ? prev_len : len;
			int c = memcmp(prev, p, m);
			FUZZ_CHECK(c < 0 || (c == 0 && prev_len < len),
				   "signed headers not sorted");
		}
		host = host || (len == 4 && memcmp(p, "host", 4) == 0);
		date = date || (len == 10 && memcmp(p, "x-amz-date", 10) == 0);
		prev = p;
		prev_len = len;
		n++;
		p += len;
		if (!*p)
			break;
		p++;
	}
	FUZZ_CHECK(host && date, "host or x-amz-date not signed");
	*out_n = n;
}

static void check_output(const struct sigv4_input *in, const struct sigv4_creds *cr,
			 const struct sigv4_output *o)
{
	const char *creq = buf_str(&o->canonical_request);
	const char *auth = buf_str(&o->authorization);
	const char *sts = buf_str(&o->string_to_sign);
	const char *sig;
	char *list;
	char hash[65];
	size_t nl = 0, nh = 0, expect_add;

	for (const char *p = creq; *p; p++)
		nl += *p == '\n';
	FUZZ_CHECK(strlen(creq) == buf_len(&o->canonical_request), "NUL in canonical request");
	list = line_dup(creq, (unsigned)nl - 1);
	check_signed_list(list, &nh);
	FUZZ_CHECK(nl == nh + 5, "%zu lines for %zu headers:\n%s", nl + 1, nh, creq);

	sigv4_sha256_hex(creq, strlen(creq), hash);
	FUZZ_CHECK(strlen(sts) > 64 && strcmp(sts + strlen(sts) - 64, hash) == 0,
		   "string to sign does not end with the request's hash");
	FUZZ_CHECK(strncmp(auth, "AWS4-HMAC-SHA256 Credential=", 28) == 0, "auth %s", auth);
	FUZZ_CHECK(strstr(auth, ", SignedHeaders=") && strstr(auth, list), "auth %s", auth);
	sig = strstr(auth, ", Signature=");
	FUZZ_CHECK(sig && strlen(sig + 12) == 64 && is_hex_lower(sig + 12, 64), "auth %s", auth);
	free(list);

	expect_add = 2 + ((in->flags & SIGV4_CONTENT_SHA256) != 0) + (cr->session_token != NULL);
	FUZZ_CHECK(o->nadd == expect_add, "%zu headers to add, %zu expected", o->nadd, expect_add);
	FUZZ_CHECK(strcmp(o->add[o->nadd - 1].name, "Authorization") == 0 &&
			   strcmp(o->add[o->nadd - 1].value, auth) == 0,
		   "last header added is not Authorization");
	for (size_t i = 0; i < o->nadd; i++) {
		FUZZ_CHECK(o->add[i].name && o->add[i].value && o->add[i].value[0], "empty header");
		for (const char *p = o->add[i].value; *p; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f,
				   "control byte 0x%02x in %s", (unsigned char)*p, o->add[i].name);
	}
}

/* Sign again with line `which` of the canonical request as the input's
 * path (1) or query (2): that line must come out the same. */
static void check_fixed_point(const struct sigv4_input *in, const struct sigv4_creds *cr,
			      const struct sigv4_output *o, unsigned which)
{
	struct sigv4_input again = *in;
	struct sigv4_output o2;
	char *was = line_dup(buf_str(&o->canonical_request), which);
	char *now;
	int rc;

	if (which == 1)
		again.path = was;
	else
		again.query = was;
	sigv4_output_init(&o2);
	rc = sigv4_sign(&again, cr, &o2);
	FUZZ_CHECK(rc == 0, "canonical %s refused: %d", which == 1 ? "path" : "query", rc);
	now = line_dup(buf_str(&o2.canonical_request), which);
	FUZZ_CHECK(strcmp(was, now) == 0, "canonical %s \"%s\" became \"%s\"",
		   which == 1 ? "path" : "query", was, now);
	free(now);
	free(was);
	sigv4_output_cleanup(&o2);
}

static void fuzz_sign(const uint8_t *data, size_t size)
{
	struct fuzz_fields ff;
	struct sigv4_header h[MAX_HDRS + 1];
	struct sigv4_input in;
	struct sigv4_creds cr;
	struct sigv4_output o, o2;
	size_t nh = 0;
	int rc;

	fuzz_fields_split(&ff, data + 1, size - 1);
	if (data[0] & 8)
		h[nh++] = (struct sigv4_header){ "host", "h.example" };
	for (size_t i = NFIXED; i + 1 < ff.n && nh < ARRAY_SIZE(h); i += 2)
		h[nh++] = (struct sigv4_header){ ff.f[i], ff.f[i + 1] };
	in = (struct sigv4_input){
		.method = ff.f[0],
		.path = ff.f[1],
		.query = ff.f[2],
		.payload_hash = ff.f[3],
		.region = ff.f[4],
		.service = ff.f[5],
		.headers = h,
		.nheaders = nh,
		.now = times[data[0] >> 4],
		.flags = data[0] & 7,
	};
	cr = (struct sigv4_creds){
		.access_key = ff.f[6],
		.secret_key = ff.f[7],
		.session_token = ff.f[8][0] ? ff.f[8] : NULL,
	};

	sigv4_output_init(&o);
	rc = sigv4_sign(&in, &cr, &o);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM, "sigv4_sign: %d", rc);
	if (rc != 0) {
		FUZZ_CHECK(o.nadd == 0 && buf_len(&o.canonical_request) == 0 &&
				   buf_len(&o.authorization) == 0,
			   "output written on failure");
		goto out;
	}
	check_output(&in, &cr, &o);

	sigv4_output_init(&o2);
	FUZZ_CHECK(sigv4_sign(&in, &cr, &o2) == 0, "second signature failed");
	FUZZ_CHECK(strcmp(buf_str(&o.authorization), buf_str(&o2.authorization)) == 0 &&
			   strcmp(buf_str(&o.canonical_request), buf_str(&o2.canonical_request)) ==
				   0,
		   "signing is not deterministic");
	/* Signing into a used output replaces it (no leak, same result). */
	FUZZ_CHECK(sigv4_sign(&in, &cr, &o2) == 0 &&
			   strcmp(buf_str(&o.authorization), buf_str(&o2.authorization)) == 0,
		   "re-signing into a used output");
	sigv4_output_cleanup(&o2);

	check_fixed_point(&in, &cr, &o, 2);
	if (!(in.flags & SIGV4_DOUBLE_ENCODE))
		check_fixed_point(&in, &cr, &o, 1);
out:
	sigv4_output_cleanup(&o);
	fuzz_fields_free(&ff);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void fuzz_uri_encode(const char *s, size_t n, bool keep_slash)
{
	struct buf b;
	const char *e;
	size_t len, o = 0;
	char *dec;
	int rc;

	buf_init(&b, 4 * 1024 * 1024);
	FUZZ_CHECK(buf_addstr(&b, "x") == 0, "buf");
	rc = sigv4_uri_encode(&b, s, n, keep_slash);
	FUZZ_CHECK(rc == 0, "sigv4_uri_encode: %d", rc);
	e = buf_str(&b) + 1; /* appended after what was there */
	len = buf_len(&b) - 1;
	FUZZ_CHECK(buf_str(&b)[0] == 'x', "uri_encode overwrote the buffer");
	dec = malloc(len + 1);
	FUZZ_OOM(dec);
	for (size_t i = 0; i < len; i++) {
		char c = e[i];

		if (c == '%') {
			FUZZ_CHECK(i + 2 < len + 1 && hexval(e[i + 1]) >= 0 &&
					   hexval(e[i + 2]) >= 0,
				   "bad escape at %zu", i);
			dec[o++] = (char)(hexval(e[i + 1]) << 4 | hexval(e[i + 2]));
			i += 2;
			continue;
		}
		FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				   (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
				   c == '~' || (keep_slash && c == '/'),
			   "byte 0x%02x left unencoded", (unsigned char)c);
		dec[o++] = c;
	}
	FUZZ_CHECK(o == n && (n == 0 || memcmp(dec, s, n) == 0), "encoding does not decode back");
	free(dec);
	buf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fuzz_sign(data, size);
	fuzz_uri_encode((const char *)data + 1, size - 1, false);
	fuzz_uri_encode((const char *)data + 1, size - 1, true);
	return 0;
}
