/* SPDX-License-Identifier: MIT */
/*
 * meta_cache: what the mount remembers about the bucket, in one SQLite file
 * under the cache directory, so that it survives remounts: per object key the
 * attributes and when they were last validated (and negative entries), the
 * user metadata of each HEAD keyed by (key, ETag, LastModified), per
 * directory whether its listing is complete, and an immutable blob store for
 * the chain logic. The pending-upload journal lives in the same file
 * (meta_journal.h).
 *
 * Keys are plain S3 keys (any bytes but NUL, at most META_KEY_MAX bytes);
 * directories use the key of their marker, with a trailing '/'. The module
 * knows nothing of the wire, of paths or of FUSE; times are wall-clock.
 *
 * Fills and writes. A fill installs what a fetch (HEAD, GET, LIST) returned:
 * take a struct meta_fill with meta_cache_fill_begin() before sending the
 * request and pass it to the function that installs the result. A write is
 * what this mount itself did to the bucket (fill == NULL). A fill is refused
 * with -EAGAIN when this mount wrote the same key (or invalidated the same
 * directory, or forgot any key) after the fill began: the fetched answer may
 * predate the write. The answer is still good for the request that fetched it.
 *
 * Threads: every function may be called from any thread. One SQLite
 * connection serves the handle and one mutex serializes it (see cache.c for
 * why). Lock order: callers' locks, then the handle's lock, which is a leaf:
 * the module takes no other lock while holding it. Callbacks (children, blobs)
 * run with the handle's lock held: they must not call into meta_cache or
 * meta_journal (that deadlocks) and should only copy what they need.
 *
 * Errors: 0 or a negative errno. -ENOENT for a miss, -EINVAL for bad
 * arguments, -ENAMETOOLONG for a key over META_KEY_MAX, -ENOMEM, -ENOSPC when
 * the disk is full, -EIO for any other SQLite error (logged with SQLite's
 * message). Out-parameters are written only on success.
 */
#ifndef S3VFS_META_CACHE_H
#define S3VFS_META_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "s3vfs/compiler.h"

#define META_KEY_MAX	   1024	       /* bytes in an S3 key */
#define META_ETAG_MAX	   80	       /* bytes with the NUL; S3_ETAG_MAX of the wire layer */
#define META_SYMLINK_MAX   4096	       /* bytes in a symlink target, NUL included */
#define META_HEADBLOB_MAX  (64 * 1024) /* opaque part of a HEAD result */
#define META_BLOB_MAX	   (16 * 1024 * 1024) /* one value of the blob store */
#define META_NS_MAX	   64		      /* bytes in a blob namespace */
#define META_CACHE_APP_ID  0x53335646	      /* PRAGMA application_id: "S3VF" */
#define META_CACHE_VERSION 1		      /* PRAGMA user_version of this schema */

struct meta_cache;

enum meta_kind {
	META_KIND_NEGATIVE = 0, /* known not to exist */
	META_KIND_FILE = 1,
	META_KIND_DIR = 2,
	META_KIND_SYMLINK = 3,
};

/*
 * The attributes of one key. Embedded: meta_entry_cleanup() frees symlink.
 * As input (upsert, pages) every pointer is borrowed.
 */
struct meta_entry {
	enum meta_kind kind;
	uint64_t size;
	mode_t mode; /* full st_mode, type bits included */
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
	struct timespec ctime;
	char etag[META_ETAG_MAX]; /* as S3 sends it, quotes included; "" for none */
	int64_t last_modified;	  /* epoch seconds; 0: unknown (our own write) */
	/* mode, uid, gid, mtime and ctime came from a HEAD or GET of this
	 * (etag, last_modified); false: defaults, as a listing gives */
	bool meta_known;
	int64_t validated_ms; /* output only: wall clock (ms) of the last validation */
	char *symlink;	      /* target if known, else NULL */
};

void meta_entry_cleanup(struct meta_entry *e);

/* Taken before a fetch; the fill that installs its answer checks it. */
struct meta_fill {
	uint64_t gen;	    /* the handle's write generation then */
	int64_t started_ms; /* wall clock then */
};

/*
 * Open (creating as needed) the cache "name" in directory dir. dir is
 * created with mode 0700 when missing (its parent must exist); an existing
 * dir must be a directory owned by the effective user and writable by no one
 * else, or -EACCES (logged). The database file is 0600 (beside it: its
 * -wal and -shm, and name.lock); a second open of the same cache, by this or
 * another process, gets -EBUSY.
 *
 * A database that is not ours, of another schema version, or damaged (not
 * SQLite, failing PRAGMA quick_check) is moved aside as "name.corrupt-<time>"
 * and a fresh one is created, with a warning. Pending uploads are salvaged
 * from the old file first when it is ours (best effort) and the log says how
 * many were kept. -EINVAL for a name with '/' or of "." or "..", -EACCES,
 * -EBUSY, -ENOENT (dir's parent missing), -ENOMEM, -EIO.
 */
int meta_cache_open(const char *dir, const char *name, struct meta_cache **out) WARN_UNUSED;
/* Close and free; NULL is a no-op. No call may be in flight. */
void meta_cache_close(struct meta_cache *mc);
/* Did meta_cache_open() move a bad database aside? */
bool meta_cache_rebuilt(const struct meta_cache *mc);

/* Snapshot taken before sending a fetch whose answer will be installed. */
void meta_cache_fill_begin(struct meta_cache *mc, struct meta_fill *out);

/* Wall clock in milliseconds, as the cache stamps validations. */
int64_t meta_cache_now_ms(void);

/*
 * What is known about key. On 0, out (clean it up) holds the entry and
 * out_age_ms the milliseconds since it was validated: the caller applies its
 * stat_ttl. A key that has no entry but lies directly in a directory whose
 * listing is complete is reported as META_KIND_NEGATIVE with the listing's
 * age. -ENOENT: nothing known.
 */
int meta_cache_lookup(struct meta_cache *mc, const char *key, struct meta_entry *out,
		      int64_t *out_age_ms) WARN_UNUSED;

/*
 * Install e for key (validated now), replacing what was there. fill NULL: a
 * write by this mount. Else a fill: -EAGAIN when refused (see above).
 * -EINVAL: bad kind, etag or symlink too long.
 */
int meta_cache_upsert(struct meta_cache *mc, const char *key, const struct meta_entry *e,
		      const struct meta_fill *fill) WARN_UNUSED;

/* A conditional request answered 304: mark key validated now if its cached
 * etag is still etag. -ENOENT: no such entry or another etag; -EAGAIN: refused. */
int meta_cache_touch(struct meta_cache *mc, const char *key, const char *etag,
		     const struct meta_fill *fill) WARN_UNUSED;

/* key is known not to exist (a 404, fill; or this mount removed it, NULL).
 * The listing of its directory stays complete. -EAGAIN: refused. */
int meta_cache_mark_negative(struct meta_cache *mc, const char *key,
			     const struct meta_fill *fill) WARN_UNUSED;

/*
 * Forget key: its entry and HEAD result. Its directory's listing is no longer
 * complete (the key may still exist). Fills begun before are refused. 0 also
 * when nothing was known.
 */
int meta_cache_delete(struct meta_cache *mc, const char *key) WARN_UNUSED;

/* One key of a listing page (a CommonPrefix is a META_KIND_DIR with etag ""). */
struct meta_list_item {
	const char *key;
	struct meta_entry e; /* kind, size, etag, last_modified; defaults for the rest */
};

/*
 * Install one page of a listing of dir_key, all items in one transaction.
 * Each item is stored under its own parent (so the directory's own marker
 * may be passed). Per item, in order:
 *   1. written by this mount since fill began: left alone;
 *   2. the entry has known metadata and the same (etag, last_modified) (for
 *      a directory without etag: is a directory): kept, validated now;
 *   3. a HEAD result for (key, etag, last_modified) exists: the item with its
 *      metadata (kind from its mode), meta_known;
 *   4. else the item as given.
 * All pages of one listing pass the same fill, taken before the first page
 * was requested. A listing that began after a write and does not show the
 * key means someone else removed it.
 * last: this is the final page. Entries of dir_key's children that no page of
 * this listing validated are dropped, and dir_key is marked
 * listed, in the same transaction; -EAGAIN (items installed, listing not
 * complete) when this mount invalidated dir_key since the fill began.
 * -EAGAIN (nothing installed) when any key was forgotten since. -EINVAL or
 * -ENAMETOOLONG for a bad item: nothing installed.
 */
int meta_cache_put_page(struct meta_cache *mc, const struct meta_fill *fill, const char *dir_key,
			const struct meta_list_item *items, size_t n, bool last) WARN_UNUSED;

/* The HEAD result of one object version: user metadata beyond the entry. */
struct meta_headinfo {
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
	struct timespec ctime;
	struct timespec atime;
	void *blob; /* opaque (e.g. x-amz-meta-xattr); owned on output; NULL if none */
	size_t blob_len;
};

void meta_headinfo_cleanup(struct meta_headinfo *h);

/* Remember h for (key, etag, last_modified), replacing the result of any
 * other version of key. -EINVAL: etag too long, blob over META_HEADBLOB_MAX. */
int meta_cache_headinfo_put(struct meta_cache *mc, const char *key, const char *etag,
			    int64_t last_modified, const struct meta_headinfo *h) WARN_UNUSED;
/* -ENOENT unless the result of that exact version is known. out: clean up. */
int meta_cache_headinfo_get(struct meta_cache *mc, const char *key, const char *etag,
			    int64_t last_modified, struct meta_headinfo *out) WARN_UNUSED;

/* 0 and the age of the listing if dir_key's listing is complete, else -ENOENT. */
int meta_cache_dir_lookup(struct meta_cache *mc, const char *dir_key,
			  int64_t *out_age_ms) WARN_UNUSED;
/* Make every entry and listing stale (kept, revalidated at next use): after
 * an unclean end, what the cache says may predate writes it never saw end. */
int meta_cache_expire_all(struct meta_cache *mc) WARN_UNUSED;

/* This mount created or removed a child of dir_key: the listing is no longer
 * complete, and a listing in flight will not mark it so. */
int meta_cache_dir_invalidate(struct meta_cache *mc, const char *dir_key) WARN_UNUSED;

/*
 * One child: name is its last component (no '/'), key its full key, both
 * NUL-terminated; all borrowed for the call. Return 0 to go on, 1 to stop,
 * or a negative errno to stop and make the walk return it.
 */
typedef int (*meta_child_fn)(void *arg, const char *name, const char *key,
			     const struct meta_entry *e);

/*
 * Walk the children of a listed directory, negative entries left out, in
 * order of (name, key) so that a file "x" and a directory "x/" come together.
 * after: NULL, or the key of the last child seen by an earlier walk, to go on
 * from there. -ENOENT if the listing is not complete. Runs under the handle's
 * lock (see above).
 */
int meta_cache_dir_children(struct meta_cache *mc, const char *dir_key, const char *after,
			    meta_child_fn fn, void *arg) WARN_UNUSED;

/*
 * Blob store for immutable data (verified chain links): (ns, key) -> value.
 * put: 0 when stored or already stored with the same value, -EEXIST when
 * stored with another one (immutable), -EINVAL (ns empty or over
 * META_NS_MAX, value over META_BLOB_MAX).
 */
int meta_cache_blob_put(struct meta_cache *mc, const char *ns, const char *key, const void *value,
			size_t len) WARN_UNUSED;
/* -ENOENT if absent. *out_value (free()) is NUL-terminated past out_len. */
int meta_cache_blob_get(struct meta_cache *mc, const char *ns, const char *key, void **out_value,
			size_t *out_len) WARN_UNUSED;

/* One blob: all borrowed for the call. Return as for meta_child_fn. */
typedef int (*meta_blob_fn)(void *arg, const char *key, const void *value, size_t len);

/* Walk the blobs of ns whose key starts with prefix, in key order. */
int meta_cache_blob_list(struct meta_cache *mc, const char *ns, const char *prefix, meta_blob_fn fn,
			 void *arg) WARN_UNUSED;

#endif
