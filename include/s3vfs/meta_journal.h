/* SPDX-License-Identifier: MIT */
/*
 * meta_journal: the pending-upload journal, a table in the metadata cache's
 * file (meta_cache.h). The write path records here each upload that S3 has
 * not acknowledged (staged data the user was told failed, or an upload in
 * flight when the process died) and retries it in the background and at the
 * next mount. Rows are never dropped silently: a rebuild of a damaged cache
 * salvages them first.
 *
 * Every commit to the journal is synced to disk (synchronous=FULL for that
 * transaction): a row must survive a power cut, not only a crash. Ids come
 * from AUTOINCREMENT and are never reused, so a late update of a removed row
 * cannot hit a newer one.
 *
 * Threads and errors as in meta_cache.h: the journal shares the cache
 * handle's connection and lock (a leaf lock). 0 or a negative errno: -ENOENT
 * for an unknown id, -EINVAL, -ENAMETOOLONG (key), -ENOMEM, -ENOSPC, -EIO.
 */
#ifndef S3VFS_META_JOURNAL_H
#define S3VFS_META_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3vfs/compiler.h"
#include "s3vfs/meta_cache.h"

#define META_PATH_MAX  4096 /* bytes in a staging path, NUL included */
#define META_ERROR_MAX 1024 /* last_error is cut to this many bytes */

enum meta_pending_state {
	META_PENDING_QUEUED = 0,    /* waiting for an attempt */
	META_PENDING_UPLOADING = 1, /* an attempt is in flight (or was, if we crashed) */
	META_PENDING_FAILED = 2,    /* the last attempt failed: last_error says why */
};

/* One pending upload. As output every string is owned (meta_pending_cleanup);
 * as input (add) borrowed, and id and created_ms are ignored. */
struct meta_pending {
	int64_t id;
	char *key;
	char *staging_path; /* the staged data, kept until the upload succeeds */
	uint64_t size;
	struct timespec mtime;
	enum meta_pending_state state;
	uint32_t attempts;
	char *last_error; /* NULL if none */
	int64_t created_ms;
};

void meta_pending_cleanup(struct meta_pending *p);

/* Record a pending upload; *out_id (may be NULL) gets its id.
 * -EINVAL: empty staging path or one over META_PATH_MAX, bad state. */
int meta_journal_add(struct meta_cache *mc, const struct meta_pending *p,
		     int64_t *out_id) WARN_UNUSED;

/* All pending uploads, oldest first. *out_rows (meta_journal_list_free) is
 * NULL when there are none. */
int meta_journal_list(struct meta_cache *mc, struct meta_pending **out_rows,
		      size_t *out_n) WARN_UNUSED;
void meta_journal_list_free(struct meta_pending *rows, size_t n);

/* Set the state, attempt count and last error (NULL: none) of row id. */
int meta_journal_update(struct meta_cache *mc, int64_t id, enum meta_pending_state state,
			uint32_t attempts, const char *last_error) WARN_UNUSED;

/* The upload of row id succeeded (or was given up by the user). */
int meta_journal_remove(struct meta_cache *mc, int64_t id) WARN_UNUSED;

/* Number of pending uploads (for the statistics). */
int meta_journal_count(struct meta_cache *mc, uint64_t *out_n) WARN_UNUSED;

/*
 * Internal to meta/, between cache.c (the connection, its lock, the tables),
 * cachefile.c (the file: checks, rebuild) and journal.c. fs/ must not use
 * anything below.
 */
struct sqlite3;
struct meta_journal;

/* The cache's file, opened for cache.c. */
struct meta_cachefile {
	struct sqlite3 *db; /* checked, schema in place, WAL, synchronous=NORMAL */
	int lock_fd;	    /* flock()ed: closing it (after db) lets another mount in */
	int64_t epoch;	    /* one more than at the last open */
	bool rebuilt;	    /* a bad file was moved aside */
};

/* Open the cache "name" in dir, as meta_cache_open() says (same errors),
 * rebuilding a bad file with its journal salvaged. schema: the CREATE
 * statements of cache.c's tables, run on a fresh file. */
int meta_cachefile_open(const char *dir, const char *name, const char *schema,
			struct meta_cachefile *out) WARN_UNUSED;

/* The CREATE statement of the journal's table, run in the schema transaction. */
const char *meta_journal_schema(void);
/* Prepare the journal's statements on db (kept until detach). */
int meta_journal_attach(struct sqlite3 *db, struct meta_journal **out) WARN_UNUSED;
void meta_journal_detach(struct meta_journal *j);
/* Best effort: the rows of the journal of a damaged file (path), for a rebuild.
 * 0 with no rows when nothing could be read. */
int meta_journal_salvage(const char *path, struct meta_pending **out_rows,
			 size_t *out_n) WARN_UNUSED;
/* Insert salvaged rows (new ids) in one transaction. */
int meta_journal_restore(struct meta_journal *j, const struct meta_pending *rows,
			 size_t n) WARN_UNUSED;
/* Take the cache handle's lock and lend its journal; give it back with unlock. */
struct meta_journal *meta_cache_journal_lock(struct meta_cache *mc);
void meta_cache_journal_unlock(struct meta_cache *mc);
/* Log a SQLite failure (what, SQLite's message) and map it to an errno. */
int meta_sqlite_errno(struct sqlite3 *db, int sqlite_rc, const char *what);

#endif
