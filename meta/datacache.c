// SPDX-License-Identifier: MIT
/*
 * meta/datacache: the on-disk cache of object bytes (see datacache.h). It
 * owns <dir>/data/ (one sparse file per object version, named by the SHA-256
 * of (key, etag) and the generation of its index row) and <dir>/data.db (the
 * index: per version its key, etag, size, block size, bitmap of present
 * blocks, bytes held, last use and the session that last wrote it), the
 * capacity bound and LRU eviction, and crash recovery. It must not know the
 * wire (no libcurl, no s3.h), paths of the mount or FUSE: the caller fetches
 * and hands in blocks.
 *
 * Why SQLite and not a header per data file: the LRU order and the bytes used
 * are questions about all objects at once (an index on atime answers the
 * first without reading every file), a bitmap update is one atomic commit
 * rather than a header rewrite that a crash could tear, and damage is found
 * by SQLite's own checks. Last uses are kept in memory and written in
 * batches (touch_flush_locked) so that a read costs no commit.
 *
 * Invariants:
 * 1. A block's bit is set only after its bytes were written to the file of
 *    the same row generation (write_block: reserve, pwrite, mark_locked).
 * 2. A file is created with its row and named <id>-<gen>; generations never
 *    repeat, so no two rows ever name the same file. A reader opens the file
 *    under the lock, after checking the bitmap: its fd holds those blocks
 *    whatever happens to the row afterwards.
 * 3. Files are unlinked, never truncated, punched or rewritten with other
 *    bytes: a read in flight finishes on the unlinked inode, so eviction
 *    never breaks a read nor serves wrong bytes, and needs no pin.
 * 4. Block data is not fsynced per block (that would cost a disk flush per
 *    MiB). Instead: a row's wepoch is the session that last wrote into it; a
 *    session that ends cleanly syncfs()es data/ before marking the index
 *    clean (datacache_close). Opening after an unclean end (recover_crash):
 *    same boot id, only the process died and the kernel still holds its
 *    writes: syncfs() first; another boot: drop every row of that session,
 *    whose bits may be on disk before their data. WAL commits survive in
 *    order, so no row of a session survives without the state row that
 *    marks the session unclean.
 * 5. used = the sum of the rows' bytes + the reservations of writes in
 *    flight; a write reserves (room_locked) before its pwrite, evicting
 *    least recently used objects so that used <= capacity.
 * 6. A fill creates a row only if its key did not change (invalidate, new
 *    row) after the fill began: change_record_locked() notes each change in
 *    a ring; a fill older than the ring's memory is refused.
 *
 * Life of a block:
 *   absent --room_locked + pwrite--> written, not marked --mark_locked--> present
 *   present --drop_locked (evict, invalidate, new version, damage)--> absent
 *
 * Threads: one SQLite connection behind dc->lock, as in meta/cache.c. The
 * lock is a leaf; under it run SQLite, openat() and unlinkat(), never
 * pread() or pwrite(). Counters are atomics.
 */
#include "s3vfs/datacache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3vfs/buf.h"
#include "s3vfs/log.h"

#define ID_LEN		32		      /* SHA-256 */
#define NAME_LEN	(2 * ID_LEN + 1 + 17) /* "<hex id>-<16 hex gen>" and the NUL */
#define TOUCH_MAX	64		      /* last uses kept before a flush */
#define RING_MAX	256		      /* key changes remembered for fills */
#define BOOT_LEN	64
#define BOOT_ID_PATH	"/proc/sys/kernel/random/boot_id"
#define BUSY_TIMEOUT_MS 5000

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_GET,
	ST_INSERT,
	ST_MARK,
	ST_TOUCH,
	ST_BYTES,
	ST_DEL,
	ST_DEL_ROWID,
	ST_BY_KEY,
	ST_LRU,
	ST_EXISTS,
	ST_ALL,
	ST_DROP_EPOCH,
	ST_STATE_GET,
	ST_STATE_PUT,
	ST_COUNT,
};

/* A row whose gen is not an integer is damage: any gen matches it. */
#define GEN_MATCH "id = ?1 AND (gen = ?2 OR typeof(gen) != 'integer')"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_GET] = "SELECT key, etag, size, bsize, gen, bitmap, bytes FROM obj WHERE id = ?1",
	[ST_INSERT] = "INSERT INTO obj (id, key, etag, size, bsize, gen, bitmap, bytes, atime, "
		      "wepoch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9)",
	[ST_MARK] = "UPDATE obj SET bitmap = ?3, bytes = bytes + ?4, atime = ?5, wepoch = ?6 "
		    "WHERE id = ?1 AND gen = ?2",
	[ST_TOUCH] = "UPDATE obj SET atime = ?2 WHERE id = ?1 AND atime < ?2",
	[ST_BYTES] = "SELECT bytes FROM obj WHERE " GEN_MATCH,
	[ST_DEL] = "DELETE FROM obj WHERE " GEN_MATCH,
	[ST_DEL_ROWID] = "DELETE FROM obj WHERE rowid = ?1",
	[ST_BY_KEY] = "SELECT id, gen FROM obj WHERE key = ?1 LIMIT 1",
	[ST_LRU] = "SELECT id, gen FROM obj WHERE id != ?1 ORDER BY atime LIMIT 1",
	[ST_EXISTS] = "SELECT 1 FROM obj WHERE id = ?1 AND gen = ?2",
	[ST_ALL] = "SELECT id, key, etag, size, bsize, gen, bitmap, bytes, atime, rowid FROM obj",
	[ST_DROP_EPOCH] = "DELETE FROM obj WHERE wepoch = ?1",
	[ST_STATE_GET] = "SELECT epoch, clean, boot FROM state",
	[ST_STATE_PUT] = "UPDATE state SET epoch = ?1, clean = ?2, boot = ?3",
};

/* id = SHA-256(key NUL etag); key is a BLOB (any bytes but NUL). Bitmaps can
 * be large, so obj keeps its rowid. state: epoch, clean, boot (invariant 4). */
static const char schema_sql[] =
	"CREATE TABLE obj (id BLOB PRIMARY KEY NOT NULL, key BLOB NOT NULL, etag TEXT NOT NULL, "
	"size INTEGER NOT NULL, bsize INTEGER NOT NULL, gen INTEGER NOT NULL, "
	"bitmap BLOB NOT NULL, bytes INTEGER NOT NULL, atime INTEGER NOT NULL, "
	"wepoch INTEGER NOT NULL);"
	"CREATE INDEX obj_key ON obj (key);"
	"CREATE INDEX obj_atime ON obj (atime);"
	"CREATE TABLE state (one INTEGER PRIMARY KEY CHECK (one = 1), epoch INTEGER NOT NULL, "
	"clean INTEGER NOT NULL, boot TEXT NOT NULL);"
	"INSERT INTO state VALUES (1, 0, 1, '');";

struct touch {
	uint8_t id[ID_LEN];
	uint64_t atime;
};

struct change {
	uint8_t key_hash[ID_LEN];
	uint64_t gen;
};

struct datacache {
	pthread_mutex_t lock;
	sqlite3 *db;		       /* protected by lock */
	sqlite3_stmt *st[ST_COUNT];    /* protected by lock */
	uint64_t used;		       /* protected by lock (invariant 5) */
	uint64_t gen;		       /* protected by lock: last generation handed out */
	uint64_t tick;		       /* protected by lock: LRU clock, last value used */
	struct touch touch[TOUCH_MAX]; /* protected by lock: last uses not yet written */
	size_t ntouch;		       /* protected by lock */
	struct change ring[RING_MAX];  /* protected by lock: recent key changes */
	size_t ring_next;	       /* protected by lock */
	uint64_t ring_lost;	       /* protected by lock: newest gen pushed out of ring */
	uint64_t capacity;	       /* immutable */
	uint32_t bsize;		       /* immutable */
	int dfd;		       /* immutable: data/, flock()ed for the handle's life */
	int64_t epoch;		       /* immutable after open: this session */
	char boot[BOOT_LEN];	       /* immutable after open: the boot it runs in */
	bool opened;		       /* immutable after open: close marks the index clean */
	atomic_uint_fast64_t hits, misses, hit_bytes, blocks_in, evictions, dropped;
};

/* What lookup_locked() found for blocks [first, last]. */
struct row {
	uint64_t first, last;	/* in */
	bool want_bitmap;	/* in: copy the bitmap to bitmap (caller frees) */
	uint64_t gen, bytes;	/* out */
	uint64_t first_missing; /* out: first absent block of the range, or last + 1 */
	uint64_t run;		/* out: absent blocks from first_missing on, in the range */
	uint8_t *bitmap;	/* out, when want_bitmap */
	size_t bmlen;
};

/* ---- small helpers ---------------------------------------------------- */

static int sql_err(struct datacache *dc, int src, const char *what)
{
	log_error("datacache: %s: %s (%d)", what, dc->db ? sqlite3_errmsg(dc->db) : "no database",
		  src);
	switch (src & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* Step a statement that returns no row, and reset it. */
static int step_done(struct datacache *dc, enum stmt s, const char *what)
{
	int src = sqlite3_step(dc->st[s]);
	int rc = src == SQLITE_DONE ? 0 : sql_err(dc, src, what);

	sqlite3_reset(dc->st[s]);
	return rc;
}

static void bind_id(sqlite3_stmt *st, int i, const uint8_t *id)
{
	/* A zero-length blob matches no id: "keep nothing". */
	sqlite3_bind_blob(st, i, id ? (const void *)id : "", id ? ID_LEN : 0, SQLITE_STATIC);
}

/* SHA-256 of key, then of NUL and etag when given: a key has no NUL, so no
 * two (key, etag) pairs hash the same input. */
static int hash_of(const void *key, size_t klen, const char *etag, uint8_t out[ID_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(ctx, key, klen);

	if (ok && etag)
		ok = EVP_DigestUpdate(ctx, "", 1) && EVP_DigestUpdate(ctx, etag, strlen(etag));
	ok = ok && EVP_DigestFinal_ex(ctx, out, &n) && n == ID_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -ENOMEM;
}

static void file_name(const uint8_t *id, uint64_t gen, char out[NAME_LEN])
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < ID_LEN; i++) {
		out[2 * i] = hex[id[i] >> 4];
		out[2 * i + 1] = hex[id[i] & 15];
	}
	snprintf(out + 2 * ID_LEN, NAME_LEN - 2 * ID_LEN, "-%016" PRIx64, gen);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool name_parse(const char *s, uint8_t *id, uint64_t *out_gen)
{
	uint64_t gen = 0;

	if (strlen(s) != NAME_LEN - 1 || s[2 * ID_LEN] != '-')
		return false;
	for (size_t i = 0; i < ID_LEN; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		id[i] = (uint8_t)(hi << 4 | lo);
	}
	for (const char *p = s + 2 * ID_LEN + 1; *p; p++) {
		int d = hex_digit(*p);
		if (d < 0)
			return false;
		gen = gen << 4 | (uint64_t)d;
	}
	*out_gen = gen;
	return true;
}

static uint64_t nblocks(const struct datacache *dc, uint64_t size)
{
	return size / dc->bsize + (size % dc->bsize != 0);
}

static size_t block_len(const struct datacache *dc, uint64_t size, uint64_t bi)
{
	uint64_t left = size - bi * dc->bsize;

	return left < dc->bsize ? (size_t)left : dc->bsize;
}

static bool bit_get(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] & (1u << (i % 8));
}

static int args_check(const struct datacache *dc, const char *key, const char *etag, uint64_t size,
		      uint64_t *out_nb)
{
	if (!dc || !key || !*key || !etag || !*etag)
		return -EINVAL;
	if (strnlen(key, DATACACHE_KEY_MAX + 1) > DATACACHE_KEY_MAX)
		return -ENAMETOOLONG;
	if (strnlen(etag, DATACACHE_ETAG_MAX) >= DATACACHE_ETAG_MAX)
		return -EINVAL;
	if (nblocks(dc, size) > DATACACHE_BLOCKS_MAX)
		return -EFBIG;
	*out_nb = nblocks(dc, size);
	return 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA; /* ENODATA: the file is short */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* ---- rows, files, LRU ------------------------------------------------- */

/*
 * Forget row (id, gen) and unlink its file. why != NULL: it was damaged
 * (logged, counted). The file goes even when the row is already gone: no
 * other row can name it (invariant 2).
 */
static int drop_locked(struct datacache *dc, const uint8_t *id, uint64_t gen, const char *why)
{
	sqlite3_stmt *st = dc->st[ST_BYTES];
	char name[NAME_LEN];
	int64_t bytes = 0;
	int rc = 0;

	bind_id(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)gen);
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		bytes = sqlite3_column_int64(st, 0);
	else if (src != SQLITE_DONE)
		rc = sql_err(dc, src, "drop");
	sqlite3_reset(st);
	if (rc)
		return rc;
	bind_id(dc->st[ST_DEL], 1, id);
	sqlite3_bind_int64(dc->st[ST_DEL], 2, (int64_t)gen);
	rc = step_done(dc, ST_DEL, "drop");
	if (rc)
		return rc;
	if (bytes > 0)
		dc->used -= (uint64_t)bytes < dc->used ? (uint64_t)bytes : dc->used;
	file_name(id, gen, name);
	if (unlinkat(dc->dfd, name, 0) != 0 && errno != ENOENT)
		log_warn("datacache: cannot remove %s: %s", name, strerror(errno));
	if (why) {
		log_warn("datacache: dropped %s: %s", name, why);
		atomic_fetch_add_explicit(&dc->dropped, 1, memory_order_relaxed);
	}
	return 0;
}

/* Write the last uses kept in memory; best effort (only the LRU order suffers). */
static void touch_flush_locked(struct datacache *dc)
{
	int rc = 0;

	if (dc->ntouch == 0)
		return;
	rc = step_done(dc, ST_BEGIN, "begin");
	for (size_t i = 0; rc == 0 && i < dc->ntouch; i++) {
		bind_id(dc->st[ST_TOUCH], 1, dc->touch[i].id);
		sqlite3_bind_int64(dc->st[ST_TOUCH], 2, (int64_t)dc->touch[i].atime);
		rc = step_done(dc, ST_TOUCH, "touch");
	}
	if (rc == 0)
		rc = step_done(dc, ST_COMMIT, "commit");
	if (rc && !sqlite3_get_autocommit(dc->db))
		(void)step_done(dc, ST_ROLLBACK, "rollback");
	dc->ntouch = 0;
}

static void touch_locked(struct datacache *dc, const uint8_t *id)
{
	size_t i = 0;

	while (i < dc->ntouch && memcmp(dc->touch[i].id, id, ID_LEN) != 0)
		i++;
	if (i == dc->ntouch) {
		if (i == TOUCH_MAX) {
			touch_flush_locked(dc);
			i = 0;
		}
		memcpy(dc->touch[i].id, id, ID_LEN);
		dc->ntouch = i + 1;
	}
	dc->touch[i].atime = ++dc->tick;
}

/* key changed: fills begun before may not create a row for it (invariant 6). */
static void change_record_locked(struct datacache *dc, const uint8_t *key_hash)
{
	struct change *c = &dc->ring[dc->ring_next++ % RING_MAX];

	if (c->gen > dc->ring_lost)
		dc->ring_lost = c->gen;
	memcpy(c->key_hash, key_hash, ID_LEN);
	c->gen = ++dc->gen;
}

static bool fill_refused_locked(const struct datacache *dc, const struct datacache_fill *fill,
				const uint8_t *key_hash)
{
	if (dc->ring_lost > fill->gen) /* a change we no longer remember may be this key's */
		return true;
	for (size_t i = 0; i < RING_MAX; i++) {
		const struct change *c = &dc->ring[i];
		if (c->gen > fill->gen && memcmp(c->key_hash, key_hash, ID_LEN) == 0)
			return true;
	}
	return false;
}

/* Make room for len more bytes, evicting least recently used objects other
 * than keep (NULL: none), and reserve them (invariant 5). */
static int room_locked(struct datacache *dc, const uint8_t *keep, size_t len)
{
	sqlite3_stmt *st = dc->st[ST_LRU];
	bool flushed = false;
	int rc = 0;

	if (len > dc->capacity)
		return -ENOSPC;
	while (rc == 0 && dc->used + len > dc->capacity) {
		uint8_t id[ID_LEN];
		uint64_t gen = 0;
		if (!flushed) {
			touch_flush_locked(dc);
			flushed = true;
		}
		bind_id(st, 1, keep);
		int src = sqlite3_step(st);
		if (src == SQLITE_ROW && sqlite3_column_bytes(st, 0) == ID_LEN) {
			memcpy(id, sqlite3_column_blob(st, 0), ID_LEN);
			gen = (uint64_t)sqlite3_column_int64(st, 1);
		} else {
			rc = src == SQLITE_DONE	 ? -ENOSPC
			     : src == SQLITE_ROW ? -EIO
						 : sql_err(dc, src, "lru");
		}
		sqlite3_reset(st);
		if (rc == 0)
			rc = drop_locked(dc, id, gen, NULL);
		if (rc == 0)
			atomic_fetch_add_explicit(&dc->evictions, 1, memory_order_relaxed);
	}
	if (rc == 0)
		dc->used += len;
	return rc;
}

/* Drop every version of key. */
static int drop_key_locked(struct datacache *dc, const char *key)
{
	sqlite3_stmt *st = dc->st[ST_BY_KEY];
	int rc = 0;

	for (;;) {
		uint8_t id[ID_LEN];
		uint64_t gen = 0;
		sqlite3_bind_blob(st, 1, key, (int)strlen(key), SQLITE_STATIC);
		int src = sqlite3_step(st);
		if (src == SQLITE_ROW && sqlite3_column_bytes(st, 0) == ID_LEN) {
			memcpy(id, sqlite3_column_blob(st, 0), ID_LEN);
			gen = (uint64_t)sqlite3_column_int64(st, 1);
		} else if (src != SQLITE_DONE) {
			rc = src == SQLITE_ROW ? -EIO : sql_err(dc, src, "versions");
		}
		sqlite3_reset(st);
		if (rc || src != SQLITE_ROW)
			return rc;
		rc = drop_locked(dc, id, gen, NULL);
		if (rc)
			return rc;
	}
}

/* Does the row under st (ST_GET's columns) fit an object of size bytes? */
static bool row_fits(const struct datacache *dc, sqlite3_stmt *st, uint64_t size)
{
	for (int c = 2; c <= 6; c++) {
		int want = c == 5 ? SQLITE_BLOB : SQLITE_INTEGER;
		if (sqlite3_column_type(st, c) != want)
			return false;
	}
	return sqlite3_column_int64(st, 2) == (int64_t)size &&
	       sqlite3_column_int64(st, 3) == dc->bsize && sqlite3_column_int64(st, 4) > 0 &&
	       (uint64_t)sqlite3_column_bytes(st, 5) == (nblocks(dc, size) + 7) / 8;
}

/* Is the row under st the one of (key, etag), not another with the same hash? */
static bool row_is(sqlite3_stmt *st, const char *key, const char *etag)
{
	const void *k = sqlite3_column_blob(st, 0);
	size_t klen = (size_t)sqlite3_column_bytes(st, 0);
	const char *e = (const char *)sqlite3_column_text(st, 1);

	return k && klen == strlen(key) && memcmp(k, key, klen) == 0 && e && strcmp(e, etag) == 0;
}

static void row_scan(sqlite3_stmt *st, struct row *r)
{
	const uint8_t *bm = sqlite3_column_blob(st, 5);
	uint64_t i = r->first;

	while (i <= r->last && bit_get(bm, i))
		i++;
	r->first_missing = i;
	while (i <= r->last && !bit_get(bm, i))
		i++;
	r->run = i - r->first_missing;
}

/*
 * Look (key, etag) up by id and fill r. -ENOENT: no row, or a damaged one
 * (dropped). -EEXIST: the row of another object with the same id (r->gen
 * set). The statement is reset on return.
 */
static int lookup_locked(struct datacache *dc, const uint8_t *id, const char *key, const char *etag,
			 uint64_t size, struct row *r)
{
	sqlite3_stmt *st = dc->st[ST_GET];
	int rc = 0;

	bind_id(st, 1, id);
	int src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = src == SQLITE_DONE ? -ENOENT : sql_err(dc, src, "lookup");
		goto out;
	}
	r->gen = (uint64_t)sqlite3_column_int64(st, 4);
	r->bytes = (uint64_t)sqlite3_column_int64(st, 6);
	if (!row_is(st, key, etag)) {
		rc = -EEXIST;
	} else if (!row_fits(dc, st, size)) {
		rc = -EBADMSG;
	} else {
		row_scan(st, r);
		r->bmlen = (size_t)sqlite3_column_bytes(st, 5);
		if (r->want_bitmap) {
			r->bitmap = malloc(r->bmlen);
			if (r->bitmap)
				memcpy(r->bitmap, sqlite3_column_blob(st, 5), r->bmlen);
			else
				rc = -ENOMEM;
		}
	}
out:
	sqlite3_reset(st);
	if (rc == -EBADMSG) {
		rc = drop_locked(dc, id, r->gen, "index row does not match the object");
		rc = rc ? rc : -ENOENT;
	}
	return rc;
}

/* Open the file of row (id, gen); a missing file drops the row (-ENOENT). */
static int file_open_locked(struct datacache *dc, const uint8_t *id, uint64_t gen, int flags,
			    int *out_fd)
{
	char name[NAME_LEN];
	int rc = 0;

	file_name(id, gen, name);
	int fd = openat(dc->dfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		*out_fd = fd;
		return 0;
	}
	rc = -errno;
	if (rc == -ENOENT) {
		rc = drop_locked(dc, id, gen, "file missing");
		return rc ? rc : -ENOENT;
	}
	log_error("datacache: cannot open %s: %s", name, strerror(-rc));
	return rc;
}

/* ---- write ------------------------------------------------------------ */

struct slot {
	uint64_t gen;
	int fd;
};

/* A new row and file for (key, etag): the other versions of key go. */
static int slot_create_locked(struct datacache *dc, const struct datacache_fill *fill,
			      const char *key, const char *etag, uint64_t size, const uint8_t *id,
			      struct slot *s)
{
	sqlite3_stmt *st = dc->st[ST_INSERT];
	uint8_t key_hash[ID_LEN];
	char name[NAME_LEN];
	size_t klen = strlen(key);
	int rc = hash_of(key, klen, NULL, key_hash);

	if (rc == 0 && fill && fill_refused_locked(dc, fill, key_hash))
		rc = -EAGAIN;
	if (rc == 0)
		rc = drop_key_locked(dc, key);
	if (rc)
		return rc;
	change_record_locked(dc, key_hash);
	s->gen = ++dc->gen;
	file_name(id, s->gen, name);
	s->fd = openat(dc->dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->fd < 0) {
		rc = -errno;
		log_error("datacache: cannot create %s: %s", name, strerror(-rc));
		return rc;
	}
	bind_id(st, 1, id);
	sqlite3_bind_blob(st, 2, key, (int)klen, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, etag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)size);
	sqlite3_bind_int64(st, 5, dc->bsize);
	sqlite3_bind_int64(st, 6, (int64_t)s->gen);
	sqlite3_bind_zeroblob(st, 7, (int)((nblocks(dc, size) + 7) / 8));
	sqlite3_bind_int64(st, 8, (int64_t)++dc->tick);
	sqlite3_bind_int64(st, 9, dc->epoch);
	rc = step_done(dc, ST_INSERT, "insert");
	if (rc) {
		close(s->fd);
		s->fd = -1;
		unlinkat(dc->dfd, name, 0);
	}
	return rc;
}

/* The row and an open file for block bi of (key, etag); 1: present already. */
static int slot_get_locked(struct datacache *dc, const struct datacache_fill *fill, const char *key,
			   const char *etag, uint64_t size, const uint8_t *id, uint64_t bi,
			   struct slot *s)
{
	struct row r = { .first = bi, .last = bi };
	int rc = lookup_locked(dc, id, key, etag, size, &r);

	if (rc == 0 && r.first_missing > bi)
		return 1;
	if (rc == 0) {
		rc = file_open_locked(dc, id, r.gen, O_WRONLY, &s->fd);
		if (rc == 0)
			s->gen = r.gen;
		if (rc != -ENOENT)
			return rc;
	}
	if (rc == -EEXIST) { /* another object with this id: the newer one wins */
		rc = drop_locked(dc, id, r.gen, NULL);
		rc = rc ? rc : -ENOENT;
	}
	if (rc != -ENOENT)
		return rc;
	return slot_create_locked(dc, fill, key, etag, size, id, s);
}

/* Set the bit of block bi, written to the file of s->gen (invariant 1). The
 * reservation becomes the row's bytes, or is given back. */
static int mark_locked(struct datacache *dc, const struct slot *s, const char *key,
		       const char *etag, uint64_t size, uint64_t bi, size_t len, const uint8_t *id)
{
	sqlite3_stmt *st = dc->st[ST_MARK];
	struct row r = { .first = bi, .last = bi, .want_bitmap = true };
	int rc = lookup_locked(dc, id, key, etag, size, &r);

	if (rc == 0 && r.gen != s->gen)
		rc = -EAGAIN; /* replaced while we wrote: our file is unlinked */
	if (rc == -ENOENT || rc == -EEXIST)
		rc = -EAGAIN; /* dropped while we wrote */
	if (rc == 0 && r.first_missing > bi)
		rc = 1; /* a concurrent write of the same block was first */
	if (rc == 0) {
		r.bitmap[bi / 8] |= (uint8_t)(1u << (bi % 8));
		bind_id(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)s->gen);
		sqlite3_bind_blob(st, 3, r.bitmap, (int)r.bmlen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)len);
		sqlite3_bind_int64(st, 5, (int64_t)++dc->tick);
		sqlite3_bind_int64(st, 6, dc->epoch);
		rc = step_done(dc, ST_MARK, "mark");
	}
	if (rc)
		dc->used -= len;
	else
		atomic_fetch_add_explicit(&dc->blocks_in, 1, memory_order_relaxed);
	free(r.bitmap);
	return rc == 1 ? 0 : rc;
}

int datacache_write_block(struct datacache *dc, const struct datacache_fill *fill, const char *key,
			  const char *etag, uint64_t object_size, uint64_t block_index,
			  const void *data, size_t len)
{
	struct slot s = { .fd = -1 };
	uint8_t id[ID_LEN];
	uint64_t nb = 0;
	int rc = args_check(dc, key, etag, object_size, &nb);

	if (rc == 0 &&
	    (!data || block_index >= nb || len != block_len(dc, object_size, block_index)))
		rc = -EINVAL;
	if (rc == 0)
		rc = hash_of(key, strlen(key), etag, id);
	if (rc)
		return rc;
	pthread_mutex_lock(&dc->lock);
	rc = slot_get_locked(dc, fill, key, etag, object_size, id, block_index, &s);
	if (rc == 0)
		rc = room_locked(dc, id, len);
	pthread_mutex_unlock(&dc->lock);
	if (rc == 0) {
		/* Outside the lock: the row may go meanwhile; mark_locked sees it. */
		rc = pwrite_full(s.fd, data, len, block_index * dc->bsize);
		if (rc)
			log_warn("datacache: cannot write a block: %s", strerror(-rc));
		pthread_mutex_lock(&dc->lock);
		if (rc == 0)
			rc = mark_locked(dc, &s, key, etag, object_size, block_index, len, id);
		else
			dc->used -= len;
		pthread_mutex_unlock(&dc->lock);
	}
	if (s.fd >= 0)
		close(s.fd);
	return rc == 1 ? 0 : rc;
}

/* ---- read ------------------------------------------------------------- */

/* Read from a file whose blocks [off, off + len) touches the index says are
 * there, up to need bytes into the file. A file shorter than that, or a
 * failed read, is damage: the row goes, the caller sees a miss. The length
 * is checked whole-block, so that a cut anywhere in a block is seen. */
static int read_checked(struct datacache *dc, int fd, const uint8_t *id, uint64_t gen, void *buf,
			size_t len, uint64_t off, uint64_t need)
{
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;

	if (rc == 0 && (uint64_t)st.st_size < need)
		rc = -ENODATA;
	if (rc == 0)
		rc = pread_full(fd, buf, len, off);
	if (rc == 0)
		return 0;
	pthread_mutex_lock(&dc->lock);
	(void)drop_locked(dc, id, gen, rc == -ENODATA ? "file too short" : "file unreadable");
	pthread_mutex_unlock(&dc->lock);
	return -ENOENT;
}

int datacache_read(struct datacache *dc, const char *key, const char *etag, uint64_t object_size,
		   uint64_t off, void *buf, size_t len, size_t *out_got)
{
	struct row r = { 0 };
	uint8_t id[ID_LEN];
	uint64_t nb = 0, end = 0;
	int rc = args_check(dc, key, etag, object_size, &nb), fd = -1;

	if (rc == 0 && ((!buf && len) || !out_got))
		rc = -EINVAL;
	if (rc)
		return rc;
	if (off >= object_size || len == 0) {
		*out_got = 0;
		return 0;
	}
	end = len > object_size - off ? object_size : off + len;
	r.first = off / dc->bsize;
	r.last = (end - 1) / dc->bsize;
	rc = hash_of(key, strlen(key), etag, id);
	if (rc)
		return rc;
	pthread_mutex_lock(&dc->lock);
	rc = lookup_locked(dc, id, key, etag, object_size, &r);
	if (rc == -EEXIST || (rc == 0 && r.first_missing <= r.last))
		rc = -ENOENT;
	if (rc == 0) /* under the lock: invariant 2 */
		rc = file_open_locked(dc, id, r.gen, O_RDONLY, &fd);
	if (rc == 0)
		touch_locked(dc, id);
	pthread_mutex_unlock(&dc->lock);
	if (rc == 0)
		rc = read_checked(dc, fd, id, r.gen, buf, (size_t)(end - off), off,
				  r.last * dc->bsize + block_len(dc, object_size, r.last));
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		atomic_fetch_add_explicit(&dc->hits, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&dc->hit_bytes, end - off, memory_order_relaxed);
		*out_got = (size_t)(end - off);
	} else if (rc == -ENOENT) {
		atomic_fetch_add_explicit(&dc->misses, 1, memory_order_relaxed);
	}
	return rc;
}

int datacache_missing(struct datacache *dc, const char *key, const char *etag, uint64_t object_size,
		      uint64_t off, size_t len, uint64_t *out_first, uint32_t *out_nblocks)
{
	struct row r = { 0 };
	uint8_t id[ID_LEN];
	uint64_t nb = 0, end = 0;
	int rc = args_check(dc, key, etag, object_size, &nb);

	if (rc == 0 && (!out_first || !out_nblocks))
		rc = -EINVAL;
	if (rc)
		return rc;
	if (off >= object_size || len == 0) {
		*out_first = off >= object_size ? nb : off / dc->bsize;
		*out_nblocks = 0;
		return 0;
	}
	end = len > object_size - off ? object_size : off + len;
	r.first = off / dc->bsize;
	r.last = (end - 1) / dc->bsize;
	rc = hash_of(key, strlen(key), etag, id);
	if (rc)
		return rc;
	pthread_mutex_lock(&dc->lock);
	rc = lookup_locked(dc, id, key, etag, object_size, &r);
	pthread_mutex_unlock(&dc->lock);
	if (rc == -ENOENT || rc == -EEXIST) {
		r.first_missing = r.first;
		r.run = r.last - r.first + 1;
		rc = 0;
	}
	if (rc == 0) {
		*out_first = r.first_missing;
		*out_nblocks = (uint32_t)r.run; /* <= DATACACHE_BLOCKS_MAX */
	}
	return rc;
}

int datacache_invalidate(struct datacache *dc, const char *key)
{
	uint8_t key_hash[ID_LEN];
	int rc = 0;

	if (!dc || !key || !*key)
		return -EINVAL;
	size_t klen = strnlen(key, DATACACHE_KEY_MAX + 1);
	if (klen > DATACACHE_KEY_MAX)
		return -ENAMETOOLONG;
	rc = hash_of(key, klen, NULL, key_hash);
	if (rc)
		return rc;
	pthread_mutex_lock(&dc->lock);
	change_record_locked(dc, key_hash); /* first: fills are refused even if the drop fails */
	rc = drop_key_locked(dc, key);
	pthread_mutex_unlock(&dc->lock);
	return rc;
}

void datacache_fill_begin(struct datacache *dc, struct datacache_fill *out)
{
	pthread_mutex_lock(&dc->lock);
	out->gen = dc->gen;
	pthread_mutex_unlock(&dc->lock);
}

void datacache_usage(struct datacache *dc, uint64_t *out_used, uint64_t *out_capacity)
{
	pthread_mutex_lock(&dc->lock);
	*out_used = dc->used;
	*out_capacity = dc->capacity;
	pthread_mutex_unlock(&dc->lock);
}

void datacache_get_stats(struct datacache *dc, struct datacache_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->hits = atomic_load(&dc->hits);
	out->misses = atomic_load(&dc->misses);
	out->hit_bytes = atomic_load(&dc->hit_bytes);
	out->blocks_in = atomic_load(&dc->blocks_in);
	out->evictions = atomic_load(&dc->evictions);
	out->dropped = atomic_load(&dc->dropped);
	out->block_size = dc->bsize;
	datacache_usage(dc, &out->used, &out->capacity);
}

/* ---- open: directories, index ----------------------------------------- */

/* Create dir (0700) and data/ in it; refuse a dir others could write into;
 * lock data/ so that one handle at a time uses it. */
static int dirs_open(struct datacache *dc, const char *dir)
{
	struct stat st;
	int rc = 0, fd = -1;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		goto fail;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0)
		goto fail;
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_error("datacache: refusing cache directory %s: not ours, or writable by others",
			  dir);
		rc = -EACCES;
		goto out;
	}
	if (mkdirat(fd, "data", 0700) != 0 && errno != EEXIST)
		goto fail;
	dc->dfd = openat(fd, "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dc->dfd < 0 || fstat(dc->dfd, &st) != 0)
		goto fail;
	if (st.st_uid != geteuid()) {
		rc = -EACCES;
		goto out;
	}
	if ((st.st_mode & 077) && fchmod(dc->dfd, 0700) != 0)
		goto fail;
	if (flock(dc->dfd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_error("datacache: %s/data is in use by another mount", dir);
		goto out;
	}
	goto out;
fail:
	rc = -errno;
	log_error("datacache: cannot set up %s/data: %s", dir, strerror(-rc));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Is the open index empty, ours and sound, or bad (damaged, foreign, another version)? */
static int db_judge(struct datacache *dc, bool *fresh, bool *bad)
{
	static const char sql[] = "SELECT (SELECT application_id FROM pragma_application_id), "
				  "(SELECT user_version FROM pragma_user_version), "
				  "(SELECT count(*) FROM sqlite_schema), "
				  "(SELECT quick_check FROM pragma_quick_check LIMIT 1)";
	sqlite3_stmt *st = NULL;
	int rc = 0, src = sqlite3_prepare_v2(dc->db, sql, -1, &st, NULL);

	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		const unsigned char *check = sqlite3_column_text(st, 3);
		*fresh = sqlite3_column_int64(st, 0) == 0 && sqlite3_column_int64(st, 1) == 0 &&
			 sqlite3_column_int64(st, 2) == 0;
		*bad = !*fresh && (sqlite3_column_int64(st, 0) != DATACACHE_APP_ID ||
				   sqlite3_column_int64(st, 1) != DATACACHE_VERSION || !check ||
				   strcmp((const char *)check, "ok") != 0);
	} else if ((src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB) {
		*bad = true;
	} else {
		rc = sql_err(dc, src, "check");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Open path (created 0600: SQLite would use 0644, and its WAL follows) and judge it. */
static int db_try(struct datacache *dc, const char *path, bool *fresh, bool *bad)
{
	struct stat st;
	int rc = 0, fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	*fresh = *bad = false;
	if (fd < 0 || fstat(fd, &st) != 0 || ((st.st_mode & 077) && fchmod(fd, 0600) != 0)) {
		rc = -errno;
		log_error("datacache: cannot open %s: %s", path, strerror(-rc));
	}
	if (fd >= 0)
		close(fd);
	if (rc)
		return rc;
	int src = sqlite3_open_v2(path, &dc->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK)
		return sql_err(dc, src, "open");
	sqlite3_extended_result_codes(dc->db, 1);
	sqlite3_busy_timeout(dc->db, BUSY_TIMEOUT_MS);
	/* The file is data, not code: no schema tricks, no SQL functions in it. */
	sqlite3_db_config(dc->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(dc->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	return db_judge(dc, fresh, bad);
}

/* A bad index goes with its WAL; its files go in files_sweep (no row names them). */
static int db_remove(struct datacache *dc, const char *path)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	struct buf p;
	int rc = 0;

	log_warn("datacache: %s is damaged or not ours: starting an empty cache", path);
	sqlite3_close(dc->db);
	dc->db = NULL;
	buf_init(&p, PATH_MAX);
	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(suffix); i++) {
		buf_reset(&p);
		rc = buf_printf(&p, "%s%s", path, suffix[i]);
		if (rc == 0 && unlink(buf_str(&p)) != 0 && errno != ENOENT)
			rc = -errno;
	}
	buf_cleanup(&p);
	return rc;
}

static int db_setup(struct datacache *dc, bool fresh)
{
	char sql[160];
	int src = sqlite3_exec(dc->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL,
			       NULL, NULL);

	if (src == SQLITE_OK && fresh) {
		snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%d",
			 DATACACHE_APP_ID, DATACACHE_VERSION);
		src = sqlite3_exec(dc->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (src == SQLITE_OK)
			src = sqlite3_exec(dc->db, schema_sql, NULL, NULL, NULL);
		if (src == SQLITE_OK)
			src = sqlite3_exec(dc->db, sql, NULL, NULL, NULL);
		if (src == SQLITE_OK)
			src = sqlite3_exec(dc->db, "COMMIT", NULL, NULL, NULL);
	}
	for (int i = 0; src == SQLITE_OK && i < ST_COUNT; i++)
		src = sqlite3_prepare_v3(dc->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					 &dc->st[i], NULL);
	return src == SQLITE_OK ? 0 : sql_err(dc, src, "setup");
}

static int index_open(struct datacache *dc, const char *dir)
{
	struct buf path;
	bool fresh = false, bad = false;
	int rc = 0;

	buf_init(&path, PATH_MAX);
	rc = buf_printf(&path, "%s/data.db", dir);
	if (rc == 0)
		rc = db_try(dc, buf_str(&path), &fresh, &bad);
	if (rc == 0 && bad) {
		rc = db_remove(dc, buf_str(&path));
		if (rc == 0)
			rc = db_try(dc, buf_str(&path), &fresh, &bad);
		if (rc == 0 && (bad || !fresh))
			rc = -EIO;
	}
	if (rc == 0)
		rc = db_setup(dc, fresh);
	buf_cleanup(&path);
	return rc;
}

/* ---- open: recovery --------------------------------------------------- */

/* The state row: the last session's epoch, whether it closed, its boot. */
static int state_get(struct datacache *dc, int64_t *epoch, int64_t *clean, char *boot)
{
	sqlite3_stmt *st = dc->st[ST_STATE_GET];
	int rc = 0, src = sqlite3_step(st);

	if (src == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 2);
		*epoch = sqlite3_column_int64(st, 0);
		*clean = sqlite3_column_int64(st, 1);
		snprintf(boot, BOOT_LEN, "%s", t ? (const char *)t : "");
	} else {
		rc = src == SQLITE_DONE ? -EIO : sql_err(dc, src, "state");
	}
	sqlite3_reset(st);
	return rc;
}

static int state_put(struct datacache *dc, bool clean)
{
	sqlite3_stmt *st = dc->st[ST_STATE_PUT];

	sqlite3_bind_int64(st, 1, dc->epoch);
	sqlite3_bind_int(st, 2, clean);
	sqlite3_bind_text(st, 3, dc->boot, -1, SQLITE_STATIC);
	return step_done(dc, ST_STATE_PUT, "state");
}

static void boot_id(char *out, size_t size)
{
	FILE *f = fopen(BOOT_ID_PATH, "re");

	out[0] = '\0';
	if (f && fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = '\0';
	if (f)
		fclose(f);
}

/* The last session did not close (invariant 4). */
static int recover_crash(struct datacache *dc, int64_t epoch, bool same_boot)
{
	if (same_boot) {
		int rc = syncfs(dc->dfd) == 0 ? 0 : -errno;
		if (rc)
			log_error("datacache: syncfs: %s", strerror(-rc));
		return rc;
	}
	sqlite3_bind_int64(dc->st[ST_DROP_EPOCH], 1, epoch);
	int rc = step_done(dc, ST_DROP_EPOCH, "recover");
	if (rc == 0 && sqlite3_changes(dc->db) > 0)
		log_warn("datacache: the machine stopped during the last mount; dropped the %d "
			 "object(s) it wrote",
			 sqlite3_changes(dc->db));
	return rc;
}

/* Is the row under st (ST_ALL's columns) sound? *out_need: the file size its
 * blocks need. */
static bool row_sound(struct datacache *dc, sqlite3_stmt *st, uint64_t *out_need)
{
	static const int types[] = { SQLITE_BLOB,    SQLITE_BLOB,    SQLITE_TEXT,
				     SQLITE_INTEGER, SQLITE_INTEGER, SQLITE_INTEGER,
				     SQLITE_BLOB,    SQLITE_INTEGER, SQLITE_INTEGER };
	uint8_t id[ID_LEN];
	uint64_t count = 0, last = 0;

	for (int c = 0; c < (int)ARRAY_SIZE(types); c++)
		if (sqlite3_column_type(st, c) != types[c])
			return false;
	const void *key = sqlite3_column_blob(st, 1);
	size_t klen = (size_t)sqlite3_column_bytes(st, 1);
	const char *etag = (const char *)sqlite3_column_text(st, 2);
	int64_t size = sqlite3_column_int64(st, 3);
	const uint8_t *bm = sqlite3_column_blob(st, 6);
	size_t bmlen = (size_t)sqlite3_column_bytes(st, 6);
	if (sqlite3_column_bytes(st, 0) != ID_LEN || klen == 0 || klen > DATACACHE_KEY_MAX ||
	    memchr(key, 0, klen) || !etag || !*etag || strlen(etag) >= DATACACHE_ETAG_MAX ||
	    size < 0 || sqlite3_column_int64(st, 4) != dc->bsize ||
	    sqlite3_column_int64(st, 5) <= 0 ||
	    nblocks(dc, (uint64_t)size) > DATACACHE_BLOCKS_MAX ||
	    bmlen != (nblocks(dc, (uint64_t)size) + 7) / 8)
		return false;
	if (hash_of(key, klen, etag, id) != 0 || memcmp(id, sqlite3_column_blob(st, 0), ID_LEN))
		return false;
	for (size_t i = 0; i < bmlen; i++) {
		if (bm[i]) {
			count += (uint64_t)__builtin_popcount(bm[i]);
			last = i * 8 + 32 - (uint64_t)__builtin_clz(bm[i]);
		}
	}
	if (last > nblocks(dc, (uint64_t)size))
		return false;
	uint64_t bytes = count * dc->bsize, tail = (uint64_t)size % dc->bsize;
	if (last == nblocks(dc, (uint64_t)size) && tail)
		bytes -= dc->bsize - tail;
	*out_need = last ? (last - 1) * dc->bsize + block_len(dc, (uint64_t)size, last - 1) : 0;
	return (uint64_t)sqlite3_column_int64(st, 7) == bytes;
}

static bool file_sound(struct datacache *dc, sqlite3_stmt *st, uint64_t need)
{
	char name[NAME_LEN];
	struct stat sb;

	file_name(sqlite3_column_blob(st, 0), (uint64_t)sqlite3_column_int64(st, 5), name);
	return fstatat(dc->dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
	       (uint64_t)sb.st_size >= need;
}

/* Drop the rows that are damaged or whose file is missing or short; sum the
 * rest into used, gen and tick. */
static int rows_check(struct datacache *dc)
{
	sqlite3_stmt *st = dc->st[ST_ALL];
	int64_t *bad = NULL, *more;
	size_t nbad = 0, cap = 0;
	int rc = 0, src;

	while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t need = 0, gen = (uint64_t)sqlite3_column_int64(st, 5);
		uint64_t atime = (uint64_t)sqlite3_column_int64(st, 8);
		if (row_sound(dc, st, &need) && file_sound(dc, st, need)) {
			dc->used += (uint64_t)sqlite3_column_int64(st, 7);
			dc->gen = gen > dc->gen ? gen : dc->gen;
			dc->tick = atime > dc->tick ? atime : dc->tick;
			continue;
		}
		if (nbad == cap) {
			cap = cap ? 2 * cap : 16;
			more = realloc(bad, cap * sizeof(*bad));
			if (!more) {
				rc = -ENOMEM;
				break;
			}
			bad = more;
		}
		bad[nbad++] = sqlite3_column_int64(st, 9);
	}
	if (rc == 0 && src != SQLITE_DONE)
		rc = sql_err(dc, src, "check");
	sqlite3_reset(st);
	for (size_t i = 0; rc == 0 && i < nbad; i++) {
		sqlite3_bind_int64(dc->st[ST_DEL_ROWID], 1, bad[i]);
		rc = step_done(dc, ST_DEL_ROWID, "check");
	}
	if (rc == 0 && nbad) {
		log_warn("datacache: dropped %zu damaged entr%s", nbad, nbad == 1 ? "y" : "ies");
		atomic_fetch_add_explicit(&dc->dropped, nbad, memory_order_relaxed);
	}
	free(bad);
	return rc;
}

/* Remove every file of data/ that no row names (crashes, dropped rows). */
static int files_sweep(struct datacache *dc)
{
	sqlite3_stmt *st = dc->st[ST_EXISTS];
	struct dirent *e;
	int rc = 0, fd = openat(dc->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		log_error("datacache: cannot list the data directory: %s", strerror(-rc));
		return rc;
	}
	while (rc == 0 && (e = readdir(d))) {
		uint8_t id[ID_LEN];
		uint64_t gen = 0;
		int src = SQLITE_DONE;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (name_parse(e->d_name, id, &gen)) {
			bind_id(st, 1, id);
			sqlite3_bind_int64(st, 2, (int64_t)gen);
			src = sqlite3_step(st);
			sqlite3_reset(st);
		}
		if (src == SQLITE_DONE && unlinkat(dc->dfd, e->d_name, 0) != 0)
			log_warn("datacache: cannot remove %s: %s", e->d_name, strerror(errno));
		else if (src != SQLITE_ROW && src != SQLITE_DONE)
			rc = sql_err(dc, src, "sweep");
	}
	closedir(d);
	return rc;
}

static int recover(struct datacache *dc)
{
	int64_t epoch = 0, clean = 1;
	char boot[BOOT_LEN] = "";
	int rc = state_get(dc, &epoch, &clean, boot);

	boot_id(dc->boot, sizeof(dc->boot));
	if (rc == 0 && !clean)
		rc = recover_crash(dc, epoch, *dc->boot && strcmp(boot, dc->boot) == 0);
	if (rc == 0)
		rc = rows_check(dc);
	if (rc == 0)
		rc = files_sweep(dc);
	dc->epoch = epoch + 1;
	return rc ? rc : state_put(dc, false);
}

int datacache_open(const char *dir, uint64_t capacity, uint32_t block_size, struct datacache **out)
{
	struct datacache *dc = NULL;
	int rc = 0;

	if (block_size == 0)
		block_size = DATACACHE_BLOCK_DEFAULT;
	if (!dir || !out || block_size % DATACACHE_BLOCK_MIN || block_size > DATACACHE_BLOCK_MAX ||
	    capacity < block_size)
		return -EINVAL;
	dc = calloc(1, sizeof(*dc));
	if (!dc)
		return -ENOMEM;
	pthread_mutex_init(&dc->lock, NULL);
	dc->dfd = -1;
	dc->capacity = capacity;
	dc->bsize = block_size;
	rc = dirs_open(dc, dir);
	if (rc == 0)
		rc = index_open(dc, dir);
	if (rc == 0)
		rc = recover(dc);
	if (rc == 0) {
		pthread_mutex_lock(&dc->lock);
		rc = room_locked(dc, NULL, 0); /* the capacity may have shrunk */
		pthread_mutex_unlock(&dc->lock);
	}
	if (rc)
		goto out;
	dc->opened = true;
	*out = dc;
out:
	if (rc)
		datacache_close(dc);
	return rc;
}

void datacache_close(struct datacache *dc)
{
	if (!dc)
		return;
	if (dc->opened) {
		touch_flush_locked(dc); /* no call in flight: the lock is ours */
		/* Invariant 4: the data on disk before the index says so. */
		if (syncfs(dc->dfd) == 0)
			(void)state_put(dc, true);
		else
			log_error("datacache: syncfs: %s", strerror(errno));
	}
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(dc->st[i]);
	sqlite3_close(dc->db);
	if (dc->dfd >= 0)
		close(dc->dfd);
	pthread_mutex_destroy(&dc->lock);
	free(dc);
}
