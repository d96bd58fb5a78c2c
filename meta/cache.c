// SPDX-License-Identifier: MIT
/*
 * meta/cache: the metadata cache of a mount (see meta_cache.h). It owns the
 * one connection to the cache's file, its mutex and its prepared statements,
 * and the tables of entries, HEAD results, directory listings and blobs, with
 * the rules that keep a fetched answer from overwriting a newer write. The
 * file itself (where, who may open it, checks, rebuild) is meta/cachefile.c's;
 * the pending-upload table is meta/journal.c's, which borrows the connection.
 * It must not know the wire (no libcurl, no s3.h), paths or FUSE: keys are
 * byte strings, attributes plain structs.
 *
 * Why one connection behind one mutex: a cache call costs microseconds of
 * SQLite work against the milliseconds of the S3 request it saves, so
 * parallel readers (a connection per thread in WAL mode) would buy little,
 * while libfuse starts and ends threads at will and each connection would
 * carry its own page cache and statements. One serialized handle prepares
 * each statement once, makes multi-statement operations (a listing page, a
 * forget) atomic against the other threads without SQLite's busy handling,
 * and lets SQLite run in multi-thread mode (SQLITE_OPEN_NOMUTEX): the
 * handle's mutex is the only one that counts.
 *
 * Invariants:
 * 1. Statements are stepped and reset only under mc->lock; none keeps a read
 *    transaction open once the lock is released.
 * 2. A write by this mount takes a new generation (++mc->gen) and stamps it
 *    on the rows it changes (entry.wgen, dir.wgen). A fill begun at
 *    generation g changes a row only if the row's wgen <= g, and changes
 *    nothing if mc->forget_gen > g (a forgotten key leaves no row to stamp).
 * 3. A fill never lowers a row's wgen: otherwise an older fetch finishing
 *    after a newer fill would pass the check of invariant 2.
 * 4. Generations are epoch << 32 | counter, the epoch one more at every open
 *    (cachefile.c), so the stamps of an earlier session never refuse a fill.
 * 5. dir.complete = 1 means that every key directly under the directory has
 *    an entry row (negative or not) as of the listing, plus rows of what
 *    this mount changed since: a key without a row under a complete
 *    directory does not exist. Hence forgetting a key clears its parent's
 *    flag, and the final page of a listing drops the rows no page saw.
 */
#include "s3vfs/meta_cache.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3vfs/log.h"
#include "s3vfs/meta_journal.h"

#define GEN_NONE INT64_MAX /* a write: no generation limit */

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_ENTRY_GET,
	ST_ENTRY_PEEK,
	ST_ENTRY_PUT,
	ST_ENTRY_TOUCH,
	ST_ENTRY_DEL,
	ST_STALE_DIRS,
	ST_STALE_DEL,
	ST_CHILDREN,
	ST_CHILDREN_AFTER,
	ST_HEAD_PUT,
	ST_HEAD_GET,
	ST_HEAD_DEL,
	ST_DIR_GET,
	ST_DIR_LISTED,
	ST_DIR_INVAL,
	ST_BLOB_PUT,
	ST_BLOB_GET,
	ST_BLOB_LIST,
	ST_COUNT,
};

/* The columns that read_entry() and bind_entry() take, in this order. */
#define ENTRY_COLS                                                                                 \
	"kind, size, mode, uid, gid, mtime_s, mtime_ns, ctime_s, ctime_ns, etag, last_modified, "  \
	"meta_known, validated_ms, symlink"

/* Parameters are numbered in the order the binder binds them. */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_ENTRY_GET] = "SELECT " ENTRY_COLS " FROM entry WHERE key = ?1",
	[ST_ENTRY_PEEK] = "SELECT kind, etag, last_modified, meta_known, wgen FROM entry "
			  "WHERE key = ?1",
	[ST_ENTRY_PUT] =
		"INSERT INTO entry (key, parent, name, " ENTRY_COLS ", wgen) VALUES (?1, ?2, ?3, "
		"?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) "
		"ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, size = excluded.size, "
		"mode = excluded.mode, uid = excluded.uid, gid = excluded.gid, "
		"mtime_s = excluded.mtime_s, mtime_ns = excluded.mtime_ns, "
		"ctime_s = excluded.ctime_s, ctime_ns = excluded.ctime_ns, etag = excluded.etag, "
		"last_modified = excluded.last_modified, meta_known = excluded.meta_known, "
		"validated_ms = excluded.validated_ms, symlink = excluded.symlink, "
		"wgen = max(entry.wgen, excluded.wgen) WHERE entry.wgen <= ?19",
	[ST_ENTRY_TOUCH] = "UPDATE entry SET validated_ms = ?2 WHERE key = ?1",
	[ST_ENTRY_DEL] = "DELETE FROM entry WHERE key = ?1",
	[ST_STALE_DIRS] = "UPDATE dir SET complete = 0 WHERE key IN (SELECT key FROM entry "
			  "WHERE parent = ?1 AND kind = 2 AND validated_ms < ?2 AND wgen <= ?3)",
	[ST_STALE_DEL] = "DELETE FROM entry WHERE parent = ?1 AND validated_ms < ?2 AND wgen <= ?3",
	[ST_CHILDREN] = "SELECT key, name, " ENTRY_COLS " FROM entry WHERE parent = ?1 "
			"AND kind != 0 ORDER BY name, key",
	[ST_CHILDREN_AFTER] = "SELECT key, name, " ENTRY_COLS " FROM entry WHERE parent = ?1 "
			      "AND (name, key) > (?2, ?3) AND kind != 0 ORDER BY name, key",
	[ST_HEAD_PUT] = "INSERT OR REPLACE INTO headinfo (key, etag, last_modified, mode, uid, "
			"gid, mtime_s, mtime_ns, ctime_s, ctime_ns, atime_s, atime_ns, blob, "
			"stored_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
			"?13, ?14)",
	[ST_HEAD_GET] = "SELECT mode, uid, gid, mtime_s, mtime_ns, ctime_s, ctime_ns, atime_s, "
			"atime_ns, blob FROM headinfo WHERE key = ?1 AND etag = ?2 "
			"AND last_modified = ?3",
	[ST_HEAD_DEL] = "DELETE FROM headinfo WHERE key = ?1",
	[ST_DIR_GET] = "SELECT complete, listed_ms, wgen FROM dir WHERE key = ?1",
	[ST_DIR_LISTED] = "INSERT INTO dir (key, complete, listed_ms, wgen) VALUES (?1, 1, ?2, 0) "
			  "ON CONFLICT (key) DO UPDATE SET complete = 1, "
			  "listed_ms = excluded.listed_ms",
	[ST_DIR_INVAL] = "INSERT INTO dir (key, complete, listed_ms, wgen) VALUES (?1, 0, 0, ?2) "
			 "ON CONFLICT (key) DO UPDATE SET complete = 0, wgen = excluded.wgen",
	[ST_BLOB_PUT] = "INSERT INTO blob (ns, key, value) VALUES (?1, ?2, ?3) "
			"ON CONFLICT (ns, key) DO NOTHING",
	[ST_BLOB_GET] = "SELECT value FROM blob WHERE ns = ?1 AND key = ?2",
	[ST_BLOB_LIST] = "SELECT key, value FROM blob WHERE ns = ?1 AND key >= ?2 ORDER BY key",
};

/*
 * Keys, parents, names and symlink targets are BLOBs (any bytes, compared
 * with memcmp); the parent is the key up to its last '/' (the directory's
 * own key), the name what follows, without a directory's trailing '/'.
 * WITHOUT ROWID keeps a row next to its key; blob and headinfo keep rowids
 * since their values can be large. cachefile.c adds its table and the
 * journal's.
 */
static const char schema_sql[] =
	"CREATE TABLE entry (key BLOB PRIMARY KEY NOT NULL, parent BLOB NOT NULL, "
	"name BLOB NOT NULL, kind INTEGER NOT NULL, size INTEGER NOT NULL, "
	"mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, "
	"mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_s INTEGER NOT NULL, "
	"ctime_ns INTEGER NOT NULL, etag TEXT NOT NULL, last_modified INTEGER NOT NULL, "
	"meta_known INTEGER NOT NULL, validated_ms INTEGER NOT NULL, symlink BLOB, "
	"wgen INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX entry_parent ON entry (parent, name);"
	"CREATE TABLE headinfo (key BLOB PRIMARY KEY NOT NULL, etag TEXT NOT NULL, "
	"last_modified INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, "
	"gid INTEGER NOT NULL, mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, "
	"ctime_s INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, atime_s INTEGER NOT NULL, "
	"atime_ns INTEGER NOT NULL, blob BLOB, stored_ms INTEGER NOT NULL);"
	"CREATE TABLE dir (key BLOB PRIMARY KEY NOT NULL, complete INTEGER NOT NULL, "
	"listed_ms INTEGER NOT NULL, wgen INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE blob (ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, "
	"PRIMARY KEY (ns, key));";

struct meta_cache {
	pthread_mutex_t lock;
	sqlite3 *db;		      /* protected by lock */
	sqlite3_stmt *st[ST_COUNT];   /* protected by lock */
	struct meta_journal *journal; /* protected by lock */
	uint64_t gen;		      /* protected by lock: the last generation taken */
	uint64_t forget_gen;	      /* protected by lock: generation of the last forget */
	int lock_fd;		      /* immutable: flock()ed for the handle's life */
	bool rebuilt;		      /* immutable after open */
};

/* ---- small helpers ---------------------------------------------------- */

int64_t meta_cache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds since stamp; a stamp in the future (the clock went back)
 * counts as infinitely old so that the caller revalidates. */
static int64_t age_since(int64_t stamp_ms)
{
	int64_t now = meta_cache_now_ms();

	return now >= stamp_ms ? now - stamp_ms : INT64_MAX;
}

static int key_check(const char *key, size_t *out_len)
{
	if (!key)
		return -EINVAL;
	size_t n = strnlen(key, META_KEY_MAX + 1);
	if (n > META_KEY_MAX)
		return -ENAMETOOLONG;
	*out_len = n;
	return 0;
}

struct key_parts {
	size_t parent_len; /* key[0, parent_len) is the parent's key */
	const char *name;
	size_t name_len;
};

static void key_split(const char *key, size_t len, struct key_parts *out)
{
	size_t end = len;

	if (end > 0 && key[end - 1] == '/')
		end--;
	size_t slash = end;
	while (slash > 0 && key[slash - 1] != '/')
		slash--;
	out->parent_len = slash;
	out->name = key + slash;
	out->name_len = end - slash;
}

static bool ts_ok(const struct timespec *t)
{
	return t->tv_nsec >= 0 && t->tv_nsec < 1000000000;
}

static int entry_check(const struct meta_entry *e)
{
	if ((unsigned)e->kind > META_KIND_SYMLINK || e->size > INT64_MAX)
		return -EINVAL;
	if (strnlen(e->etag, META_ETAG_MAX) >= META_ETAG_MAX)
		return -EINVAL;
	if (e->symlink && strnlen(e->symlink, META_SYMLINK_MAX) >= META_SYMLINK_MAX)
		return -EINVAL;
	if (!ts_ok(&e->mtime) || !ts_ok(&e->ctime))
		return -EINVAL;
	return 0;
}

void meta_entry_cleanup(struct meta_entry *e)
{
	if (!e)
		return;
	free(e->symlink);
	e->symlink = NULL;
}

void meta_headinfo_cleanup(struct meta_headinfo *h)
{
	if (!h)
		return;
	free(h->blob);
	h->blob = NULL;
	h->blob_len = 0;
}

static void cache_lock(struct meta_cache *mc)
{
	pthread_mutex_lock(&mc->lock);
}

static void cache_unlock(struct meta_cache *mc)
{
	pthread_mutex_unlock(&mc->lock);
}

/* ---- statements ------------------------------------------------------- */

/* Binds parameters ?1, ?2, ... in order; keeps the first failure. Pointers
 * are bound SQLITE_STATIC: they must outlive the step, which they do, since
 * every statement is stepped and reset within the call that bound it. */
struct binder {
	sqlite3_stmt *st;
	int i;
	int rc;
};

static struct binder binder_of(sqlite3_stmt *st)
{
	return (struct binder){ .st = st, .i = 0, .rc = SQLITE_OK };
}

static void bind_keep(struct binder *b, int rc)
{
	if (b->rc == SQLITE_OK)
		b->rc = rc;
}

/* A BLOB; NULL binds SQL NULL. n is capped by every caller far below INT_MAX. */
static void bind_bytes(struct binder *b, const void *p, size_t n)
{
	b->i++;
	if (!p)
		bind_keep(b, sqlite3_bind_null(b->st, b->i));
	else
		bind_keep(b, sqlite3_bind_blob(b->st, b->i, n ? p : "", (int)n, SQLITE_STATIC));
}

static void bind_str(struct binder *b, const char *s)
{
	bind_bytes(b, s, s ? strlen(s) : 0);
}

static void bind_text(struct binder *b, const char *s)
{
	b->i++;
	bind_keep(b, sqlite3_bind_text(b->st, b->i, s, (int)strlen(s), SQLITE_STATIC));
}

static void bind_i64(struct binder *b, int64_t v)
{
	b->i++;
	bind_keep(b, sqlite3_bind_int64(b->st, b->i, v));
}

static void stmt_reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Check the binds of st, step it: 0 on SQLITE_DONE, 1 on SQLITE_ROW (left
 * un-reset for the caller to read), else a negative errno (st reset). */
static int stmt_step(struct meta_cache *mc, const struct binder *b, const char *what)
{
	int rc = b->rc;

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(b->st);
		if (rc == SQLITE_ROW)
			return 1;
		if (rc == SQLITE_DONE) {
			stmt_reset(b->st);
			return 0;
		}
	}
	rc = meta_sqlite_errno(mc->db, rc, what);
	stmt_reset(b->st);
	return rc;
}

/* Step a statement that returns no row, and reset it. */
static int stmt_exec(struct meta_cache *mc, const struct binder *b, const char *what)
{
	int rc = stmt_step(mc, b, what);

	if (rc == 1) {
		stmt_reset(b->st);
		rc = 0;
	}
	return rc;
}

static int txn(struct meta_cache *mc, enum stmt which)
{
	struct binder b = binder_of(mc->st[which]);

	return stmt_exec(mc, &b, stmt_sql[which]);
}

static void txn_rollback(struct meta_cache *mc)
{
	if (sqlite3_get_autocommit(mc->db))
		return; /* SQLite rolled back already (after some errors it does) */
	if (txn(mc, ST_ROLLBACK) != 0)
		log_error("meta_cache: rollback failed");
}

static void bind_entry(struct binder *b, const struct meta_entry *e, int64_t validated_ms)
{
	bind_i64(b, e->kind);
	bind_i64(b, (int64_t)e->size);
	bind_i64(b, e->mode);
	bind_i64(b, e->uid);
	bind_i64(b, e->gid);
	bind_i64(b, e->mtime.tv_sec);
	bind_i64(b, e->mtime.tv_nsec);
	bind_i64(b, e->ctime.tv_sec);
	bind_i64(b, e->ctime.tv_nsec);
	bind_text(b, e->etag);
	bind_i64(b, e->last_modified);
	bind_i64(b, e->meta_known);
	bind_i64(b, validated_ms);
	bind_str(b, e->symlink);
}

/* Read ENTRY_COLS starting at column c. own: copy the symlink (else it
 * points into the statement, valid until the next step). */
static int read_entry(sqlite3_stmt *st, int c, struct meta_entry *e, bool own)
{
	memset(e, 0, sizeof(*e));
	int kind = sqlite3_column_int(st, c);
	e->kind = kind >= META_KIND_NEGATIVE && kind <= META_KIND_SYMLINK ? (enum meta_kind)kind
									  : META_KIND_NEGATIVE;
	e->size = (uint64_t)sqlite3_column_int64(st, c + 1);
	e->mode = (mode_t)sqlite3_column_int64(st, c + 2);
	e->uid = (uid_t)sqlite3_column_int64(st, c + 3);
	e->gid = (gid_t)sqlite3_column_int64(st, c + 4);
	e->mtime.tv_sec = (time_t)sqlite3_column_int64(st, c + 5);
	e->mtime.tv_nsec = (long)sqlite3_column_int64(st, c + 6);
	e->ctime.tv_sec = (time_t)sqlite3_column_int64(st, c + 7);
	e->ctime.tv_nsec = (long)sqlite3_column_int64(st, c + 8);
	const char *etag = (const char *)sqlite3_column_text(st, c + 9);
	if (etag)
		snprintf(e->etag, sizeof(e->etag), "%s", etag);
	e->last_modified = sqlite3_column_int64(st, c + 10);
	e->meta_known = sqlite3_column_int(st, c + 11) != 0;
	e->validated_ms = sqlite3_column_int64(st, c + 12);
	/* column_text on a BLOB gives its bytes NUL-terminated */
	const char *link = (const char *)sqlite3_column_text(st, c + 13);
	if (link && own) {
		e->symlink = strdup(link);
		if (!e->symlink)
			return -ENOMEM;
	} else {
		e->symlink = (char *)link;
	}
	return 0;
}

/* ---- entries ---------------------------------------------------------- */

void meta_cache_fill_begin(struct meta_cache *mc, struct meta_fill *out)
{
	cache_lock(mc);
	out->gen = mc->gen;
	cache_unlock(mc);
	out->started_ms = meta_cache_now_ms();
}

/* Generation stamp and limit of a change: a write takes a new generation and
 * has no limit; a fill stamps nothing and is limited to its snapshot. */
static int change_gen_locked(struct meta_cache *mc, const struct meta_fill *fill,
			     int64_t *out_stamp, int64_t *out_limit)
{
	if (!fill) {
		*out_stamp = (int64_t)++mc->gen;
		*out_limit = GEN_NONE;
		return 0;
	}
	if (mc->forget_gen > fill->gen)
		return -EAGAIN;
	*out_stamp = 0;
	*out_limit = (int64_t)fill->gen;
	return 0;
}

/* Insert or replace the row of key, unless refused (-EAGAIN) by the limit. */
static int entry_put_locked(struct meta_cache *mc, const char *key, size_t len,
			    const struct meta_entry *e, int64_t validated_ms, int64_t stamp,
			    int64_t limit)
{
	struct key_parts kp;
	struct binder b = binder_of(mc->st[ST_ENTRY_PUT]);

	key_split(key, len, &kp);
	bind_bytes(&b, key, len);
	bind_bytes(&b, key, kp.parent_len);
	bind_bytes(&b, kp.name, kp.name_len);
	bind_entry(&b, e, validated_ms);
	bind_i64(&b, stamp);
	bind_i64(&b, limit);
	int rc = stmt_exec(mc, &b, "store entry");
	if (rc == 0 && sqlite3_changes(mc->db) == 0)
		rc = -EAGAIN;
	return rc;
}

/* No row for key: under a complete listing of its parent it does not exist. */
static int implied_negative_locked(struct meta_cache *mc, const char *key, size_t len,
				   struct meta_entry *out)
{
	struct key_parts kp;
	struct binder b = binder_of(mc->st[ST_DIR_GET]);

	if (len == 0)
		return -ENOENT; /* the bucket's root is no one's child */
	key_split(key, len, &kp);
	bind_bytes(&b, key, kp.parent_len);
	int rc = stmt_step(mc, &b, "lookup directory");
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ENOENT;
	bool complete = sqlite3_column_int(b.st, 0) != 0;
	int64_t listed_ms = sqlite3_column_int64(b.st, 1);
	stmt_reset(b.st);
	if (!complete)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->kind = META_KIND_NEGATIVE;
	out->validated_ms = listed_ms;
	return 0;
}

int meta_cache_lookup(struct meta_cache *mc, const char *key, struct meta_entry *out,
		      int64_t *out_age_ms)
{
	struct meta_entry e = { 0 };
	size_t len = 0;
	int rc = key_check(key, &len);

	if (rc)
		return rc;
	cache_lock(mc);
	struct binder b = binder_of(mc->st[ST_ENTRY_GET]);
	bind_bytes(&b, key, len);
	rc = stmt_step(mc, &b, "lookup");
	if (rc == 1) {
		rc = read_entry(b.st, 0, &e, true);
		stmt_reset(b.st);
	} else if (rc == 0) {
		rc = implied_negative_locked(mc, key, len, &e);
	}
	cache_unlock(mc);
	if (rc) {
		meta_entry_cleanup(&e);
		return rc;
	}
	*out_age_ms = age_since(e.validated_ms);
	*out = e;
	return 0;
}

int meta_cache_upsert(struct meta_cache *mc, const char *key, const struct meta_entry *e,
		      const struct meta_fill *fill)
{
	int64_t stamp = 0, limit = 0;
	size_t len = 0;
	int rc = key_check(key, &len);

	if (rc == 0)
		rc = entry_check(e);
	if (rc)
		return rc;
	cache_lock(mc);
	rc = change_gen_locked(mc, fill, &stamp, &limit);
	if (rc == 0)
		rc = entry_put_locked(mc, key, len, e, meta_cache_now_ms(), stamp, limit);
	cache_unlock(mc);
	return rc;
}

/* What ST_ENTRY_PEEK tells of an existing row. */
struct peek {
	enum meta_kind kind;
	char etag[META_ETAG_MAX];
	int64_t last_modified;
	bool meta_known;
	int64_t wgen;
};

/* 0 and out filled, -ENOENT for no row. */
static int entry_peek_locked(struct meta_cache *mc, const char *key, size_t len, struct peek *out)
{
	struct binder b = binder_of(mc->st[ST_ENTRY_PEEK]);

	bind_bytes(&b, key, len);
	int rc = stmt_step(mc, &b, "peek entry");
	if (rc <= 0)
		return rc < 0 ? rc : -ENOENT;
	out->kind = (enum meta_kind)sqlite3_column_int(b.st, 0);
	const char *etag = (const char *)sqlite3_column_text(b.st, 1);
	snprintf(out->etag, sizeof(out->etag), "%s", etag ? etag : "");
	out->last_modified = sqlite3_column_int64(b.st, 2);
	out->meta_known = sqlite3_column_int(b.st, 3) != 0;
	out->wgen = sqlite3_column_int64(b.st, 4);
	stmt_reset(b.st);
	return 0;
}

static int entry_touch_locked(struct meta_cache *mc, const char *key, size_t len, int64_t now)
{
	struct binder b = binder_of(mc->st[ST_ENTRY_TOUCH]);

	bind_bytes(&b, key, len);
	bind_i64(&b, now);
	return stmt_exec(mc, &b, "touch entry");
}

int meta_cache_touch(struct meta_cache *mc, const char *key, const char *etag,
		     const struct meta_fill *fill)
{
	struct peek p;
	size_t len = 0;
	int rc = key_check(key, &len);

	if (rc == 0 && !etag)
		rc = -EINVAL;
	if (rc)
		return rc;
	cache_lock(mc);
	rc = entry_peek_locked(mc, key, len, &p);
	if (rc == 0 && (p.kind == META_KIND_NEGATIVE || strcmp(p.etag, etag) != 0))
		rc = -ENOENT;
	if (rc == 0 && fill && p.wgen > (int64_t)fill->gen)
		rc = -EAGAIN;
	if (rc == 0)
		rc = entry_touch_locked(mc, key, len, meta_cache_now_ms());
	cache_unlock(mc);
	return rc;
}

static int head_del_locked(struct meta_cache *mc, const char *key, size_t len)
{
	struct binder b = binder_of(mc->st[ST_HEAD_DEL]);

	bind_bytes(&b, key, len);
	return stmt_exec(mc, &b, "delete HEAD result");
}

int meta_cache_mark_negative(struct meta_cache *mc, const char *key, const struct meta_fill *fill)
{
	static const struct meta_entry negative = { .kind = META_KIND_NEGATIVE };
	int64_t stamp = 0, limit = 0;
	size_t len = 0;
	int rc = key_check(key, &len);

	if (rc)
		return rc;
	cache_lock(mc);
	rc = change_gen_locked(mc, fill, &stamp, &limit);
	if (rc == 0)
		rc = entry_put_locked(mc, key, len, &negative, meta_cache_now_ms(), stamp, limit);
	/* The object is gone: the HEAD result of its last version is of no use. */
	if (rc == 0)
		rc = head_del_locked(mc, key, len);
	cache_unlock(mc);
	return rc;
}

static int dir_inval_locked(struct meta_cache *mc, const char *dir_key, size_t len)
{
	struct binder b = binder_of(mc->st[ST_DIR_INVAL]);

	bind_bytes(&b, dir_key, len);
	bind_i64(&b, (int64_t)++mc->gen);
	return stmt_exec(mc, &b, "invalidate directory");
}

int meta_cache_delete(struct meta_cache *mc, const char *key)
{
	struct key_parts kp;
	size_t len = 0;
	int rc = key_check(key, &len);

	if (rc)
		return rc;
	key_split(key, len, &kp);
	cache_lock(mc);
	rc = txn(mc, ST_BEGIN);
	if (rc)
		goto out_unlock;
	struct binder b = binder_of(mc->st[ST_ENTRY_DEL]);
	bind_bytes(&b, key, len);
	rc = stmt_exec(mc, &b, "delete entry");
	if (rc == 0)
		rc = head_del_locked(mc, key, len);
	/* Invariant 5: the parent's listing no longer covers this key. */
	if (rc == 0 && len > 0)
		rc = dir_inval_locked(mc, key, kp.parent_len);
	if (rc == 0)
		rc = txn(mc, ST_COMMIT);
	if (rc) {
		txn_rollback(mc);
		goto out_unlock;
	}
	mc->forget_gen = ++mc->gen;
out_unlock:
	cache_unlock(mc);
	return rc;
}

/* ---- listing pages ---------------------------------------------------- */

/* The metadata part of a HEAD result of (key, etag, lm) into e, if known:
 * 0, -ENOENT, or another negative errno. */
static int head_meta_locked(struct meta_cache *mc, const char *key, size_t len,
			    struct meta_entry *e)
{
	struct binder b = binder_of(mc->st[ST_HEAD_GET]);

	bind_bytes(&b, key, len);
	bind_text(&b, e->etag);
	bind_i64(&b, e->last_modified);
	int rc = stmt_step(mc, &b, "lookup HEAD result");
	if (rc <= 0)
		return rc < 0 ? rc : -ENOENT;
	e->mode = (mode_t)sqlite3_column_int64(b.st, 0);
	e->uid = (uid_t)sqlite3_column_int64(b.st, 1);
	e->gid = (gid_t)sqlite3_column_int64(b.st, 2);
	e->mtime.tv_sec = (time_t)sqlite3_column_int64(b.st, 3);
	e->mtime.tv_nsec = (long)sqlite3_column_int64(b.st, 4);
	e->ctime.tv_sec = (time_t)sqlite3_column_int64(b.st, 5);
	e->ctime.tv_nsec = (long)sqlite3_column_int64(b.st, 6);
	stmt_reset(b.st);
	e->meta_known = true;
	if (S_ISLNK(e->mode))
		e->kind = META_KIND_SYMLINK;
	else if (S_ISDIR(e->mode))
		e->kind = META_KIND_DIR;
	return 0;
}

/* Does the row (p) already hold the known metadata of what the item lists? */
static bool page_keeps(const struct peek *p, const struct meta_entry *item)
{
	if (!p->meta_known || p->kind == META_KIND_NEGATIVE)
		return false;
	/* A CommonPrefix carries no version: a known directory stays as it is. */
	if (item->etag[0] == '\0')
		return item->kind == META_KIND_DIR && p->kind == META_KIND_DIR;
	/* last_modified 0: this mount wrote the object and S3 did not say when;
	 * the ETag alone then decides. */
	return strcmp(p->etag, item->etag) == 0 &&
	       (p->last_modified == item->last_modified || p->last_modified == 0);
}

/* One item of a page, by the rules of meta_cache_put_page() in the header. */
static int page_item_locked(struct meta_cache *mc, const struct meta_fill *fill,
			    const struct meta_list_item *it, int64_t now)
{
	struct meta_entry e = it->e;
	struct peek p;
	size_t len = strlen(it->key);
	int rc = entry_peek_locked(mc, it->key, len, &p);

	if (rc && rc != -ENOENT)
		return rc;
	bool exists = rc == 0;
	if (exists && p.wgen > (int64_t)fill->gen)
		return 0; /* rule 1: this mount's write is newer than the listing */
	if (!e.meta_known && exists && page_keeps(&p, &e))
		return entry_touch_locked(mc, it->key, len, now); /* rule 2 */
	if (!e.meta_known && e.etag[0] != '\0') {
		rc = head_meta_locked(mc, it->key, len, &e); /* rule 3 */
		if (rc && rc != -ENOENT)
			return rc;
	}
	rc = entry_put_locked(mc, it->key, len, &e, now, 0, (int64_t)fill->gen);
	return rc == -EAGAIN ? 0 : rc; /* cannot happen: checked by the peek */
}

/* The final page: drop children no page saw, mark the directory listed. */
static int page_mark_listed_locked(struct meta_cache *mc, const struct meta_fill *fill,
				   const char *dir_key, size_t len)
{
	struct binder b = binder_of(mc->st[ST_DIR_GET]);

	bind_bytes(&b, dir_key, len);
	int rc = stmt_step(mc, &b, "lookup directory");
	if (rc < 0)
		return rc;
	if (rc == 1) {
		int64_t wgen = sqlite3_column_int64(b.st, 2);
		stmt_reset(b.st);
		if (wgen > (int64_t)fill->gen)
			return -EAGAIN; /* invalidated since the listing began */
	}
	static const enum stmt stale[] = { ST_STALE_DIRS, ST_STALE_DEL };
	for (size_t i = 0; i < ARRAY_SIZE(stale) && rc >= 0; i++) {
		b = binder_of(mc->st[stale[i]]);
		bind_bytes(&b, dir_key, len);
		bind_i64(&b, fill->started_ms);
		bind_i64(&b, (int64_t)fill->gen);
		rc = stmt_exec(mc, &b, "drop unlisted entries");
	}
	if (rc < 0)
		return rc;
	b = binder_of(mc->st[ST_DIR_LISTED]);
	bind_bytes(&b, dir_key, len);
	bind_i64(&b, fill->started_ms);
	return stmt_exec(mc, &b, "mark directory listed");
}

static int page_check(const char *dir_key, const struct meta_list_item *items, size_t n)
{
	size_t len = 0;
	int rc = key_check(dir_key, &len);

	if (rc == 0 && n > 0 && !items)
		rc = -EINVAL;
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = key_check(items[i].key, &len);
		if (rc == 0)
			rc = entry_check(&items[i].e);
	}
	return rc;
}

int meta_cache_put_page(struct meta_cache *mc, const struct meta_fill *fill, const char *dir_key,
			const struct meta_list_item *items, size_t n, bool last)
{
	int rc = fill ? page_check(dir_key, items, n) : -EINVAL;

	if (rc)
		return rc;
	/* Stamps at or after started_ms, even if the clock stepped back, so that
	 * the final page cannot take this listing's rows for stale ones. */
	int64_t now = meta_cache_now_ms();
	if (now < fill->started_ms)
		now = fill->started_ms;
	cache_lock(mc);
	if (mc->forget_gen > fill->gen) {
		rc = -EAGAIN;
		goto out_unlock;
	}
	rc = txn(mc, ST_BEGIN);
	if (rc)
		goto out_unlock;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = page_item_locked(mc, fill, &items[i], now);
	int listed = 0;
	if (rc == 0 && last)
		listed = page_mark_listed_locked(mc, fill, dir_key, strlen(dir_key));
	if (listed && listed != -EAGAIN)
		rc = listed;
	if (rc == 0)
		rc = txn(mc, ST_COMMIT);
	if (rc)
		txn_rollback(mc);
	else
		rc = listed;
out_unlock:
	cache_unlock(mc);
	return rc;
}

/* ---- HEAD results ----------------------------------------------------- */

static int head_args_check(const char *key, const char *etag, size_t *out_len)
{
	int rc = key_check(key, out_len);

	if (rc == 0 && (!etag || strnlen(etag, META_ETAG_MAX) >= META_ETAG_MAX))
		rc = -EINVAL;
	return rc;
}

int meta_cache_headinfo_put(struct meta_cache *mc, const char *key, const char *etag,
			    int64_t last_modified, const struct meta_headinfo *h)
{
	size_t len = 0;
	int rc = head_args_check(key, etag, &len);

	if (rc == 0 && (h->blob_len > META_HEADBLOB_MAX || (h->blob_len && !h->blob)))
		rc = -EINVAL;
	if (rc == 0 && (!ts_ok(&h->mtime) || !ts_ok(&h->ctime) || !ts_ok(&h->atime)))
		rc = -EINVAL;
	if (rc)
		return rc;
	cache_lock(mc);
	struct binder b = binder_of(mc->st[ST_HEAD_PUT]);
	bind_bytes(&b, key, len);
	bind_text(&b, etag);
	bind_i64(&b, last_modified);
	bind_i64(&b, h->mode);
	bind_i64(&b, h->uid);
	bind_i64(&b, h->gid);
	const struct timespec *times[] = { &h->mtime, &h->ctime, &h->atime };
	for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
		bind_i64(&b, times[i]->tv_sec);
		bind_i64(&b, times[i]->tv_nsec);
	}
	bind_bytes(&b, h->blob_len ? h->blob : NULL, h->blob_len);
	bind_i64(&b, meta_cache_now_ms());
	rc = stmt_exec(mc, &b, "store HEAD result");
	cache_unlock(mc);
	return rc;
}

static int read_headinfo(sqlite3_stmt *st, struct meta_headinfo *h)
{
	memset(h, 0, sizeof(*h));
	h->mode = (mode_t)sqlite3_column_int64(st, 0);
	h->uid = (uid_t)sqlite3_column_int64(st, 1);
	h->gid = (gid_t)sqlite3_column_int64(st, 2);
	struct timespec *times[] = { &h->mtime, &h->ctime, &h->atime };
	for (int i = 0; i < (int)ARRAY_SIZE(times); i++) {
		times[i]->tv_sec = (time_t)sqlite3_column_int64(st, 3 + 2 * i);
		times[i]->tv_nsec = (long)sqlite3_column_int64(st, 4 + 2 * i);
	}
	const void *blob = sqlite3_column_blob(st, 9);
	size_t n = (size_t)sqlite3_column_bytes(st, 9);
	if (!blob || n == 0)
		return 0;
	h->blob = malloc(n);
	if (!h->blob)
		return -ENOMEM;
	memcpy(h->blob, blob, n);
	h->blob_len = n;
	return 0;
}

int meta_cache_headinfo_get(struct meta_cache *mc, const char *key, const char *etag,
			    int64_t last_modified, struct meta_headinfo *out)
{
	struct meta_headinfo h = { 0 };
	size_t len = 0;
	int rc = head_args_check(key, etag, &len);

	if (rc)
		return rc;
	cache_lock(mc);
	struct binder b = binder_of(mc->st[ST_HEAD_GET]);
	bind_bytes(&b, key, len);
	bind_text(&b, etag);
	bind_i64(&b, last_modified);
	rc = stmt_step(mc, &b, "lookup HEAD result");
	if (rc == 1) {
		rc = read_headinfo(b.st, &h);
		stmt_reset(b.st);
	} else if (rc == 0) {
		rc = -ENOENT;
	}
	cache_unlock(mc);
	if (rc) {
		meta_headinfo_cleanup(&h);
		return rc;
	}
	*out = h;
	return 0;
}

/* ---- directories ------------------------------------------------------ */

/* 0 and the listing's stamp if dir_key is complete, else -ENOENT. */
static int dir_complete_locked(struct meta_cache *mc, const char *dir_key, size_t len,
			       int64_t *out_listed_ms)
{
	struct binder b = binder_of(mc->st[ST_DIR_GET]);

	bind_bytes(&b, dir_key, len);
	int rc = stmt_step(mc, &b, "lookup directory");
	if (rc <= 0)
		return rc < 0 ? rc : -ENOENT;
	bool complete = sqlite3_column_int(b.st, 0) != 0;
	*out_listed_ms = sqlite3_column_int64(b.st, 1);
	stmt_reset(b.st);
	return complete ? 0 : -ENOENT;
}

int meta_cache_dir_lookup(struct meta_cache *mc, const char *dir_key, int64_t *out_age_ms)
{
	int64_t listed_ms = 0;
	size_t len = 0;
	int rc = key_check(dir_key, &len);

	if (rc)
		return rc;
	cache_lock(mc);
	rc = dir_complete_locked(mc, dir_key, len, &listed_ms);
	cache_unlock(mc);
	if (rc == 0)
		*out_age_ms = age_since(listed_ms);
	return rc;
}

int meta_cache_dir_invalidate(struct meta_cache *mc, const char *dir_key)
{
	size_t len = 0;
	int rc = key_check(dir_key, &len);

	if (rc)
		return rc;
	cache_lock(mc);
	rc = dir_inval_locked(mc, dir_key, len);
	cache_unlock(mc);
	return rc;
}

int meta_cache_expire_all(struct meta_cache *mc)
{
	char *msg = NULL;
	int rc;

	cache_lock(mc);
	rc = sqlite3_exec(mc->db,
			  "BEGIN; UPDATE entry SET validated_ms = 0; UPDATE dir SET listed_ms = 0; "
			  "COMMIT;",
			  NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_error("metadata cache: cannot expire entries: %s", msg ? msg : "?");
		sqlite3_exec(mc->db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_free(msg);
	cache_unlock(mc);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* Walk the rows of a children statement, already bound. */
static int children_walk_locked(struct meta_cache *mc, struct binder *b, meta_child_fn fn,
				void *arg)
{
	struct meta_entry e;
	int rc;

	while ((rc = stmt_step(mc, b, "list children")) == 1) {
		const char *key = (const char *)sqlite3_column_text(b->st, 0);
		const char *name = (const char *)sqlite3_column_text(b->st, 1);
		rc = read_entry(b->st, 2, &e, false);
		if (rc == 0 && (!key || !name))
			rc = -ENOMEM; /* the BLOB -> text conversion failed */
		if (rc == 0)
			rc = fn(arg, name, key, &e);
		if (rc != 0) {
			stmt_reset(b->st);
			return rc > 0 ? 0 : rc;
		}
	}
	return rc;
}

int meta_cache_dir_children(struct meta_cache *mc, const char *dir_key, const char *after,
			    meta_child_fn fn, void *arg)
{
	struct key_parts kp;
	int64_t listed_ms = 0;
	size_t len = 0, after_len = 0;
	int rc = key_check(dir_key, &len);

	if (rc == 0 && after)
		rc = key_check(after, &after_len);
	if (rc == 0 && !fn)
		rc = -EINVAL;
	if (rc)
		return rc;
	cache_lock(mc);
	rc = dir_complete_locked(mc, dir_key, len, &listed_ms);
	if (rc)
		goto out_unlock;
	struct binder b = binder_of(mc->st[after ? ST_CHILDREN_AFTER : ST_CHILDREN]);
	bind_bytes(&b, dir_key, len);
	if (after) {
		key_split(after, after_len, &kp);
		bind_bytes(&b, kp.name, kp.name_len);
		bind_bytes(&b, after, after_len);
	}
	rc = children_walk_locked(mc, &b, fn, arg);
out_unlock:
	cache_unlock(mc);
	return rc;
}

/* ---- blobs ------------------------------------------------------------ */

static int blob_args_check(const char *ns, const char *key, size_t *out_len)
{
	if (!ns || ns[0] == '\0' || strnlen(ns, META_NS_MAX + 1) > META_NS_MAX)
		return -EINVAL;
	return key_check(key, out_len);
}

/* After a put that changed nothing: is the stored value the same? */
static int blob_same_locked(struct meta_cache *mc, const char *ns, const char *key, size_t len,
			    const void *value, size_t n)
{
	struct binder b = binder_of(mc->st[ST_BLOB_GET]);

	bind_text(&b, ns);
	bind_bytes(&b, key, len);
	int rc = stmt_step(mc, &b, "read blob");
	if (rc <= 0)
		return rc < 0 ? rc : -EIO; /* it was there a statement ago */
	const void *stored = sqlite3_column_blob(b.st, 0);
	size_t stored_len = (size_t)sqlite3_column_bytes(b.st, 0);
	bool same = stored_len == n && (n == 0 || memcmp(stored, value, n) == 0);
	stmt_reset(b.st);
	return same ? 0 : -EEXIST;
}

int meta_cache_blob_put(struct meta_cache *mc, const char *ns, const char *key, const void *value,
			size_t len)
{
	size_t key_len = 0;
	int rc = blob_args_check(ns, key, &key_len);

	if (rc == 0 && (len > META_BLOB_MAX || (len && !value)))
		rc = -EINVAL;
	if (rc)
		return rc;
	cache_lock(mc);
	struct binder b = binder_of(mc->st[ST_BLOB_PUT]);
	bind_text(&b, ns);
	bind_bytes(&b, key, key_len);
	bind_bytes(&b, len ? value : "", len);
	rc = stmt_exec(mc, &b, "store blob");
	if (rc == 0 && sqlite3_changes(mc->db) == 0)
		rc = blob_same_locked(mc, ns, key, key_len, value, len);
	cache_unlock(mc);
	return rc;
}

int meta_cache_blob_get(struct meta_cache *mc, const char *ns, const char *key, void **out_value,
			size_t *out_len)
{
	char *copy = NULL;
	size_t key_len = 0, n = 0;
	int rc = blob_args_check(ns, key, &key_len);

	if (rc)
		return rc;
	cache_lock(mc);
	struct binder b = binder_of(mc->st[ST_BLOB_GET]);
	bind_text(&b, ns);
	bind_bytes(&b, key, key_len);
	rc = stmt_step(mc, &b, "read blob");
	if (rc == 1) {
		const void *v = sqlite3_column_blob(b.st, 0);
		n = (size_t)sqlite3_column_bytes(b.st, 0);
		copy = malloc(n + 1);
		rc = copy ? 0 : -ENOMEM;
		if (copy) {
			if (n)
				memcpy(copy, v, n);
			copy[n] = '\0';
		}
		stmt_reset(b.st);
	} else if (rc == 0) {
		rc = -ENOENT;
	}
	cache_unlock(mc);
	if (rc == 0) {
		*out_value = copy;
		*out_len = n;
	}
	return rc;
}

int meta_cache_blob_list(struct meta_cache *mc, const char *ns, const char *prefix, meta_blob_fn fn,
			 void *arg)
{
	const char *pfx = prefix ? prefix : "";
	size_t plen = 0;
	int rc = blob_args_check(ns, pfx, &plen);

	if (rc == 0 && !fn)
		rc = -EINVAL;
	if (rc)
		return rc;
	cache_lock(mc);
	struct binder b = binder_of(mc->st[ST_BLOB_LIST]);
	bind_text(&b, ns);
	bind_bytes(&b, pfx, plen);
	/* Keys with the prefix sort together from the prefix on: stop at the first other. */
	while ((rc = stmt_step(mc, &b, "list blobs")) == 1) {
		const char *key = (const char *)sqlite3_column_text(b.st, 0);
		size_t key_len = (size_t)sqlite3_column_bytes(b.st, 0);
		const void *v = sqlite3_column_blob(b.st, 1);
		size_t n = (size_t)sqlite3_column_bytes(b.st, 1);
		if (!key)
			rc = -ENOMEM;
		else if (key_len < plen || memcmp(key, pfx, plen) != 0)
			rc = 1;
		else
			rc = fn(arg, key, n ? v : "", n);
		if (rc != 0) {
			stmt_reset(b.st);
			rc = rc > 0 ? 0 : rc;
			break;
		}
	}
	cache_unlock(mc);
	return rc;
}

/* Statements, journal and generations on the file cachefile.c opened. */
static int cache_setup(struct meta_cache *mc, int64_t epoch)
{
	/* Invariant 4. 2^32 writes in one session would run into the next epoch. */
	mc->gen = (uint64_t)epoch << 32;
	mc->forget_gen = mc->gen;
	for (int i = 0; i < ST_COUNT; i++) {
		int src = sqlite3_prepare_v3(mc->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					     &mc->st[i], NULL);
		if (src != SQLITE_OK)
			return meta_sqlite_errno(mc->db, src, stmt_sql[i]);
	}
	return meta_journal_attach(mc->db, &mc->journal);
}

int meta_cache_open(const char *dir, const char *name, struct meta_cache **out)
{
	struct meta_cachefile cf;
	struct meta_cache *mc = calloc(1, sizeof(*mc));
	int rc = 0;

	if (!mc)
		return -ENOMEM;
	mc->lock_fd = -1;
	rc = -pthread_mutex_init(&mc->lock, NULL);
	if (rc) {
		free(mc);
		return rc;
	}
	rc = meta_cachefile_open(dir, name, schema_sql, &cf);
	if (rc)
		goto out;
	mc->db = cf.db;
	mc->lock_fd = cf.lock_fd;
	mc->rebuilt = cf.rebuilt;
	rc = cache_setup(mc, cf.epoch);
out:
	if (rc)
		meta_cache_close(mc);
	else
		*out = mc;
	return rc;
}

void meta_cache_close(struct meta_cache *mc)
{
	if (!mc)
		return;
	meta_journal_detach(mc->journal);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(mc->st[i]);
	if (mc->db && sqlite3_close(mc->db) != SQLITE_OK)
		log_error("meta_cache: close: %s", sqlite3_errmsg(mc->db));
	if (mc->lock_fd >= 0)
		close(mc->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&mc->lock);
	free(mc);
}

bool meta_cache_rebuilt(const struct meta_cache *mc)
{
	return mc->rebuilt;
}

struct meta_journal *meta_cache_journal_lock(struct meta_cache *mc)
{
	cache_lock(mc);
	return mc->journal;
}

void meta_cache_journal_unlock(struct meta_cache *mc)
{
	cache_unlock(mc);
}
