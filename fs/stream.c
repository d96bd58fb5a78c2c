// SPDX-License-Identifier: MIT
/*
 * stream: a file written sequentially from offset 0 is uploaded while it is
 * being written. Once the written prefix passes the multipart threshold a
 * multipart upload starts, and each part_size part the writer completes is
 * sent from the staging file by a background thread (at most parallel_count
 * in flight; the writer waits for a slot, so memory stays bounded by the
 * staging file, not by RAM). close() then sends only the tail and completes.
 *
 * Anything that is not a plain sequential write (a write elsewhere, a
 * truncate, an attribute change after the upload began) breaks the stream:
 * the upload is aborted and the flush uploads the staged file as a whole
 * through the upload engine, which keeps the durability promise as before.
 * A failure of the stream falls back the same way; the multipart upload is
 * aborted, never left behind. All state is protected by the file's lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3vfs/fs.h"
#include "s3vfs/log.h"
#include "s3vfs/upload.h"

struct part_job {
	struct s3vfs *fs;
	struct fs_file *f;
	int part; /* 0-based */
	uint64_t off;
	uint64_t len;
	char upload_id[512];
};

static void *part_main(void *arg)
{
	struct part_job *j = arg;
	struct fs_stream *st = &j->f->stream;
	char etag[S3_ETAG_MAX] = "";
	struct aws_error err;

	struct http_body body = { .fd = j->f->fd, .offset = j->off, .len = j->len };
	int rc = s3_mpu_part(j->fs->s3, j->f->key, j->upload_id, j->part + 1, &body, true, etag,
			     &err);
	pthread_mutex_lock(&j->f->lock);
	if (rc == 0 && j->part < st->cap)
		snprintf(st->etags[j->part], S3_ETAG_MAX, "%s", etag);
	else if (st->err == 0)
		st->err = rc < 0 ? rc : -ENOMEM;
	st->inflight--;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&j->f->lock);
	fs_file_put(j->fs, j->f);
	free(j);
	return NULL;
}

static int grow_etags(struct fs_stream *st, int n)
{
	if (n <= st->cap)
		return 0;
	int cap = st->cap ? st->cap * 2 : 64;
	while (cap < n)
		cap *= 2;
	if (cap > S3_PARTS_MAX)
		return -EFBIG;
	char(*e)[S3_ETAG_MAX] = realloc(st->etags, (size_t)cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	memset(e + st->cap, 0, (size_t)(cap - st->cap) * sizeof(*e));
	st->etags = e;
	st->cap = cap;
	return 0;
}

/* Send part i in the background (f->lock held; waits for a free slot). */
static int send_part(struct s3vfs *fs, struct fs_file *f, int i, uint64_t len)
{
	struct fs_stream *st = &f->stream;
	pthread_t th;

	while (st->inflight >= fs->up_parallel && st->err == 0)
		pthread_cond_wait(&st->cond, &f->lock);
	if (st->err)
		return st->err;
	int rc = grow_etags(st, i + 1);
	if (rc < 0)
		return rc;
	struct part_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct part_job){
		.fs = fs, .f = f, .part = i, .off = (uint64_t)i * fs->up_part_size, .len = len
	};
	snprintf(j->upload_id, sizeof(j->upload_id), "%s", st->upload_id);
	fs_file_ref(fs, f);
	st->inflight++;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&th, &at, part_main, j);
	pthread_attr_destroy(&at);
	if (e != 0) {
		st->inflight--;
		free(j);
		fs_file_put(fs, f);
		return -e;
	}
	st->sent = i + 1;
	return 0;
}

/* Start the multipart upload with the file's metadata as it is now. */
static int begin(struct s3vfs *fs, struct fs_file *f)
{
	struct s3attr_kvlist pairs = { 0 };
	struct aws_error err;
	char *id = NULL;
	struct s3_put_opts po;
	int rc = fs_file_put_opts(f, &pairs, &po);
	if (rc < 0)
		return rc;
	time_t t0 = time(NULL);
	rc = s3_mpu_create(fs->s3, f->key, &po, &id, &err);
	s3attr_kvlist_cleanup(&pairs);
	if (rc < 0)
		return rc;
	upload_mpu_orphans(fs->up, f->key, id, t0);
	f->stream.upload_id = id;
	f->stream.track = upload_mpu_track(fs->up, f->key, id); /* for a crash */
	f->stream.attr = f->attr;
	return 0;
}

void fs_stream_wrote(struct s3vfs *fs, struct fs_file *f, uint64_t off, size_t n)
{
	struct fs_stream *st = &f->stream;

	if (st->broken || !fs->stream_writes)
		return;
	if (off != st->end) {
		st->broken = true; /* not sequential: the flush uploads the whole file */
		return;
	}
	st->end += n;
	while (st->err == 0 && st->end >= fs->up_threshold &&
	       st->end >= (uint64_t)(st->sent + 1) * fs->up_part_size) {
		if (!st->upload_id && begin(fs, f) < 0) {
			st->broken = true;
			return;
		}
		if (send_part(fs, f, st->sent, fs->up_part_size) < 0) {
			st->broken = true;
			return;
		}
	}
}

void fs_stream_break(struct fs_file *f)
{
	f->stream.broken = true;
}

static void wait_parts(struct fs_file *f)
{
	while (f->stream.inflight > 0)
		pthread_cond_wait(&f->stream.cond, &f->lock);
}

/* Abort and forget the stream (f->lock held); the next writes start over. */
static void reset(struct s3vfs *fs, struct fs_file *f)
{
	struct fs_stream *st = &f->stream;
	struct aws_error err;

	wait_parts(f);
	bool gone = !st->upload_id || s3_mpu_abort(fs->s3, f->key, st->upload_id, &err) == 0;
	if (!gone)
		log_warn("abort of the multipart upload of %s failed; the next retry round or "
			 "mount aborts it",
			 f->key);
	upload_mpu_untrack(fs->up, st->track, gone);
	st->track = NULL;
	free(st->upload_id);
	st->upload_id = NULL;
	st->sent = 0;
	st->end = 0;
	st->err = 0;
	st->broken = false;
}

static bool same_attr(const struct s3attr *a, const struct s3attr *b)
{
	return a->mode == b->mode && a->uid == b->uid && a->gid == b->gid;
}

int fs_stream_finish(struct s3vfs *fs, struct fs_file *f, uint64_t size, char *out_etag)
{
	struct fs_stream *st = &f->stream;
	struct aws_error err;
	int rc = 0;

	if (!st->upload_id)
		return -ENOENT; /* nothing streamed: the caller uploads as usual */
	/* The mtime moves with every write: the object carries the one of the
	 * upload's start (an explicit utimens breaks the stream instead). */
	if (st->broken || st->end != size || !same_attr(&st->attr, &f->attr)) {
		reset(fs, f);
		return -ENOENT;
	}
	uint64_t ps = fs->up_part_size;
	int nparts = (int)((size + ps - 1) / ps);
	for (int i = st->sent; rc == 0 && i < nparts; i++)
		rc = send_part(fs, f, i,
			       size - (uint64_t)i * ps < ps ? size - (uint64_t)i * ps : ps);
	wait_parts(f);
	if (rc == 0 && st->err)
		rc = st->err;
	if (rc == 0) {
		const char **etags = calloc((size_t)nparts, sizeof(*etags));
		for (int i = 0; etags && i < nparts; i++)
			etags[i] = st->etags[i];
		rc = etags ? s3_mpu_complete(fs->s3, f->key, st->upload_id, etags, nparts, out_etag,
					     &err)
			   : -ENOMEM;
		free(etags);
	}
	if (rc < 0) {
		log_warn("streamed upload of %s failed (%s); uploading it whole", f->key,
			 strerror(-rc));
		reset(fs, f);
		return -ENOENT;
	}
	upload_mpu_untrack(fs->up, st->track, true);
	st->track = NULL;
	free(st->upload_id);
	st->upload_id = NULL;
	st->sent = 0;
	st->end = size; /* further appends would start a new stream: break it */
	st->broken = true;
	return 0;
}

void fs_stream_init(struct fs_file *f)
{
	memset(&f->stream, 0, sizeof(f->stream));
	pthread_cond_init(&f->stream.cond, NULL);
}

void fs_stream_cleanup(struct s3vfs *fs, struct fs_file *f)
{
	/* Parts hold references: none is running when the file is freed. */
	if (f->stream.upload_id) {
		struct aws_error err;
		bool gone = s3_mpu_abort(fs->s3, f->key, f->stream.upload_id, &err) == 0;
		if (!gone)
			log_warn("abort of the multipart upload of %s failed", f->key);
		upload_mpu_untrack(fs->up, f->stream.track, gone);
		f->stream.track = NULL;
	}
	free(f->stream.upload_id);
	free(f->stream.etags);
	free(f->pc.dirty);
	pthread_cond_destroy(&f->stream.cond);
}

/*
 * Part copy: a large object that was staged to be changed in place keeps
 * its unchanged parts server-side. At flush, every part_size part the
 * writes did not touch, lying wholly inside the object as it was staged, is
 * an UploadPartCopy from that version (If-Match on its ETag); the touched
 * parts are uploaded from the staging file. Any failure aborts and the
 * caller uploads the staged file whole, which is complete: nothing is lost.
 */
void fs_pc_begin(struct s3vfs *fs, struct fs_file *f, const char *etag, uint64_t size)
{
	struct fs_partcopy *pc = &f->pc;

	free(pc->dirty);
	memset(pc, 0, sizeof(*pc));
	if (!etag[0] || size < fs->up_threshold || size < 2 * fs->up_part_size)
		return;
	snprintf(pc->base_etag, sizeof(pc->base_etag), "%s", etag);
	pc->base_size = size;
	pc->on = true;
}

void fs_pc_touch(struct s3vfs *fs, struct fs_file *f, uint64_t off, uint64_t n)
{
	struct fs_partcopy *pc = &f->pc;

	if (!pc->on || n == 0)
		return;
	uint64_t last = (off + n - 1) / fs->up_part_size;
	if (last >= pc->cap) {
		size_t cap = (size_t)last + 64;
		unsigned char *d = realloc(pc->dirty, cap);
		if (!d) {
			pc->on = false;
			return;
		}
		memset(d + pc->cap, 0, cap - pc->cap);
		pc->dirty = d;
		pc->cap = cap;
	}
	for (uint64_t i = off / fs->up_part_size; i <= last; i++)
		pc->dirty[i] = 1;
}

void fs_pc_off(struct fs_file *f)
{
	f->pc.on = false;
}

static bool pc_clean(const struct fs_partcopy *pc, uint64_t i, uint64_t start, uint64_t end)
{
	return (i >= pc->cap || !pc->dirty[i]) && end <= pc->base_size && end > start;
}

/* Send every part; out_copied counts the parts copied server-side. */
static int pc_parts(struct s3vfs *fs, struct fs_file *f, const char *id, uint64_t size,
		    char (*etags)[S3_ETAG_MAX], int n, int *out_copied)
{
	struct fs_partcopy *pc = &f->pc;
	uint64_t ps = fs->up_part_size;
	struct aws_error err;
	int rc = 0;

	for (int i = 0; rc == 0 && i < n; i++) {
		uint64_t start = (uint64_t)i * ps, end = start + ps < size ? start + ps : size;
		if (pc_clean(pc, (uint64_t)i, start, end)) {
			rc = s3_mpu_part_copy(fs->s3, f->key, id, i + 1, f->key, start, end - start,
					      pc->base_etag, etags[i], &err);
			(*out_copied)++;
		} else {
			struct http_body b = { .fd = f->fd, .offset = start, .len = end - start };
			rc = s3_mpu_part(fs->s3, f->key, id, i + 1, &b, true, etags[i], &err);
		}
	}
	return rc;
}

int fs_pc_finish(struct s3vfs *fs, struct fs_file *f, uint64_t size, const struct s3_put_opts *po,
		 char *out_etag)
{
	struct fs_partcopy *pc = &f->pc;
	struct aws_error err;
	char *id = NULL;
	int copied = 0, rc;

	if (!pc->on || size < fs->up_threshold)
		return -ENOENT;
	int n = (int)((size + fs->up_part_size - 1) / fs->up_part_size);
	char(*etags)[S3_ETAG_MAX] = calloc((size_t)n, sizeof(*etags));
	const char **ptrs = calloc((size_t)n, sizeof(*ptrs));
	rc = etags && ptrs && n <= S3_PARTS_MAX ? 0 : -ENOMEM;
	struct upload_track *track = NULL;
	time_t t0 = time(NULL);
	if (rc == 0)
		rc = s3_mpu_create(fs->s3, f->key, po, &id, &err);
	if (rc == 0)
		upload_mpu_orphans(fs->up, f->key, id, t0);
	if (rc == 0)
		track = upload_mpu_track(fs->up, f->key, id); /* for a crash */
	if (rc == 0)
		rc = pc_parts(fs, f, id, size, etags, n, &copied);
	for (int i = 0; rc == 0 && i < n; i++)
		ptrs[i] = etags[i];
	if (rc == 0)
		rc = s3_mpu_complete(fs->s3, f->key, id, ptrs, n, out_etag, &err);
	bool gone = rc == 0 || !id || s3_mpu_abort(fs->s3, f->key, id, &err) == 0;
	if (!gone)
		log_warn("abort of the multipart upload of %s failed", f->key);
	upload_mpu_untrack(fs->up, track, gone);
	if (rc < 0)
		log_warn("part-copy upload of %s failed (%s); uploading it whole", f->key,
			 strerror(-rc));
	else
		log_debug("%s: %d of %d parts copied server-side", f->key, copied, n);
	free(id);
	free(etags);
	free(ptrs);
	return rc < 0 ? -ENOENT : 0;
}
