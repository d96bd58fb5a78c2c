// SPDX-License-Identifier: MIT
/*
 * meta/cachefile: the file of the metadata cache, for meta/cache.c. It owns
 * where the file lives and who may open it (the directory's owner and mode,
 * the file's mode, the lock that keeps a second mount out), whether the file
 * is sound (ours, this schema version, PRAGMA quick_check), and the rebuild
 * of a bad one, which never drops the pending-upload journal silently. It
 * must not know what the tables mean: cache.c hands it their schema, and the
 * journal's rows are read and written by journal.c.
 *
 * Open, and the function behind each step:
 *
 *   dir_secure -> lock_take -> db_open_checked --fresh--> schema_create --+
 *                                  |  ours, this version, quick_check ok  |
 *                                  +--------------------------------------+--> db_setup
 *                                  |  bad: not SQLite, damaged, foreign,  |      |
 *                                  v       another version                |      v
 *                            db_rebuild: salvage -> move_aside -> fresh --+   restore
 *
 * Invariants:
 * 1. Only damage (SQLITE_CORRUPT, SQLITE_NOTADB, a failed quick_check) or a
 *    file that is not this schema leads to a rebuild; any other failure
 *    (locked, I/O, permissions, no memory) fails the open and leaves the file.
 * 2. The pending rows of a bad file of ours are read before it is moved
 *    aside, restored into the fresh file, and counted in the log; a foreign
 *    application's file is never read.
 * 3. A file moved aside keeps its WAL beside it; a fresh file never meets
 *    the WAL of the old one.
 * 4. The epoch goes up by one at every open (meta/cache.c's generations).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3vfs/buf.h"
#include "s3vfs/log.h"
#include "s3vfs/meta_cache.h"
#include "s3vfs/meta_journal.h"

#define BUSY_TIMEOUT_MS 5000
#define FILE_NAME_MAX	200 /* the cache's name: room left for ".corrupt-<time>.N-wal" */

/* Tables of this file beside cache.c's and the journal's: the open epoch. */
static const char state_schema[] =
	"CREATE TABLE state (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) "
	"WITHOUT ROWID;"
	"INSERT INTO state (name, value) VALUES ('epoch', 0);";

/* What db_open_checked() found. */
struct verdict {
	bool fresh;    /* an empty database: create the schema */
	bool bad;      /* move aside and rebuild */
	bool foreign;  /* bad and another application's: salvage nothing */
	char why[256]; /* for the log, when bad */
};

int meta_sqlite_errno(struct sqlite3 *db, int sqlite_rc, const char *what)
{
	log_error("meta_cache: %s: %s (%d)", what, db ? sqlite3_errmsg(db) : "no database",
		  sqlite_rc);
	switch (sqlite_rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* Create dir (0700) if missing; refuse one that others could write into. */
static int dir_secure(const char *dir, char **out_real)
{
	struct stat st;
	int rc = 0, fd = -1;
	char *real = NULL;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		log_error("meta_cache: cannot create cache directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	real = realpath(dir, NULL);
	if (real)
		fd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (!real || fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		log_error("meta_cache: cannot open cache directory %s: %s", dir, strerror(-rc));
		goto out;
	}
	if (st.st_uid != geteuid()) {
		log_error(
			"meta_cache: refusing cache directory %s: owned by uid %u, not by us (%u)",
			real, (unsigned)st.st_uid, (unsigned)geteuid());
		rc = -EACCES;
	} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		log_error("meta_cache: refusing cache directory %s: writable by group or others "
			  "(mode %04o); chmod 700 it",
			  real, (unsigned)(st.st_mode & 07777));
		rc = -EACCES;
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		*out_real = real;
	else
		free(real);
	return rc;
}

/* One mount per cache: two would retry the same pending uploads, and one's
 * rebuild would move the file from under the other. */
static int lock_take(const char *path, int *out_fd)
{
	struct buf p;
	int rc = 0;

	buf_init(&p, PATH_MAX);
	rc = buf_printf(&p, "%s.lock", path);
	if (rc)
		return rc;
	int fd = open(buf_str(&p), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		log_error("meta_cache: cannot open %s: %s", buf_str(&p), strerror(-rc));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_error("meta_cache: %s is in use by another mount", path);
		close(fd);
		goto out;
	}
	*out_fd = fd;
out:
	buf_cleanup(&p);
	return rc;
}

/* Create the database file 0600 (SQLite would use 0644), or check ours. */
static int db_file_secure(const char *path)
{
	struct stat st;
	int rc = 0;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		rc = errno == ELOOP ? -EACCES : -errno;
		log_error("meta_cache: cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
	} else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		log_error("meta_cache: refusing %s: not a regular file of ours", path);
		rc = -EACCES;
	} else if ((st.st_mode & 077) && fchmod(fd, 0600) != 0) {
		rc = -errno;
	}
	close(fd);
	return rc;
}

static bool sqlite_is_damage(int rc)
{
	return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* The first column of the first row of sql (no user data in it), as an
 * integer or (text_out) text. A damaged file sets v->bad, not an error. */
static int db_query(sqlite3 *db, const char *sql, int64_t *out_int, char *text_out,
		    size_t text_size, struct verdict *v)
{
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (src == SQLITE_OK) {
		src = sqlite3_step(st);
		if (src == SQLITE_ROW && out_int)
			*out_int = sqlite3_column_int64(st, 0);
		if (src == SQLITE_ROW && text_out) {
			const char *t = (const char *)sqlite3_column_text(st, 0);
			snprintf(text_out, text_size, "%s", t ? t : "");
		}
	}
	int rc = 0;
	if (src == SQLITE_ROW || src == SQLITE_DONE) {
		rc = 0;
	} else if (sqlite_is_damage(src)) {
		v->bad = true;
		snprintf(v->why, sizeof(v->why), "damaged: %s", sqlite3_errmsg(db));
	} else {
		rc = meta_sqlite_errno(db, src, sql);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Is the open file an empty database, ours and sound, or bad? */
static int db_check(sqlite3 *db, struct verdict *v)
{
	int64_t app_id = 0, version = 0, ntables = 0;
	char check[160] = "";
	int rc = db_query(db, "PRAGMA application_id", &app_id, NULL, 0, v);

	if (rc == 0 && !v->bad)
		rc = db_query(db, "PRAGMA user_version", &version, NULL, 0, v);
	if (rc == 0 && !v->bad)
		rc = db_query(db, "SELECT count(*) FROM sqlite_schema", &ntables, NULL, 0, v);
	if (rc || v->bad)
		return rc;
	if (app_id == 0 && version == 0 && ntables == 0) {
		v->fresh = true;
	} else if (app_id != META_CACHE_APP_ID) {
		v->bad = v->foreign = true;
		snprintf(v->why, sizeof(v->why), "not an s3vfs cache (application_id %" PRId64 ")",
			 app_id);
	} else if (version != META_CACHE_VERSION) {
		v->bad = true;
		snprintf(v->why, sizeof(v->why), "schema version %" PRId64 ", this build uses %d",
			 version, META_CACHE_VERSION);
	} else {
		rc = db_query(db, "PRAGMA quick_check", NULL, check, sizeof(check), v);
		if (rc == 0 && !v->bad && strcmp(check, "ok") != 0) {
			v->bad = true;
			snprintf(v->why, sizeof(v->why), "quick_check: %s", check);
			for (char *c = v->why; *c; c++) /* one line in the log */
				*c = *c == '\n' ? ' ' : *c;
		}
	}
	return rc;
}

/* Open path into *db and judge it; *db stays open unless the verdict is bad. */
static int db_open_checked(const char *path, sqlite3 **db, struct verdict *v)
{
	int rc = db_file_secure(path);

	memset(v, 0, sizeof(*v));
	if (rc)
		return rc;
	int src = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = meta_sqlite_errno(*db, src, "open");
		goto out;
	}
	sqlite3_extended_result_codes(*db, 1);
	sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
	/* The file is data, not code: no schema tricks, no SQL functions in it. */
	sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	rc = db_check(*db, v);
out:
	if (rc || v->bad) {
		sqlite3_close(*db);
		*db = NULL;
	}
	return rc;
}

/* Rename path (and its WAL, which belongs to it) to path.corrupt-<time>[.N]. */
static int move_aside(const char *path, struct buf *out_dst)
{
	struct buf src, dst;
	struct stat st;
	long long t = (long long)time(NULL);
	int rc = -EEXIST;

	buf_init(&src, PATH_MAX);
	buf_init(&dst, PATH_MAX);
	for (int i = 0; i < 100 && rc == -EEXIST; i++) {
		buf_reset(out_dst);
		rc = i ? buf_printf(out_dst, "%s.corrupt-%lld.%d", path, t, i)
		       : buf_printf(out_dst, "%s.corrupt-%lld", path, t);
		if (rc == 0 && lstat(buf_str(out_dst), &st) == 0)
			rc = -EEXIST;
	}
	if (rc == 0 && rename(path, buf_str(out_dst)) != 0)
		rc = -errno;
	if (rc == 0)
		rc = buf_printf(&src, "%s-wal", path);
	if (rc == 0)
		rc = buf_printf(&dst, "%s-wal", buf_str(out_dst));
	if (rc == 0 && rename(buf_str(&src), buf_str(&dst)) != 0 && errno != ENOENT)
		rc = -errno;
	buf_reset(&src);
	if (rc == 0)
		rc = buf_printf(&src, "%s-shm", path); /* only an index of the WAL */
	if (rc == 0 && unlink(buf_str(&src)) != 0 && errno != ENOENT)
		rc = -errno;
	if (rc)
		log_error("meta_cache: cannot move %s aside: %s", path, strerror(-rc));
	buf_cleanup(&src);
	buf_cleanup(&dst);
	return rc;
}

/* v->bad: salvage the journal, move the file aside, open a fresh one. The
 * salvaged rows are restored once the schema is in place. */
static int db_rebuild(const char *path, struct verdict *v, struct meta_cachefile *out,
		      struct meta_pending **out_rows, size_t *out_n)
{
	struct buf moved;
	char why[sizeof(v->why)];
	int rc = 0;

	buf_init(&moved, PATH_MAX);
	memcpy(why, v->why, sizeof(why));
	if (!v->foreign) /* invariant 2 */
		rc = meta_journal_salvage(path, out_rows, out_n);
	if (rc == 0)
		rc = move_aside(path, &moved);
	if (rc == 0)
		rc = db_open_checked(path, &out->db, v);
	if (rc == 0 && !v->fresh) {
		log_error("meta_cache: %s: not empty after moving it aside", path);
		rc = -EIO;
	}
	if (rc == 0) {
		log_warn("meta_cache: %s: %s; moved it aside to %s and started an empty cache; "
			 "%zu pending upload(s) kept",
			 path, why, buf_str(&moved), *out_n);
		out->rebuilt = true;
	}
	buf_cleanup(&moved);
	return rc;
}

static int schema_create(sqlite3 *db, const char *schema)
{
	struct buf sql;
	char *err = NULL;
	int rc = 0;

	buf_init(&sql, BUF_CAP_SMALL);
	rc = buf_printf(&sql,
			"BEGIN IMMEDIATE; %s %s %s PRAGMA application_id = %d; "
			"PRAGMA user_version = %d; COMMIT;",
			schema, state_schema, meta_journal_schema(), META_CACHE_APP_ID,
			META_CACHE_VERSION);
	if (rc)
		return rc;
	int src = sqlite3_exec(db, buf_str(&sql), NULL, NULL, &err);
	if (src != SQLITE_OK) {
		log_error("meta_cache: creating the schema: %s", err ? err : sqlite3_errstr(src));
		rc = meta_sqlite_errno(db, src, "create schema");
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_free(err);
	buf_cleanup(&sql);
	return rc;
}

/* WAL, synchronous=NORMAL (a crash loses nothing committed; a power cut may
 * lose the last commits, which for a cache is fine; the journal syncs its
 * own), and the epoch. */
static int db_setup(sqlite3 *db, int64_t *out_epoch)
{
	struct verdict v = { 0 };
	char mode[16] = "";
	int rc = db_query(db, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode), &v);

	if (rc == 0 && !v.bad && strcmp(mode, "wal") != 0)
		log_warn("meta_cache: journal mode is %s, not wal: readers will wait for writers",
			 mode);
	if (rc == 0 && !v.bad)
		rc = db_query(db, "PRAGMA synchronous = NORMAL", NULL, NULL, 0, &v);
	if (rc == 0 && !v.bad)
		rc = db_query(db, "UPDATE state SET value = value + 1 WHERE name = 'epoch'", NULL,
			      NULL, 0, &v);
	if (rc == 0 && !v.bad)
		rc = db_query(db, "SELECT value FROM state WHERE name = 'epoch'", out_epoch, NULL,
			      0, &v);
	if (rc == 0 && v.bad)
		rc = meta_sqlite_errno(db, SQLITE_CORRUPT, v.why);
	return rc;
}

/* Put the salvaged rows into the fresh file (its journal table). */
static int db_restore(sqlite3 *db, const struct meta_pending *rows, size_t n)
{
	struct meta_journal *j = NULL;
	int rc = meta_journal_attach(db, &j);

	if (rc == 0)
		rc = meta_journal_restore(j, rows, n);
	meta_journal_detach(j);
	for (size_t i = 0; rc == 0 && i < n; i++)
		log_warn("meta_cache: kept pending upload of %s (staged in %s)", rows[i].key,
			 rows[i].staging_path);
	return rc;
}

/* Open the database at path (dir secured, lock held) into out. */
static int db_load(const char *path, const char *schema, struct meta_cachefile *out)
{
	struct meta_pending *rows = NULL;
	struct verdict v;
	size_t n = 0;
	int rc = db_open_checked(path, &out->db, &v);

	if (rc == 0 && v.bad)
		rc = db_rebuild(path, &v, out, &rows, &n);
	if (rc == 0 && v.fresh)
		rc = schema_create(out->db, schema);
	if (rc == 0)
		rc = db_setup(out->db, &out->epoch);
	if (rc == 0 && n > 0)
		rc = db_restore(out->db, rows, n);
	meta_journal_list_free(rows, n);
	return rc;
}

static int name_check(const char *dir, const char *name)
{
	if (!dir || !name || name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strlen(name) > FILE_NAME_MAX)
		return -EINVAL;
	return 0;
}

int meta_cachefile_open(const char *dir, const char *name, const char *schema,
			struct meta_cachefile *out)
{
	struct meta_cachefile cf = { .db = NULL, .lock_fd = -1 };
	struct buf path;
	char *real = NULL;
	int rc = name_check(dir, name);

	buf_init(&path, PATH_MAX);
	if (rc == 0 && !sqlite3_threadsafe()) {
		log_error("meta_cache: this SQLite is built without thread support");
		rc = -EIO;
	}
	if (rc == 0)
		rc = dir_secure(dir, &real);
	if (rc == 0)
		rc = buf_printf(&path, "%s/%s", real, name);
	if (rc == 0)
		rc = lock_take(buf_str(&path), &cf.lock_fd);
	if (rc == 0)
		rc = db_load(buf_str(&path), schema, &cf);
	if (rc == 0) {
		*out = cf;
	} else {
		sqlite3_close(cf.db);
		if (cf.lock_fd >= 0)
			close(cf.lock_fd);
	}
	buf_cleanup(&path);
	free(real);
	return rc;
}
