// SPDX-License-Identifier: MIT
/*
 * test_meta_cache: the metadata cache (meta/cache.c) and the pending-upload
 * journal (meta/journal.c) against their headers: entries, fills refused
 * after a write, keys of any bytes, listing pages that keep known metadata,
 * directory completeness and a 10,000-entry walk, HEAD results, blobs, the
 * journal, reopen, the rebuild of damaged, foreign and newer files with the
 * journal salvaged, the directory checks, and four threads at once. Each
 * test uses its own directory under a mkdtemp() root, removed at the end.
 */
#include "s3vfs/meta_cache.h"
#include "s3vfs/meta_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#define DB "test.db"

static char root[] = "/tmp/s3vfs-meta-cache-XXXXXX";

/* A path under root (not created); static storage, the last 4 calls' stay valid. */
static const char *test_dir(const char *name)
{
	static char paths[4][512];
	static unsigned next;
	char *p = paths[next++ % ARRAY_SIZE(paths)];

	snprintf(p, sizeof(paths[0]), "%s/%s", root, name);
	return p;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static struct meta_cache *open_ok(const char *dir)
{
	struct meta_cache *mc = NULL;

	CHECK_INT(meta_cache_open(dir, DB, &mc), 0);
	CHECK(mc != NULL);
	return mc;
}

static struct meta_entry file_entry(uint64_t size, const char *etag, int64_t lm)
{
	struct meta_entry e = { .kind = META_KIND_FILE, .size = size, .mode = S_IFREG | 0644 };

	e.uid = 1000;
	e.gid = 1000;
	e.mtime.tv_sec = lm;
	e.ctime.tv_sec = lm;
	e.last_modified = lm;
	snprintf(e.etag, sizeof(e.etag), "%s", etag);
	return e;
}

/* A listing item as a listing gives it: defaults, metadata unknown. */
static struct meta_list_item list_item(const char *key, enum meta_kind kind, uint64_t size,
				       const char *etag, int64_t lm)
{
	struct meta_list_item it = { .key = key, .e = file_entry(size, etag, lm) };

	it.e.kind = kind;
	it.e.uid = 0;
	it.e.gid = 0;
	it.e.mode = (kind == META_KIND_DIR ? S_IFDIR | 0755 : S_IFREG | 0644);
	return it;
}

/* Lookup that must hit; returns the entry (cleaned up by the caller). */
static struct meta_entry lookup_ok(struct meta_cache *mc, const char *key)
{
	struct meta_entry e = { 0 };
	int64_t age = -1;

	int rc = meta_cache_lookup(mc, key, &e, &age);
	CHECK_INT(rc, 0);
	if (rc == 0)
		CHECK(age >= 0 && age < 600000);
	return e;
}

static int lookup_rc(struct meta_cache *mc, const char *key)
{
	struct meta_entry e = { 0 };
	int64_t age = 0;
	int rc = meta_cache_lookup(mc, key, &e, &age);

	meta_entry_cleanup(&e);
	return rc;
}

static enum meta_kind lookup_kind(struct meta_cache *mc, const char *key)
{
	struct meta_entry e = lookup_ok(mc, key);

	meta_entry_cleanup(&e);
	return e.kind;
}

/* ---- open: directory checks ------------------------------------------- */

static void test_open_dir(void)
{
	static const struct {
		const char *name;
		mode_t mode;
		int want;
	} rows[] = {
		{ "mode0700", 0700, 0 },       { "mode0755", 0755, 0 },
		{ "mode0777", 0777, -EACCES }, { "mode0775", 0775, -EACCES },
		{ "mode0757", 0757, -EACCES }, { "mode1777", 01777, -EACCES },
	};
	struct meta_cache *mc = NULL;
	struct stat st;

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *d = test_dir(rows[i].name);
		CHECK_INT(mkdir(d, 0700), 0);
		CHECK_INT(chmod(d, rows[i].mode), 0);
		mc = NULL;
		CHECK_INT(meta_cache_open(d, DB, &mc), rows[i].want);
		CHECK((mc != NULL) == (rows[i].want == 0));
		meta_cache_close(mc);
	}

	/* Missing: created 0700, the file 0600, and a second open is refused. */
	char created[512];
	snprintf(created, sizeof(created), "%s", test_dir("created"));
	const char *d = created;
	mc = open_ok(d);
	CHECK_INT(stat(d, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0700);
	CHECK_INT(stat(test_dir("created/" DB), &st), 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	struct meta_cache *second = NULL;
	CHECK_INT(meta_cache_open(d, DB, &second), -EBUSY);
	CHECK(second == NULL);
	CHECK_INT(meta_cache_open(d, "other.db", &second), 0); /* another name is another cache */
	meta_cache_close(second);
	meta_cache_close(mc);
	mc = open_ok(d); /* the lock went with the handle */
	meta_cache_close(mc);
	meta_cache_close(NULL);

	/* A file left 0644 is made 0600. */
	CHECK_INT(chmod(test_dir("created/" DB), 0644), 0);
	mc = open_ok(d);
	CHECK_INT(stat(test_dir("created/" DB), &st), 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	meta_cache_close(mc);

	/* The database file may not be a symlink. */
	CHECK_INT(symlink("/dev/null", test_dir("created/link.db")), 0);
	CHECK_INT(meta_cache_open(d, "link.db", &mc), -EACCES);

	static const char *const bad_names[] = { "", ".", "..", "a/b", "/x" };
	for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++)
		CHECK_INT(meta_cache_open(d, bad_names[i], &mc), -EINVAL);
	CHECK_INT(meta_cache_open(test_dir("no/such/parent"), DB, &mc), -ENOENT);

	/* Owned by someone else: only root can arrange that. */
	if (geteuid() == 0) {
		d = test_dir("foreign-owner");
		CHECK_INT(mkdir(d, 0700), 0);
		CHECK_INT(chown(d, 65534, 65534), 0);
		CHECK_INT(meta_cache_open(d, DB, &mc), -EACCES);
	}
}

/* ---- entries ---------------------------------------------------------- */

static void test_entries(void)
{
	struct meta_cache *mc = open_ok(test_dir("entries"));
	struct meta_entry e = file_entry(1234, "\"e1\"", 1700000000);

	e.mtime.tv_nsec = 123456789;
	e.ctime.tv_sec = 1700000001;
	e.ctime.tv_nsec = 5;
	e.meta_known = true;
	CHECK_INT(lookup_rc(mc, "a/file"), -ENOENT);
	CHECK_INT(meta_cache_upsert(mc, "a/file", &e, NULL), 0);
	struct meta_entry got = lookup_ok(mc, "a/file");
	CHECK_INT(got.kind, META_KIND_FILE);
	CHECK_INT(got.size, 1234);
	CHECK_INT(got.mode, S_IFREG | 0644);
	CHECK_INT(got.uid, 1000);
	CHECK_INT(got.gid, 1000);
	CHECK_INT(got.mtime.tv_sec, 1700000000);
	CHECK_INT(got.mtime.tv_nsec, 123456789);
	CHECK_INT(got.ctime.tv_sec, 1700000001);
	CHECK_INT(got.ctime.tv_nsec, 5);
	CHECK_STR(got.etag, "\"e1\"");
	CHECK_INT(got.last_modified, 1700000000);
	CHECK(got.meta_known);
	CHECK(got.symlink == NULL);
	CHECK(got.validated_ms > 0);
	meta_entry_cleanup(&got);

	/* A symlink with its target. */
	struct meta_entry l = file_entry(6, "\"l\"", 5);
	l.kind = META_KIND_SYMLINK;
	l.mode = S_IFLNK | 0777;
	l.symlink = (char *)"../target\nwith newline";
	CHECK_INT(meta_cache_upsert(mc, "a/link", &l, NULL), 0);
	got = lookup_ok(mc, "a/link");
	CHECK_INT(got.kind, META_KIND_SYMLINK);
	CHECK_STR(got.symlink, "../target\nwith newline");
	meta_entry_cleanup(&got);
	CHECK(got.symlink == NULL);

	/* 304: touch keeps the data; another etag is a miss. */
	CHECK_INT(meta_cache_touch(mc, "a/file", "\"e1\"", NULL), 0);
	CHECK_INT(meta_cache_touch(mc, "a/file", "\"other\"", NULL), -ENOENT);
	CHECK_INT(meta_cache_touch(mc, "a/none", "\"e1\"", NULL), -ENOENT);

	/* Negative, then forgotten. */
	CHECK_INT(meta_cache_mark_negative(mc, "a/file", NULL), 0);
	CHECK_INT(lookup_kind(mc, "a/file"), META_KIND_NEGATIVE);
	CHECK_INT(meta_cache_touch(mc, "a/file", "", NULL), -ENOENT);
	CHECK_INT(meta_cache_delete(mc, "a/file"), 0);
	CHECK_INT(lookup_rc(mc, "a/file"), -ENOENT);
	CHECK_INT(meta_cache_delete(mc, "a/file"), 0); /* nothing known: fine */

	/* Bad arguments. */
	struct meta_entry bad = file_entry(1, "x", 1);
	bad.kind = (enum meta_kind)7;
	CHECK_INT(meta_cache_upsert(mc, "k", &bad, NULL), -EINVAL);
	bad = file_entry(1, "x", 1);
	memset(bad.etag, 'e', sizeof(bad.etag)); /* no NUL */
	CHECK_INT(meta_cache_upsert(mc, "k", &bad, NULL), -EINVAL);
	bad = file_entry(1, "x", 1);
	bad.mtime.tv_nsec = 1000000000;
	CHECK_INT(meta_cache_upsert(mc, "k", &bad, NULL), -EINVAL);
	CHECK_INT(meta_cache_upsert(mc, NULL, &e, NULL), -EINVAL);
	CHECK_INT(meta_cache_touch(mc, "k", NULL, NULL), -EINVAL);
	meta_cache_close(mc);
}

/* A fill is refused after a write by this mount, never the other way round. */
static void test_fills(void)
{
	struct meta_cache *mc = open_ok(test_dir("fills"));
	struct meta_entry mine = file_entry(10, "\"mine\"", 2);
	struct meta_entry old = file_entry(5, "\"old\"", 1);
	struct meta_fill f1, f2;

	meta_cache_fill_begin(mc, &f1);
	CHECK(f1.started_ms > 0);
	CHECK_INT(meta_cache_upsert(mc, "k", &old, &f1), 0); /* nothing written since */
	CHECK_INT(meta_cache_upsert(mc, "k", &mine, NULL), 0);
	CHECK_INT(meta_cache_upsert(mc, "k", &old, &f1), -EAGAIN);
	CHECK_INT(meta_cache_mark_negative(mc, "k", &f1), -EAGAIN);
	CHECK_INT(meta_cache_touch(mc, "k", "\"mine\"", &f1), -EAGAIN);
	struct meta_entry got = lookup_ok(mc, "k");
	CHECK_INT(got.size, 10);
	meta_entry_cleanup(&got);

	/* A newer fill passes and does not open the door to the older one. */
	meta_cache_fill_begin(mc, &f2);
	CHECK_INT(meta_cache_upsert(mc, "k", &mine, &f2), 0);
	CHECK_INT(meta_cache_touch(mc, "k", "\"mine\"", &f2), 0);
	CHECK_INT(meta_cache_upsert(mc, "k", &old, &f1), -EAGAIN);

	/* Writes to other keys do not refuse a fill; forgetting any key does. */
	meta_cache_fill_begin(mc, &f1);
	CHECK_INT(meta_cache_upsert(mc, "other", &mine, NULL), 0);
	CHECK_INT(meta_cache_upsert(mc, "k2", &old, &f1), 0);
	CHECK_INT(meta_cache_delete(mc, "other"), 0);
	CHECK_INT(meta_cache_upsert(mc, "k3", &old, &f1), -EAGAIN);
	CHECK_INT(lookup_rc(mc, "k3"), -ENOENT);
	meta_cache_close(mc);
}

/* Keys are bytes: any but NUL, up to 1024 of them. */
static void test_keys(void)
{
	static char long_key[META_KEY_MAX + 1];
	static char too_long[META_KEY_MAX + 2];
	static char long_slashes[META_KEY_MAX + 1];
	memset(long_key, 'k', META_KEY_MAX);
	memset(too_long, 'k', META_KEY_MAX + 1);
	for (size_t i = 0; i < META_KEY_MAX; i++)
		long_slashes[i] = i % 4 == 3 ? '/' : 'd';
	const char *const keys[] = {
		"plain",	"日本語/ファイル.txt", "emoji/😀.png",
		"new\nline",	"tab\tand\rcr",	       " spaces ",
		"a//b",		"../dots/./x",	       "quote'\"; DROP TABLE entry; --",
		"\x01\x02\x7f", "\xff\xfe not utf-8",  "%00%2F",
		long_key,	long_slashes,
	};
	struct meta_cache *mc = open_ok(test_dir("keys"));

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		struct meta_entry e = file_entry(100 + i, "\"k\"", 1);
		CHECK_INT(meta_cache_upsert(mc, keys[i], &e, NULL), 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		struct meta_entry got = lookup_ok(mc, keys[i]);
		CHECK_INT(got.size, 100 + i); /* each key its own row */
		meta_entry_cleanup(&got);
	}
	struct meta_entry e = file_entry(1, "\"k\"", 1);
	CHECK_INT(meta_cache_upsert(mc, too_long, &e, NULL), -ENAMETOOLONG);
	CHECK_INT(lookup_rc(mc, too_long), -ENAMETOOLONG);
	CHECK_INT(meta_cache_mark_negative(mc, too_long, NULL), -ENAMETOOLONG);
	CHECK_INT(meta_cache_delete(mc, too_long), -ENAMETOOLONG);
	CHECK_INT(meta_cache_dir_invalidate(mc, too_long), -ENAMETOOLONG);
	/* A prefix of a key is another key. */
	CHECK_INT(lookup_rc(mc, "plai"), -ENOENT);
	CHECK_INT(lookup_rc(mc, "plain "), -ENOENT);
	meta_cache_close(mc);
}

/* ---- listing pages ---------------------------------------------------- */

/* What test_page_merge() starts from: known metadata from HEADs, a
 * directory with its own mode, HEAD results of versions no entry has yet,
 * and "d/old" from an earlier listing. */
static void page_merge_setup(struct meta_cache *mc)
{
	struct meta_fill f;
	struct meta_entry known = file_entry(3, "\"A1\"", 100);
	struct meta_entry dir = file_entry(0, "\"D\"", 50);
	struct meta_headinfo h = { .mode = S_IFREG | 0600, .uid = 7, .gid = 8 };

	known.mode = S_IFREG | 0640;
	known.uid = 42;
	known.meta_known = true;
	CHECK_INT(meta_cache_upsert(mc, "d/a", &known, NULL), 0);
	CHECK_INT(meta_cache_upsert(mc, "d/changes", &known, NULL), 0);
	dir.kind = META_KIND_DIR;
	dir.mode = S_IFDIR | 0700;
	dir.meta_known = true;
	CHECK_INT(meta_cache_upsert(mc, "d/sub/", &dir, NULL), 0);
	h.mtime.tv_sec = 99;
	CHECK_INT(meta_cache_headinfo_put(mc, "d/b", "\"B1\"", 200, &h), 0);
	h.mode = S_IFLNK | 0777;
	CHECK_INT(meta_cache_headinfo_put(mc, "d/ln", "\"L1\"", 300, &h), 0);
	meta_cache_fill_begin(mc, &f);
	struct meta_list_item gone = list_item("d/old", META_KIND_FILE, 1, "\"O\"", 1);
	CHECK_INT(meta_cache_put_page(mc, &f, "d/", &gone, 1, false), 0);
	usleep(2000); /* the next listing must start after "d/old" was validated */
}

static void test_page_merge(void)
{
	static const struct {
		const char *key;
		enum meta_kind kind;
		mode_t mode;
		uid_t uid;
		uint64_t size;
		bool known;
		const char *etag;
	} want[] = {
		{ "d/a", META_KIND_FILE, S_IFREG | 0640, 42, 3, true, "\"A1\"" },	  /* kept */
		{ "d/changes", META_KIND_FILE, S_IFREG | 0644, 0, 9, false, "\"A2\"" },	  /* new */
		{ "d/b", META_KIND_FILE, S_IFREG | 0600, 7, 4, true, "\"B1\"" },	  /* HEAD */
		{ "d/ln", META_KIND_SYMLINK, S_IFLNK | 0777, 7, 5, true, "\"L1\"" },	  /* HEAD */
		{ "d/sub/", META_KIND_DIR, S_IFDIR | 0700, 1000, 0, true, "\"D\"" },	  /* kept */
		{ "d/written", META_KIND_FILE, S_IFREG | 0644, 1000, 7, false, "\"W\"" }, /* ours */
		{ "d/new", META_KIND_FILE, S_IFREG | 0644, 0, 11, false, "\"N\"" },
	};
	struct meta_cache *mc = open_ok(test_dir("pages"));
	struct meta_headinfo h;
	struct meta_fill f;
	int64_t age = -1;

	if (!mc)
		return;
	page_merge_setup(mc);
	meta_cache_fill_begin(mc, &f);
	struct meta_entry mine = file_entry(7, "\"W\"", 400);
	CHECK_INT(meta_cache_upsert(mc, "d/written", &mine, NULL), 0); /* after the fill began */
	struct meta_list_item page[] = {
		list_item("d/a", META_KIND_FILE, 3, "\"A1\"", 100),	  /* same version */
		list_item("d/changes", META_KIND_FILE, 9, "\"A2\"", 101), /* new version */
		list_item("d/b", META_KIND_FILE, 4, "\"B1\"", 200),	  /* HEAD result known */
		list_item("d/ln", META_KIND_FILE, 5, "\"L1\"", 300),	  /* ... of a symlink */
		list_item("d/sub/", META_KIND_DIR, 0, "", 0),		  /* CommonPrefix */
		list_item("d/written", META_KIND_FILE, 99, "\"X\"", 1),	  /* older than ours */
		list_item("d/new", META_KIND_FILE, 11, "\"N\"", 500),
	};
	CHECK_INT(meta_cache_put_page(mc, &f, "d/", page, ARRAY_SIZE(page), true), 0);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		struct meta_entry got = lookup_ok(mc, want[i].key);
		CHECK_INT(got.kind, want[i].kind);
		CHECK_INT(got.mode, want[i].mode);
		CHECK_INT(got.uid, want[i].uid);
		CHECK_INT(got.size, want[i].size);
		CHECK_INT(got.meta_known, want[i].known);
		CHECK_STR(got.etag, want[i].etag);
		CHECK(got.symlink == NULL); /* a target is a body: not in a listing */
		meta_entry_cleanup(&got);
	}
	struct meta_entry got = lookup_ok(mc, "d/b");
	CHECK_INT(got.gid, 8);
	CHECK_INT(got.mtime.tv_sec, 99);
	meta_entry_cleanup(&got);

	/* Complete: unlisted names do not exist, "d/old" included. */
	CHECK_INT(meta_cache_dir_lookup(mc, "d/", &age), 0);
	CHECK(age >= 0);
	CHECK_INT(lookup_kind(mc, "d/old"), META_KIND_NEGATIVE);
	CHECK_INT(lookup_kind(mc, "d/nothing"), META_KIND_NEGATIVE);
	CHECK_INT(lookup_kind(mc, "d/nothing/"), META_KIND_NEGATIVE);
	CHECK_INT(lookup_rc(mc, "d/sub/deeper"), -ENOENT); /* d/sub/ was not listed */
	CHECK_INT(lookup_rc(mc, "e/x"), -ENOENT);
	CHECK_INT(meta_cache_dir_lookup(mc, "e/", &age), -ENOENT);

	/* This mount removes a child: the listing stays complete. */
	CHECK_INT(meta_cache_mark_negative(mc, "d/new", NULL), 0);
	CHECK_INT(meta_cache_dir_lookup(mc, "d/", &age), 0);
	/* Forgetting one is not knowing its directory any more. */
	CHECK_INT(meta_cache_delete(mc, "d/b"), 0);
	CHECK_INT(meta_cache_dir_lookup(mc, "d/", &age), -ENOENT);
	CHECK_INT(lookup_rc(mc, "d/nothing"), -ENOENT);
	CHECK_INT(meta_cache_headinfo_get(mc, "d/b", "\"B1\"", 200, &h), -ENOENT);
	meta_cache_close(mc);
}

/* Listings that race with this mount's writes, and bad pages. */
static void test_page_races(void)
{
	struct meta_cache *mc = open_ok(test_dir("races"));
	struct meta_fill f;
	int64_t age = 0;
	struct meta_list_item one = list_item("r/one", META_KIND_FILE, 1, "\"1\"", 1);

	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_dir_invalidate(mc, "r/"), 0);
	CHECK_INT(meta_cache_put_page(mc, &f, "r/", &one, 1, true), -EAGAIN);
	CHECK_INT(meta_cache_dir_lookup(mc, "r/", &age), -ENOENT);
	CHECK_INT(lookup_kind(mc, "r/one"), META_KIND_FILE); /* the items went in */

	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_put_page(mc, &f, "r/", &one, 1, true), 0);
	CHECK_INT(meta_cache_dir_lookup(mc, "r/", &age), 0);
	CHECK_INT(meta_cache_dir_invalidate(mc, "r/"), 0);
	CHECK_INT(meta_cache_dir_lookup(mc, "r/", &age), -ENOENT);

	/* A forget refuses the whole page. */
	struct meta_list_item two = list_item("r/two", META_KIND_FILE, 2, "\"2\"", 2);
	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_delete(mc, "elsewhere"), 0);
	CHECK_INT(meta_cache_put_page(mc, &f, "r/", &two, 1, false), -EAGAIN);
	CHECK_INT(lookup_rc(mc, "r/two"), -ENOENT);

	/* One bad item: nothing goes in. */
	static char too_long[META_KEY_MAX + 2];
	memset(too_long, 'x', META_KEY_MAX + 1);
	struct meta_list_item bad[] = {
		list_item("r/three", META_KIND_FILE, 3, "\"3\"", 3),
		list_item(too_long, META_KIND_FILE, 3, "\"3\"", 3),
	};
	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_put_page(mc, &f, "r/", bad, 2, false), -ENAMETOOLONG);
	CHECK_INT(lookup_rc(mc, "r/three"), -ENOENT);
	CHECK_INT(meta_cache_put_page(mc, NULL, "r/", bad, 1, false), -EINVAL);
	CHECK_INT(meta_cache_put_page(mc, &f, "r/", NULL, 0, false), 0); /* empty page */

	/* Written before a listing began and not in it: someone removed it. */
	struct meta_entry w = file_entry(1, "\"w\"", 1);
	CHECK_INT(meta_cache_upsert(mc, "q/written", &w, NULL), 0);
	usleep(2000);
	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_put_page(mc, &f, "q/", NULL, 0, true), 0);
	CHECK_INT(lookup_kind(mc, "q/written"), META_KIND_NEGATIVE);

	/* A subdirectory no longer listed loses its own completeness. */
	meta_cache_fill_begin(mc, &f);
	struct meta_list_item sub_item = list_item("s/sub/x", META_KIND_FILE, 1, "\"x\"", 1);
	CHECK_INT(meta_cache_put_page(mc, &f, "s/sub/", &sub_item, 1, true), 0);
	struct meta_list_item sub = list_item("s/sub/", META_KIND_DIR, 0, "", 0);
	CHECK_INT(meta_cache_put_page(mc, &f, "s/", &sub, 1, true), 0);
	CHECK_INT(meta_cache_dir_lookup(mc, "s/sub/", &age), 0);
	usleep(2000);
	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_put_page(mc, &f, "s/", NULL, 0, true), 0);
	CHECK_INT(meta_cache_dir_lookup(mc, "s/sub/", &age), -ENOENT);
	CHECK_INT(lookup_kind(mc, "s/sub/"), META_KIND_NEGATIVE);
	meta_cache_close(mc);
}

/* ---- directory walks -------------------------------------------------- */

struct walk {
	size_t n;
	size_t stop_at; /* return 1 after this many; 0: never */
	int fail_with;	/* return this at the first child; 0: never */
	char last_key[64];
	char prev_name[64];
	bool ordered;
	uint64_t size_sum;
};

static int walk_fn(void *arg, const char *name, const char *key, const struct meta_entry *e)
{
	struct walk *w = arg;

	if (w->fail_with)
		return w->fail_with;
	if (w->prev_name[0] && strcmp(w->prev_name, name) > 0)
		w->ordered = false;
	snprintf(w->prev_name, sizeof(w->prev_name), "%s", name);
	snprintf(w->last_key, sizeof(w->last_key), "%s", key);
	w->size_sum += e->size;
	w->n++;
	return w->stop_at && w->n == w->stop_at ? 1 : 0;
}

static void test_children(void)
{
	enum { N = 10000, PAGE = 1000 };
	static char keys[N][32];
	static struct meta_list_item items[PAGE];
	struct meta_cache *mc = open_ok(test_dir("children"));
	struct meta_fill f;
	uint64_t want_sum = 0;

	struct walk w = { .ordered = true };
	CHECK_INT(meta_cache_dir_children(mc, "big/", NULL, walk_fn, &w), -ENOENT);
	meta_cache_fill_begin(mc, &f);
	for (int p = 0; p < N / PAGE; p++) {
		for (int i = 0; i < PAGE; i++) {
			int k = p * PAGE + i;
			snprintf(keys[k], sizeof(keys[k]), "big/f%05d", N - 1 - k); /* any order */
			items[i] = list_item(keys[k], META_KIND_FILE, (uint64_t)k, "\"e\"", 1);
			want_sum += (uint64_t)k;
		}
		CHECK_INT(meta_cache_put_page(mc, &f, "big/", items, PAGE, p == N / PAGE - 1), 0);
	}
	/* Deeper keys and the directory's own marker are not its children. */
	struct meta_entry e = file_entry(1, "\"m\"", 1);
	e.kind = META_KIND_DIR;
	CHECK_INT(meta_cache_upsert(mc, "big/", &e, NULL), 0);
	CHECK_INT(meta_cache_upsert(mc, "big/f00001/deeper", &e, NULL), 0);

	w = (struct walk){ .ordered = true };
	CHECK_INT(meta_cache_dir_children(mc, "big/", NULL, walk_fn, &w), 0);
	CHECK_INT(w.n, N);
	CHECK(w.ordered);
	CHECK_INT(w.size_sum, want_sum);
	CHECK_STR(w.last_key, "big/f09999");

	/* Stop, then go on from the last key seen. */
	w = (struct walk){ .ordered = true, .stop_at = 2500 };
	CHECK_INT(meta_cache_dir_children(mc, "big/", NULL, walk_fn, &w), 0);
	CHECK_INT(w.n, 2500);
	CHECK_STR(w.last_key, "big/f02499");
	char after[64];
	snprintf(after, sizeof(after), "%s", w.last_key);
	w = (struct walk){ .ordered = true };
	CHECK_INT(meta_cache_dir_children(mc, "big/", after, walk_fn, &w), 0);
	CHECK_INT(w.n, N - 2500);
	w = (struct walk){ .fail_with = -EIO };
	CHECK_INT(meta_cache_dir_children(mc, "big/", NULL, walk_fn, &w), -EIO);
	CHECK_INT(meta_cache_dir_children(mc, "big/", NULL, NULL, NULL), -EINVAL);

	/* Negative entries are not children; a file and a directory of one
	 * name come together, the file first. */
	CHECK_INT(meta_cache_mark_negative(mc, "big/f00000", NULL), 0);
	CHECK_INT(meta_cache_upsert(mc, "big/f00001/", &e, NULL), 0);
	w = (struct walk){ .ordered = true };
	CHECK_INT(meta_cache_dir_children(mc, "big/", NULL, walk_fn, &w), 0);
	CHECK_INT(w.n, N);
	w = (struct walk){ .ordered = true, .stop_at = 2 };
	CHECK_INT(meta_cache_dir_children(mc, "big/", NULL, walk_fn, &w), 0);
	CHECK_STR(w.last_key, "big/f00001/");
	CHECK_STR(w.prev_name, "f00001");
	w = (struct walk){ .ordered = true, .stop_at = 1 };
	CHECK_INT(meta_cache_dir_children(mc, "big/", "big/f00001", walk_fn, &w), 0);
	CHECK_STR(w.last_key, "big/f00001/");
	meta_cache_close(mc);
}

/* ---- HEAD results and blobs ------------------------------------------- */

static void test_headinfo(void)
{
	struct meta_cache *mc = open_ok(test_dir("headinfo"));
	static const char xattr[] = "user.a=b\0user.c=\x01\x02";
	struct meta_headinfo h = { .mode = S_IFREG | 0600, .uid = 1, .gid = 2 };
	struct meta_headinfo got = { 0 };

	h.mtime = (struct timespec){ 10, 11 };
	h.ctime = (struct timespec){ 12, 13 };
	h.atime = (struct timespec){ 14, 15 };
	h.blob = (void *)xattr;
	h.blob_len = sizeof(xattr);
	CHECK_INT(meta_cache_headinfo_get(mc, "k", "\"v1\"", 100, &got), -ENOENT);
	CHECK_INT(meta_cache_headinfo_put(mc, "k", "\"v1\"", 100, &h), 0);
	CHECK_INT(meta_cache_headinfo_get(mc, "k", "\"v1\"", 100, &got), 0);
	CHECK_INT(got.mode, S_IFREG | 0600);
	CHECK_INT(got.uid, 1);
	CHECK_INT(got.gid, 2);
	CHECK_INT(got.mtime.tv_sec, 10);
	CHECK_INT(got.mtime.tv_nsec, 11);
	CHECK_INT(got.ctime.tv_nsec, 13);
	CHECK_INT(got.atime.tv_sec, 14);
	CHECK_INT(got.atime.tv_nsec, 15);
	CHECK_INT(got.blob_len, sizeof(xattr));
	CHECK(got.blob && memcmp(got.blob, xattr, sizeof(xattr)) == 0);
	meta_headinfo_cleanup(&got);
	CHECK(got.blob == NULL);

	/* Another version of the object is not this one. */
	CHECK_INT(meta_cache_headinfo_get(mc, "k", "\"v2\"", 100, &got), -ENOENT);
	CHECK_INT(meta_cache_headinfo_get(mc, "k", "\"v1\"", 101, &got), -ENOENT);
	h.blob = NULL;
	h.blob_len = 0;
	CHECK_INT(meta_cache_headinfo_put(mc, "k", "\"v2\"", 200, &h), 0);
	CHECK_INT(meta_cache_headinfo_get(mc, "k", "\"v1\"", 100, &got), -ENOENT);
	CHECK_INT(meta_cache_headinfo_get(mc, "k", "\"v2\"", 200, &got), 0);
	CHECK(got.blob == NULL);
	CHECK_INT(got.blob_len, 0);
	meta_headinfo_cleanup(&got);

	h.blob_len = META_HEADBLOB_MAX + 1;
	h.blob = calloc(1, h.blob_len);
	CHECK_INT(meta_cache_headinfo_put(mc, "k", "\"v3\"", 300, &h), -EINVAL);
	free(h.blob);
	h.blob = NULL;
	h.blob_len = 0;
	CHECK_INT(meta_cache_headinfo_put(mc, "k", NULL, 300, &h), -EINVAL);
	/* Marking the key negative drops its HEAD result. */
	CHECK_INT(meta_cache_mark_negative(mc, "k", NULL), 0);
	CHECK_INT(meta_cache_headinfo_get(mc, "k", "\"v2\"", 200, &got), -ENOENT);
	meta_cache_close(mc);
}

struct blob_walk {
	size_t n;
	char keys[8][32];
	size_t total_len;
};

static int blob_fn(void *arg, const char *key, const void *value, size_t len)
{
	struct blob_walk *w = arg;

	if (w->n < ARRAY_SIZE(w->keys))
		snprintf(w->keys[w->n], sizeof(w->keys[0]), "%s", key);
	w->n++;
	w->total_len += len;
	return 0;
}

static void test_blobs(void)
{
	struct meta_cache *mc = open_ok(test_dir("blobs"));
	static const char *const keys[] = { "c/0002", "c/0001", "c/00020",  "d/0001",
					    "c0",     "c",	"\xff\xff", "\xff\xff\xff" };
	void *v = NULL;
	size_t len = 0;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		CHECK_INT(meta_cache_blob_put(mc, "chain", keys[i], keys[i], strlen(keys[i])), 0);
	CHECK_INT(meta_cache_blob_put(mc, "chain", "c/0001", "c/0001", 6), 0); /* same again */
	CHECK_INT(meta_cache_blob_put(mc, "chain", "c/0001", "other", 5), -EEXIST);
	CHECK_INT(meta_cache_blob_put(mc, "other-ns", "c/0001", "other", 5), 0);
	CHECK_INT(meta_cache_blob_put(mc, "chain", "empty", NULL, 0), 0);
	CHECK_INT(meta_cache_blob_put(mc, "", "k", "v", 1), -EINVAL);
	CHECK_INT(meta_cache_blob_put(mc, "chain", "big", "v", META_BLOB_MAX + 1), -EINVAL);

	CHECK_INT(meta_cache_blob_get(mc, "chain", "c/0001", &v, &len), 0);
	CHECK_INT(len, 6);
	CHECK_STR((char *)v, "c/0001");
	free(v);
	CHECK_INT(meta_cache_blob_get(mc, "other-ns", "c/0001", &v, &len), 0);
	CHECK_STR((char *)v, "other");
	free(v);
	CHECK_INT(meta_cache_blob_get(mc, "chain", "empty", &v, &len), 0);
	CHECK_INT(len, 0);
	CHECK_STR((char *)v, "");
	free(v);
	CHECK_INT(meta_cache_blob_get(mc, "chain", "missing", &v, &len), -ENOENT);

	static const struct {
		const char *prefix;
		size_t n;
		const char *first, *last;
	} rows[] = {
		{ "c/", 3, "c/0001", "c/00020" },
		{ "c/0002", 2, "c/0002", "c/00020" },
		{ "c", 5, "c", "c0" },
		{ "\xff", 2, "\xff\xff", "\xff\xff\xff" },
		{ "zzz", 0, NULL, NULL },
		{ "", 9, "c", "\xff\xff\xff" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct blob_walk w = { 0 };
		CHECK_INT(meta_cache_blob_list(mc, "chain", rows[i].prefix, blob_fn, &w), 0);
		CHECK_INT(w.n, rows[i].n);
		if (rows[i].first && w.n > 0 && w.n <= ARRAY_SIZE(w.keys)) {
			CHECK_STR(w.keys[0], rows[i].first);
			CHECK_STR(w.keys[w.n - 1], rows[i].last);
		}
	}
	struct blob_walk w = { 0 };
	CHECK_INT(meta_cache_blob_list(mc, "other-ns", NULL, blob_fn, &w), 0);
	CHECK_INT(w.n, 1);
	meta_cache_close(mc);
}

/* ---- journal ---------------------------------------------------------- */

static struct meta_pending pending(const char *key, const char *staging, uint64_t size)
{
	struct meta_pending p = { .key = (char *)key, .staging_path = (char *)staging };

	p.size = size;
	p.mtime = (struct timespec){ 1700000000, 42 };
	p.state = META_PENDING_FAILED;
	p.attempts = 3;
	p.last_error = (char *)"SlowDown";
	return p;
}

/* Rows the journal refuses. */
static void journal_bad_args(struct meta_cache *mc)
{
	static char long_key[META_KEY_MAX + 2], long_path[META_PATH_MAX + 1];
	static const struct {
		const char *key, *staging;
		enum meta_pending_state state;
		int want;
	} bad[] = {
		{ NULL, "/s", META_PENDING_QUEUED, -EINVAL },
		{ "", "/s", META_PENDING_QUEUED, -EINVAL },
		{ "k", "", META_PENDING_QUEUED, -EINVAL },
		{ "k", NULL, META_PENDING_QUEUED, -EINVAL },
		{ "k", "/s", (enum meta_pending_state)3, -EINVAL },
		{ long_key, "/s", META_PENDING_QUEUED, -ENAMETOOLONG },
		{ "k", long_path, META_PENDING_QUEUED, -EINVAL },
	};
	uint64_t count = 0, before = 0;

	memset(long_key, 'k', sizeof(long_key) - 1);
	memset(long_path, 'p', sizeof(long_path) - 1);
	CHECK_INT(meta_journal_count(mc, &before), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct meta_pending p = pending(bad[i].key, bad[i].staging, 1);
		p.state = bad[i].state;
		CHECK_INT(meta_journal_add(mc, &p, NULL), bad[i].want);
	}
	CHECK_INT(meta_journal_count(mc, &count), 0);
	CHECK_INT(count, before);
}

static void test_journal(void)
{
	struct meta_cache *mc = open_ok(test_dir("journal"));
	struct meta_pending *rows = NULL;
	int64_t id[3] = { 0 };
	uint64_t count = 99;
	size_t n = 5;

	CHECK_INT(meta_journal_list(mc, &rows, &n), 0);
	CHECK_INT(n, 0);
	CHECK(rows == NULL);
	CHECK_INT(meta_journal_count(mc, &count), 0);
	CHECK_INT(count, 0);
	static const char *const keys[] = { "a/one", "b/two\nlines", "日本/三" };
	for (int i = 0; i < 3; i++) {
		char staging[64];
		snprintf(staging, sizeof(staging), "/var/cache/s3vfs/staging/%d", i);
		struct meta_pending p = pending(keys[i], staging, 100 + (uint64_t)i);
		CHECK_INT(meta_journal_add(mc, &p, &id[i]), 0);
	}
	CHECK(id[0] > 0 && id[1] > id[0] && id[2] > id[1]);
	CHECK_INT(meta_journal_count(mc, &count), 0);
	CHECK_INT(count, 3);
	CHECK_INT(meta_journal_list(mc, &rows, &n), 0);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n && i < 3; i++) {
		CHECK_INT(rows[i].id, id[i]);
		CHECK_STR(rows[i].key, keys[i]);
		CHECK_INT(rows[i].size, 100 + i);
		CHECK_INT(rows[i].mtime.tv_sec, 1700000000);
		CHECK_INT(rows[i].mtime.tv_nsec, 42);
		CHECK_INT(rows[i].state, META_PENDING_FAILED);
		CHECK_INT(rows[i].attempts, 3);
		CHECK_STR(rows[i].last_error, "SlowDown");
		CHECK(rows[i].created_ms > 0);
	}
	CHECK_STR(rows[2].staging_path, "/var/cache/s3vfs/staging/2");
	meta_journal_list_free(rows, n);

	char long_error[3000];
	memset(long_error, 'E', sizeof(long_error) - 1);
	long_error[sizeof(long_error) - 1] = '\0';
	CHECK_INT(meta_journal_update(mc, id[1], META_PENDING_UPLOADING, 4, long_error), 0);
	CHECK_INT(meta_journal_update(mc, id[0], META_PENDING_QUEUED, 0, NULL), 0);
	CHECK_INT(meta_journal_update(mc, 9999, META_PENDING_QUEUED, 0, NULL), -ENOENT);
	CHECK_INT(meta_journal_update(mc, id[0], (enum meta_pending_state)9, 0, NULL), -EINVAL);
	CHECK_INT(meta_journal_list(mc, &rows, &n), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK(rows[0].last_error == NULL);
		CHECK_INT(rows[0].state, META_PENDING_QUEUED);
		CHECK_INT(rows[1].state, META_PENDING_UPLOADING);
		CHECK_INT(rows[1].attempts, 4);
		CHECK_INT(strlen(rows[1].last_error), META_ERROR_MAX - 1);
	}
	meta_journal_list_free(rows, n);

	/* Ids are not reused, not even the last one's. */
	CHECK_INT(meta_journal_remove(mc, id[2]), 0);
	CHECK_INT(meta_journal_remove(mc, id[2]), -ENOENT);
	struct meta_pending p = pending("c", "/s/c", 1);
	int64_t again = 0;
	CHECK_INT(meta_journal_add(mc, &p, &again), 0);
	CHECK(again > id[2]);
	CHECK_INT(meta_journal_count(mc, &count), 0);
	CHECK_INT(count, 3);

	journal_bad_args(mc);
	meta_cache_close(mc);
}

/* ---- reopen and rebuild ----------------------------------------------- */

/* Fill a cache with a bit of everything; two pending uploads. */
static void populate(const char *dir)
{
	struct meta_cache *mc = open_ok(dir);
	struct meta_entry e = file_entry(77, "\"p\"", 7);
	struct meta_headinfo h = { .mode = S_IFREG | 0611, .uid = 5 };
	struct meta_list_item it = list_item("p/child", META_KIND_FILE, 1, "\"c\"", 1);
	struct meta_fill f;

	if (!mc)
		return;
	/* Listed first: a listing that starts after a write and does not show
	 * the key says someone else removed it, and the final page drops it. */
	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_put_page(mc, &f, "p/", &it, 1, true), 0);
	CHECK_INT(meta_cache_upsert(mc, "p/file", &e, NULL), 0);
	CHECK_INT(meta_cache_headinfo_put(mc, "p/file", "\"p\"", 7, &h), 0);
	CHECK_INT(meta_cache_blob_put(mc, "chain", "link/1", "one", 3), 0);
	struct meta_pending p1 = pending("p/up1", "/staging/1", 1);
	struct meta_pending p2 = pending("p/up2", "/staging/2", 2);
	p2.state = META_PENDING_UPLOADING;
	p2.last_error = NULL;
	CHECK_INT(meta_journal_add(mc, &p1, NULL), 0);
	CHECK_INT(meta_journal_add(mc, &p2, NULL), 0);
	for (int i = 0; i < 300; i++) { /* a few pages of data for damage to hit */
		char key[64];
		snprintf(key, sizeof(key), "p/filler/%04d-with-a-longer-name-to-take-room", i);
		CHECK_INT(meta_cache_upsert(mc, key, &e, NULL), 0);
	}
	meta_cache_close(mc);
}

static void test_reopen(void)
{
	const char *dir = test_dir("reopen");
	int64_t age = 0;
	size_t n = 0;
	struct meta_pending *rows = NULL;
	struct meta_headinfo h;
	void *v = NULL;

	populate(dir);
	struct meta_cache *mc = open_ok(dir);
	CHECK(!meta_cache_rebuilt(mc));
	struct meta_entry got = lookup_ok(mc, "p/file");
	CHECK_INT(got.size, 77);
	meta_entry_cleanup(&got);
	CHECK_INT(meta_cache_dir_lookup(mc, "p/", &age), 0);
	CHECK_INT(lookup_kind(mc, "p/missing"), META_KIND_NEGATIVE);
	CHECK_INT(meta_cache_headinfo_get(mc, "p/file", "\"p\"", 7, &h), 0);
	CHECK_INT(h.mode, S_IFREG | 0611);
	meta_headinfo_cleanup(&h);
	CHECK_INT(meta_cache_blob_get(mc, "chain", "link/1", &v, &n), 0);
	CHECK_INT(n, 3);
	free(v);
	CHECK_INT(meta_journal_list(mc, &rows, &n), 0);
	CHECK_INT(n, 2);
	meta_journal_list_free(rows, n);

	/* The stamps of the last session refuse no fill of this one. */
	struct meta_fill f;
	struct meta_entry e = file_entry(78, "\"q\"", 8);
	meta_cache_fill_begin(mc, &f);
	CHECK_INT(meta_cache_upsert(mc, "p/file", &e, &f), 0);
	meta_cache_close(mc);
}

static void damage_garbage(const char *path)
{
	FILE *fp = fopen(path, "wb");
	uint32_t x = 12345;

	CHECK(fp != NULL);
	for (int i = 0; fp && i < 65536; i++) {
		x = x * 1103515245u + 12345u;
		fputc((int)(x >> 16) & 0xff, fp);
	}
	if (fp)
		fclose(fp);
}

static void damage_truncate(const char *path)
{
	CHECK_INT(truncate(path, 3 * 4096 + 100), 0);
}

/* Overwrite the middle of the file: the header stays valid. */
static void damage_pages(const char *path)
{
	struct stat st;
	int fd = open(path, O_WRONLY);
	char junk[4096];

	memset(junk, 0xa5, sizeof(junk));
	CHECK(fd >= 0);
	CHECK_INT(fstat(fd, &st), 0);
	for (off_t off = 4096; off + 4096 < st.st_size; off += 3 * 4096)
		CHECK_INT(pwrite(fd, junk, sizeof(junk), off), sizeof(junk));
	close(fd);
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void damage_newer(const char *path)
{
	raw_exec(path, "PRAGMA user_version = 99");
}

/* Ours, another version, and a journal with only the columns that matter. */
static void damage_other_columns(const char *path)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "PRAGMA application_id = %d; PRAGMA user_version = 7;"
		 "CREATE TABLE pending (key TEXT, staging TEXT);"
		 "INSERT INTO pending VALUES ('old/a', '/staging/a'), (NULL, '/x'), ('bad', ''),"
		 "('bad', NULL), ('old/b', '/staging/b');",
		 META_CACHE_APP_ID);
	CHECK_INT(unlink(path), 0);
	raw_exec(path, sql);
}

/* Another application's database, even one with a table of that name. */
static void damage_foreign(const char *path)
{
	CHECK_INT(unlink(path), 0);
	raw_exec(path, "CREATE TABLE pending (id INTEGER PRIMARY KEY, key TEXT, staging TEXT, "
		       "size, mtime_s, mtime_ns, state, attempts, last_error, created_ms);"
		       "INSERT INTO pending (key, staging) VALUES ('not/ours', '/etc/passwd');");
}

static bool has_corrupt_file(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	while (d && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, DB ".corrupt-", strlen(DB ".corrupt-")) == 0 &&
		    !strstr(de->d_name, "-wal"))
			found = true;
	if (d)
		closedir(d);
	return found;
}

static void test_rebuild(void)
{
	static const struct {
		const char *name;
		void (*damage)(const char *path);
		int kept; /* pending rows salvaged; -1: best effort, any */
		const char *first_key;
	} rows[] = {
		{ "garbage", damage_garbage, 0, NULL },
		{ "truncated", damage_truncate, -1, NULL },
		{ "pages", damage_pages, -1, NULL },
		{ "newer", damage_newer, 2, "p/up1" },
		{ "columns", damage_other_columns, 2, "old/a" },
		{ "foreign", damage_foreign, 0, NULL },
	};
	char path[600];

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *dir = test_dir(rows[i].name);
		struct meta_pending *pend = NULL;
		size_t n = 0;
		struct stat st;

		populate(dir);
		snprintf(path, sizeof(path), "%s/" DB, dir);
		rows[i].damage(path);
		struct meta_cache *mc = open_ok(dir);
		if (!mc)
			continue;
		CHECK(meta_cache_rebuilt(mc));
		CHECK(has_corrupt_file(dir));
		CHECK_INT(stat(path, &st), 0);
		CHECK_INT(st.st_mode & 0777, 0600);
		CHECK_INT(lookup_rc(mc, "p/file"), -ENOENT); /* the cache starts empty */
		CHECK_INT(meta_journal_list(mc, &pend, &n), 0);
		if (rows[i].kept >= 0)
			CHECK_INT(n, rows[i].kept);
		if (rows[i].first_key && n > 0) {
			CHECK_STR(pend[0].key, rows[i].first_key);
			CHECK(strncmp(pend[0].staging_path, "/staging/", 9) == 0);
		}
		if (rows[i].kept == 2 && n == 2 && strcmp(rows[i].name, "newer") == 0) {
			CHECK_INT(pend[0].attempts, 3);
			CHECK_STR(pend[0].last_error, "SlowDown");
			CHECK_INT(pend[1].state, META_PENDING_UPLOADING);
		}
		meta_journal_list_free(pend, n);
		/* The new file works, and is kept at the next open. */
		struct meta_entry e = file_entry(1, "\"n\"", 1);
		CHECK_INT(meta_cache_upsert(mc, "after", &e, NULL), 0);
		meta_cache_close(mc);
		mc = open_ok(dir);
		if (!mc)
			continue;
		CHECK(!meta_cache_rebuilt(mc));
		CHECK_INT(lookup_kind(mc, "after"), META_KIND_FILE);
		meta_cache_close(mc);
	}
}

/* ---- threads ---------------------------------------------------------- */

enum { THREADS = 4, ROUNDS = 1500, KEYS = 40 };

struct hammer {
	struct meta_cache *mc;
	int id;
	int errors;	    /* unexpected return codes */
	int last[KEYS];	    /* last size written per key */
	int walks_complete; /* directory walks that found the listing complete */
};

static void hammer_key(char *out, size_t size, int thread, int k)
{
	snprintf(out, size, "t%d/key-%02d", thread, k);
}

static void hammer_page(struct hammer *h, int round)
{
	char keys[10][32], dir[16];
	struct meta_list_item items[10];
	struct meta_fill f;
	struct walk w = { .ordered = true };

	snprintf(dir, sizeof(dir), "p%d/", h->id);
	meta_cache_fill_begin(h->mc, &f);
	for (int i = 0; i < 10; i++) {
		snprintf(keys[i], sizeof(keys[i]), "p%d/f%d", h->id, i);
		items[i] = list_item(keys[i], META_KIND_FILE, (uint64_t)round, "\"h\"", round);
	}
	int rc = meta_cache_put_page(h->mc, &f, dir, items, 10, true);
	if (rc && rc != -EAGAIN) /* -EAGAIN: another thread forgot a key */
		h->errors++;
	rc = meta_cache_dir_children(h->mc, dir, NULL, walk_fn, &w);
	if (rc == 0 && w.n == 10 && w.ordered)
		h->walks_complete++;
	else if (rc != -ENOENT)
		h->errors++;
}

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	char key[32], other[32];

	for (int r = 0; r < ROUNDS; r++) {
		int k = r % KEYS;
		struct meta_entry e = file_entry((uint64_t)r, "\"t\"", r);
		hammer_key(key, sizeof(key), h->id, k);
		if (meta_cache_upsert(h->mc, key, &e, NULL) != 0)
			h->errors++;
		h->last[k] = r;
		struct meta_entry got = { 0 };
		int64_t age = 0;
		if (meta_cache_lookup(h->mc, key, &got, &age) != 0 || got.size != (uint64_t)r)
			h->errors++;
		meta_entry_cleanup(&got);
		hammer_key(other, sizeof(other), (h->id + 1) % THREADS, (r * 7) % KEYS);
		int rc = meta_cache_lookup(h->mc, other, &got, &age);
		if (rc != 0 && rc != -ENOENT)
			h->errors++;
		meta_entry_cleanup(&got);
		if (r % 50 == 0)
			hammer_page(h, r);
		if (r % 100 == 0 && meta_cache_delete(h->mc, "nowhere") != 0)
			h->errors++;
		if (r % 250 == 0) {
			struct meta_pending p = pending(key, "/staging/x", 1);
			int64_t id = 0;
			if (meta_journal_add(h->mc, &p, &id) != 0 || meta_journal_remove(h->mc, id))
				h->errors++;
		}
	}
	return NULL;
}

static void test_threads(void)
{
	struct meta_cache *mc = open_ok(test_dir("threads"));
	struct hammer h[THREADS];
	pthread_t tid[THREADS];

	for (int t = 0; t < THREADS; t++) {
		h[t] = (struct hammer){ .mc = mc, .id = t };
		CHECK_INT(pthread_create(&tid[t], NULL, hammer_run, &h[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		CHECK_INT(pthread_join(tid[t], NULL), 0);
	for (int t = 0; t < THREADS; t++) {
		CHECK_INT(h[t].errors, 0);
		CHECK(h[t].walks_complete > 0);
		for (int k = 0; k < KEYS; k++) {
			char key[32];
			hammer_key(key, sizeof(key), t, k);
			struct meta_entry got = lookup_ok(mc, key);
			CHECK_INT(got.size, h[t].last[k]);
			meta_entry_cleanup(&got);
		}
	}
	uint64_t count = 1;
	CHECK_INT(meta_journal_count(mc, &count), 0);
	CHECK_INT(count, 0);
	meta_cache_close(mc);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	test_open_dir();
	test_entries();
	test_fills();
	test_keys();
	test_page_merge();
	test_page_races();
	test_children();
	test_headinfo();
	test_blobs();
	test_journal();
	test_reopen();
	test_rebuild();
	test_threads();
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return unit_end("meta_cache");
}
