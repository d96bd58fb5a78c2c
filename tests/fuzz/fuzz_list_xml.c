// SPDX-License-Identifier: MIT
/*
 * fuzz_list_xml: S3's XML replies (s3/xml.c). The input is one control byte
 * and a document:
 *
 *	byte 0: bits 0-3 the chunking (0: one chunk; else chunks of 1 to
 *	        max_chunk[bits] bytes, sizes from a generator seeded by the
 *	        byte); bit 7 set: the entry callback fails (-EINTR) on call
 *	        ((byte >> 4) & 7) + 1
 *	rest:   the document
 *
 * The document goes through the streaming list parser in those chunks and
 * again in one piece, then through every in-memory parser (xml_parse_error,
 * xml_get_field, xml_parse_delete_result), xml_parse_iso8601, and
 * xml_escape. Properties, besides no crash, leak or UB:
 *  - an entry's strings are bounded (key <= XML_MAX_TEXT, ETag <=
 *    S3_ETAG_MAX) and UTF-8, and a page holds <= XML_MAX_ENTRIES;
 *  - chunking changes nothing: the same verdict, and on success the same
 *    entries and result as the whole document;
 *  - a callback's error stops the parse and is the one returned;
 *  - a truncated page always says where to go on;
 *  - an <Error>'s fields are NUL-terminated UTF-8 (clipped on a character);
 *  - xml_escape's output parses back to its input.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "s3vfs/buf.h"
#include "s3vfs/xml.h"

#include "fuzz.h"

static const size_t max_chunk[16] = { 0,  1,  2,  3,   4,   7,	  8,	13,
				      16, 31, 64, 100, 257, 1000, 4096, 9000 };

/* What the callbacks saw, one line per entry, exact (lengths given). */
struct sink {
	struct buf out;
	unsigned calls;
	unsigned fail_at; /* 1-based call that returns -EINTR; 0: none */
};

static int on_entry(void *arg, const struct s3_list_entry *e)
{
	struct sink *k = arg;
	size_t klen, elen;

	FUZZ_CHECK(e->key && e->etag, "entry without key or etag");
	klen = strlen(e->key);
	elen = strlen(e->etag);
	FUZZ_CHECK(klen <= XML_MAX_TEXT, "key of %zu bytes", klen);
	FUZZ_CHECK(elen <= S3_ETAG_MAX, "etag of %zu bytes", elen);
	FUZZ_CHECK(fuzz_utf8_ok(e->key, klen), "key is not UTF-8");
	FUZZ_CHECK(!e->is_prefix || (elen == 0 && e->size == 0 && e->last_modified == 0),
		   "a CommonPrefixes entry with object fields");
	if (e->upload_id)
		FUZZ_CHECK(strlen(e->upload_id) <= XML_MAX_TEXT, "long upload id");
	k->calls++;
	FUZZ_CHECK(k->calls <= XML_MAX_ENTRIES, "%u entries on one page", k->calls);
	if (k->calls == k->fail_at)
		return -EINTR;
	return buf_printf(&k->out, "%c %zu:%s %" PRIu64 " %zu:%s %lld %s\n",
			  e->is_prefix ? 'P' : 'O', klen, e->key, e->size, elen, e->etag,
			  (long long)e->last_modified, e->upload_id ? e->upload_id : "-");
}

/* Stream doc through a parser in the chunks ctrl says (0: one chunk). */
static int parse_list(const char *doc, size_t n, uint8_t ctrl, struct sink *k,
		      struct xml_list_result *res)
{
	struct xml_list_parser *p = NULL;
	size_t maxc = max_chunk[ctrl & 15];
	uint32_t rng = 0x9e3779b9u ^ ctrl;
	size_t off = 0;
	int rc = 0;

	rc = xml_list_parser_new(on_entry, k, &p);
	if (rc)
		return rc;
	while (off < n && !rc) {
		size_t c = n - off;

		if (maxc) {
			rng = rng * 1664525u + 1013904223u;
			size_t want = 1 + (rng >> 8) % maxc;
			if (want < c)
				c = want;
		}
		rc = xml_list_parser_feed(p, doc + off, c);
		off += c;
	}
	if (!rc) {
		rc = xml_list_parser_finish(p, res);
		if (!rc) {
			struct xml_list_result again = { 0 };
			/* A finished parser takes nothing more. */
			FUZZ_CHECK(xml_list_parser_feed(p, "<a/>", 4) == -EINVAL,
				   "feed after finish");
			FUZZ_CHECK(xml_list_parser_finish(p, &again) == -EINVAL, "finish twice");
		}
	}
	xml_list_parser_free(p);
	return rc;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_result(const struct sink *k, const struct xml_list_result *r)
{
	FUZZ_CHECK(r->entries == k->calls, "%u entries, %u callbacks", r->entries, k->calls);
	/* A truncated page says where to go on (which field: by the root). */
	if (r->truncated)
		FUZZ_CHECK((r->next_token && r->next_token[0]) ||
				   (r->next_key_marker && r->next_key_marker[0]),
			   "truncated page without a continuation");
	if (r->next_token)
		FUZZ_CHECK(strlen(r->next_token) <= XML_MAX_TEXT, "long token");
}

static void fuzz_list(const char *doc, size_t n, uint8_t ctrl)
{
	struct sink a = { .fail_at = ctrl & 0x80 ? ((ctrl >> 4) & 7) + 1 : 0 };
	struct sink b = { 0 };
	struct xml_list_result ra = { 0 }, rb = { 0 };
	int rca, rcb;

	buf_init(&a.out, 64u * 1024 * 1024);
	buf_init(&b.out, 64u * 1024 * 1024);
	rca = parse_list(doc, n, ctrl, &a, &ra);
	rcb = parse_list(doc, n, 0, &b, &rb);
	FUZZ_CHECK(rca <= 0 && rcb <= 0, "positive return %d %d", rca, rcb);
	if (rcb == 0)
		check_result(&b, &rb);
	if (a.fail_at) {
		/* The callback's error is what comes back, and nothing after it. */
		if (a.calls >= a.fail_at)
			FUZZ_CHECK(rca == -EINTR && a.calls == a.fail_at, "rc %d after %u calls",
				   rca, a.calls);
		if (rcb == 0)
			FUZZ_CHECK(strncmp(buf_str(&a.out), buf_str(&b.out), buf_len(&a.out)) == 0,
				   "a stopped parse saw other entries");
	} else {
		FUZZ_CHECK((rca == 0) == (rcb == 0), "chunking changed the verdict: %d vs whole %d",
			   rca, rcb);
		if (rca == 0) {
			check_result(&a, &ra);
			FUZZ_CHECK(buf_len(&a.out) == buf_len(&b.out) &&
					   memcmp(buf_str(&a.out), buf_str(&b.out),
						  buf_len(&a.out)) == 0,
				   "chunking changed the entries");
			FUZZ_CHECK(
				ra.truncated == rb.truncated && ra.entries == rb.entries &&
					str_eq(ra.next_token, rb.next_token) &&
					str_eq(ra.next_key_marker, rb.next_key_marker) &&
					str_eq(ra.next_upload_id_marker, rb.next_upload_id_marker),
				"chunking changed the result");
		}
	}
	xml_list_result_cleanup(&ra);
	xml_list_result_cleanup(&rb);
	buf_cleanup(&a.out);
	buf_cleanup(&b.out);
}

static void check_error_fields(const struct aws_error *e)
{
	size_t c = strnlen(e->code, sizeof(e->code));
	size_t m = strnlen(e->message, sizeof(e->message));
	size_t r = strnlen(e->request_id, sizeof(e->request_id));

	FUZZ_CHECK(c < sizeof(e->code) && m < sizeof(e->message) && r < sizeof(e->request_id),
		   "error field not terminated");
	FUZZ_CHECK(fuzz_utf8_ok(e->code, c) && fuzz_utf8_ok(e->message, m) &&
			   fuzz_utf8_ok(e->request_id, r),
		   "error field clipped inside a character");
}

static int on_deleted(void *arg, const char *key, const char *code)
{
	unsigned *calls = arg;

	FUZZ_CHECK(key && code, "delete error without key or code");
	FUZZ_CHECK(strlen(key) <= XML_MAX_TEXT && strlen(code) <= XML_MAX_TEXT, "long field");
	return ++*calls == 3 ? -EINTR : 0;
}

static void fuzz_small_docs(const char *doc, size_t n)
{
	static const char *const fields[][2] = {
		{ "InitiateMultipartUploadResult", "UploadId" },
		{ "CompleteMultipartUploadResult", "ETag" },
		{ "CopyObjectResult", "ETag" },
	};
	struct aws_error err;
	unsigned calls = 0;
	int rc;

	aws_error_clear(&err);
	rc = xml_parse_error(doc, n, &err);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO, "xml_parse_error: %d", rc);
	if (rc == 0)
		check_error_fields(&err);

	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		char *v = NULL;

		aws_error_clear(&err);
		rc = xml_get_field(doc, n, fields[i][0], fields[i][1], &v, &err);
		FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EREMOTEIO || rc == -ENOENT,
			   "xml_get_field: %d", rc);
		FUZZ_CHECK((rc == 0) == (v != NULL), "value and rc disagree");
		if (rc == 0)
			FUZZ_CHECK(strlen(v) <= XML_MAX_TEXT, "long field value");
		if (rc == -EREMOTEIO)
			check_error_fields(&err);
		free(v);
	}

	rc = xml_parse_delete_result(doc, n, on_deleted, &calls);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EINTR, "delete result: %d", rc);
	FUZZ_CHECK(rc != -EINTR || calls == 3, "callback error not from the callback");
}

static void fuzz_iso8601(const char *s)
{
	time_t t = 0;
	struct tm tm;
	char back[32];

	if (xml_parse_iso8601(s, &t) != 0)
		return;
	/* Valid: the calendar fields read back (a leap second rolls over). */
	FUZZ_CHECK(gmtime_r(&t, &tm) != NULL, "time out of range");
	snprintf(back, sizeof(back), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (strncmp(s + 17, "60", 2) != 0)
		FUZZ_CHECK(strncmp(back, s, 19) == 0, "%s read as %s", s, back);
}

/* Can s stand as XML 1.0 character data once escaped? (UTF-8, XML Chars) */
static bool xml_text_ok(const char *s, size_t n)
{
	if (!fuzz_utf8_ok(s, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return false;
		/* U+FFFE and U+FFFF: EF BF BE / EF BF BF */
		if (c == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBF &&
		    ((unsigned char)s[i + 2] == 0xBE || (unsigned char)s[i + 2] == 0xBF))
			return false;
	}
	return true;
}

/* A key escaped into a request body must be read back exactly (DeleteObjects). */
static void fuzz_escape(const char *s)
{
	struct buf b;
	char *back = NULL;
	size_t n = strlen(s);
	int rc;

	buf_init(&b, 1024 * 1024);
	rc = buf_addstr(&b, "<R><F>");
	if (!rc)
		rc = xml_escape(&b, s);
	if (!rc)
		rc = buf_addstr(&b, "</F></R>");
	FUZZ_CHECK(rc == 0, "xml_escape: %d", rc);
	for (const char *p = buf_str(&b) + 6; p < buf_str(&b) + buf_len(&b) - 8; p++)
		FUZZ_CHECK(*p != '<' && *p != '>' && *p != '"' && *p != '\'' && *p != '\r',
			   "unescaped %c", *p);
	rc = xml_get_field(buf_str(&b), buf_len(&b), "R", "F", &back, NULL);
	if (rc == 0)
		FUZZ_CHECK(strcmp(back, s) == 0, "escaped text read back differently");
	else if (n <= XML_MAX_TEXT && xml_text_ok(s, n))
		FUZZ_CHECK(0, "escaped valid text does not parse: %d", rc);
	free(back);
	buf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc;
	size_t n;
	char *str;

	if (size < 1)
		return 0;
	doc = (const char *)data + 1;
	n = size - 1;
	fuzz_list(doc, n, data[0]);
	fuzz_small_docs(doc, n);
	str = fuzz_strndup(data + 1, n);
	fuzz_iso8601(str);
	fuzz_escape(str);
	free(str);
	return 0;
}
