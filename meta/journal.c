// SPDX-License-Identifier: MIT
/*
 * meta/journal: the pending-upload journal (see meta_journal.h): its table,
 * its statements, its durability (each commit synced), and the salvage of
 * its rows from a damaged file when the cache is rebuilt. It borrows the
 * metadata cache's connection and lock; meta/cache.c owns them, the rest of
 * the schema and the decision to rebuild. It must not know how an upload is
 * done or retried (the write path's business), the wire, or FUSE.
 */
#include "s3vfs/meta_journal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "s3vfs/log.h"

#define SALVAGE_MAX 100000 /* rows read from a damaged file, at most */

enum jstmt {
	J_ADD,
	J_LIST,
	J_UPDATE,
	J_DEL,
	J_COUNT_ROWS,
	J_COUNT,
};

static const char *const jsql[J_COUNT] = {
	[J_ADD] = "INSERT INTO pending (key, staging, size, mtime_s, mtime_ns, state, attempts, "
		  "last_error, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[J_LIST] = "SELECT id, key, staging, size, mtime_s, mtime_ns, state, attempts, last_error, "
		   "created_ms FROM pending ORDER BY id",
	[J_UPDATE] = "UPDATE pending SET state = ?2, attempts = ?3, last_error = ?4 WHERE id = ?1",
	[J_DEL] = "DELETE FROM pending WHERE id = ?1",
	[J_COUNT_ROWS] = "SELECT count(*) FROM pending",
};

/* What a salvage reads: every column if the old table has them, else the two
 * without which a staged file cannot be uploaded. */
static const char salvage_full_sql[] = "SELECT id, key, staging, size, mtime_s, mtime_ns, state, "
				       "attempts, last_error, created_ms FROM pending ORDER BY id";
static const char salvage_min_sql[] = "SELECT key, staging FROM pending";

/* AUTOINCREMENT: ids are never reused (see the header). */
static const char pending_schema[] =
	"CREATE TABLE pending (id INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL, "
	"staging TEXT NOT NULL, size INTEGER NOT NULL, mtime_s INTEGER NOT NULL, "
	"mtime_ns INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL, "
	"last_error TEXT, created_ms INTEGER NOT NULL);";

struct meta_journal {
	sqlite3 *db;		   /* the cache handle's; protected by its lock */
	sqlite3_stmt *st[J_COUNT]; /* protected by the cache handle's lock */
};

const char *meta_journal_schema(void)
{
	return pending_schema;
}

int meta_journal_attach(struct sqlite3 *db, struct meta_journal **out)
{
	struct meta_journal *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->db = db;
	for (int i = 0; i < J_COUNT; i++) {
		int src = sqlite3_prepare_v3(db, jsql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->st[i],
					     NULL);
		if (src != SQLITE_OK) {
			int rc = meta_sqlite_errno(db, src, jsql[i]);
			meta_journal_detach(j);
			return rc;
		}
	}
	*out = j;
	return 0;
}

void meta_journal_detach(struct meta_journal *j)
{
	if (!j)
		return;
	for (int i = 0; i < J_COUNT; i++)
		sqlite3_finalize(j->st[i]);
	free(j);
}

void meta_pending_cleanup(struct meta_pending *p)
{
	if (!p)
		return;
	free(p->key);
	free(p->staging_path);
	free(p->last_error);
	p->key = p->staging_path = p->last_error = NULL;
}

void meta_journal_list_free(struct meta_pending *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		meta_pending_cleanup(&rows[i]);
	free(rows);
}

static int pending_check(const struct meta_pending *p)
{
	if (!p->key || p->key[0] == '\0' || !p->staging_path || p->staging_path[0] == '\0')
		return -EINVAL;
	if (strnlen(p->key, META_KEY_MAX + 1) > META_KEY_MAX)
		return -ENAMETOOLONG;
	if (strnlen(p->staging_path, META_PATH_MAX) >= META_PATH_MAX)
		return -EINVAL;
	if ((unsigned)p->state > META_PENDING_FAILED || p->size > INT64_MAX)
		return -EINVAL;
	if (p->mtime.tv_nsec < 0 || p->mtime.tv_nsec >= 1000000000)
		return -EINVAL;
	return 0;
}

static void keep(int *rc, int r)
{
	if (*rc == SQLITE_OK)
		*rc = r;
}

/* NULL binds SQL NULL; text is cut to META_ERROR_MAX - 1 bytes. */
static int bind_error_text(sqlite3_stmt *st, int i, const char *err)
{
	if (!err)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, err, (int)strnlen(err, META_ERROR_MAX - 1), SQLITE_STATIC);
}

static int bind_pending(sqlite3_stmt *st, const struct meta_pending *p, int64_t created_ms)
{
	int rc = SQLITE_OK;

	keep(&rc, sqlite3_bind_blob(st, 1, p->key, (int)strlen(p->key), SQLITE_STATIC));
	keep(&rc, sqlite3_bind_text(st, 2, p->staging_path, (int)strlen(p->staging_path),
				    SQLITE_STATIC));
	keep(&rc, sqlite3_bind_int64(st, 3, (int64_t)p->size));
	keep(&rc, sqlite3_bind_int64(st, 4, p->mtime.tv_sec));
	keep(&rc, sqlite3_bind_int64(st, 5, p->mtime.tv_nsec));
	keep(&rc, sqlite3_bind_int64(st, 6, p->state));
	keep(&rc, sqlite3_bind_int64(st, 7, p->attempts));
	keep(&rc, bind_error_text(st, 8, p->last_error));
	keep(&rc, sqlite3_bind_int64(st, 9, created_ms));
	return rc;
}

static void jreset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int set_synchronous(struct meta_journal *j, bool full)
{
	int src = sqlite3_exec(j->db,
			       full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
			       NULL, NULL, NULL);

	return src == SQLITE_OK ? 0 : meta_sqlite_errno(j->db, src, "PRAGMA synchronous");
}

/*
 * Step a bound write statement (its own transaction) with synchronous=FULL,
 * so that the commit is on the disk when it returns, then go back to the
 * cache's NORMAL. The pragma is run with exec, not prepared once: it takes
 * effect when compiled, not when stepped.
 */
static int write_synced(struct meta_journal *j, sqlite3_stmt *st, int bind_rc, const char *what)
{
	int rc = bind_rc == SQLITE_OK ? 0 : meta_sqlite_errno(j->db, bind_rc, what);

	if (rc == 0)
		rc = set_synchronous(j, true);
	if (rc == 0) {
		int src = sqlite3_step(st);
		if (src != SQLITE_DONE)
			rc = meta_sqlite_errno(j->db, src, what);
		int rc2 = set_synchronous(j, false);
		if (rc == 0)
			rc = rc2;
	}
	jreset(st);
	return rc;
}

int meta_journal_add(struct meta_cache *mc, const struct meta_pending *p, int64_t *out_id)
{
	int rc = pending_check(p);

	if (rc)
		return rc;
	struct meta_journal *j = meta_cache_journal_lock(mc);
	sqlite3_stmt *st = j->st[J_ADD];
	rc = write_synced(j, st, bind_pending(st, p, meta_cache_now_ms()), "add pending upload");
	int64_t id = sqlite3_last_insert_rowid(j->db);
	meta_cache_journal_unlock(mc);
	if (rc == 0 && out_id)
		*out_id = id;
	return rc;
}

/* Copy a text or BLOB column (NUL-terminated); *out NULL for SQL NULL. */
static int dup_column(sqlite3_stmt *st, int c, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(st, c) == SQLITE_NULL)
		return 0;
	/* column_text on a BLOB gives its bytes NUL-terminated */
	const char *s = (const char *)sqlite3_column_text(st, c);
	*out = s ? strdup(s) : NULL;
	return *out ? 0 : -ENOMEM;
}

/* A row of J_LIST or salvage_full_sql: -EINVAL if it lacks a key or a
 * staging path (only a damaged file has such rows), -ENOMEM. */
static int read_pending(sqlite3_stmt *st, struct meta_pending *p)
{
	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(st, 0);
	p->size = (uint64_t)sqlite3_column_int64(st, 3);
	p->mtime.tv_sec = (time_t)sqlite3_column_int64(st, 4);
	p->mtime.tv_nsec = (long)sqlite3_column_int64(st, 5);
	int state = sqlite3_column_int(st, 6);
	p->state = state >= 0 && state <= META_PENDING_FAILED ? (enum meta_pending_state)state
							      : META_PENDING_QUEUED;
	p->attempts = (uint32_t)sqlite3_column_int64(st, 7);
	p->created_ms = sqlite3_column_int64(st, 9);
	int rc = dup_column(st, 1, &p->key);
	if (rc == 0)
		rc = dup_column(st, 2, &p->staging_path);
	if (rc == 0)
		rc = dup_column(st, 8, &p->last_error);
	if (rc == 0 && (!p->key || !p->staging_path))
		rc = -EINVAL;
	return rc;
}

/* Append one row to a growing array (doubling). */
static int rows_grow(struct meta_pending **rows, size_t n, size_t *alloc)
{
	if (n < *alloc)
		return 0;
	size_t a = *alloc ? *alloc * 2 : 16;
	struct meta_pending *bigger = realloc(*rows, a * sizeof(**rows));
	if (!bigger)
		return -ENOMEM;
	*rows = bigger;
	*alloc = a;
	return 0;
}

int meta_journal_list(struct meta_cache *mc, struct meta_pending **out_rows, size_t *out_n)
{
	struct meta_pending *rows = NULL;
	size_t n = 0, alloc = 0;
	int rc = 0, src;

	struct meta_journal *j = meta_cache_journal_lock(mc);
	sqlite3_stmt *st = j->st[J_LIST];
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = rows_grow(&rows, n, &alloc);
		if (rc)
			break;
		rc = read_pending(st, &rows[n++]);
		if (rc)
			break;
	}
	if (rc == 0 && src != SQLITE_DONE)
		rc = meta_sqlite_errno(j->db, src, "list pending uploads");
	jreset(st);
	meta_cache_journal_unlock(mc);
	if (rc) {
		meta_journal_list_free(rows, n);
		return rc;
	}
	*out_rows = rows;
	*out_n = n;
	return 0;
}

int meta_journal_update(struct meta_cache *mc, int64_t id, enum meta_pending_state state,
			uint32_t attempts, const char *last_error)
{
	int b = SQLITE_OK;

	if ((unsigned)state > META_PENDING_FAILED)
		return -EINVAL;
	struct meta_journal *j = meta_cache_journal_lock(mc);
	sqlite3_stmt *st = j->st[J_UPDATE];
	keep(&b, sqlite3_bind_int64(st, 1, id));
	keep(&b, sqlite3_bind_int64(st, 2, state));
	keep(&b, sqlite3_bind_int64(st, 3, attempts));
	keep(&b, bind_error_text(st, 4, last_error));
	int rc = write_synced(j, st, b, "update pending upload");
	if (rc == 0 && sqlite3_changes(j->db) == 0)
		rc = -ENOENT;
	meta_cache_journal_unlock(mc);
	return rc;
}

int meta_journal_remove(struct meta_cache *mc, int64_t id)
{
	struct meta_journal *j = meta_cache_journal_lock(mc);
	sqlite3_stmt *st = j->st[J_DEL];
	int rc = write_synced(j, st, sqlite3_bind_int64(st, 1, id), "remove pending upload");

	if (rc == 0 && sqlite3_changes(j->db) == 0)
		rc = -ENOENT;
	meta_cache_journal_unlock(mc);
	return rc;
}

int meta_journal_count(struct meta_cache *mc, uint64_t *out_n)
{
	struct meta_journal *j = meta_cache_journal_lock(mc);
	sqlite3_stmt *st = j->st[J_COUNT_ROWS];
	int rc = 0, src = sqlite3_step(st);
	int64_t n = 0;

	if (src == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		rc = meta_sqlite_errno(j->db, src, "count pending uploads");
	jreset(st);
	meta_cache_journal_unlock(mc);
	if (rc == 0)
		*out_n = (uint64_t)n;
	return rc;
}

/* ---- rebuild ---------------------------------------------------------- */

/* A salvaged row of salvage_min_sql: the rest as for a new row. */
static int read_pending_min(sqlite3_stmt *st, struct meta_pending *p)
{
	memset(p, 0, sizeof(*p));
	p->state = META_PENDING_QUEUED;
	int rc = dup_column(st, 0, &p->key);
	if (rc == 0)
		rc = dup_column(st, 1, &p->staging_path);
	if (rc == 0 && (!p->key || !p->staging_path))
		rc = -EINVAL;
	return rc;
}

/* Read the rows of st into *rows; stop quietly at damage (best effort). */
static int salvage_rows(sqlite3 *db, sqlite3_stmt *st, bool full, struct meta_pending **rows,
			size_t *n)
{
	size_t alloc = 0;
	int src = SQLITE_DONE;

	while (*n < SALVAGE_MAX && (src = sqlite3_step(st)) == SQLITE_ROW) {
		int rc = rows_grow(rows, *n, &alloc);
		if (rc)
			return rc;
		struct meta_pending *p = &(*rows)[*n];
		rc = full ? read_pending(st, p) : read_pending_min(st, p);
		if (rc == 0)
			rc = pending_check(p);
		if (rc == -ENOMEM) {
			meta_pending_cleanup(p);
			return rc;
		}
		if (rc) {
			log_warn("meta_cache: salvage: dropping an unreadable pending row (key %s)",
				 p->key ? p->key : "missing");
			meta_pending_cleanup(p);
			continue;
		}
		(*n)++;
	}
	if (*n < SALVAGE_MAX && src != SQLITE_DONE)
		log_warn("meta_cache: salvage stopped after %zu pending row(s): %s", *n,
			 sqlite3_errmsg(db));
	return 0;
}

int meta_journal_salvage(const char *path, struct meta_pending **out_rows, size_t *out_n)
{
	struct meta_pending *rows = NULL;
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	size_t n = 0;
	bool full = true;
	int rc = 0;

	/* Read-write (never create): a WAL can only be read by a connection that
	 * may recover it. The file is moved aside right after. */
	int src = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src == SQLITE_OK) {
		sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
		sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
		src = sqlite3_prepare_v2(db, salvage_full_sql, -1, &st, NULL);
	}
	if (src != SQLITE_OK && db) {
		full = false;
		src = sqlite3_prepare_v2(db, salvage_min_sql, -1, &st, NULL);
	}
	if (src != SQLITE_OK)
		log_warn("meta_cache: no pending uploads could be read from %s: %s", path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
	else
		rc = salvage_rows(db, st, full, &rows, &n);
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc) {
		meta_journal_list_free(rows, n);
		return rc;
	}
	*out_rows = rows;
	*out_n = n;
	return 0;
}

int meta_journal_restore(struct meta_journal *j, const struct meta_pending *rows, size_t n)
{
	sqlite3_stmt *st = j->st[J_ADD];
	int64_t now = meta_cache_now_ms();
	int rc = set_synchronous(j, true);

	if (rc)
		return rc;
	int src = sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (size_t i = 0; i < n && src == SQLITE_OK; i++) {
		const struct meta_pending *p = &rows[i];
		src = bind_pending(st, p, p->created_ms ? p->created_ms : now);
		if (src == SQLITE_OK)
			src = sqlite3_step(st);
		if (src == SQLITE_DONE)
			src = SQLITE_OK;
		jreset(st);
	}
	if (src == SQLITE_OK)
		src = sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		rc = meta_sqlite_errno(j->db, src, "restore pending uploads");
		if (!sqlite3_get_autocommit(j->db))
			sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	}
	int rc2 = set_synchronous(j, false);
	return rc ? rc : rc2;
}
