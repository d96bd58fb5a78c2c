// SPDX-License-Identifier: MIT
/*
 * test_xml: the XML reply parsers (s3/xml.c) against real-looking S3 pages,
 * every way of cutting them into chunks, truncation at every byte, malformed
 * and hostile documents (entity bombs, external entities, caps), error
 * documents, DeleteObjects results, ISO-8601 times and escaping.
 */
#include "s3vfs/xml.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>

#include "unit.h"

#define NS	    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define DECL	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define V2(body)    "<ListBucketResult><IsTruncated>false</IsTruncated>" body "</ListBucketResult>"
#define OBJ(fields) "<Contents>" fields "</Contents>"
#define MPU(body)   "<ListMultipartUploadsResult>" body "</ListMultipartUploadsResult>"

/* Calls of the external entity loader: must stay 0 (no file, no network). */
static int loader_calls;

static xmlParserInputPtr counting_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	loader_calls++;
	return NULL;
}

/* ---- list pages: every callback becomes one transcript line ---- */

struct sink {
	struct buf out;
	int calls;
	int fail_at; /* return -EINTR on this call (1-based), 0: never */
};

static void sink_init(struct sink *k)
{
	buf_init(&k->out, 64u * 1024 * 1024);
	k->calls = 0;
	k->fail_at = 0;
}

static int sink_fn(void *arg, const struct s3_list_entry *e)
{
	struct sink *k = arg;
	char kind = e->is_prefix ? 'P' : e->upload_id ? 'U' : 'O';

	k->calls++;
	if (k->calls == k->fail_at)
		return -EINTR;
	return buf_printf(&k->out, "%c|%s|%" PRIu64 "|%s|%lld|%s\n", kind, e->key, e->size, e->etag,
			  (long long)e->last_modified, e->upload_id ? e->upload_id : "-");
}

enum chunking { WHOLE, BYTES, RANDOM };

static int parse_list(const char *doc, size_t len, enum chunking how, unsigned seed, struct sink *k,
		      struct xml_list_result *res)
{
	struct xml_list_parser *p = NULL;
	size_t off = 0;
	int rc = 0;

	rc = xml_list_parser_new(sink_fn, k, &p);
	if (rc)
		return rc;
	while (off < len && !rc) {
		size_t n = len - off;
		size_t r = (size_t)(rand_r(&seed) % 700) + 1;

		if (how == BYTES)
			n = 1;
		else if (how == RANDOM && r < n)
			n = r;
		rc = xml_list_parser_feed(p, doc + off, n);
		off += n;
	}
	if (!rc)
		rc = xml_list_parser_finish(p, res);
	xml_list_parser_free(p);
	return rc;
}

struct list_case {
	const char *name;
	const char *doc;
	int rc;
	const char *want; /* transcript when rc == 0 */
	bool truncated;
	const char *token, *next_key, *next_upload_id; /* NULL: absent */
};

static const char page_ns[] = DECL
	"<ListBucketResult " NS ">"
	"<Name>example-bucket</Name><Prefix>photos/</Prefix><KeyCount>4</KeyCount>"
	"<MaxKeys>4</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
	"NextContinuationToken>"
	"<Contents><Key>photos/a.jpg</Key><LastModified>2013-05-24T00:00:00.000Z</LastModified>"
	"<ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag><Size>142863</Size>"
	"<StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>photos/b &amp; c.jpg</Key><LastModified>2009-10-12T17:50:30Z</LastModified>"
	"<ETag>&quot;fba9dede5f27731c9771645a39863328-2&quot;</ETag><Size>0</Size>"
	"<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f</ID><DisplayName>me</DisplayName></Owner>"
	"<StorageClass>STANDARD</StorageClass></Contents>"
	"<CommonPrefixes><Prefix>photos/2006/</Prefix></CommonPrefixes>"
	"<CommonPrefixes><Prefix>photos/2007/</Prefix></CommonPrefixes></ListBucketResult>";

static const char page_ns_want[] =
	"O|photos/a.jpg|142863|\"599bab3ed2c697f1d26842727561fd94\"|1369353600|-\n"
	"O|photos/b & c.jpg|0|\"fba9dede5f27731c9771645a39863328-2\"|1255369830|-\n"
	"P|photos/2006/|0||0|-\n"
	"P|photos/2007/|0||0|-\n";

/* No namespace, indented, fields in any order, unusual keys. */
static const char page_plain[] =
	"<ListBucketResult>\n"
	"  <Name>b</Name>\n"
	"  <Contents>\n"
	"    <Size>7</Size>\n"
	"    <ChecksumAlgorithm>CRC32</ChecksumAlgorithm>\n"
	"    <ETag>\"e1\"</ETag>\n"
	"    <Key>a &amp; b &lt;c&gt; &#x4E2D;&#25991; \xc3\xbc.txt</Key>\n"
	"    <LastModified>2021-03-04T05:06:07Z</LastModified>\n"
	"  </Contents>\n"
	"  <Contents><Key> </Key><Size>1</Size></Contents>\n"
	"  <Contents><Key>cr&#13;lf&#10;tab&#9;</Key><Size>2</Size></Contents>\n"
	"  <Contents><Key><![CDATA[x<y&z]]></Key><Size>3</Size></Contents>\n"
	"  <Contents><Key>dir/</Key><Size>0</Size></Contents>\n"
	"  <!-- a comment --><?pi ignored?>\n"
	"  <IsTruncated>false</IsTruncated>\n"
	"  <KeyCount>5</KeyCount>\n"
	"</ListBucketResult>\n";

static const char page_plain_want[] =
	"O|a & b <c> \xe4\xb8\xad\xe6\x96\x87 \xc3\xbc.txt|7|\"e1\"|1614834367|-\n"
	"O| |1||0|-\n"
	"O|cr\rlf\ntab\t|2||0|-\n"
	"O|x<y&z|3||0|-\n"
	"O|dir/|0||0|-\n";

static const char page_mpu[] = DECL
	"<ListMultipartUploadsResult " NS ">"
	"<Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
	"<NextKeyMarker>my-movie.m2ts</NextKeyMarker>"
	"<NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</NextUploadIdMarker>"
	"<MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated>"
	"<Upload><Key>my-divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5n</UploadId>"
	"<Initiator><ID>arn:aws:iam::111122223333:user/u1</ID><DisplayName>u1</DisplayName>"
	"</Initiator><Owner><ID>75aa57f09aa0c8ca</ID><DisplayName>o</DisplayName></Owner>"
	"<StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated>"
	"</Upload>"
	"<Upload><Initiated>2010-11-10T20:49:33Z</Initiated><UploadId>VXBsb2FkIElE</UploadId>"
	"<Key>my-movie.m2ts</Key></Upload>"
	"<CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>"
	"</ListMultipartUploadsResult>";

static const char page_mpu_want[] =
	"U|my-divisor|0||1289422113|XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5n\n"
	"U|my-movie.m2ts|0||1289422173|VXBsb2FkIElE\n"
	"P|photos/|0||0|-\n";

#define ETAG_77 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab-"
#define ETAG_80 "<ETag>\"" ETAG_77 "1\"</ETag>"
#define ETAG_81 "<ETag>\"" ETAG_77 "12\"</ETag>"

/* A case that parses, and one that fails. */
#define GOOD(n, d, w)                                                                              \
	{                                                                                          \
		.name = n, .doc = d, .want = w                                                     \
	}
#define BAD(n, d, e)                                                                               \
	{                                                                                          \
		.name = n, .doc = d, .rc = e                                                       \
	}

/* The billion laughs: 10^9 "lol"s if anything expanded it. */
#define BOMB_DTD(root)                                                                             \
	"<?xml version=\"1.0\"?>\n<!DOCTYPE " root " [\n"                                          \
	" <!ENTITY lol \"lol\">\n"                                                                 \
	" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"                 \
	" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"       \
	" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"       \
	" <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"       \
	" <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"       \
	" <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"       \
	" <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"       \
	" <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"       \
	" <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"       \
	"]>\n"

static const char bomb[] = BOMB_DTD(
	"ListBucketResult") "<ListBucketResult><Contents><Key>&lol9;</Key><Size>1</Size></Contents>"
			    "<IsTruncated>false</IsTruncated></ListBucketResult>";

static const char xxe[] =
	"<?xml version=\"1.0\"?>\n"
	"<!DOCTYPE ListBucketResult [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
	"<ListBucketResult><Contents><Key>&xxe;</Key><Size>1</Size></Contents>"
	"<IsTruncated>false</IsTruncated></ListBucketResult>";

static const char xxe_dtd[] =
	"<!DOCTYPE ListBucketResult SYSTEM \"file:///etc/passwd\">"
	"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";

static const char xxe_param[] =
	"<!DOCTYPE ListBucketResult [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/x.dtd\"> %p;]>"
	"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";

static const struct list_case list_cases[] = {
	{ .name = "v2 namespaced",
	  .doc = page_ns,
	  .want = page_ns_want,
	  .truncated = true,
	  .token = "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=" },
	GOOD("v2 plain", page_plain, page_plain_want),
	{ .name = "mpu",
	  .doc = page_mpu,
	  .want = page_mpu_want,
	  .truncated = true,
	  .next_key = "my-movie.m2ts",
	  .next_upload_id = "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ" },
	GOOD("empty listing",
	     DECL "<ListBucketResult " NS "><Name>b</Name><KeyCount>0</KeyCount>"
		  "<IsTruncated>false</IsTruncated></ListBucketResult>",
	     ""),
	GOOD("leading blanks", " \r\n\t" DECL V2(OBJ("<Key>k</Key><Size>1</Size>")),
	     "O|k|1||0|-\n"),
	{ .name = "empty token, not truncated",
	  .doc = V2("<NextContinuationToken/>"),
	  .want = "",
	  .token = "" },
	GOOD("max size", V2(OBJ("<Key>a</Key><Size>18446744073709551615</Size>")),
	     "O|a|18446744073709551615||0|-\n"),
	GOOD("leading zeros", V2(OBJ("<Key>a</Key><Size>007</Size>")), "O|a|7||0|-\n"),
	GOOD("etag 80", V2(OBJ("<Key>a</Key><Size>1</Size>" ETAG_80)),
	     "O|a|1|\"" ETAG_77 "1\"|0|-\n"),
	BAD("size 12x", V2(OBJ("<Key>a</Key><Size>12x</Size>")), -EPROTO),
	BAD("size negative", V2(OBJ("<Key>a</Key><Size>-1</Size>")), -EPROTO),
	BAD("size plus", V2(OBJ("<Key>a</Key><Size>+1</Size>")), -EPROTO),
	BAD("size blank", V2(OBJ("<Key>a</Key><Size> 1</Size>")), -EPROTO),
	BAD("size empty", V2(OBJ("<Key>a</Key><Size></Size>")), -EPROTO),
	BAD("size overflow", V2(OBJ("<Key>a</Key><Size>18446744073709551616</Size>")), -EPROTO),
	BAD("size huge", V2(OBJ("<Key>a</Key><Size>99999999999999999999999999</Size>")), -EPROTO),
	BAD("bad time",
	    V2(OBJ("<Key>a</Key><Size>1</Size><LastModified>2013-05-24</LastModified>")), -EPROTO),
	BAD("missing key", V2(OBJ("<Size>1</Size>")), -EPROTO),
	BAD("missing size", V2(OBJ("<Key>a</Key>")), -EPROTO),
	BAD("duplicate key", V2(OBJ("<Key>a</Key><Key>b</Key><Size>1</Size>")), -EPROTO),
	BAD("prefix missing", V2("<CommonPrefixes></CommonPrefixes>"), -EPROTO),
	BAD("etag 81", V2(OBJ("<Key>a</Key><Size>1</Size>" ETAG_81)), -E2BIG),
	BAD("truncated yes", "<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
	    -EPROTO),
	BAD("truncated twice", V2("<IsTruncated>false</IsTruncated>"), -EPROTO),
	BAD("key count", V2("<KeyCount>x</KeyCount>"), -EPROTO),
	BAD("truncated, no token",
	    "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", -EPROTO),
	BAD("truncated, empty token",
	    "<ListBucketResult><IsTruncated>true</IsTruncated>"
	    "<NextContinuationToken></NextContinuationToken></ListBucketResult>",
	    -EPROTO),
	BAD("mpu truncated, no marker", MPU("<IsTruncated>true</IsTruncated>"), -EPROTO),
	BAD("upload without id", MPU("<Upload><Key>k</Key></Upload>"), -EPROTO),
	BAD("bad nesting", V2("<Contents><Key>a</Contents></Key>"), -EPROTO),
	BAD("unclosed root", "<ListBucketResult><IsTruncated>false</IsTruncated>", -EPROTO),
	BAD("error root", "<Error><Code>NoSuchBucket</Code></Error>", -EPROTO),
	BAD("other root", "<ListAllMyBucketsResult></ListAllMyBucketsResult>", -EPROTO),
	BAD("empty", "", -EPROTO),
	BAD("blank", "  \n ", -EPROTO),
	BAD("not xml", "hello", -EPROTO),
	BAD("html", "<html><body>502 Bad Gateway</body></html>", -EPROTO),
	BAD("junk after root", V2("") "<a/>", -EPROTO),
	BAD("undefined entity", V2(OBJ("<Key>&xxe;</Key><Size>1</Size>")), -EPROTO),
	BAD("invalid utf-8", V2(OBJ("<Key>\xff\xfe</Key><Size>1</Size>")), -EPROTO),
	BAD("billion laughs", bomb, -EPROTO),
	BAD("xxe entity", xxe, -EPROTO),
	BAD("xxe dtd", xxe_dtd, -EPROTO),
	BAD("xxe parameter entity", xxe_param, -EPROTO),
	BAD("doctype alone", "<!DOCTYPE ListBucketResult>" V2(""), -EPROTO),
	BAD("unused entity", "<!DOCTYPE ListBucketResult [<!ENTITY e \"x\">]>" V2(""), -EPROTO),
};

static void check_result(const struct list_case *c, const struct xml_list_result *r)
{
	CHECK_INT(r->truncated, c->truncated);
	CHECK(!c->token == !r->next_token);
	if (c->token && r->next_token)
		CHECK_STR(r->next_token, c->token);
	CHECK(!c->next_key == !r->next_key_marker);
	if (c->next_key && r->next_key_marker)
		CHECK_STR(r->next_key_marker, c->next_key);
	CHECK(!c->next_upload_id == !r->next_upload_id_marker);
	if (c->next_upload_id && r->next_upload_id_marker)
		CHECK_STR(r->next_upload_id_marker, c->next_upload_id);
}

static void test_list_cases(void)
{
	static const enum chunking hows[] = { WHOLE, BYTES, RANDOM, RANDOM };

	for (size_t i = 0; i < ARRAY_SIZE(list_cases); i++) {
		const struct list_case *c = &list_cases[i];

		for (size_t h = 0; h < ARRAY_SIZE(hows); h++) {
			struct xml_list_result r = { 0 };
			struct sink k;
			int rc = 0;

			sink_init(&k);
			rc = parse_list(c->doc, strlen(c->doc), hows[h], (unsigned)(i * 7 + h), &k,
					&r);
			if (rc != c->rc)
				fprintf(stderr, "case '%s' (chunking %zu):\n", c->name, h);
			CHECK_INT(rc, c->rc);
			if (rc == 0 && c->rc == 0) {
				CHECK_STR(buf_str(&k.out), c->want);
				CHECK_INT(r.entries, k.calls);
				check_result(c, &r);
			}
			xml_list_result_cleanup(&r);
			buf_cleanup(&k.out);
		}
	}
	CHECK_INT(loader_calls, 0);
}

/* Every proper prefix of a page is an error; none crashes or leaks. */
static void test_list_truncated(const char *doc)
{
	size_t len = (size_t)(strrchr(doc, '>') + 1 - doc), bad = 0;

	for (size_t cut = 0; cut < len; cut++) {
		struct xml_list_parser *p = NULL;
		struct xml_list_result r = { 0 };
		struct sink k;
		int rc = 0;

		sink_init(&k);
		rc = xml_list_parser_new(sink_fn, &k, &p);
		if (rc) {
			bad++;
			continue;
		}
		rc = xml_list_parser_feed(p, doc, cut / 2);
		if (!rc)
			rc = xml_list_parser_feed(p, doc + cut / 2, cut - cut / 2);
		if (!rc)
			rc = xml_list_parser_finish(p, &r);
		if (rc != -EPROTO) {
			fprintf(stderr, "cut at %zu of %zu: rc %d\n", cut, len, rc);
			bad++;
		}
		xml_list_parser_free(p);
		xml_list_result_cleanup(&r);
		buf_cleanup(&k.out);
	}
	CHECK_INT(bad, 0);
}

/* 1000 generated entries: the same transcript however the page is cut. */
static void test_list_big_page(void)
{
	struct buf doc, want;
	struct sink k[5];
	struct xml_list_result r[5];
	static const enum chunking hows[5] = { WHOLE, BYTES, RANDOM, RANDOM, RANDOM };

	buf_init(&doc, 16u * 1024 * 1024);
	buf_init(&want, 16u * 1024 * 1024);
	CHECK_INT(buf_addstr(&doc, DECL "<ListBucketResult " NS "><Name>b</Name>"
					"<IsTruncated>true</IsTruncated>"),
		  0);
	for (unsigned i = 0; i < 1000; i++) {
		CHECK_INT(buf_printf(&doc,
				     "<Contents><Key>dir/file-%04u &amp; \xc3\xbc.txt</Key>"
				     "<LastModified>2020-01-01T00:%02u:%02u.000Z</LastModified>"
				     "<ETag>&quot;%032x&quot;</ETag><Size>%" PRIu64 "</Size>"
				     "<StorageClass>STANDARD</StorageClass></Contents>\n",
				     i, i / 60 % 60, i % 60, i * 2654435761u,
				     (uint64_t)i * 1000003),
			  0);
		CHECK_INT(buf_printf(&want,
				     "O|dir/file-%04u & \xc3\xbc.txt|%" PRIu64 "|\"%032x\"|%u|-\n",
				     i, (uint64_t)i * 1000003, i * 2654435761u, 1577836800u + i),
			  0);
	}
	CHECK_INT(buf_addstr(&doc, "<NextContinuationToken>tok</NextContinuationToken>"
				   "</ListBucketResult>"),
		  0);
	for (unsigned h = 0; h < 5; h++) {
		memset(&r[h], 0, sizeof(r[h]));
		sink_init(&k[h]);
		CHECK_INT(
			parse_list(buf_str(&doc), buf_len(&doc), hows[h], h * 31 + 1, &k[h], &r[h]),
			0);
		CHECK_INT(r[h].entries, 1000);
		CHECK(r[h].truncated);
		CHECK_STR(r[h].next_token, "tok");
		CHECK_STR(buf_str(&k[h].out), buf_str(&want));
		xml_list_result_cleanup(&r[h]);
		buf_cleanup(&k[h].out);
	}
	buf_cleanup(&doc);
	buf_cleanup(&want);
}

static void cat_repeat(struct buf *b, const char *s, unsigned n)
{
	int rc = 0;

	for (unsigned i = 0; i < n && !rc; i++)
		rc = buf_addstr(b, s);
	CHECK_INT(rc, 0);
}

static int parse_built(struct buf *doc, struct sink *k, struct xml_list_result *r)
{
	int rc = parse_list(buf_str(doc), buf_len(doc), WHOLE, 0, k, r);

	buf_cleanup(doc);
	return rc;
}

/* A V2 page with `depth` nested elements under the root. */
static int parse_depth(unsigned depth)
{
	struct xml_list_result r = { 0 };
	struct buf doc;
	struct sink k;
	int rc = 0;

	sink_init(&k);
	buf_init(&doc, 1u << 20);
	cat_repeat(&doc, "<ListBucketResult>", 1);
	cat_repeat(&doc, "<a>", depth);
	cat_repeat(&doc, "</a>", depth);
	cat_repeat(&doc, "<IsTruncated>false</IsTruncated></ListBucketResult>", 1);
	rc = parse_built(&doc, &k, &r);
	xml_list_result_cleanup(&r);
	buf_cleanup(&k.out);
	return rc;
}

/* A page whose one key is `len` bytes long. */
static int parse_key_len(unsigned len, struct sink *k)
{
	struct xml_list_result r = { 0 };
	struct buf doc;
	int rc = 0;

	buf_init(&doc, 1u << 20);
	cat_repeat(&doc, "<ListBucketResult><Contents><Key>", 1);
	cat_repeat(&doc, "k", len);
	cat_repeat(&doc, "</Key><Size>1</Size></Contents></ListBucketResult>", 1);
	rc = parse_built(&doc, k, &r);
	xml_list_result_cleanup(&r);
	return rc;
}

/* A page of `n` CommonPrefixes entries. */
static int parse_entries(unsigned n, struct xml_list_result *r)
{
	struct buf doc;
	struct sink k;
	int rc = 0;

	sink_init(&k);
	buf_init(&doc, 16u << 20);
	cat_repeat(&doc, "<ListBucketResult>", 1);
	cat_repeat(&doc, "<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>", n);
	cat_repeat(&doc, "</ListBucketResult>", 1);
	rc = parse_built(&doc, &k, r);
	buf_cleanup(&k.out);
	return rc;
}

static void test_list_caps(void)
{
	struct xml_list_result r = { 0 };
	struct xml_list_parser *p = NULL;
	struct aws_error err = { 0 };
	struct sink k;
	char *big = NULL;

	CHECK_INT(parse_depth(XML_MAX_DEPTH - 1), 0);
	CHECK_INT(parse_depth(XML_MAX_DEPTH), -E2BIG);
	CHECK_INT(parse_depth(1000), -E2BIG);

	sink_init(&k);
	CHECK_INT(parse_key_len(XML_MAX_TEXT, &k), 0);
	CHECK_INT(buf_len(&k.out), XML_MAX_TEXT + strlen("O||1||0|-\n"));
	CHECK_INT(parse_key_len(XML_MAX_TEXT + 1, &k), -E2BIG);
	CHECK_INT(parse_key_len(1u << 19, &k), -E2BIG);
	buf_cleanup(&k.out);

	CHECK_INT(parse_entries(XML_MAX_ENTRIES, &r), 0);
	CHECK_INT(r.entries, XML_MAX_ENTRIES);
	xml_list_result_cleanup(&r);
	CHECK_INT(parse_entries(XML_MAX_ENTRIES + 1, &r), -E2BIG);

	/* Past XML_MAX_DOC, refused before libxml2 sees a byte; sticky. */
	big = malloc(XML_MAX_DOC + 1);
	CHECK(big != NULL);
	if (!big)
		return;
	memset(big, ' ', XML_MAX_DOC + 1);
	sink_init(&k);
	CHECK_INT(xml_list_parser_new(sink_fn, &k, &p), 0);
	CHECK_INT(xml_list_parser_feed(p, "<ListBucketResult>", 18), 0);
	CHECK_INT(xml_list_parser_feed(p, big, XML_MAX_DOC - 17), -E2BIG);
	CHECK_INT(xml_list_parser_feed(p, "</ListBucketResult>", 19), -E2BIG);
	CHECK_INT(xml_list_parser_finish(p, &r), -E2BIG);
	xml_list_parser_free(p);
	CHECK_INT(xml_parse_delete_result(big, XML_MAX_DOC + 1, NULL, NULL), -EPROTO);
	CHECK_INT(xml_parse_error(big, XML_MAX_DOC + 1, &err), -EPROTO);
	free(big);
}

static void test_list_api(void)
{
	struct xml_list_result r = { 0 };
	struct xml_list_parser *p = NULL;
	struct sink k;

	/* The callback's error stops the parse and is returned as is, sticky. */
	sink_init(&k);
	k.fail_at = 2;
	CHECK_INT(xml_list_parser_new(sink_fn, &k, &p), 0);
	CHECK_INT(xml_list_parser_feed(p, page_ns, strlen(page_ns)), -EINTR);
	CHECK_INT(k.calls, 2);
	CHECK_INT(xml_list_parser_feed(p, "x", 1), -EINTR);
	CHECK_INT(xml_list_parser_finish(p, &r), -EINTR);
	xml_list_parser_free(p);
	buf_cleanup(&k.out);

	/* Empty feeds are harmless; nothing goes after finish. */
	sink_init(&k);
	CHECK_INT(xml_list_parser_new(sink_fn, &k, &p), 0);
	CHECK_INT(xml_list_parser_feed(p, NULL, 0), 0);
	CHECK_INT(xml_list_parser_feed(p, page_mpu, strlen(page_mpu)), 0);
	CHECK_INT(xml_list_parser_feed(p, "", 0), 0);
	CHECK_INT(xml_list_parser_finish(p, &r), 0);
	CHECK_INT(r.entries, 3);
	CHECK_INT(xml_list_parser_feed(p, "x", 1), -EINVAL);
	CHECK_INT(xml_list_parser_finish(p, &r), -EINVAL);
	xml_list_result_cleanup(&r);
	xml_list_result_cleanup(&r);
	xml_list_result_cleanup(NULL);
	xml_list_parser_free(p);
	xml_list_parser_free(NULL);
	buf_cleanup(&k.out);
}

/* Hostile documents cost nothing: no expansion, no file, no network. */
static void test_hostile(void)
{
	const char *docs[] = { bomb, xxe, xxe_dtd, xxe_param };
	struct timespec t0, t1;
	char *out = NULL;
	struct aws_error err = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		size_t n = strlen(docs[i]);

		CHECK_INT(xml_get_field(docs[i], n, "ListBucketResult", "Key", &out, &err),
			  -EPROTO);
		CHECK_INT(xml_parse_error(docs[i], n, &err), -EPROTO);
		CHECK_INT(xml_parse_delete_result(docs[i], n, NULL, NULL), -EPROTO);
	}
	CHECK_INT(xml_parse_error(BOMB_DTD("Error") "<Error><Code>&lol9;</Code></Error>",
				  strlen(BOMB_DTD("Error") "<Error><Code>&lol9;</Code></Error>"),
				  &err),
		  -EPROTO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(out == NULL);
	CHECK_STR(err.code, "");
	CHECK(t1.tv_sec - t0.tv_sec < 5);
	CHECK_INT(loader_calls, 0);
}

/* ---- <Error> documents ---- */

struct err_case {
	const char *name;
	const char *doc;
	int rc;
	const char *code, *message, *request_id;
};

static const char err_no_such_key[] = DECL
	"<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist"
	"</Message><Key>a &amp; b</Key><RequestId>4442587FB7D0A2F9</RequestId>"
	"<HostId>eftixk72aD6Ap51TnqcoF8eFidJG9Z/2mkiDFu8yU9AS1ed4OpIszj7UDNEHGran</HostId></Error>";

static const struct err_case err_cases[] = {
	{ "no such key", err_no_such_key, 0, "NoSuchKey",
	  "The resource you requested does not exist", "4442587FB7D0A2F9" },
	{ "namespaced", "<Error " NS "><Code>SlowDown</Code><RequestId>R1</RequestId></Error>", 0,
	  "SlowDown", "", "R1" },
	{ "missing fields", "<Error><Code>AccessDenied</Code></Error>", 0, "AccessDenied", "", "" },
	{ "empty error", "<Error/>", 0, "", "", "" },
	{ "nested code ignored", "<Error><Details><Code>B</Code></Details><Code>A</Code></Error>",
	  0, "A", "", "" },
	{ "entities", "<Error><Code>X</Code><Message>a &lt;b&gt; &amp; &#233;</Message></Error>", 0,
	  "X", "a <b> & \xc3\xa9", "" },
	{ "other root", "<ListBucketResult/>", -EPROTO, NULL, NULL, NULL },
	{ "malformed", "<Error><Code>X</Error>", -EPROTO, NULL, NULL, NULL },
	{ "unclosed", "<Error><Code>X</Code>", -EPROTO, NULL, NULL, NULL },
	{ "empty", "", -EPROTO, NULL, NULL, NULL },
	{ "html", "<html><body>503 Service Unavailable</body></html>", -EPROTO, NULL, NULL, NULL },
	{ "xxe",
	  "<!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Error><Code>&x;"
	  "</Code></Error>",
	  -EPROTO, NULL, NULL, NULL },
};

static void preset(struct aws_error *e)
{
	memset(e, 0, sizeof(*e));
	e->status = 404;
	snprintf(e->code, sizeof(e->code), "preset");
	snprintf(e->message, sizeof(e->message), "preset");
	snprintf(e->request_id, sizeof(e->request_id), "preset");
}

static void test_error_cases(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(err_cases); i++) {
		const struct err_case *c = &err_cases[i];
		struct aws_error e;
		int rc = 0;

		preset(&e);
		rc = xml_parse_error(c->doc, strlen(c->doc), &e);
		if (rc != c->rc)
			fprintf(stderr, "case '%s':\n", c->name);
		CHECK_INT(rc, c->rc);
		CHECK_INT(e.status, 404);
		CHECK_STR(e.code, c->rc ? "preset" : c->code);
		CHECK_STR(e.message, c->rc ? "preset" : c->message);
		CHECK_STR(e.request_id, c->rc ? "preset" : c->request_id);
	}
}

/* An <Error> with `len` bytes of `fill` then `tail` in a field. */
static int parse_error_built(const char *before, const char *fill, unsigned len, const char *after,
			     struct aws_error *e)
{
	struct buf doc;
	int rc = 0;

	buf_init(&doc, 16u << 20);
	cat_repeat(&doc, before, 1);
	cat_repeat(&doc, fill, len);
	cat_repeat(&doc, after, 1);
	rc = xml_parse_error(buf_str(&doc), buf_len(&doc), e);
	buf_cleanup(&doc);
	return rc;
}

static void test_error_oversized(void)
{
	struct aws_error e;

	/* An oversized message is clipped, the code still comes through. */
	preset(&e);
	CHECK_INT(parse_error_built("<Error><Code>SlowDown</Code><Message>", "m", 100000,
				    "</Message><RequestId>R</RequestId></Error>", &e),
		  0);
	CHECK_STR(e.code, "SlowDown");
	CHECK_INT(strlen(e.message), sizeof(e.message) - 1);
	CHECK(e.message[0] == 'm' && e.message[254] == 'm');
	CHECK_STR(e.request_id, "R");

	/* Clipping never splits a UTF-8 character. */
	preset(&e);
	CHECK_INT(parse_error_built("<Error><Message>", "a", 254, "\xc3\xa9tail</Message></Error>",
				    &e),
		  0);
	CHECK_INT(strlen(e.message), 254);

	preset(&e);
	CHECK_INT(parse_error_built("<Error><Code>", "C", 100, "</Code></Error>", &e), 0);
	CHECK_INT(strlen(e.code), sizeof(e.code) - 1);
	CHECK_STR(e.message, "");

	preset(&e);
	CHECK_INT(parse_error_built("<Error><RequestId>", "\xe2\x82\xac", 100,
				    "</RequestId></Error>", &e),
		  0);
	CHECK_INT(strlen(e.request_id), 126); /* 42 whole euro signs */

	/* Depth is capped in error documents too. */
	preset(&e);
	CHECK_INT(parse_error_built("<Error>", "<a>", 100, "", &e), -EPROTO);
	CHECK_STR(e.code, "preset");
}

/* DeleteObjects callback: "key=code" lines; a key "stop" fails with -EIO. */
static int del_fn(void *arg, const char *key, const char *code)
{
	if (strcmp(key, "stop") == 0)
		return -EIO;
	return buf_printf(arg, "%s=%s\n", key, code);
}

/* Every proper prefix of a small document fails the same way. */
static void test_memory_truncated(void)
{
	static const char complete_err[] =
		DECL "<Error><Code>InternalError</Code><Message>Please try again.</Message>"
		     "<RequestId>656c76696e6727732072657175657374</RequestId></Error>";
	static const char initiate[] =
		DECL "<InitiateMultipartUploadResult " NS "><Bucket>b</Bucket><Key>k</Key>"
		     "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>";
	static const char del[] =
		"<DeleteResult><Deleted><Key>a</Key></Deleted>"
		"<Error><Key>b</Key><Code>AccessDenied</Code></Error></DeleteResult>";
	size_t bad = 0;

	for (size_t cut = 0; cut < strlen(complete_err); cut++) {
		struct aws_error e;
		char *out = NULL;

		preset(&e);
		bad += xml_parse_error(complete_err, cut, &e) != -EPROTO;
		bad += xml_get_field(complete_err, cut, "CompleteMultipartUploadResult", "ETag",
				     &out, &e) != -EPROTO;
		bad += strcmp(e.code, "preset") != 0 || out != NULL;
	}
	for (size_t cut = 0; cut < strlen(initiate); cut++) {
		char *out = NULL;

		bad += xml_get_field(initiate, cut, "InitiateMultipartUploadResult", "UploadId",
				     &out, NULL) != -EPROTO;
		bad += out != NULL;
	}
	for (size_t cut = 0; cut < strlen(del); cut++) {
		struct buf got;

		buf_init(&got, 1u << 20);
		bad += xml_parse_delete_result(del, cut, del_fn, &got) != -EPROTO;
		buf_cleanup(&got);
	}
	CHECK_INT(bad, 0);
}

/* ---- xml_get_field ---- */

struct field_case {
	const char *name;
	const char *doc;
	const char *root, *field;
	int rc;
	const char *want; /* value, or the error code for -EREMOTEIO */
};

static const struct field_case field_cases[] = {
	{ "initiate",
	  DECL "<InitiateMultipartUploadResult " NS "><Bucket>example-bucket</Bucket>"
	       "<Key>example-object</Key><UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1t"
	       "</UploadId></InitiateMultipartUploadResult>",
	  "InitiateMultipartUploadResult", "UploadId", 0, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1t" },
	{ "complete etag",
	  DECL "<CompleteMultipartUploadResult " NS "><Location>"
	       "http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key>"
	       "<ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
	       "</CompleteMultipartUploadResult>",
	  "CompleteMultipartUploadResult", "ETag", 0, "\"3858f62230ac3c915f300c664312c11f-9\"" },
	{ "complete: 200 with error",
	  DECL
	  "\n  \n  \n<Error><Code>InternalError</Code><Message>We encountered an internal "
	  "error. Please try again.</Message><RequestId>656c76696e6727732072657175657374"
	  "</RequestId><HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId>"
	  "</Error>",
	  "CompleteMultipartUploadResult", "ETag", -EREMOTEIO, "InternalError" },
	{ "copy: 200 with error", "<Error><Code>SlowDown</Code></Error>", "CopyObjectResult",
	  "ETag", -EREMOTEIO, "SlowDown" },
	{ "keep-alive blanks first",
	  "   \n \n" DECL "<CopyObjectResult><LastModified>"
	  "2009-10-12T17:50:30.000Z</LastModified><ETag>\"9b2cf535f27731c"
	  "974343645a3985328\"</ETag></CopyObjectResult>",
	  "CopyObjectResult", "LastModified", 0, "2009-10-12T17:50:30.000Z" },
	{ "empty value",
	  "<InitiateMultipartUploadResult><UploadId/></InitiateMultipartUploadResult>",
	  "InitiateMultipartUploadResult", "UploadId", 0, "" },
	{ "first in document order",
	  "<ListPartsResult><Initiator><ID>a</ID></Initiator><Owner><ID>b</ID></Owner>"
	  "</ListPartsResult>",
	  "ListPartsResult", "ID", 0, "a" },
	{ "root is not a field", "<UploadId><X/></UploadId>", "UploadId", "UploadId", -ENOENT,
	  NULL },
	{ "missing",
	  "<InitiateMultipartUploadResult><Bucket>b</Bucket>"
	  "</InitiateMultipartUploadResult>",
	  "InitiateMultipartUploadResult", "UploadId", -ENOENT, NULL },
	{ "wrong root", "<CopyObjectResult><ETag>x</ETag></CopyObjectResult>",
	  "CompleteMultipartUploadResult", "ETag", -EPROTO, NULL },
	{ "malformed", "<CopyObjectResult><ETag>x</CopyObjectResult>", "CopyObjectResult", "ETag",
	  -EPROTO, NULL },
	{ "error, malformed", "<Error><Code>SlowDown</Error>", "CopyObjectResult", "ETag", -EPROTO,
	  NULL },
	{ "empty", "", "CopyObjectResult", "ETag", -EPROTO, NULL },
	{ "xxe",
	  "<!DOCTYPE CopyObjectResult [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	  "<CopyObjectResult><ETag>&x;</ETag></CopyObjectResult>",
	  "CopyObjectResult", "ETag", -EPROTO, NULL },
};

static void test_field_cases(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(field_cases); i++) {
		const struct field_case *c = &field_cases[i];
		struct aws_error e;
		char *out = NULL;
		int rc = 0;

		preset(&e);
		rc = xml_get_field(c->doc, strlen(c->doc), c->root, c->field, &out, &e);
		if (rc != c->rc)
			fprintf(stderr, "case '%s':\n", c->name);
		CHECK_INT(rc, c->rc);
		if (c->rc == 0)
			CHECK_STR(out, c->want);
		else
			CHECK(out == NULL);
		CHECK_STR(e.code, c->rc == -EREMOTEIO ? c->want : "preset");
		CHECK_INT(e.status, 404);
		free(out);
		/* err may be NULL */
		out = NULL;
		CHECK_INT(xml_get_field(c->doc, strlen(c->doc), c->root, c->field, &out, NULL),
			  c->rc);
		free(out);
	}
}

static void test_field_oversized(void)
{
	struct buf doc;
	char *out = NULL;

	buf_init(&doc, 1u << 20);
	cat_repeat(&doc, "<InitiateMultipartUploadResult><UploadId>", 1);
	cat_repeat(&doc, "u", XML_MAX_TEXT + 1);
	cat_repeat(&doc, "</UploadId></InitiateMultipartUploadResult>", 1);
	CHECK_INT(xml_get_field(buf_str(&doc), buf_len(&doc), "InitiateMultipartUploadResult",
				"UploadId", &out, NULL),
		  -EPROTO);
	CHECK(out == NULL);
	buf_cleanup(&doc);
}

/* ---- DeleteObjects results ---- */

struct del_case {
	const char *name;
	const char *doc;
	int rc;
	const char *want;
};

static const struct del_case del_cases[] = {
	{ "mixed",
	  DECL "<DeleteResult " NS "><Deleted><Key>sample1.txt</Key></Deleted>"
	       "<Error><Key>sample2.txt</Key><Code>AccessDenied</Code>"
	       "<Message>Access Denied</Message></Error>"
	       "<Deleted><Key>a&amp;b</Key><DeleteMarker>true</DeleteMarker>"
	       "<DeleteMarkerVersionId>NeQt5xeFTfgPJD8B4CGWnkSLtluMr11s</DeleteMarkerVersionId>"
	       "</Deleted><Error><Code>InternalError</Code><Key>x &lt; y</Key>"
	       "<Message>We encountered an internal error.</Message></Error></DeleteResult>",
	  0, "sample2.txt=AccessDenied\nx < y=InternalError\n" },
	{ "all deleted", "<DeleteResult><Deleted><Key>a</Key></Deleted></DeleteResult>", 0, "" },
	{ "quiet, nothing", "<DeleteResult/>", 0, "" },
	{ "error without code", "<DeleteResult><Error><Key>k</Key></Error></DeleteResult>", 0,
	  "k=\n" },
	{ "error without key", "<DeleteResult><Error><Code>X</Code></Error></DeleteResult>",
	  -EPROTO, "" },
	{ "duplicate key", "<DeleteResult><Error><Key>a</Key><Key>b</Key></Error></DeleteResult>",
	  -EPROTO, "" },
	{ "callback error",
	  "<DeleteResult><Error><Key>a</Key><Code>X</Code></Error><Error><Key>stop"
	  "</Key><Code>X</Code></Error><Error><Key>c</Key></Error></DeleteResult>",
	  -EIO, "a=X\n" },
	{ "whole request failed", "<Error><Code>MalformedXML</Code></Error>", -EPROTO, "" },
	{ "malformed", "<DeleteResult><Error></DeleteResult>", -EPROTO, "" },
	{ "empty", "", -EPROTO, "" },
};

static void test_delete_cases(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(del_cases); i++) {
		const struct del_case *c = &del_cases[i];
		struct buf got;
		int rc = 0;

		buf_init(&got, 1u << 20);
		rc = xml_parse_delete_result(c->doc, strlen(c->doc), del_fn, &got);
		if (rc != c->rc)
			fprintf(stderr, "case '%s':\n", c->name);
		CHECK_INT(rc, c->rc);
		CHECK_STR(buf_str(&got), c->want);
		buf_cleanup(&got);
	}
}

/* ---- times and escaping ---- */

static void test_iso8601(void)
{
	static const struct {
		const char *s;
		int rc;
		long long want;
	} cases[] = {
		{ "2013-05-24T00:00:00.000Z", 0, 1369353600 },
		{ "2013-05-24T00:00:00Z", 0, 1369353600 },
		{ "2000-02-29T23:59:59Z", 0, 951868799 },
		{ "1970-01-01T00:00:00.0Z", 0, 0 },
		{ "2024-12-31T12:34:56.123456789Z", 0, 1735648496 },
		{ "", -EINVAL, 0 },
		{ "2013-05-24", -EINVAL, 0 },
		{ "2013-05-24T00:00:00", -EINVAL, 0 },
		{ "2013-05-24T00:00:00.Z", -EINVAL, 0 },
		{ "2013-05-24T00:00:00.000", -EINVAL, 0 },
		{ "2013-05-24T00:00:00.0000000000Z", -EINVAL, 0 },
		{ "2013-05-24T00:00:00.000Z ", -EINVAL, 0 },
		{ "2013-05-24T00:00:00+00:00", -EINVAL, 0 },
		{ "2013-05-24t00:00:00z", -EINVAL, 0 },
		{ "2013-05-24 00:00:00Z", -EINVAL, 0 },
		{ "20130524T000000Z", -EINVAL, 0 },
		{ "2013-5-24T00:00:00Z", -EINVAL, 0 },
		{ "x013-05-24T00:00:00Z", -EINVAL, 0 },
		{ "2013-00-24T00:00:00Z", -EINVAL, 0 },
		{ "2013-13-01T00:00:00Z", -EINVAL, 0 },
		{ "2013-02-29T00:00:00Z", -EINVAL, 0 },
		{ "1900-02-29T00:00:00Z", -EINVAL, 0 },
		{ "2013-04-31T00:00:00Z", -EINVAL, 0 },
		{ "2013-05-00T00:00:00Z", -EINVAL, 0 },
		{ "2013-05-24T24:00:00Z", -EINVAL, 0 },
		{ "2013-05-24T00:60:00Z", -EINVAL, 0 },
		{ "2013-05-24T00:00:61Z", -EINVAL, 0 },
		{ "Fri, 24 May 2013 00:00:00 GMT", -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		time_t t = 42;
		int rc = xml_parse_iso8601(cases[i].s, &t);

		if (rc != cases[i].rc)
			fprintf(stderr, "iso8601 '%s':\n", cases[i].s);
		CHECK_INT(rc, cases[i].rc);
		CHECK_INT(t, cases[i].rc ? 42 : cases[i].want);
	}
}

static void test_escape(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "", "" },
		{ "plain/key.txt", "plain/key.txt" },
		{ "a&b<c>d\"e'f", "a&amp;b&lt;c&gt;d&quot;e&apos;f" },
		{ "&&", "&amp;&amp;" },
		{ "\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac", "\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac" },
		{ "a\r\nb\tc", "a&#13;&#10;b&#9;c" },
		{ "\x01\x1f\x7f", "&#1;&#31;\x7f" },
	};
	struct buf b, small;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		buf_init(&b, BUF_CAP_SMALL);
		CHECK_INT(xml_escape(&b, cases[i].in), 0);
		CHECK_STR(buf_str(&b), cases[i].want);
		buf_cleanup(&b);
	}

	/* Appends to what is there. */
	buf_init(&b, BUF_CAP_SMALL);
	CHECK_INT(buf_addstr(&b, "<Key>"), 0);
	CHECK_INT(xml_escape(&b, "x<y"), 0);
	CHECK_STR(buf_str(&b), "<Key>x&lt;y");
	buf_cleanup(&b);

	/* The buffer's cap holds. */
	buf_init(&small, 8);
	CHECK_INT(xml_escape(&small, "&&"), -E2BIG);
	CHECK_INT(buf_len(&small), 0);
	buf_cleanup(&small);
	buf_init(&small, 8);
	CHECK_INT(xml_escape(&small, "123456789"), -E2BIG);
	buf_cleanup(&small);
}

/* What xml_escape writes, the list parser reads back unchanged. */
static void test_escape_roundtrip(void)
{
	static const char *keys[] = { "a&b<c>d\"e'f", "cr\rlf\ntab\t end ", "\xc3\xbc/&amp;/" };

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		struct xml_list_result r = { 0 };
		struct buf doc, want;
		struct sink k;

		buf_init(&doc, BUF_CAP_SMALL);
		buf_init(&want, BUF_CAP_SMALL);
		sink_init(&k);
		CHECK_INT(buf_addstr(&doc, "<ListBucketResult><Contents><Key>"), 0);
		CHECK_INT(xml_escape(&doc, keys[i]), 0);
		CHECK_INT(buf_addstr(&doc, "</Key><Size>5</Size></Contents></ListBucketResult>"),
			  0);
		CHECK_INT(buf_printf(&want, "O|%s|5||0|-\n", keys[i]), 0);
		CHECK_INT(parse_list(buf_str(&doc), buf_len(&doc), WHOLE, 0, &k, &r), 0);
		CHECK_STR(buf_str(&k.out), buf_str(&want));
		xml_list_result_cleanup(&r);
		buf_cleanup(&k.out);
		buf_cleanup(&doc);
		buf_cleanup(&want);
	}
}

/* Parsers on many threads at once (first use races pthread_once too). */
static void *thread_main(void *arg)
{
	int *bad = arg;

	for (unsigned i = 0; i < 50; i++) {
		struct xml_list_result r = { 0 };
		struct sink k;
		int rc = 0;

		sink_init(&k);
		rc = parse_list(page_ns, strlen(page_ns), RANDOM, i, &k, &r);
		*bad += rc != 0 || strcmp(buf_str(&k.out), page_ns_want) != 0;
		xml_list_result_cleanup(&r);
		buf_cleanup(&k.out);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];
	int bad[4] = { 0 };

	for (unsigned i = 0; i < ARRAY_SIZE(t); i++)
		CHECK_INT(pthread_create(&t[i], NULL, thread_main, &bad[i]), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(t); i++) {
		CHECK_INT(pthread_join(t[i], NULL), 0);
		CHECK_INT(bad[i], 0);
	}
}

int main(void)
{
	xmlSetExternalEntityLoader(counting_loader);

	test_threads();
	test_list_cases();
	test_list_truncated(page_ns);
	test_list_truncated(page_plain);
	test_list_truncated(page_mpu);
	test_list_big_page();
	test_list_caps();
	test_list_api();
	test_hostile();
	test_error_cases();
	test_error_oversized();
	test_memory_truncated();
	test_field_cases();
	test_field_oversized();
	test_delete_cases();
	test_iso8601();
	test_escape();
	test_escape_roundtrip();
	CHECK_INT(loader_calls, 0);
	return unit_end("xml");
}
