/* SPDX-License-Identifier: MIT */
/*
 * datacache: the bytes of S3 objects cached on local disk, keyed by (key,
 * ETag), block by block, bounded in size, surviving remounts. One sparse file
 * per object version under <dir>/data/ holds the blocks that were fetched;
 * an index in <dir>/data.db (SQLite) says which blocks are present. The
 * caller asks which blocks of a range are missing, fetches exactly those, and
 * hands them in with datacache_write_block(); a range is served only when
 * every block of it is present. The module knows nothing of the wire, of
 * paths or of FUSE.
 *
 * Versions: the bytes of one (key, etag) never change, so a block once
 * written is good for as long as the entry lives. Writing the first block of
 * a new etag drops the other versions of the key; datacache_invalidate()
 * drops all of them. A fill (a GET begun before the key changed) must not
 * resurrect an old version: take a struct datacache_fill before sending the
 * request, as meta_cache does; a write that would create an entry is refused
 * with -EAGAIN if the key was invalidated or got another version after the
 * fill began.
 *
 * Bounds: used bytes (the sum of the present blocks' lengths, not the disk's
 * allocation) stay at or under the capacity; writes evict whole objects,
 * least recently used first (reads and writes count as uses).
 *
 * Threads: every function may be called from any thread. The handle's lock
 * is a leaf (no other lock is taken under it, no callback runs under it);
 * block I/O (pread/pwrite) runs outside it.
 *
 * Errors: 0 or a negative errno. -ENOENT for a miss, -EINVAL for bad
 * arguments, -ENAMETOOLONG for a key over DATACACHE_KEY_MAX, -EFBIG for an
 * object of more than DATACACHE_BLOCKS_MAX blocks, -ENOMEM, -ENOSPC (the
 * disk is full, or one object alone would pass the capacity), -EIO (SQLite
 * or file errors, logged). Out-parameters are written only on success.
 */
#ifndef S3VFS_DATACACHE_H
#define S3VFS_DATACACHE_H

#include <stddef.h>
#include <stdint.h>

#include "s3vfs/compiler.h"

#define DATACACHE_KEY_MAX	1024		   /* bytes in an S3 key */
#define DATACACHE_ETAG_MAX	80		   /* bytes with the NUL */
#define DATACACHE_BLOCK_DEFAULT (1024 * 1024)	   /* block size when 0 is given */
#define DATACACHE_BLOCK_MIN	4096		   /* and every size is a multiple of it */
#define DATACACHE_BLOCK_MAX	(64 * 1024 * 1024) /* bytes in one block */
#define DATACACHE_BLOCKS_MAX	(1u << 23)	   /* blocks of one object: a 1 MiB bitmap */
#define DATACACHE_APP_ID	0x53334443	   /* PRAGMA application_id: "S3DC" */
#define DATACACHE_VERSION	1		   /* PRAGMA user_version of the index */

struct datacache;

/* Taken before a fetch; datacache_write_block() checks it. */
struct datacache_fill {
	uint64_t gen; /* the handle's change generation then */
};

struct datacache_stats {
	uint64_t hits;	     /* datacache_read() calls served */
	uint64_t misses;     /* datacache_read() calls answered -ENOENT */
	uint64_t hit_bytes;  /* bytes served */
	uint64_t blocks_in;  /* blocks stored by datacache_write_block() */
	uint64_t evictions;  /* objects evicted for room */
	uint64_t dropped;    /* entries dropped as damaged (short file, bad row) */
	uint64_t used;	     /* bytes of present blocks, reservations included */
	uint64_t capacity;   /* as opened */
	uint32_t block_size; /* as opened */
};

/*
 * Open (creating as needed) the data cache in directory dir. dir is created
 * 0700 when missing (its parent must exist) and must be owned by the
 * effective user and writable by no one else (-EACCES); data/ below it is
 * 0700, every file 0600. block_size 0 means DATACACHE_BLOCK_DEFAULT; else a
 * multiple of DATACACHE_BLOCK_MIN up to DATACACHE_BLOCK_MAX, and capacity at
 * least one block (-EINVAL). A second open of the same dir, by this or
 * another process, gets -EBUSY.
 *
 * An index that is not ours, of another version, or damaged is deleted with
 * its files and the cache starts empty (logged). Entries of another block
 * size, damaged rows, rows whose file is missing or short, and (after a
 * crash of the machine) every object written in the session that crashed
 * are dropped; files that no row names are removed. If more than capacity
 * is cached, the least recently used objects are evicted.
 */
int datacache_open(const char *dir, uint64_t capacity, uint32_t block_size,
		   struct datacache **out) WARN_UNUSED;
/* Flush, mark the index clean and free; NULL is a no-op. No call may be in flight. */
void datacache_close(struct datacache *dc);

/* Snapshot taken before sending a GET whose blocks will be written. */
void datacache_fill_begin(struct datacache *dc, struct datacache_fill *out);

/*
 * Copy [off, off + len) of (key, etag), clipped to object_size, into buf and
 * set *out_got to the bytes copied (0 when off >= object_size). 0 only when
 * every block of the clipped range is present; -ENOENT when any is missing
 * (buf then holds garbage), or the file turned out damaged (the entry is
 * dropped). Counts a hit or a miss; a hit makes the object most recently used.
 */
int datacache_read(struct datacache *dc, const char *key, const char *etag, uint64_t object_size,
		   uint64_t off, void *buf, size_t len, size_t *out_got) WARN_UNUSED;

/*
 * The first run of missing blocks in [off, off + len) of (key, etag), clipped
 * to object_size: *out_first its first block index, *out_nblocks its length
 * (consecutive missing blocks, within the range). *out_nblocks = 0 (and
 * *out_first the block after the range) when nothing is missing. Call again
 * from the end of the run to find the next one. Counts nothing, uses nothing.
 */
int datacache_missing(struct datacache *dc, const char *key, const char *etag, uint64_t object_size,
		      uint64_t off, size_t len, uint64_t *out_first,
		      uint32_t *out_nblocks) WARN_UNUSED;

/*
 * Store block block_index of (key, etag) of object_size bytes. len must be
 * the block size, or for the last block what remains of the object
 * (-EINVAL otherwise). Evicts other objects as needed. fill: as taken before
 * the GET, or NULL for bytes this mount wrote itself (never refused).
 * 0 also when the block was present already. -EAGAIN: refused (the key
 * changed since the fill began) or the entry went away during the write;
 * nothing stored. -ENOSPC: no room (the object alone would pass the
 * capacity, or the disk is full). data is borrowed for the call.
 */
int datacache_write_block(struct datacache *dc, const struct datacache_fill *fill, const char *key,
			  const char *etag, uint64_t object_size, uint64_t block_index,
			  const void *data, size_t len) WARN_UNUSED;

/*
 * Drop every cached version of key (it changed or went away); fills begun
 * before are refused. 0 also when nothing was cached.
 */
int datacache_invalidate(struct datacache *dc, const char *key) WARN_UNUSED;

/* Bytes of present blocks (with in-flight writes) and the capacity. */
void datacache_usage(struct datacache *dc, uint64_t *out_used, uint64_t *out_capacity);
/* Counters since open, and usage. */
void datacache_get_stats(struct datacache *dc, struct datacache_stats *out);

#endif
