// SPDX-License-Identifier: MIT
/*
 * test_objmap: the path <-> key mapping (meta/objmap.c). Tables of prefixes
 * to normalize, paths to map (with the 255-byte name and 1024-byte key
 * limits exactly at and one past the edge), listing entries to classify
 * (markers, legacy "_$folder$", names that cannot be names, hidden internal
 * folders, tab/newline/unicode names that must stay), and the merge rule
 * applied to a whole listing.
 */
#include "s3vfs/objmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* ---- long strings, built once: L(n) is n bytes of 'a' ---- */

static char *pool[256];
static size_t npool;

/* head + n copies of c + tail, kept until pool_free(). */
static const char *mk(const char *head, char c, size_t n, const char *tail)
{
	size_t hl = strlen(head);
	size_t tl = strlen(tail);
	char *s = malloc(hl + n + tl + 1);

	if (!s || npool == ARRAY_SIZE(pool)) {
		fprintf(stderr, "test_objmap: out of memory\n");
		exit(2);
	}
	memcpy(s, head, hl);
	memset(s + hl, c, n);
	memcpy(s + hl + n, tail, tl + 1);
	pool[npool++] = s;
	return s;
}

/* head + n copies of unit + tail. */
static const char *mkrep(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t ul = strlen(unit);
	char *s = (char *)mk(head, ' ', n * ul, tail);

	for (size_t i = 0; i < n; i++)
		memcpy(s + strlen(head) + i * ul, unit, ul);
	return s;
}

static void pool_free(void)
{
	for (size_t i = 0; i < npool; i++)
		free(pool[i]);
	npool = 0;
}

/* ---- prefixes ---- */

static void test_prefix(void)
{
	const struct {
		const char *in;
		int rc;
		const char *want;
	} rows[] = {
		{ NULL, 0, "" },
		{ "", 0, "" },
		{ "/", 0, "" },
		{ "data", 0, "data/" },
		{ "/data", 0, "data/" },
		{ "data/", 0, "data/" },
		{ "/data/", 0, "data/" },
		{ "a/b/c", 0, "a/b/c/" },
		{ "/a/b/c/", 0, "a/b/c/" },
		{ ".a/..b/...", 0, ".a/..b/.../" },
		{ "tab\there/new\nline", 0, "tab\there/new\nline/" },
		{ "données/日本", 0, "données/日本/" },
		{ "a b", 0, "a b/" },
		{ "a//b", -EINVAL, NULL },
		{ "//", -EINVAL, NULL },
		{ "//a", -EINVAL, NULL },
		{ "a//", -EINVAL, NULL },
		{ "///", -EINVAL, NULL },
		{ ".", -EINVAL, NULL },
		{ "..", -EINVAL, NULL },
		{ "/./", -EINVAL, NULL },
		{ "a/./b", -EINVAL, NULL },
		{ "a/../b", -EINVAL, NULL },
		{ "a/..", -EINVAL, NULL },
		{ "../a", -EINVAL, NULL },
		/* 1023 bytes + '/' is the longest prefix */
		{ mk("", 'p', 1023, ""), 0, mk("", 'p', 1023, "/") },
		{ mk("/", 'p', 1023, "/"), 0, mk("", 'p', 1023, "/") },
		{ mk("", 'p', 1024, ""), -EINVAL, NULL },
		{ mk("", 'p', 1024, "/"), -EINVAL, NULL },
		{ mk("", 'p', 5000, ""), -EINVAL, NULL },
		/* a prefix is never shown as a name: long components are fine */
		{ mk("", 'p', 300, "/x"), 0, mk("", 'p', 300, "/x/") },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		char out[OBJMAP_KEY_BUF];
		int rc;

		snprintf(out, sizeof(out), "untouched");
		rc = objmap_normalize_prefix(rows[i].in, out);
		CHECK_INT(rc, rows[i].rc);
		if (rows[i].rc == 0)
			CHECK_STR(out, rows[i].want);
		else
			CHECK_STR(out, "untouched");
	}
}

static void test_init(void)
{
	const struct {
		const char *prefix;
		const char *internal;
		int rc;
		const char *want_internal;
	} rows[] = {
		{ "/data/", ".s3vfs", 0, ".s3vfs" },
		{ "/data/", ".s3vfs/", 0, ".s3vfs" },
		{ "", NULL, 0, "" },
		{ "", "", 0, "" },
		{ "", "a/b", -EINVAL, NULL },
		{ "", "/", -EINVAL, NULL },
		{ "", "//", -EINVAL, NULL },
		{ "", "/x", -EINVAL, NULL },
		{ "", ".", -EINVAL, NULL },
		{ "", "..", -EINVAL, NULL },
		{ "", mk("", 'i', 255, ""), 0, mk("", 'i', 255, "") },
		{ "", mk("", 'i', 256, ""), -EINVAL, NULL },
		{ "a//b", ".s3vfs", -EINVAL, NULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct objmap m;
		int rc = objmap_init(&m, rows[i].prefix, rows[i].internal);

		CHECK_INT(rc, rows[i].rc);
		if (rc == 0)
			CHECK_STR(m.internal, rows[i].want_internal);
	}
}

/* ---- path -> key ---- */

struct path_row {
	const char *path;
	enum objmap_type type;
	int rc;
	const char *want;
};

static void run_paths(const struct objmap *m, const struct path_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char out[OBJMAP_KEY_BUF];
		int rc;

		snprintf(out, sizeof(out), "untouched");
		rc = objmap_path_to_key(m, rows[i].path, rows[i].type, out);
		CHECK_INT(rc, rows[i].rc);
		if (rc != rows[i].rc)
			fprintf(stderr, "  row %zu: %.60s\n", i,
				rows[i].path ? rows[i].path : "(null)");
		CHECK_STR(out, rows[i].rc == 0 ? rows[i].want : "untouched");
	}
}

static void test_path_to_key(void)
{
	struct objmap m;
	/* "data/" (5) + the path without its leading '/' (1019) = a 1024-byte key. */
	const char *p1024 =
		mk("/", 'a', 255, mk("/", 'b', 255, mk("/", 'c', 255, mk("/", 'd', 251, ""))));
	const char *p1025 =
		mk("/", 'a', 255, mk("/", 'b', 255, mk("/", 'c', 255, mk("/", 'd', 252, ""))));
	const struct path_row rows[] = {
		{ "/", OBJMAP_FILE, 0, "data/" },
		{ "/", OBJMAP_DIR, 0, "data/" },
		{ "/a", OBJMAP_FILE, 0, "data/a" },
		{ "/a", OBJMAP_DIR, 0, "data/a/" },
		{ "/a/b.txt", OBJMAP_FILE, 0, "data/a/b.txt" },
		{ "/a/b/c", OBJMAP_DIR, 0, "data/a/b/c/" },
		{ "/...", OBJMAP_FILE, 0, "data/..." },
		{ "/.a", OBJMAP_FILE, 0, "data/.a" },
		{ "/..a/a..", OBJMAP_FILE, 0, "data/..a/a.." },
		{ "/tab\there", OBJMAP_FILE, 0, "data/tab\there" },
		{ "/new\nline", OBJMAP_FILE, 0, "data/new\nline" },
		{ "/\x01\x1f\x7f", OBJMAP_FILE, 0, "data/\x01\x1f\x7f" },
		{ "/ lead and trail ", OBJMAP_FILE, 0, "data/ lead and trail " },
		{ "/héllo/日本語.txt", OBJMAP_FILE, 0, "data/héllo/日本語.txt" },
		{ "/x_$folder$", OBJMAP_FILE, 0, "data/x_$folder$" },
		{ "/.s3vfsx", OBJMAP_FILE, 0, "data/.s3vfsx" },
		{ "/x.s3vfs", OBJMAP_DIR, 0, "data/x.s3vfs/" },
		{ NULL, OBJMAP_FILE, -EINVAL, NULL },
		{ "", OBJMAP_FILE, -EINVAL, NULL },
		{ "a", OBJMAP_FILE, -EINVAL, NULL },
		{ "a/b", OBJMAP_FILE, -EINVAL, NULL },
		{ "//", OBJMAP_FILE, -EINVAL, NULL },
		{ "//a", OBJMAP_FILE, -EINVAL, NULL },
		{ "/a/", OBJMAP_FILE, -EINVAL, NULL },
		{ "/a/", OBJMAP_DIR, -EINVAL, NULL },
		{ "/a//b", OBJMAP_FILE, -EINVAL, NULL },
		{ "/.", OBJMAP_FILE, -EINVAL, NULL },
		{ "/..", OBJMAP_DIR, -EINVAL, NULL },
		{ "/a/./b", OBJMAP_FILE, -EINVAL, NULL },
		{ "/a/../b", OBJMAP_FILE, -EINVAL, NULL },
		{ "/a/..", OBJMAP_FILE, -EINVAL, NULL },
		{ "/.s3vfs", OBJMAP_DIR, -EPERM, NULL },
		{ "/.s3vfs", OBJMAP_FILE, -EPERM, NULL },
		{ "/a/.s3vfs/cs/1", OBJMAP_FILE, -EPERM, NULL },
		/* names: 255 bytes is a name, 256 is not */
		{ mk("/", 'n', 255, ""), OBJMAP_FILE, 0, mk("data/", 'n', 255, "") },
		{ mk("/d/", 'n', 255, ""), OBJMAP_DIR, 0, mk("data/d/", 'n', 255, "/") },
		{ mk("/", 'n', 256, ""), OBJMAP_FILE, -ENAMETOOLONG, NULL },
		{ mk("/", 'n', 256, "/x"), OBJMAP_FILE, -ENAMETOOLONG, NULL },
		/* 255 bytes of a 3-byte UTF-8 character: 85 characters, a name */
		{ mkrep("/", "€", 85, ""), OBJMAP_FILE, 0, NULL },
		{ mkrep("/", "€", 85, "x"), OBJMAP_FILE, -ENAMETOOLONG, NULL },
		/* keys: 1024 bytes is a key, 1025 is not */
		{ p1024, OBJMAP_FILE, 0, NULL },
		{ p1024, OBJMAP_DIR, -ENAMETOOLONG, NULL },
		{ p1025, OBJMAP_FILE, -ENAMETOOLONG, NULL },
		/* an empty component wins over a long key */
		{ mk("/", 'a', 2000, "//"), OBJMAP_FILE, -ENAMETOOLONG, NULL },
	};
	struct path_row fixed[ARRAY_SIZE(rows)];
	char want1024[OBJMAP_KEY_BUF];

	CHECK_INT(strlen(p1024), 1020);
	CHECK_INT(objmap_init(&m, "/data/", OBJMAP_INTERNAL_DEF), 0);
	snprintf(want1024, sizeof(want1024), "data/%s", p1024 + 1);
	CHECK_INT(strlen(want1024), 1024);
	memcpy(fixed, rows, sizeof(rows));
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		if (fixed[i].rc == 0 && !fixed[i].want) {
			if (fixed[i].path == p1024)
				fixed[i].want = want1024;
			else
				fixed[i].want = mk("data/", 'x', 0, fixed[i].path + 1);
		}
	}
	run_paths(&m, fixed, ARRAY_SIZE(fixed));
}

static void test_path_to_key_no_prefix(void)
{
	struct objmap m;
	const struct path_row rows[] = {
		{ "/", OBJMAP_DIR, 0, "" },
		{ "/", OBJMAP_FILE, 0, "" },
		{ "/a", OBJMAP_FILE, 0, "a" },
		{ "/a", OBJMAP_DIR, 0, "a/" },
		/* nothing is internal without an internal folder */
		{ "/.s3vfs", OBJMAP_DIR, 0, ".s3vfs/" },
		/* with no prefix the key is the path without its '/': 1024 bytes */
		{ mk("/", 'a', 255, mk("/", 'b', 255, mk("/", 'c', 255, mk("/", 'd', 254, "/e")))),
		  OBJMAP_FILE, 0,
		  mk("", 'a', 255, mk("/", 'b', 255, mk("/", 'c', 255, mk("/", 'd', 254, "/e")))) },
		{ mk("/", 'a', 255, mk("/", 'b', 255, mk("/", 'c', 255, mk("/", 'd', 254, "/e")))),
		  OBJMAP_DIR, -ENAMETOOLONG, NULL },
		{ mk("/", 'a', 255, mk("/", 'b', 255, mk("/", 'c', 255, mk("/", 'd', 255, "/e")))),
		  OBJMAP_FILE, -ENAMETOOLONG, NULL },
	};

	CHECK_INT(objmap_init(&m, "", NULL), 0);
	run_paths(&m, rows, ARRAY_SIZE(rows));
}

/* ---- key -> child name ---- */

struct child_row {
	const char *dir_key;
	const char *key;
	bool is_prefix;
	enum objmap_child_kind kind;
	const char *name;
};

#define F	false
#define P	true
#define SKIP	OBJMAP_SKIP
#define FILE_	OBJMAP_CHILD_FILE
#define IMPLIED OBJMAP_CHILD_DIR_IMPLIED
#define FOLDER	OBJMAP_CHILD_DIR_FOLDER
#define MARKER	OBJMAP_CHILD_DIR_MARKER

static void run_children(const struct objmap *m, const struct child_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char name[OBJMAP_NAME_BUF];
		enum objmap_child_kind k;

		snprintf(name, sizeof(name), "untouched");
		k = objmap_child(m, rows[i].dir_key, rows[i].key, rows[i].is_prefix, name);
		CHECK_INT(k, rows[i].kind);
		if (k != rows[i].kind)
			fprintf(stderr, "  row %zu: %.60s\n", i, rows[i].key);
		CHECK_STR(name, rows[i].kind == SKIP ? "untouched" : rows[i].name);
	}
}

static void test_child(void)
{
	struct objmap m;
	const struct child_row rows[] = {
		{ "data/a/", "data/a/x", F, FILE_, "x" },
		{ "data/a/", "data/a/x.txt", F, FILE_, "x.txt" },
		{ "data/a/", "data/a/x/", P, IMPLIED, "x" },
		{ "data/a/", "data/a/x/", F, MARKER, "x" },
		{ "data/a/", "data/a/x/y", F, IMPLIED, "x" },
		{ "data/a/", "data/a/x/y/", F, IMPLIED, "x" },
		{ "data/a/", "data/a/x//y", F, IMPLIED, "x" },
		{ "data/a/", "data/a/x_$folder$", F, FOLDER, "x" },
		{ "data/a/", "data/a/x y_$folder$", F, FOLDER, "x y" },
		{ "data/a/", "data/a/x_$folder$/", P, IMPLIED, "x_$folder$" },
		{ "data/a/", "data/a/x_$folder$x", F, FILE_, "x_$folder$x" },
		{ "data/a/", "data/a/x_$FOLDER$", F, FILE_, "x_$FOLDER$" },
		{ "data/a/", "data/a/$folder$", F, FILE_, "$folder$" },
		{ "data/a/", "data/a/_$folder$", F, SKIP, NULL },
		{ "data/a/", "data/a/._$folder$", F, SKIP, NULL },
		{ "data/a/", "data/a/.._$folder$", F, SKIP, NULL },
		{ "data/a/", "data/a/..._$folder$", F, FOLDER, "..." },
		/* the directory's own marker, empty and dot components */
		{ "data/a/", "data/a/", F, SKIP, NULL },
		{ "data/a/", "data/a//", P, SKIP, NULL },
		{ "data/a/", "data/a//", F, SKIP, NULL },
		{ "data/a/", "data/a//b", F, SKIP, NULL },
		{ "data/a/", "data/a/.", F, SKIP, NULL },
		{ "data/a/", "data/a/..", F, SKIP, NULL },
		{ "data/a/", "data/a/./", P, SKIP, NULL },
		{ "data/a/", "data/a/../", P, SKIP, NULL },
		{ "data/a/", "data/a/./x", F, SKIP, NULL },
		{ "data/a/", "data/a/.x", F, FILE_, ".x" },
		{ "data/a/", "data/a/...", F, FILE_, "..." },
		{ "data/a/", "data/a/.../", P, IMPLIED, "..." },
		/* the internal folder, at any level and in any form */
		{ "data/a/", "data/a/.s3vfs", F, SKIP, NULL },
		{ "data/a/", "data/a/.s3vfs/", P, SKIP, NULL },
		{ "data/a/", "data/a/.s3vfs/", F, SKIP, NULL },
		{ "data/a/", "data/a/.s3vfs/cs/00000000000000000001-x-y", F, SKIP, NULL },
		{ "data/a/", "data/a/.s3vfs_$folder$", F, SKIP, NULL },
		{ "data/", "data/.s3vfs/", P, SKIP, NULL },
		{ "data/a/", "data/a/.s3vfsx", F, FILE_, ".s3vfsx" },
		{ "data/a/", "data/a/.S3VFS/", P, IMPLIED, ".S3VFS" },
		/* not under the directory, or not a prefix we asked for */
		{ "data/a/", "data/b/x", F, SKIP, NULL },
		{ "data/a/", "data/ax", F, SKIP, NULL },
		{ "data/a/", "data/a", F, SKIP, NULL },
		{ "data/a/", "other", F, SKIP, NULL },
		{ "data/a/", "data/a/x", P, SKIP, NULL },
		/* every byte but '/' and NUL is a name byte */
		{ "data/a/", "data/a/t\tb", F, FILE_, "t\tb" },
		{ "data/a/", "data/a/n\nl", F, FILE_, "n\nl" },
		{ "data/a/", "data/a/cr\r", F, FILE_, "cr\r" },
		{ "data/a/", "data/a/\x01\x7f", F, FILE_, "\x01\x7f" },
		{ "data/a/", "data/a/ ", F, FILE_, " " },
		{ "data/a/", "data/a/\\", F, FILE_, "\\" },
		{ "data/a/", "data/a/日本語.txt", F, FILE_, "日本語.txt" },
		{ "data/a/", "data/a/日本/", P, IMPLIED, "日本" },
		{ "data/a/", "data/a/\xff\xfe", F, FILE_, "\xff\xfe" },
	};

	CHECK_INT(objmap_init(&m, "data", ".s3vfs/"), 0);
	run_children(&m, rows, ARRAY_SIZE(rows));
}

/* The 255-byte limit in every form, and a mount of a whole bucket. */
static void test_child_edges(void)
{
	struct objmap m;
	const struct child_row rows[] = {
		/* 255-byte names are names, 256-byte ones are not */
		{ "data/a/", mk("data/a/", 'n', 255, ""), F, FILE_, mk("", 'n', 255, "") },
		{ "data/a/", mk("data/a/", 'n', 255, "/"), P, IMPLIED, mk("", 'n', 255, "") },
		{ "data/a/", mk("data/a/", 'n', 255, "/"), F, MARKER, mk("", 'n', 255, "") },
		{ "data/a/", mk("data/a/", 'n', 255, "_$folder$"), F, FOLDER,
		  mk("", 'n', 255, "") },
		{ "data/a/", mk("data/a/", 'n', 256, ""), F, SKIP, NULL },
		{ "data/a/", mk("data/a/", 'n', 256, "/"), P, SKIP, NULL },
		{ "data/a/", mk("data/a/", 'n', 256, "/x"), F, SKIP, NULL },
		{ "data/a/", mk("data/a/", 'n', 256, "_$folder$"), F, SKIP, NULL },
		/* the 256-byte "x_$folder$" names a 247-byte directory */
		{ "data/a/", mk("data/a/", 'n', 247, "_$folder$"), F, FOLDER,
		  mk("", 'n', 247, "") },
		/* a bucket-root mount lists with the empty prefix */
		{ "", "x", F, FILE_, "x" },
		{ "", "x/", P, IMPLIED, "x" },
		{ "", "x/", F, MARKER, "x" },
		{ "", "/x", F, SKIP, NULL },
		{ "", "/", P, SKIP, NULL },
		{ "", "", F, SKIP, NULL },
		{ "", "x_$folder$", F, FOLDER, "x" },
	};

	CHECK_INT(objmap_init(&m, "data", ".s3vfs/"), 0);
	run_children(&m, rows, ARRAY_SIZE(rows));
}

static void test_child_no_internal(void)
{
	struct objmap m;
	const struct child_row rows[] = {
		{ "", ".s3vfs/", P, IMPLIED, ".s3vfs" },
		{ "", ".s3vfs", F, FILE_, ".s3vfs" },
		{ "", "_$folder$", F, SKIP, NULL },
	};

	CHECK_INT(objmap_init(&m, NULL, NULL), 0);
	run_children(&m, rows, ARRAY_SIZE(rows));
}

/* ---- the merge rule ---- */

static void test_merge(void)
{
	const struct {
		enum objmap_child_kind a, b, want;
	} rows[] = {
		{ SKIP, SKIP, SKIP },	     { SKIP, FILE_, FILE_ },
		{ FILE_, SKIP, FILE_ },	     { FILE_, FILE_, FILE_ },
		{ FILE_, IMPLIED, IMPLIED }, { IMPLIED, FILE_, IMPLIED },
		{ FILE_, FOLDER, FOLDER },   { FOLDER, FILE_, FOLDER },
		{ FILE_, MARKER, MARKER },   { IMPLIED, FOLDER, FOLDER },
		{ FOLDER, IMPLIED, FOLDER }, { IMPLIED, MARKER, MARKER },
		{ MARKER, IMPLIED, MARKER }, { FOLDER, MARKER, MARKER },
		{ MARKER, FOLDER, MARKER },  { MARKER, SKIP, MARKER },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		CHECK_INT(objmap_child_merge(rows[i].a, rows[i].b), rows[i].want);
	CHECK(!objmap_child_is_dir(SKIP));
	CHECK(!objmap_child_is_dir(FILE_));
	CHECK(objmap_child_is_dir(IMPLIED));
	CHECK(objmap_child_is_dir(FOLDER));
	CHECK(objmap_child_is_dir(MARKER));
}

/*
 * One listing of "data/a/" (delimiter '/', keys in S3's byte order, then the
 * prefixes) through objmap_child and objmap_child_merge, as a readdir would:
 * every name once, directories winning over files.
 */
static void test_listing(void)
{
	const struct {
		const char *key;
		bool is_prefix;
	} page[] = {
		{ "data/a/", F },
		{ "data/a/.s3vfs_$folder$", F },
		{ "data/a/both", F },
		{ "data/a/both_$folder$", F },
		{ "data/a/file", F },
		{ "data/a/legacy_$folder$", F },
		{ "data/a/x", F },
		{ "data/a/x_$folder$", F },
		{ "data/a//", P },
		{ "data/a/.s3vfs/", P },
		{ "data/a/both/", P },
		{ "data/a/legacy/", P },
		{ "data/a/x/", P },
		{ "data/a/../", P },
		{ mk("data/a/", 'n', 256, "/"), P },
	};
	static const struct {
		const char *name;
		enum objmap_child_kind kind;
	} want[] = {
		{ "both", FOLDER },
		{ "file", FILE_ },
		{ "legacy", FOLDER },
		{ "x", FOLDER },
	};
	struct {
		char name[OBJMAP_NAME_BUF];
		enum objmap_child_kind kind;
	} seen[ARRAY_SIZE(page)];
	size_t nseen = 0;
	struct objmap m;

	CHECK_INT(objmap_init(&m, "data", OBJMAP_INTERNAL_DEF), 0);
	for (size_t i = 0; i < ARRAY_SIZE(page); i++) {
		char name[OBJMAP_NAME_BUF];
		enum objmap_child_kind k =
			objmap_child(&m, "data/a/", page[i].key, page[i].is_prefix, name);
		size_t j;

		if (k == SKIP)
			continue;
		for (j = 0; j < nseen && strcmp(seen[j].name, name) != 0; j++)
			;
		if (j == nseen) {
			snprintf(seen[nseen].name, sizeof(seen[nseen].name), "%s", name);
			seen[nseen++].kind = k;
		} else {
			seen[j].kind = objmap_child_merge(seen[j].kind, k);
		}
	}
	CHECK_INT(nseen, ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want) && i < nseen; i++) {
		CHECK_STR(seen[i].name, want[i].name);
		CHECK_INT(seen[i].kind, want[i].kind);
	}
}

int main(void)
{
	test_prefix();
	test_init();
	test_path_to_key();
	test_path_to_key_no_prefix();
	test_child();
	test_child_edges();
	test_child_no_internal();
	test_merge();
	test_listing();
	pool_free();
	return unit_end("objmap");
}
