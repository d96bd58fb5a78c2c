/* SPDX-License-Identifier: MIT */
/*
 * upload: the write path's engine that turns a staged file into an S3 object
 * and keeps the durability promise (DESIGN.md, "Write path"):
 *
 *   - upload_file() returns 0 only after S3 acknowledged the object (PUT or
 *     CompleteMultipartUpload succeeded). Small files are one PUT; files at
 *     or over the multipart threshold go as parallel parts; a failed
 *     multipart upload is aborted, never left half-visible.
 *   - When the upload fails after the wire layer's retries, the staged data
 *     is kept, recorded as pending in the journal (meta_journal.h) with what
 *     is needed to upload it again (key, metadata), and -EIO is returned. A
 *     background thread retries pending uploads, and upload_engine_start()
 *     resumes those left by an earlier process (crash, failed unmount), and
 *     aborts multipart uploads of ours that a crash left behind.
 *   - upload_engine_drain() waits, bounded, for pending uploads at unmount.
 *
 * Lives in fs/ because it knows both the wire (s3.h) and the cache (meta/).
 * Thread-safe: many FUSE threads upload at once.
 */
#ifndef S3VFS_UPLOAD_H
#define S3VFS_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "s3vfs/compiler.h"
#include "s3vfs/s3.h"

struct meta_cache;
struct stats;
struct upload_engine;

struct upload_config {
	uint64_t multipart_threshold; /* default 16 MiB, the part size */
	uint64_t part_size;	      /* default 16 MiB (>= 5 MiB) */
	int parallel;		      /* parts in flight per file; default 4 */
	long retry_interval_ms;	      /* background retry period; default 5000 */
	const char *staging_dir;      /* where pending data is kept (0700) */
	/* Send Content-MD5 with each PUT and part, so that S3 refuses bytes
	 * damaged on the way: costs a read of the data and its MD5 (a fifth of
	 * the write throughput on a CPU-bound host); default false, as s3fs. */
	bool content_md5;
};

void upload_config_default(struct upload_config *c);

/*
 * Build the engine: the staging dir is created (0700) if missing, and the
 * journal's rows from an earlier process are taken over (their uploads wait
 * for upload_engine_start). Everything is borrowed and must outlive the
 * engine; stats may be NULL. 0; -EINVAL (bad config: part_size outside
 * 5 MiB..5 GiB, parallel outside 1..64, no staging dir), -ENOTDIR,
 * -EACCES, -ENOMEM, or the journal's errno.
 */
int upload_engine_new(const struct upload_config *cfg, struct s3_client *s3, struct meta_cache *mc,
		      struct stats *stats, struct upload_engine **out) WARN_UNUSED;
/* Stops the background thread; does not wait for pending uploads (drain first). */
void upload_engine_free(struct upload_engine *e);

/* Start the background retry thread. Its first round starts at once: it
 * aborts multipart uploads that an earlier process left in flight and
 * retries the resumed rows. 0 (also when already started) or -EAGAIN. */
int upload_engine_start(struct upload_engine *e) WARN_UNUSED;

/*
 * Upload bytes [0, size) of fd as key with opts' metadata and content type.
 * staging_path names fd's file: on failure the engine keeps a synced copy of
 * the bytes in the staging dir, records it as pending and uploads it later;
 * in every case the caller's file stays the caller's (it may write on or
 * delete it). out_etag (S3_ETAG_MAX) may be NULL.
 * 0; -EIO (pending: will be retried); -ENAMETOOLONG, -EACCES, -EINVAL...
 * (permanent errors: nothing pending). When keeping the data fails too, the
 * errno of that failure (-ENOSPC...; logged), with nothing kept: a rare -EIO
 * from the local disk then does not mean pending. -EINVAL also for a file
 * shorter than size, and for if_match/if_none_match on a multipart-sized
 * file (s3.c sends no conditions with multipart uploads). Conditions hold
 * for this call only: a pending retry is unconditional.
 *
 * Newer write wins: uploads of one key run one at a time, in call order,
 * and once upload_file() of a key has begun, no older pending upload of that
 * key is ever sent (it is dropped when this one succeeds or is kept).
 */
int upload_file(struct upload_engine *e, const char *key, int fd, const char *staging_path,
		uint64_t size, const struct s3_put_opts *opts, char *out_etag) WARN_UNUSED;

/* Is an upload of key pending (readers should see the staged data)? */
bool upload_is_pending(struct upload_engine *e, const char *key);
/* Open the staged data of key's pending upload, read-only: 0 and *out_fd
 * (the caller closes it), -ENOENT when none is pending. */
int upload_pending_open(struct upload_engine *e, const char *key, int *out_fd) WARN_UNUSED;

/*
 * A multipart upload made outside the engine (a stream while writing, a
 * part copy): recorded like the engine's own, so that after a crash the
 * next mount aborts it. untrack when it was completed or aborted (gone), or
 * when its abort failed (!gone: the record stays for the next sweep).
 */
struct upload_track;
/* NULL only when out of memory (then nothing is recorded). */
struct upload_track *upload_mpu_track(struct upload_engine *e, const char *key,
				      const char *upload_id);
void upload_mpu_untrack(struct upload_engine *e, struct upload_track *t,
			bool gone); /* NULL: no-op */

/*
 * Just after CreateMultipartUpload of key answered keep_id, started at
 * since: abort the other uploads of key started since then. A create whose
 * reply was lost and that was sent again (by our retry, or silently by
 * libcurl) leaves one; another writer of the same key in the same second
 * would lose its upload too, and retries it (its data stays pending).
 */
void upload_mpu_orphans(struct upload_engine *e, const char *key, const char *keep_id,
			time_t since);

/* Ask for a retry round now, then wait until no upload is pending or
 * timeout_ms passed: 0 or -ETIMEDOUT. Without the thread (not started),
 * one round runs in the caller. */
int upload_engine_drain(struct upload_engine *e, long timeout_ms) WARN_UNUSED;

/* Number of pending uploads. */
uint64_t upload_engine_pending(struct upload_engine *e);

#endif
