// SPDX-License-Identifier: MIT
/*
 * test_s3attr: the attribute codec (meta/s3attr.c). Tables of metadata as
 * s3fs-fuse and rclone write it, objects with none (boto3, the console),
 * malformed fields that must fall back one by one; the directory rules; the
 * xattr header byte for byte as s3fs writes it, round trips of binary
 * values, the 2 KiB budget at its edge, malformed percent/JSON/base64; and
 * the merge that rewrites owned pairs and keeps everyone else's.
 */
#include "s3vfs/s3attr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "unit.h"

#define MAXKV 12

/* A list of pairs written as { "name", "value", ..., NULL }. */
static size_t to_kv(const char *const *flat, struct s3attr_kv *kv)
{
	size_t n = 0;

	for (; flat[2 * n]; n++) {
		kv[n].name = (char *)flat[2 * n];
		kv[n].value = (char *)flat[2 * n + 1];
	}
	return n;
}

/* ---- decode ---- */

#define LM  1600000000LL /* LastModified of every row */
#define ALL S3ATTR_STAT

static const struct decode_row {
	const char *what;
	const char *kv[2 * MAXKV + 1];
	bool is_dir;
	unsigned have;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	long long mtime;
	long mtime_ns;
	long long ctime;
	long long atime;
} decode_rows[] = {
	{ "s3fs file",
	  { "mode", "33188", "uid", "0", "gid", "0", "mtime", "1700000000", "ctime", "1700000001",
	    "atime", "1700000002", NULL },
	  false,
	  ALL,
	  0100644,
	  0,
	  0,
	  1700000000,
	  0,
	  1700000001,
	  1700000002 },
	{ "s3fs dir marker",
	  { "mode", "16877", "uid", "1001", "gid", "1002", "mtime", "1700000000", NULL },
	  true,
	  S3ATTR_MODE | S3ATTR_UID | S3ATTR_GID | S3ATTR_MTIME,
	  040755,
	  1001,
	  1002,
	  1700000000,
	  0,
	  LM,
	  LM },
	{ "s3fs symlink",
	  { "mode", "41471", NULL },
	  false,
	  S3ATTR_MODE,
	  0120777,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "s3fs fifo",
	  { "mode", "4516", NULL },
	  false,
	  S3ATTR_MODE,
	  010644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "s3fs setuid",
	  { "mode", "36333", NULL },
	  false,
	  S3ATTR_MODE,
	  0106755,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "s3fs nanoseconds",
	  { "mtime", "1700000000.123456789", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  1700000000,
	  123456789,
	  LM,
	  LM },
	{ "short fraction",
	  { "mtime", "1700000000.5", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  1700000000,
	  500000000,
	  LM,
	  LM },
	{ "long fraction",
	  { "mtime", "1.1234567899", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  1,
	  123456789,
	  LM,
	  LM },
	{ "names in any case",
	  { "Mode", "33261", "UID", "5", NULL },
	  false,
	  S3ATTR_MODE | S3ATTR_UID,
	  0100755,
	  5,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "rclone octal",
	  { "mode", "100644", "uid", "1001", "gid", "1001", "mtime", "2023-11-14T22:13:20Z",
	    "atime", "2023-11-14T22:13:20.123456789+01:00", NULL },
	  false,
	  S3ATTR_MODE | S3ATTR_UID | S3ATTR_GID | S3ATTR_MTIME | S3ATTR_ATIME,
	  0100644,
	  1001,
	  1001,
	  1700000000,
	  0,
	  LM,
	  1699996400 },
	{ "rclone leading 0",
	  { "mode", "0100755", NULL },
	  false,
	  S3ATTR_MODE,
	  0100755,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	/* the one ambiguity: octal FIFO "10644" reads as decimal 024624 (a
	 * character device); s3fs's decimal wins, a leading 0 says octal */
	{ "rclone fifo, ambiguous",
	  { "mode", "10644", NULL },
	  false,
	  S3ATTR_MODE,
	  024624,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "rclone fifo, leading 0",
	  { "mode", "010644", NULL },
	  false,
	  S3ATTR_MODE,
	  010644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "rclone dir",
	  { "mode", "40755", NULL },
	  true,
	  S3ATTR_MODE,
	  040755,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "rclone symlink",
	  { "mode", "120777", NULL },
	  false,
	  S3ATTR_MODE,
	  0120777,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "rclone float mtime",
	  { "mtime", "1700000000.000000001", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  1700000000,
	  1,
	  LM,
	  LM },
	{ "rclone zone west",
	  { "mtime", "2023-11-14T17:13:20-05:00", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  1700000000,
	  0,
	  LM,
	  LM },
	{ "lower-case t and z",
	  { "mtime", "2023-11-14t22:13:20z", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  1700000000,
	  0,
	  LM,
	  LM },
	{ "leap day",
	  { "mtime", "2024-02-29T00:00:00Z", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  1709164800,
	  0,
	  LM,
	  LM },
	{ "epoch",
	  { "mtime", "1970-01-01T00:00:00Z", "ctime", "0", NULL },
	  false,
	  S3ATTR_MTIME | S3ATTR_CTIME,
	  0100644,
	  1000,
	  1000,
	  0,
	  0,
	  0,
	  LM },
	{ "year 0",
	  { "mtime", "0000-01-01T00:00:00Z", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  -62167219200LL,
	  0,
	  LM,
	  LM },
	{ "year 9999",
	  { "mtime", "9999-12-31T23:59:59Z", NULL },
	  false,
	  S3ATTR_MTIME,
	  0100644,
	  1000,
	  1000,
	  253402300799LL,
	  0,
	  LM,
	  LM },
	{ "before the epoch",
	  { "mtime", "-1", "atime", "-1.25", NULL },
	  false,
	  S3ATTR_MTIME | S3ATTR_ATIME,
	  0100644,
	  1000,
	  1000,
	  -1,
	  0,
	  LM,
	  -2 },
	{ "boto3: no metadata", { NULL }, false, 0, 0100644, 1000, 1000, LM, 0, LM, LM },
	{ "boto3: no metadata, dir", { NULL }, true, 0, 040755, 1000, 1000, LM, 0, LM, LM },
	{ "strangers only",
	  { "content-sha256", "abc", "author", "me", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "mode without type",
	  { "mode", "420", NULL },
	  false,
	  S3ATTR_MODE,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "mode without type, dir",
	  { "mode", "493", NULL },
	  true,
	  S3ATTR_MODE,
	  040755,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "key says dir, mode says file",
	  { "mode", "33188", NULL },
	  true,
	  S3ATTR_MODE,
	  040644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "legacy dir object",
	  { "mode", "16877", NULL },
	  false,
	  S3ATTR_MODE,
	  040755,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	/* malformed fields fall back one by one; the others still count */
	{ "bad mode, good uid",
	  { "mode", "abc", "uid", "7", NULL },
	  false,
	  S3ATTR_UID,
	  0100644,
	  7,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "negative mode",
	  { "mode", "-33188", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "mode with space",
	  { "mode", "33188 ", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "mode in hex", { "mode", "0x81a4", NULL }, false, 0, 0100644, 1000, 1000, LM, 0, LM, LM },
	{ "mode empty", { "mode", "", NULL }, false, 0, 0100644, 1000, 1000, LM, 0, LM, LM },
	{ "mode huge",
	  { "mode", "999999999999999999999999", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "mode bad type",
	  { "mode", "110000", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "mode over 16 bits",
	  { "mode", "200000", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "mode octal with 8",
	  { "mode", "0100648", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "uid -1",
	  { "uid", "-1", "gid", "4294967295", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "uid max",
	  { "uid", "4294967294", "gid", "01", NULL },
	  false,
	  S3ATTR_UID | S3ATTR_GID,
	  0100644,
	  4294967294u,
	  1,
	  LM,
	  0,
	  LM,
	  LM },
	{ "uid junk",
	  { "uid", "1e3", "gid", " 1", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "uid empty",
	  { "uid", "", "gid", "+5", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "bad times",
	  { "mtime", "abc", "ctime", "1.", "atime", ".5", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "more bad times",
	  { "mtime", "99999999999999999999", "ctime", "1 ", "atime", "-", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "bad dates",
	  { "mtime", "2023-02-29T00:00:00Z", "ctime", "2023-13-01T00:00:00Z", "atime",
	    "2023-11-14T22:13:20", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "bad zones",
	  { "mtime", "2023-11-14T22:13:20+0100", "ctime", "2023-11-14T22:13:20+01:00x", "atime",
	    "2023-11-14T22:13:20.Z", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "bad clock",
	  { "mtime", "2023-11-14T24:00:00Z", "ctime", "2023-11-14 22:13:20Z", "atime",
	    "2023-11-14T22:60:00Z", NULL },
	  false,
	  0,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
	{ "first of two wins",
	  { "mode", "33188", "mode", "16877", NULL },
	  false,
	  S3ATTR_MODE,
	  0100644,
	  1000,
	  1000,
	  LM,
	  0,
	  LM,
	  LM },
};

static void test_decode(void)
{
	const struct s3attr_defaults def0 = {
		.uid = 1000,
		.gid = 1000,
		.umask = 022,
		.last_modified = LM,
	};

	for (size_t i = 0; i < ARRAY_SIZE(decode_rows); i++) {
		const struct decode_row *r = &decode_rows[i];
		struct s3attr_defaults def = def0;
		struct s3attr_kv kv[MAXKV];
		size_t n = to_kv(r->kv, kv);
		struct s3attr a;
		unsigned have;
		int bad = unit_failed;

		def.is_dir = r->is_dir;
		have = s3attr_decode(kv, n, &def, &a);
		CHECK_INT(have, r->have);
		CHECK_INT(a.mode, r->mode);
		CHECK_INT(a.uid, r->uid);
		CHECK_INT(a.gid, r->gid);
		CHECK_INT(a.mtime.tv_sec, r->mtime);
		CHECK_INT(a.mtime.tv_nsec, r->mtime_ns);
		CHECK_INT(a.ctime.tv_sec, r->ctime);
		CHECK_INT(a.atime.tv_sec, r->atime);
		if (unit_failed != bad)
			fprintf(stderr, "  row: %s\n", r->what);
	}
}

static void test_decode_details(void)
{
	const struct s3attr_defaults def = { .uid = 1, .gid = 2, .umask = 077, .last_modified = 9 };
	const char *const flat[] = { "atime", "2023-11-14T22:13:20.123456789+01:00", "ctime",
				     "-1.25", NULL };
	struct s3attr_kv kv[MAXKV];
	size_t n = to_kv(flat, kv);
	struct s3attr a;

	CHECK_INT(s3attr_decode(kv, n, &def, &a), S3ATTR_ATIME | S3ATTR_CTIME);
	CHECK_INT(a.atime.tv_nsec, 123456789);
	CHECK_INT(a.ctime.tv_sec, -2);
	CHECK_INT(a.ctime.tv_nsec, 750000000);
	/* the umask applies to the defaults only */
	CHECK_INT(a.mode, 0100600);
	CHECK_INT(a.mtime.tv_sec, 9);
	CHECK_INT(a.mtime.tv_nsec, 0);
	CHECK_INT(s3attr_decode(NULL, 0, &def, &a), 0);
	CHECK_INT(a.uid, 1);
	CHECK_INT(a.gid, 2);

	CHECK_STR(s3attr_kv_get(kv, n, "CTIME"), "-1.25");
	CHECK(s3attr_kv_get(kv, n, "mtime") == NULL);
	CHECK(s3attr_kv_get(NULL, 0, "mtime") == NULL);
}

/* ---- directories ---- */

static void test_is_dir(void)
{
	const struct {
		const char *key;
		uint64_t size;
		const char *ct;
		const char *mode;
		bool want;
	} rows[] = {
		{ "a/", 0, NULL, NULL, true },
		{ "a/", 5, "text/plain", NULL, true },
		{ "a/b/", 0, "binary/octet-stream", "33188", true },
		{ "a_$folder$", 0, NULL, NULL, true },
		{ "d/a_$folder$", 3, NULL, NULL, true },
		{ "_$folder$", 0, NULL, NULL, false },
		{ "a", 0, "application/x-directory", NULL, true },
		{ "a", 0, "application/x-directory; charset=UTF-8", NULL, true },
		{ "a", 0, " application/x-directory ;x=y", NULL, true },
		{ "a", 0, "Application/X-Directory", NULL, true },
		{ "a", 0, "httpd/unix-directory", NULL, true },
		{ "a", 0, "application/x-directoryx", NULL, false },
		{ "a", 0, "application/x-director", NULL, false },
		{ "a", 0, "", NULL, false },
		{ "a", 5, "application/x-directory", NULL, false },
		{ "a", 0, "binary/octet-stream", NULL, false },
		{ "a", 0, NULL, NULL, false },
		{ "a", 0, NULL, "16877", true },
		{ "a", 0, NULL, "40755", true },
		{ "a", 0, NULL, "33188", false },
		{ "a", 0, NULL, "junk", false },
		{ "a", 10, NULL, "16877", false },
		{ "", 0, NULL, NULL, false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct s3attr_kv kv = { .name = (char *)"mode", .value = (char *)rows[i].mode };
		bool got = s3attr_is_dir(rows[i].key, rows[i].size, rows[i].ct, &kv,
					 rows[i].mode ? 1 : 0);

		CHECK_INT(got, rows[i].want);
		if (got != rows[i].want)
			fprintf(stderr, "  row %zu: %s\n", i, rows[i].key);
	}
}

/* ---- xattrs ---- */

/* What s3fs writes for {"user.foo": "bar"}: urlEncodePath of the JSON. */
#define S3FS_FOO "%7B%22user.foo%22%3A%22YmFy%22%7D"
/* {"user.a": "", "user.b": 00 01 02 ff}: '/' stays, '=' is %3D. */
#define S3FS_AB "%7B%22user.a%22%3A%22%22%2C%22user.b%22%3A%22AAEC/w%3D%3D%22%7D"

static void check_xattr(const struct s3attr_xattrs *x, const char *name, const void *v, size_t len)
{
	const struct s3attr_xattr *e = s3attr_xattrs_find(x, name);

	CHECK(e != NULL);
	if (!e)
		return;
	CHECK_INT(e->len, len);
	CHECK(e->len == len && (len == 0 || memcmp(e->value, v, len) == 0));
}

static void test_xattr_s3fs(void)
{
	struct s3attr_xattrs x = { 0 };
	char *enc = NULL;

	/* decode what s3fs wrote, encode it back byte for byte */
	CHECK_INT(s3attr_xattrs_decode(S3FS_FOO, &x), 0);
	CHECK_INT(x.n, 1);
	check_xattr(&x, "user.foo", "bar", 3);
	CHECK_INT(s3attr_xattrs_encode(&x, &enc), 0);
	CHECK_STR(enc, S3FS_FOO);
	free(enc);
	s3attr_xattrs_cleanup(&x);

	CHECK_INT(s3attr_xattrs_decode(S3FS_AB, &x), 0);
	CHECK_INT(x.n, 2);
	check_xattr(&x, "user.a", "", 0);
	check_xattr(&x, "user.b", "\x00\x01\x02\xff", 4);
	CHECK(x.n == 2 && strcmp(x.v[0].name, "user.a") == 0 && x.v[0].value == NULL);
	CHECK_INT(s3attr_xattrs_encode(&x, &enc), 0);
	CHECK_STR(enc, S3FS_AB);
	free(enc);
	s3attr_xattrs_cleanup(&x);
	CHECK(x.v == NULL && x.n == 0);
	s3attr_xattrs_cleanup(&x);

	/* an empty list: no pair at all */
	CHECK_INT(s3attr_xattrs_encode(&x, &enc), 0);
	CHECK(enc == NULL);
}

/* Inputs that decode, and the names/values they give (value in hex). */
static void test_xattr_decode_ok(void)
{
	const struct {
		const char *in;
		size_t n;
		const char *name;
		const char *value;
		size_t len;
	} rows[] = {
		{ "{\"user.foo\":\"YmFy\"}", 1, "user.foo", "bar", 3 },
		{ "  {\"user.foo\" : \"YmFy\"}", 1, "user.foo", "bar", 3 },
		{ "%7b%22user.foo%22%3a%22YmFy%22%7d", 1, "user.foo", "bar", 3 },
		{ "%7B%22user.foo%22:%22YmFy%22%7D", 1, "user.foo", "bar", 3 },
		{ "{\"a\":\"QQ\"}", 1, "a", "A", 1 },
		{ "{\"a\":\"QUI\"}", 1, "a", "AB", 2 },
		{ "{\"a\":\"QUJD\"}", 1, "a", "ABC", 3 },
		{ "{\"a\":\"QUI=\"}", 1, "a", "AB", 2 },
		{ "{\"a\":\"\"}", 1, "a", "", 0 },
		{ "{\"user.\\u00e9\":\"YQ==\"}", 1, "user.\xc3\xa9", "a", 1 },
		{ "{\"user.q\\\"\\\\\":\"YQ==\"}", 1, "user.q\"\\", "a", 1 },
		{ "{\"a\":\"YQ==\",\"b\":\"Yg==\"}", 2, "b", "b", 1 },
		{ "{}", 0, NULL, NULL, 0 },
		{ "%7B%7D", 0, NULL, NULL, 0 },
		{ "", 0, NULL, NULL, 0 },
		{ "   ", 0, NULL, NULL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct s3attr_xattrs x = { 0 };
		int rc = s3attr_xattrs_decode(rows[i].in, &x);

		CHECK_INT(rc, 0);
		CHECK_INT(x.n, rows[i].n);
		if (rc != 0 || x.n != rows[i].n)
			fprintf(stderr, "  row %zu: %s\n", i, rows[i].in);
		if (rows[i].name)
			check_xattr(&x, rows[i].name, rows[i].value, rows[i].len);
		s3attr_xattrs_cleanup(&x);
	}
}

static void test_xattr_decode_bad(void)
{
	static char big[S3ATTR_XATTR_IN_MAX + 2];
	char longname[300 + 16];
	const struct {
		const char *in;
		int rc;
	} rows[] = {
		{ "%7B%22a", -EINVAL },
		{ "%", -EINVAL },
		{ "%7", -EINVAL },
		{ "%G1", -EINVAL },
		{ "%7G", -EINVAL },
		{ "%00", -EINVAL },
		{ "%7B%22a%00%22%3A%22YQ%3D%3D%22%7D", -EINVAL },
		{ "{", -EINVAL },
		{ "}", -EINVAL },
		{ "null", -EINVAL },
		{ "[]", -EINVAL },
		{ "\"a\"", -EINVAL },
		{ "{\"a\":1}", -EINVAL },
		{ "{\"a\":null}", -EINVAL },
		{ "{\"a\":[\"YQ==\"]}", -EINVAL },
		{ "{\"a\":{\"b\":\"YQ==\"}}", -EINVAL },
		{ "{\"a\":\"!!!!\"}", -EINVAL },
		{ "{\"a\":\"YQ=\"}", -EINVAL },
		{ "{\"a\":\"Y\"}", -EINVAL },
		{ "{\"a\":\"Y===\"}", -EINVAL },
		{ "{\"a\":\"Y=Q=\"}", -EINVAL },
		{ "{\"a\":\"YQ== \"}", -EINVAL },
		{ "{\"a\":\"YQ-_\"}", -EINVAL },
		{ "{\"\":\"YQ==\"}", -EINVAL },
		{ "{\"a\\u0000b\":\"YQ==\"}", -EINVAL },
		{ "{\"a\":\"YQ==\",\"a\":\"Yg==\"}", -EINVAL },
		{ "{\"a\":\"YQ==\"} x", -EINVAL },
		{ "{\"a\":\"YQ==\"}{}", -EINVAL },
		{ "{'a':'YQ=='}", -EINVAL },
		{ "{\"a\":\"YQ==\",}", -EINVAL },
		{ "{\"\xff\":\"YQ==\"}", -EINVAL },
		{ "%7B%22%FF%22%3A%22YQ%3D%3D%22%7D", -EINVAL },
		{ "+7B", -EINVAL },
		{ longname, -EINVAL },
		{ big, -E2BIG },
	};

	snprintf(longname, sizeof(longname), "{\"%0300d\":\"\"}", 0);
	memset(big, ' ', sizeof(big) - 1);
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct s3attr_xattrs x = { .v = NULL, .n = 12345 };
		int rc = s3attr_xattrs_decode(rows[i].in, &x);

		CHECK_INT(rc, rows[i].rc);
		if (rc != rows[i].rc)
			fprintf(stderr, "  row %zu: %.40s\n", i, rows[i].in);
		/* out is written only on success */
		CHECK(x.v == NULL && x.n == 12345);
	}
}

/* Every byte value, NULs inside, odd lengths and odd names survive a trip. */
static void test_xattr_round_trip(void)
{
	struct s3attr_xattrs x = { 0 };
	struct s3attr_xattrs y = { 0 };
	unsigned char all[256];
	char *enc = NULL;
	static const char *const names[] = {
		"user.bin", "user.empty",      "user.one",	   "user.two",	     "user.nul",
		"user.ünï", "user.q\"\\/:,{}", "security.selinux", "user.tab\tnl\n",
	};

	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)i;
	CHECK_INT(s3attr_xattrs_set(&x, names[0], all, sizeof(all), 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[1], NULL, 0, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[2], "\xff", 1, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[3], "\xfb\xff", 2, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[4], "a\0b\0", 4, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[5], "v", 1, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[6], "w", 1, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[7], "system_u:object_r:x:s0", 22, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, names[8], "t", 1, 0), 0);
	CHECK_INT(x.n, ARRAY_SIZE(names));
	CHECK_INT(s3attr_xattrs_encode(&x, &enc), 0);
	CHECK(enc && strlen(enc) <= S3ATTR_META_MAX - 5);
	/* header-safe: printable ASCII, no space */
	for (const char *p = enc ? enc : ""; *p; p++)
		CHECK(*p > ' ' && *p < 0x7f);
	CHECK_INT(s3attr_xattrs_decode(enc ? enc : "x", &y), 0);
	CHECK_INT(y.n, x.n);
	for (size_t i = 0; i < x.n && i < y.n; i++) {
		CHECK_STR(y.v[i].name, x.v[i].name);
		check_xattr(&y, x.v[i].name, x.v[i].value, x.v[i].len);
	}
	free(enc);
	s3attr_xattrs_cleanup(&x);
	s3attr_xattrs_cleanup(&y);
}

static void test_xattr_set_remove(void)
{
	struct s3attr_xattrs x = { 0 };
	char name256[257];

	memset(name256, 'n', 256);
	name256[256] = '\0';
	CHECK_INT(s3attr_xattrs_set(&x, "user.a", "1", 1, XATTR_REPLACE), -ENODATA);
	CHECK_INT(s3attr_xattrs_set(&x, "user.a", "1", 1, XATTR_CREATE), 0);
	CHECK_INT(s3attr_xattrs_set(&x, "user.a", "2", 1, XATTR_CREATE), -EEXIST);
	check_xattr(&x, "user.a", "1", 1);
	CHECK_INT(s3attr_xattrs_set(&x, "user.a", "22", 2, XATTR_REPLACE), 0);
	check_xattr(&x, "user.a", "22", 2);
	CHECK_INT(s3attr_xattrs_set(&x, "user.a", "", 0, 0), 0);
	check_xattr(&x, "user.a", "", 0);
	CHECK_INT(s3attr_xattrs_set(&x, "user.b", "b", 1, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, "user.c", "c", 1, 0), 0);
	CHECK_INT(x.n, 3);
	CHECK(s3attr_xattrs_find(&x, "user.A") == NULL);
	CHECK(s3attr_xattrs_find(&x, "user") == NULL);
	CHECK_INT(s3attr_xattrs_set(&x, "", "v", 1, 0), -EINVAL);
	CHECK_INT(s3attr_xattrs_set(&x, name256, "v", 1, 0), -ERANGE);
	CHECK_INT(s3attr_xattrs_set(&x, name256 + 1, "v", 1, 0), 0);
	CHECK_INT(s3attr_xattrs_set(&x, "user.\xff", "v", 1, 0), -EINVAL);
	CHECK_INT(x.n, 4);
	CHECK_INT(s3attr_xattrs_remove(&x, "user.b"), 0);
	CHECK_INT(s3attr_xattrs_remove(&x, "user.b"), -ENODATA);
	CHECK_INT(s3attr_xattrs_remove(&x, "user.zz"), -ENODATA);
	CHECK_INT(x.n, 3);
	CHECK(x.n == 3 && strcmp(x.v[0].name, "user.a") == 0 && strcmp(x.v[1].name, "user.c") == 0);
	CHECK_INT(s3attr_xattrs_remove(&x, "user.a"), 0);
	CHECK_INT(s3attr_xattrs_remove(&x, "user.c"), 0);
	CHECK_INT(s3attr_xattrs_remove(&x, name256 + 1), 0);
	CHECK_INT(x.n, 0);
	s3attr_xattrs_cleanup(&x);
}

/* The 2 KiB budget: one attribute alone too big is -E2BIG, many together -ENOSPC. */
static void test_xattr_budget(void)
{
	static unsigned char zeros[S3ATTR_META_MAX + 1];
	struct s3attr_xattrs x = { 0 };
	char *enc = NULL;
	size_t fit = 0;

	CHECK_INT(s3attr_xattrs_set(&x, "user.big", zeros, sizeof(zeros), 0), -E2BIG);
	/* Find the longest value that fits alone; one more byte must not. */
	for (size_t len = 1400; len < 1600; len++) {
		int rc = s3attr_xattrs_set(&x, "user.big", zeros, len, 0);

		if (rc == 0) {
			fit = len;
			continue;
		}
		CHECK_INT(rc, -E2BIG);
		break;
	}
	CHECK(fit > 1400 && fit < 1599);
	check_xattr(&x, "user.big", zeros, fit);
	CHECK_INT(s3attr_xattrs_encode(&x, &enc), 0);
	/* name "xattr" (5) + value: within S3's 2048 bytes, and tight */
	CHECK(enc && 5 + strlen(enc) <= S3ATTR_META_MAX && 5 + strlen(enc) > S3ATTR_META_MAX - 8);
	free(enc);
	enc = NULL;
	/* a small second one fits alone but not beside the first */
	CHECK_INT(s3attr_xattrs_set(&x, "user.small", zeros, 100, 0), 0);
	CHECK_INT(s3attr_xattrs_encode(&x, &enc), -ENOSPC);
	CHECK(enc == NULL);
	s3attr_xattrs_cleanup(&x);
}

/* ---- merge ---- */

struct merge_row {
	const char *what;
	const char *old[2 * MAXKV + 1];
	unsigned which;
	struct s3attr attr;
	const char *xattr_value; /* set user.k = this; NULL: no list */
	int rc;
	const char *want[2 * MAXKV + 1];
};

#define TS(s, ns)                                                                                  \
	{                                                                                          \
		.tv_sec = (s), .tv_nsec = (ns)                                                     \
	}
#define ATTR(m, u, g, mt, ct, at)                                                                  \
	{                                                                                          \
		m, u, g, TS(mt, 0), TS(ct, 0), TS(at, 0)                                           \
	}
#define NOATTR ATTR(0, 0, 0, 0, 0, 0)

static const struct merge_row merge_rows[] = {
	{ "chmod keeps strangers and order",
	  { "mode", "33188", "uid", "0", "x-custom", "keep", "gid", "0", "mtime", "1", "color",
	    "blue", NULL },
	  S3ATTR_MODE,
	  ATTR(0100600, 0, 0, 0, 0, 0),
	  NULL,
	  0,
	  { "mode", "33152", "uid", "0", "x-custom", "keep", "gid", "0", "mtime", "1", "color",
	    "blue", NULL } },
	{ "create: all six",
	  { NULL },
	  S3ATTR_STAT,
	  ATTR(0100644, 1000, 100, 1700000000, 1700000001, 1700000002),
	  NULL,
	  0,
	  { "mode", "33188", "uid", "1000", "gid", "100", "mtime", "1700000000", "ctime",
	    "1700000001", "atime", "1700000002", NULL } },
	{ "chown appends what was missing",
	  { "mode", "16877", "ctime", "5", NULL },
	  S3ATTR_UID | S3ATTR_GID | S3ATTR_CTIME,
	  ATTR(0, 7, 8, 0, 9, 0),
	  NULL,
	  0,
	  { "mode", "16877", "ctime", "9", "uid", "7", "gid", "8", NULL } },
	{ "symlink mode",
	  { NULL },
	  S3ATTR_MODE,
	  ATTR(0120777, 0, 0, 0, 0, 0),
	  NULL,
	  0,
	  { "mode", "41471", NULL } },
	{ "names matched in any case, written lower",
	  { "Mode", "1", "MTIME", "2", NULL },
	  S3ATTR_MODE | S3ATTR_MTIME,
	  ATTR(0100644, 0, 0, 3, 0, 0),
	  NULL,
	  0,
	  { "mode", "33188", "mtime", "3", NULL } },
	{ "duplicate owned pair: first replaced, second dropped",
	  { "mode", "1", "a", "b", "mode", "2", NULL },
	  S3ATTR_MODE,
	  ATTR(0100644, 0, 0, 0, 0, 0),
	  NULL,
	  0,
	  { "mode", "33188", "a", "b", NULL } },
	{ "nothing to write copies",
	  { "a", "1", "b", "2", NULL },
	  0,
	  NOATTR,
	  NULL,
	  0,
	  { "a", "1", "b", "2", NULL } },
	{ "xattr replaced in place",
	  { "mode", "33188", "xattr", "%7B%7D", "z", "z", NULL },
	  S3ATTR_XATTR,
	  NOATTR,
	  "bar",
	  0,
	  { "mode", "33188", "xattr", "%7B%22user.k%22%3A%22YmFy%22%7D", "z", "z", NULL } },
	{ "xattr appended",
	  { "mode", "33188", NULL },
	  S3ATTR_XATTR,
	  NOATTR,
	  "",
	  0,
	  { "mode", "33188", "xattr", "%7B%22user.k%22%3A%22%22%7D", NULL } },
	{ "no xattrs: the pair is dropped",
	  { "xattr", "%7B%22user.k%22%3A%22%22%7D", "mode", "33188", NULL },
	  S3ATTR_XATTR,
	  NOATTR,
	  NULL,
	  0,
	  { "mode", "33188", NULL } },
	{ "xattr untouched without the bit",
	  { "xattr", "whatever", NULL },
	  S3ATTR_MODE,
	  ATTR(0100644, 0, 0, 0, 0, 0),
	  "ignored",
	  0,
	  { "xattr", "whatever", "mode", "33188", NULL } },
	{ "stranger with CR LF is refused",
	  { "evil", "a\r\nx-amz-acl: public-read", NULL },
	  S3ATTR_MODE,
	  ATTR(0100644, 0, 0, 0, 0, 0),
	  NULL,
	  -EINVAL,
	  { NULL } },
	{ "owned pair with CR LF is simply replaced",
	  { "mode", "1\r\n", NULL },
	  S3ATTR_MODE,
	  ATTR(0100644, 0, 0, 0, 0, 0),
	  NULL,
	  0,
	  { "mode", "33188", NULL } },
	{ "nanoseconds and times before the epoch",
	  { NULL },
	  S3ATTR_MTIME | S3ATTR_CTIME | S3ATTR_ATIME,
	  { 0, 0, 0, TS(1700000000, 5), TS(-2, 750000000), TS(-1, 500000000) },
	  NULL,
	  0,
	  { "mtime", "1700000000.000000005", "ctime", "-1.250000000", "atime", "-0.500000000",
	    NULL } },
	{ "tv_nsec out of range",
	  { NULL },
	  S3ATTR_MTIME,
	  { 0, 0, 0, TS(1, 1000000000), TS(0, 0), TS(0, 0) },
	  NULL,
	  -EINVAL,
	  { NULL } },
	{ "negative tv_nsec",
	  { NULL },
	  S3ATTR_ATIME,
	  { 0, 0, 0, TS(0, 0), TS(0, 0), TS(1, -1) },
	  NULL,
	  -EINVAL,
	  { NULL } },
};

static void run_merge_row(const struct merge_row *r)
{
	struct s3attr_kv old[MAXKV];
	size_t nold = to_kv(r->old, old);
	struct s3attr_xattrs x = { 0 };
	struct s3attr_kvlist out = { .kv = NULL, .n = 777 };
	size_t nwant = 0;
	int bad = unit_failed;
	int rc;

	if (r->xattr_value)
		CHECK_INT(
			s3attr_xattrs_set(&x, "user.k", r->xattr_value, strlen(r->xattr_value), 0),
			0);
	rc = s3attr_merge(old, nold, &r->attr, r->which, r->xattr_value ? &x : NULL, &out);
	CHECK_INT(rc, r->rc);
	if (rc == 0) {
		while (r->want[2 * nwant])
			nwant++;
		CHECK_INT(out.n, nwant);
		for (size_t i = 0; i < out.n && i < nwant; i++) {
			CHECK_STR(out.kv[i].name, r->want[2 * i]);
			CHECK_STR(out.kv[i].value, r->want[2 * i + 1]);
		}
		s3attr_kvlist_cleanup(&out);
		CHECK(out.kv == NULL && out.n == 0);
	} else {
		CHECK(out.kv == NULL && out.n == 777);
	}
	if (unit_failed != bad)
		fprintf(stderr, "  row: %s\n", r->what);
	s3attr_xattrs_cleanup(&x);
}

static void test_merge(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(merge_rows); i++)
		run_merge_row(&merge_rows[i]);
}

/* The budget over all pairs, and NULL attr when only xattrs are written. */
static void test_merge_budget(void)
{
	static char filler[S3ATTR_META_MAX];
	struct s3attr_kv old[2] = { { (char *)"filler", filler }, { (char *)"mode", (char *)"1" } };
	struct s3attr a = { .mode = 0100644 };
	struct s3attr_kvlist out = { 0 };
	struct s3attr_xattrs x = { 0 };

	/* "filler" (6) + value + "mode" (4) + "33188" (5) = 2048 exactly */
	memset(filler, 'f', S3ATTR_META_MAX - 6 - 4 - 5);
	CHECK_INT(s3attr_merge(old, 2, &a, S3ATTR_MODE, NULL, &out), 0);
	CHECK_INT(out.n, 2);
	s3attr_kvlist_cleanup(&out);
	a.mode = 0140777; /* "49663": same length, still fits */
	CHECK_INT(s3attr_merge(old, 2, &a, S3ATTR_MODE, NULL, &out), 0);
	s3attr_kvlist_cleanup(&out);
	/* one more byte anywhere does not */
	filler[S3ATTR_META_MAX - 6 - 4 - 5] = 'f';
	CHECK_INT(s3attr_merge(old, 2, &a, S3ATTR_MODE, NULL, &out), -ENOSPC);
	CHECK(out.kv == NULL);
	/* an xattr that fits alone, but not beside the filler */
	memset(filler, 0, sizeof(filler));
	memset(filler, 'f', 1500);
	CHECK_INT(s3attr_xattrs_set(&x, "user.a", filler, 600, 0), 0);
	CHECK_INT(s3attr_merge(old, 2, NULL, S3ATTR_XATTR, &x, &out), -ENOSPC);
	CHECK_INT(s3attr_merge(old + 1, 1, NULL, S3ATTR_XATTR, &x, &out), 0);
	CHECK_INT(out.n, 2);
	CHECK(out.n == 2 && strcmp(out.kv[1].name, "xattr") == 0);
	s3attr_kvlist_cleanup(&out);
	s3attr_xattrs_cleanup(&x);
}

/* What merge writes, decode reads back the same. */
static void test_merge_decode_round_trip(void)
{
	const struct s3attr in = {
		.mode = 0120777,
		.uid = 4294967294u,
		.gid = 0,
		.mtime = TS(1700000000, 123456789),
		.ctime = TS(-2, 750000000),
		.atime = TS(0, 1),
	};
	const struct s3attr_defaults def = { .last_modified = 1 };
	struct s3attr_kvlist out = { 0 };
	struct s3attr back;

	CHECK_INT(s3attr_merge(NULL, 0, &in, S3ATTR_STAT, NULL, &out), 0);
	CHECK_INT(s3attr_decode(out.kv, out.n, &def, &back), S3ATTR_STAT);
	CHECK_INT(back.mode, in.mode);
	CHECK_INT(back.uid, in.uid);
	CHECK_INT(back.gid, in.gid);
	CHECK_INT(back.mtime.tv_sec, in.mtime.tv_sec);
	CHECK_INT(back.mtime.tv_nsec, in.mtime.tv_nsec);
	CHECK_INT(back.ctime.tv_sec, in.ctime.tv_sec);
	CHECK_INT(back.ctime.tv_nsec, in.ctime.tv_nsec);
	CHECK_INT(back.atime.tv_sec, in.atime.tv_sec);
	CHECK_INT(back.atime.tv_nsec, in.atime.tv_nsec);
	s3attr_kvlist_cleanup(&out);
}

int main(void)
{
	test_decode();
	test_decode_details();
	test_is_dir();
	test_xattr_s3fs();
	test_xattr_decode_ok();
	test_xattr_decode_bad();
	test_xattr_round_trip();
	test_xattr_set_remove();
	test_xattr_budget();
	test_merge();
	test_merge_budget();
	test_merge_decode_round_trip();
	return unit_end("s3attr");
}
