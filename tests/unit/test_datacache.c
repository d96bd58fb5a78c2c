// SPDX-License-Identifier: MIT
/*
 * test_datacache: the data cache (meta/datacache.c) against its header:
 * blocks in and out, partial presence and missing runs, the short last
 * block, LRU eviction and the capacity bound, version replacement,
 * invalidation and refused fills, reopen, damaged files and index rows, a
 * crash of the machine, four threads at once, and a sparse 10 GiB object.
 * Each test uses its own directory under a mkdtemp() root, removed at the end.
 */
#include "s3vfs/datacache.h"

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

#define BS 4096u

static char root[] = "/tmp/s3vfs-datacache-XXXXXX";

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

/* The byte at offset off of object version seed. */
static uint8_t pat(unsigned seed, uint64_t off)
{
	return (uint8_t)(off * 131 + seed * 7 + (off >> 12) + (off >> 20));
}

static struct datacache *open_ok(const char *dir, uint64_t cap, uint32_t bs)
{
	struct datacache *dc = NULL;

	CHECK_INT(datacache_open(dir, cap, bs, &dc), 0);
	return dc;
}

/* Write block bi of an object of size bytes whose bytes are pat(seed, .). */
static int put(struct datacache *dc, const struct datacache_fill *f, const char *key,
	       const char *etag, unsigned seed, uint64_t size, uint64_t bi)
{
	uint32_t bs = BS;
	struct datacache_stats s;

	datacache_get_stats(dc, &s);
	bs = s.block_size;
	uint64_t off = bi * bs, n = size - off < bs ? size - off : bs;
	uint8_t *b = malloc(bs);
	for (uint64_t i = 0; i < n; i++)
		b[i] = pat(seed, off + i);
	int rc = datacache_write_block(dc, f, key, etag, size, bi, b, (size_t)n);
	free(b);
	return rc;
}

/* Read [off, off + len) and, on 0, compare with pat(seed, .). 1: wrong bytes. */
static int get(struct datacache *dc, const char *key, const char *etag, unsigned seed,
	       uint64_t size, uint64_t off, size_t len, size_t *out_got)
{
	uint8_t *b = malloc(len ? len : 1);
	size_t got = 0;
	int rc = datacache_read(dc, key, etag, size, off, b, len, &got);

	for (size_t i = 0; rc == 0 && i < got; i++)
		if (b[i] != pat(seed, off + i))
			rc = 1;
	if (out_got)
		*out_got = got;
	free(b);
	return rc;
}

static int count_files(const char *dir)
{
	char p[600];
	int n = 0;

	snprintf(p, sizeof(p), "%s/data", dir);
	DIR *d = opendir(p);
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* The path of the (first) data file in dir/data. */
static void first_file(const char *dir, char *out, size_t size)
{
	char p[600];

	out[0] = '\0';
	snprintf(p, sizeof(p), "%s/data", dir);
	DIR *d = opendir(p);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] != '.') {
			if (snprintf(out, size, "%s/%s", p, e->d_name) >= (int)size)
				out[0] = '\0';
			break;
		}
	}
	if (d)
		closedir(d);
}

static int mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* Run sql on dir/data.db while the cache is closed. */
static void sql_on(const char *dir, const char *sql)
{
	char p[600];
	sqlite3 *db = NULL;

	snprintf(p, sizeof(p), "%s/data.db", dir);
	CHECK_INT(sqlite3_open(p, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_basic(void)
{
	const char *dir = test_dir("basic");
	struct datacache *dc = open_ok(dir, 1 << 20, BS);
	struct datacache_stats s;
	uint64_t size = 3 * BS, used = 0, cap = 0;
	size_t got = 0;

	for (uint64_t b = 0; b < 3; b++)
		CHECK_INT(put(dc, NULL, "a/b.txt", "\"e1\"", 1, size, b), 0);
	CHECK_INT(put(dc, NULL, "a/b.txt", "\"e1\"", 1, size, 1), 0); /* present: no-op */
	CHECK_INT(get(dc, "a/b.txt", "\"e1\"", 1, size, 100, 8000, &got), 0);
	CHECK_INT(got, 8000);
	CHECK_INT(get(dc, "a/b.txt", "\"e1\"", 1, size, 10000, 20000, &got), 0);
	CHECK_INT(got, size - 10000);
	CHECK_INT(get(dc, "a/b.txt", "\"e1\"", 1, size, size, 10, &got), 0);
	CHECK_INT(got, 0);
	CHECK_INT(get(dc, "a/b.txt", "\"e2\"", 1, size, 0, 10, &got), -ENOENT);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, 3 * BS);
	CHECK_INT(cap, 1 << 20);
	datacache_get_stats(dc, &s);
	CHECK_INT(s.hits, 2); /* an empty range is no hit */
	CHECK_INT(s.misses, 1);
	CHECK_INT(s.hit_bytes, 8000 + size - 10000);
	CHECK_INT(s.blocks_in, 3);
	CHECK_INT(mode_of(test_dir("basic/data")), 0700);
	CHECK_INT(mode_of(test_dir("basic/data.db")), 0600);
	CHECK_INT(mode_of(test_dir("basic/data.db-wal")), 0600);
	char f[1024];
	first_file(dir, f, sizeof(f));
	CHECK_INT(mode_of(f), 0600);
	datacache_close(dc);
}

static void test_partial(void)
{
	struct datacache *dc = open_ok(test_dir("partial"), 1 << 20, BS);
	uint64_t size = 5 * BS + 100, first = 99;
	uint32_t n = 99;

	CHECK_INT(datacache_missing(dc, "k", "e", size, 0, size, &first, &n), 0);
	CHECK_INT(first, 0);
	CHECK_INT(n, 6);
	CHECK_INT(put(dc, NULL, "k", "e", 2, size, 0), 0);
	CHECK_INT(put(dc, NULL, "k", "e", 2, size, 2), 0);
	CHECK_INT(get(dc, "k", "e", 2, size, 10, BS - 10, NULL), 0);
	CHECK_INT(get(dc, "k", "e", 2, size, 0, 3 * BS, NULL), -ENOENT);
	CHECK_INT(get(dc, "k", "e", 2, size, 2 * BS + 1, 10, NULL), 0);
	CHECK_INT(datacache_missing(dc, "k", "e", size, 0, size, &first, &n), 0);
	CHECK_INT(first, 1);
	CHECK_INT(n, 1);
	CHECK_INT(datacache_missing(dc, "k", "e", size, 2 * BS, 1 << 20, &first, &n), 0);
	CHECK_INT(first, 3);
	CHECK_INT(n, 3);
	CHECK_INT(datacache_missing(dc, "k", "e", size, 3 * BS + 5, BS, &first, &n), 0);
	CHECK_INT(first, 3);
	CHECK_INT(n, 2); /* the range ends in block 4 */
	CHECK_INT(put(dc, NULL, "k", "e", 2, size, 1), 0);
	CHECK_INT(datacache_missing(dc, "k", "e", size, 0, 3 * BS, &first, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(first, 3);
	CHECK_INT(get(dc, "k", "e", 2, size, 0, 3 * BS, NULL), 0);
	CHECK_INT(datacache_missing(dc, "k", "e", size, size, 10, &first, &n), 0);
	CHECK_INT(n, 0);
	datacache_close(dc);
}

static void test_short_last(void)
{
	struct datacache *dc = open_ok(test_dir("short"), 1 << 20, BS);
	uint8_t b[BS] = { 0 };
	uint64_t used = 0, cap = 0;
	size_t got = 0;

	CHECK_INT(datacache_write_block(dc, NULL, "s", "e", 10000, 2, b, BS), -EINVAL);
	CHECK_INT(datacache_write_block(dc, NULL, "s", "e", 10000, 3, b, 1), -EINVAL);
	CHECK_INT(datacache_write_block(dc, NULL, "s", "e", 10000, 0, b, 100), -EINVAL);
	CHECK_INT(put(dc, NULL, "s", "e", 3, 10000, 2), 0);
	CHECK_INT(get(dc, "s", "e", 3, 10000, 9000, 5000, &got), 0);
	CHECK_INT(got, 1000);
	CHECK_INT(get(dc, "s", "e", 3, 10000, 8000, 5000, &got), -ENOENT);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, 10000 - 2 * BS);
	datacache_close(dc);
}

static void test_eviction(void)
{
	struct datacache *dc = open_ok(test_dir("evict"), 4 * BS, BS);
	struct datacache_stats s;
	uint64_t used = 0, cap = 0;

	CHECK_INT(put(dc, NULL, "A", "e", 1, 2 * BS, 0), 0);
	CHECK_INT(put(dc, NULL, "A", "e", 1, 2 * BS, 1), 0);
	CHECK_INT(put(dc, NULL, "B", "e", 2, BS, 0), 0);
	CHECK_INT(put(dc, NULL, "C", "e", 3, BS, 0), 0);
	CHECK_INT(get(dc, "A", "e", 1, 2 * BS, 0, 10, NULL), 0); /* A: most recent */
	CHECK_INT(put(dc, NULL, "D", "e", 4, BS, 0), 0);	 /* evicts B */
	CHECK_INT(get(dc, "B", "e", 2, BS, 0, BS, NULL), -ENOENT);
	CHECK_INT(get(dc, "A", "e", 1, 2 * BS, 0, 2 * BS, NULL), 0);
	CHECK_INT(get(dc, "C", "e", 3, BS, 0, BS, NULL), 0);
	CHECK_INT(get(dc, "D", "e", 4, BS, 0, BS, NULL), 0);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, 4 * BS);
	/* order now A, C, D (oldest first): E's two blocks evict A alone */
	CHECK_INT(get(dc, "C", "e", 3, BS, 0, BS, NULL), 0);
	CHECK_INT(get(dc, "D", "e", 4, BS, 0, BS, NULL), 0);
	CHECK_INT(put(dc, NULL, "E", "e", 5, 2 * BS, 0), 0);
	CHECK_INT(put(dc, NULL, "E", "e", 5, 2 * BS, 1), 0);
	CHECK_INT(get(dc, "A", "e", 1, 2 * BS, 0, 10, NULL), -ENOENT);
	CHECK_INT(get(dc, "C", "e", 3, BS, 0, BS, NULL), 0);
	CHECK_INT(get(dc, "D", "e", 4, BS, 0, BS, NULL), 0);
	CHECK_INT(get(dc, "E", "e", 5, 2 * BS, 0, 2 * BS, NULL), 0);
	datacache_get_stats(dc, &s);
	CHECK_INT(s.evictions, 2);
	CHECK_INT(count_files(test_dir("evict")), 3);
	/* one object larger than the capacity: the rest goes, then -ENOSPC */
	for (uint64_t b = 0; b < 4; b++)
		CHECK_INT(put(dc, NULL, "F", "e", 6, 5 * BS, b), 0);
	CHECK_INT(put(dc, NULL, "F", "e", 6, 5 * BS, 4), -ENOSPC);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, 4 * BS);
	CHECK_INT(get(dc, "F", "e", 6, 5 * BS, 0, 4 * BS, NULL), 0);
	CHECK_INT(count_files(test_dir("evict")), 1);
	datacache_close(dc);
}

static void test_versions(void)
{
	const char *dir = test_dir("versions");
	struct datacache *dc = open_ok(dir, 1 << 20, BS);
	uint64_t used = 0, cap = 0;

	CHECK_INT(put(dc, NULL, "v", "e1", 1, 2 * BS, 0), 0);
	CHECK_INT(put(dc, NULL, "v", "e1", 1, 2 * BS, 1), 0);
	CHECK_INT(put(dc, NULL, "v", "e2", 2, 3 * BS, 0), 0);
	CHECK_INT(get(dc, "v", "e1", 1, 2 * BS, 0, 10, NULL), -ENOENT);
	CHECK_INT(get(dc, "v", "e2", 2, 3 * BS, 0, BS, NULL), 0);
	CHECK_INT(count_files(dir), 1);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, BS);
	datacache_close(dc);
}

static void test_invalidate(void)
{
	const char *dir = test_dir("inval");
	struct datacache *dc = open_ok(dir, 1 << 20, BS);
	struct datacache_fill f, g;
	uint64_t used = 0, cap = 0;

	CHECK_INT(put(dc, NULL, "k", "e1", 1, BS, 0), 0);
	CHECK_INT(put(dc, NULL, "other", "e1", 2, BS, 0), 0);
	CHECK_INT(datacache_invalidate(dc, "k"), 0);
	CHECK_INT(datacache_invalidate(dc, "never-cached"), 0);
	CHECK_INT(get(dc, "k", "e1", 1, BS, 0, BS, NULL), -ENOENT);
	CHECK_INT(get(dc, "other", "e1", 2, BS, 0, BS, NULL), 0);
	CHECK_INT(count_files(dir), 1);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, BS);
	/* a GET begun before the key changed may not bring its version back */
	datacache_fill_begin(dc, &f);
	CHECK_INT(datacache_invalidate(dc, "k"), 0);
	CHECK_INT(put(dc, &f, "k", "e1", 1, BS, 0), -EAGAIN);
	CHECK_INT(put(dc, &f, "z", "e1", 3, BS, 0), 0); /* another key: fine */
	datacache_fill_begin(dc, &g);
	CHECK_INT(put(dc, &g, "k", "e1", 1, BS, 0), 0);
	/* this mount's own write of a new version refuses the older fill */
	datacache_fill_begin(dc, &f);
	CHECK_INT(put(dc, NULL, "k", "e2", 4, 2 * BS, 0), 0);
	CHECK_INT(put(dc, &f, "k", "e1", 1, BS, 0), -EAGAIN);
	CHECK_INT(put(dc, &f, "k", "e2", 4, 2 * BS, 1), 0); /* adds to the live version */
	CHECK_INT(get(dc, "k", "e2", 4, 2 * BS, 0, 2 * BS, NULL), 0);
	/* past the ring's memory, fills are refused: safe, not precise */
	datacache_fill_begin(dc, &f);
	char key[32];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "x%d", i);
		CHECK(datacache_invalidate(dc, key) == 0);
	}
	CHECK_INT(put(dc, &f, "fresh", "e", 5, BS, 0), -EAGAIN);
	datacache_close(dc);
}

static void test_reopen(void)
{
	const char *dir = test_dir("reopen");
	struct datacache *dc = open_ok(dir, 4 * BS, BS), *dc2 = NULL;
	uint64_t used = 0, cap = 0;

	CHECK_INT(put(dc, NULL, "A", "e", 1, BS, 0), 0);
	CHECK_INT(put(dc, NULL, "B", "e", 2, 2 * BS + 5, 0), 0);
	CHECK_INT(put(dc, NULL, "B", "e", 2, 2 * BS + 5, 2), 0);
	CHECK_INT(put(dc, NULL, "C", "e", 3, BS, 0), 0);
	CHECK_INT(get(dc, "A", "e", 1, BS, 0, BS, NULL), 0); /* B is now the oldest */
	CHECK_INT(datacache_open(dir, 4 * BS, BS, &dc2), -EBUSY);
	datacache_close(dc);
	dc = open_ok(dir, 4 * BS, BS);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, 3 * BS + 5);
	CHECK_INT(get(dc, "B", "e", 2, 2 * BS + 5, 2 * BS, 5, NULL), 0);
	CHECK_INT(get(dc, "B", "e", 2, 2 * BS + 5, BS, 5, NULL), -ENOENT);
	CHECK_INT(get(dc, "A", "e", 1, BS, 0, BS, NULL), 0);
	CHECK_INT(get(dc, "C", "e", 3, BS, 0, BS, NULL), 0);
	datacache_close(dc);
	/* LRU order survived: B's use is older than A's and C's */
	dc = open_ok(dir, 4 * BS, BS);
	CHECK_INT(put(dc, NULL, "D", "e", 4, 2 * BS, 0), 0);
	CHECK_INT(get(dc, "B", "e", 2, 2 * BS + 5, 2 * BS, 5, NULL), -ENOENT);
	CHECK_INT(get(dc, "A", "e", 1, BS, 0, BS, NULL), 0);
	datacache_close(dc);
	/* a smaller capacity evicts at open; another block size drops all */
	dc = open_ok(dir, BS, BS);
	datacache_usage(dc, &used, &cap);
	CHECK(used <= BS);
	datacache_close(dc);
	dc = open_ok(dir, 1 << 20, 2 * BS);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, 0);
	CHECK_INT(count_files(dir), 0);
	datacache_close(dc);
}

static void test_damaged_file(void)
{
	const char *dir = test_dir("dfile");
	struct datacache *dc = open_ok(dir, 1 << 20, BS);
	struct datacache_stats s;
	char f[1024];

	for (uint64_t b = 0; b < 3; b++)
		CHECK_INT(put(dc, NULL, "t", "e", 1, 3 * BS, b), 0);
	first_file(dir, f, sizeof(f));
	CHECK_INT(truncate(f, BS + 100), 0);
	CHECK_INT(get(dc, "t", "e", 1, 3 * BS, 0, BS, NULL), 0);
	CHECK_INT(get(dc, "t", "e", 1, 3 * BS, BS, 10, NULL), -ENOENT); /* short: dropped */
	CHECK_INT(get(dc, "t", "e", 1, 3 * BS, 0, 10, NULL), -ENOENT);
	datacache_get_stats(dc, &s);
	CHECK_INT(s.dropped, 1);
	CHECK_INT(s.used, 0);
	CHECK_INT(count_files(dir), 0);
	/* found at open too, and a missing file, and a stray file */
	for (uint64_t b = 0; b < 3; b++)
		CHECK_INT(put(dc, NULL, "t", "e", 1, 3 * BS, b), 0);
	CHECK_INT(put(dc, NULL, "u", "e", 2, BS, 0), 0);
	CHECK_INT(put(dc, NULL, "w", "e", 3, BS, 0), 0);
	datacache_close(dc);
	first_file(dir, f, sizeof(f));
	CHECK_INT(truncate(f, BS / 2), 0);
	int fd = open(test_dir("dfile/data/stray"), O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	dc = open_ok(dir, 1 << 20, BS);
	datacache_get_stats(dc, &s);
	CHECK_INT(s.dropped, 1);
	CHECK_INT(count_files(dir), 2);
	int hits = 0;
	hits += get(dc, "t", "e", 1, 3 * BS, 0, 3 * BS, NULL) == 0;
	hits += get(dc, "u", "e", 2, BS, 0, BS, NULL) == 0;
	hits += get(dc, "w", "e", 3, BS, 0, BS, NULL) == 0;
	CHECK_INT(hits, 2);
	datacache_close(dc);
}

static void test_damaged_index(void)
{
	const char *dir = test_dir("dindex");
	struct datacache *dc = open_ok(dir, 1 << 20, BS);
	uint64_t used = 0, cap = 0;
	char junk[8192];

	CHECK_INT(put(dc, NULL, "a", "e", 1, BS, 0), 0);
	CHECK_INT(put(dc, NULL, "b", "e", 2, 2 * BS, 0), 0);
	CHECK_INT(put(dc, NULL, "c", "e", 3, BS, 0), 0);
	CHECK_INT(put(dc, NULL, "d", "e", 4, BS, 0), 0);
	datacache_close(dc);
	/* rows that lie: bitmap of the wrong length, bytes, etag (id no longer matches) */
	sql_on(dir, "UPDATE obj SET bitmap = x'ff' WHERE key = CAST('a' AS BLOB);"
		    "UPDATE obj SET bytes = 999 WHERE key = CAST('b' AS BLOB);"
		    "UPDATE obj SET etag = 'x' WHERE key = CAST('c' AS BLOB);");
	dc = open_ok(dir, 1 << 20, BS);
	CHECK_INT(get(dc, "a", "e", 1, BS, 0, BS, NULL), -ENOENT);
	CHECK_INT(get(dc, "b", "e", 2, 2 * BS, 0, BS, NULL), -ENOENT);
	CHECK_INT(get(dc, "c", "e", 3, BS, 0, BS, NULL), -ENOENT);
	CHECK_INT(get(dc, "d", "e", 4, BS, 0, BS, NULL), 0);
	CHECK_INT(count_files(dir), 1);
	datacache_usage(dc, &used, &cap);
	CHECK_INT(used, BS);
	datacache_close(dc);
	/* garbage over the whole index: an empty cache, no file left */
	memset(junk, 0xab, sizeof(junk));
	int fd = open(test_dir("dindex/data.db"), O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	unlink(test_dir("dindex/data.db-wal"));
	dc = open_ok(dir, 1 << 20, BS);
	CHECK(dc != NULL);
	if (!dc)
		return;
	CHECK_INT(get(dc, "d", "e", 4, BS, 0, BS, NULL), -ENOENT);
	CHECK_INT(count_files(dir), 0);
	CHECK_INT(put(dc, NULL, "d", "e", 4, BS, 0), 0);
	CHECK_INT(get(dc, "d", "e", 4, BS, 0, BS, NULL), 0);
	datacache_close(dc);
}

static void test_crash(void)
{
	const char *dir = test_dir("crash");
	struct datacache *dc = open_ok(dir, 1 << 20, BS);

	CHECK_INT(put(dc, NULL, "old", "e", 1, BS, 0), 0);
	datacache_close(dc);
	dc = open_ok(dir, 1 << 20, BS);
	CHECK_INT(put(dc, NULL, "new", "e", 2, BS, 0), 0);
	datacache_close(dc);
	/* the process died, the machine did not: the kernel kept the data */
	sql_on(dir, "UPDATE state SET clean = 0");
	dc = open_ok(dir, 1 << 20, BS);
	CHECK_INT(get(dc, "new", "e", 2, BS, 0, BS, NULL), 0);
	CHECK_INT(put(dc, NULL, "newer", "e", 3, BS, 0), 0);
	datacache_close(dc);
	/* the machine stopped: what that session wrote may be torn */
	sql_on(dir, "UPDATE state SET clean = 0, boot = 'another-boot'");
	dc = open_ok(dir, 1 << 20, BS);
	CHECK_INT(get(dc, "newer", "e", 3, BS, 0, BS, NULL), -ENOENT);
	CHECK_INT(get(dc, "new", "e", 2, BS, 0, BS, NULL), 0);
	CHECK_INT(get(dc, "old", "e", 1, BS, 0, BS, NULL), 0);
	CHECK_INT(count_files(dir), 2);
	datacache_close(dc);
}

/* ---- four threads ------------------------------------------------------ */

#define T_KEYS	 6
#define T_BLOCKS 8
#define T_SIZE	 (T_BLOCKS * BS - 123)

struct worker {
	struct datacache *dc;
	unsigned seed;
	int wrong, bad_rc, hits;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char key[16], etag[16];

	for (int i = 0; i < 3000; i++) {
		unsigned r = (unsigned)rand_r(&w->seed);
		unsigned k = r % T_KEYS, v = ((r >> 24) & 15) == 0, op = (r / 16) % 40;
		uint64_t b = (r / 512) % T_BLOCKS, off = (r / 8) % T_SIZE;
		struct datacache_fill f;
		snprintf(key, sizeof(key), "key%u", k);
		snprintf(etag, sizeof(etag), "e%u", v);
		int rc;
		if (op < 22) {
			datacache_fill_begin(w->dc, &f);
			rc = put(w->dc, &f, key, etag, k * 2 + v, T_SIZE, b);
			w->bad_rc += rc != 0 && rc != -EAGAIN;
		} else if (op < 39) {
			rc = get(w->dc, key, etag, k * 2 + v, T_SIZE, off, 3 * BS, NULL);
			w->wrong += rc == 1;
			w->hits += rc == 0;
			w->bad_rc += rc < 0 && rc != -ENOENT;
		} else {
			w->bad_rc += datacache_invalidate(w->dc, key) != 0;
		}
	}
	return NULL;
}

static void test_threads(void)
{
	const char *dir = test_dir("threads");
	struct datacache *dc = open_ok(dir, 3 * T_BLOCKS * BS, BS);
	struct datacache_stats s;
	struct worker w[4];
	pthread_t t[4];
	uint64_t used = 0, cap = 0, used2 = 0;
	int hits = 0;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .dc = dc, .seed = 17u * (unsigned)i + 1 };
		CHECK_INT(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(w[i].wrong, 0);
		CHECK_INT(w[i].bad_rc, 0);
		hits += w[i].hits;
	}
	CHECK(hits > 100);
	datacache_get_stats(dc, &s);
	CHECK(s.evictions > 0);
	datacache_usage(dc, &used, &cap);
	CHECK(used <= cap);
	datacache_close(dc);
	dc = open_ok(dir, 3 * T_BLOCKS * BS, BS);
	datacache_usage(dc, &used2, &cap);
	CHECK_INT(used2, used); /* the sum of the rows is what was counted */
	datacache_close(dc);
}

static void test_sparse(void)
{
	const char *dir = test_dir("sparse");
	struct datacache *dc = open_ok(dir, 64 << 20, 0);
	uint64_t size = 10ull << 30, bs = DATACACHE_BLOCK_DEFAULT, first = 0;
	uint32_t n = 0;
	struct stat st;
	char f[1024];

	CHECK_INT(put(dc, NULL, "big", "e", 9, size, 0), 0);
	CHECK_INT(put(dc, NULL, "big", "e", 9, size, 5000), 0);
	CHECK_INT(put(dc, NULL, "big", "e", 9, size, 5001), 0);
	CHECK_INT(put(dc, NULL, "big", "e", 9, size, size / bs - 1), 0);
	CHECK_INT(get(dc, "big", "e", 9, size, 5000 * bs + 7, bs + 100, NULL), 0);
	CHECK_INT(get(dc, "big", "e", 9, size, size - 10, 100, NULL), 0);
	CHECK_INT(datacache_missing(dc, "big", "e", size, 0, (size_t)size, &first, &n), 0);
	CHECK_INT(first, 1);
	CHECK_INT(n, 4999);
	CHECK_INT(datacache_missing(dc, "big", "e", size, 5000 * bs, (size_t)size, &first, &n), 0);
	CHECK_INT(first, 5002);
	CHECK_INT(n, size / bs - 1 - 5002);
	first_file(dir, f, sizeof(f));
	CHECK_INT(stat(f, &st), 0);
	CHECK_INT(st.st_size, size);
	CHECK((uint64_t)st.st_blocks * 512 <= 8 * bs);
	datacache_close(dc);
	dc = open_ok(dir, 64 << 20, 0);
	CHECK_INT(get(dc, "big", "e", 9, size, 0, 10, NULL), 0);
	datacache_close(dc);
}

static void test_args(void)
{
	const char *dir = test_dir("args");
	struct datacache *dc = NULL;
	char key[DATACACHE_KEY_MAX + 2];
	uint64_t first = 0;
	uint32_t n = 0;
	size_t got = 0;

	CHECK_INT(datacache_open(dir, 1 << 20, 1000, &dc), -EINVAL);
	CHECK_INT(datacache_open(dir, 1 << 20, 128 << 20, &dc), -EINVAL);
	CHECK_INT(datacache_open(dir, BS - 1, BS, &dc), -EINVAL);
	dc = open_ok(dir, 1 << 20, BS);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	CHECK_INT(put(dc, NULL, key, "e", 1, BS, 0), -ENAMETOOLONG);
	CHECK_INT(datacache_invalidate(dc, key), -ENAMETOOLONG);
	CHECK_INT(put(dc, NULL, "k", "", 1, BS, 0), -EINVAL);
	CHECK_INT(put(dc, NULL, "", "e", 1, BS, 0), -EINVAL);
	CHECK_INT(put(dc, NULL, "k", "e", 1, BS, 1), -EINVAL);
	CHECK_INT(datacache_read(dc, "k", "e", 1ull << 60, 0, key, 1, &got), -EFBIG);
	CHECK_INT(datacache_missing(dc, "k", "e", 0, 0, 10, &first, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(datacache_read(dc, "k", "e", 0, 0, key, 10, &got), 0);
	CHECK_INT(got, 0);
	datacache_close(dc);
	datacache_close(NULL);
	CHECK_INT(chmod(dir, 0777), 0);
	CHECK_INT(datacache_open(dir, 1 << 20, BS, &dc), -EACCES);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	test_basic();
	test_partial();
	test_short_last();
	test_eviction();
	test_versions();
	test_invalidate();
	test_reopen();
	test_damaged_file();
	test_damaged_index();
	test_crash();
	test_threads();
	test_sparse();
	test_args();
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return unit_end("datacache");
}
