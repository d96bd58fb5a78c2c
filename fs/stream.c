// SPDX-License-Identifier: MIT
/*
 * stream: a file written sequentially from offset 0 is uploaded while it is
 * being written. Once the written prefix passes the multipart threshold a
 * multipart upload starts, and each part_size part the writer completes is
 * sent from the staging file by a background sender (at most parallel_count
 * of them; a sender that is done takes the next part that is ready). The
 * writer never waits for them: the bytes are in the staging file, so memory
 * is bounded by the senders' buffers, not by the file or by how far the
 * writer is ahead. close() then sends only the tail and completes.
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
	char upload_id[512];
};

/*
 * A sender: sends part j->part, then the next ready part nobody has taken,
 * until none is left (or the stream failed). The first one also aborts any
 * upload of the key whose create reply was lost (upload_mpu_orphans), off
 * the writer's path.
 */
static void *part_main(void *arg)
{
	struct part_job *j = arg;
	struct fs_file *f = j->f;
	struct fs_stream *st = &f->stream;
	uint64_t ps = j->fs->up_part_size;
	char etag[S3_ETAG_MAX];
	struct aws_error err;

	pthread_mutex_lock(&f->lock);
	time_t t0 = st->t0;
	for (;;) {
		uint64_t off = (uint64_t)j->part * ps;
		uint64_t len = st->ready_end - off < ps ? st->ready_end - off : ps;
		pthread_mutex_unlock(&f->lock);

		if (j->part == 0)
			upload_mpu_orphans(j->fs->up, f->key, j->upload_id, t0);
		struct http_body body = { .fd = f->fd, .offset = off, .len = len };
		etag[0] = '\0';
		int rc = s3_mpu_part(j->fs->s3, f->key, j->upload_id, j->part + 1, &body,
				     j->fs->content_md5, etag, &err);
		pthread_mutex_lock(&f->lock);
		if (rc == 0 && j->part < st->cap)
			snprintf(st->etags[j->part], S3_ETAG_MAX, "%s", etag);
		else if (st->err == 0)
			st->err = rc < 0 ? rc : -ENOMEM;
		if (st->err || st->sent >= st->ready)
			break;
		j->part = st->sent++;
	}
	st->inflight--;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&f->lock);
	fs_file_put(j->fs, f);
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

/*
 * Parts [0, n) are written, the last one ending at end (f->lock held): mark
 * them ready and start senders for them, up to parallel_count threads. The
 * writer never waits here: the bytes are in the staging file, and a sender
 * that finishes its part takes the next ready one.
 */
static int ready_parts(struct s3vfs *fs, struct fs_file *f, int n, uint64_t end)
{
	struct fs_stream *st = &f->stream;

	if (st->err)
		return st->err;
	int rc = grow_etags(st, n);
	if (rc < 0)
		return rc;
	st->ready = n;
	st->ready_end = end;
	while (st->sent < st->ready && st->inflight < fs->up_parallel) {
		struct part_job *j = calloc(1, sizeof(*j));
		if (!j)
			return st->inflight ? 0 : -ENOMEM; /* the running ones go on */
		*j = (struct part_job){ .fs = fs, .f = f, .part = st->sent };
		snprintf(j->upload_id, sizeof(j->upload_id), "%s", st->upload_id);
		pthread_attr_t at;
		pthread_t th;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		fs_file_ref(fs, f);
		int e = pthread_create(&th, &at, part_main, j);
		pthread_attr_destroy(&at);
		if (e != 0) {
			free(j);
			fs_file_put(fs, f);
			return st->inflight ? 0 : -e;
		}
		st->sent++;
		st->inflight++;
	}
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
	f->stream.t0 = t0; /* part 0's sender looks for orphans of a lost reply */
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
	/* A part is ready once the writer is past it: a file of one part is
	 * never a multipart upload, and the last part is sent at close. */
	uint64_t ps = fs->up_part_size;
	if (st->err || st->end < fs->up_threshold || st->end <= (uint64_t)(st->ready + 1) * ps)
		return;
	if (!st->upload_id && begin(fs, f) < 0) {
		st->broken = true;
		return;
	}
	int n_ready = (int)((st->end - 1) / ps);
	if (ready_parts(fs, f, n_ready, (uint64_t)n_ready * ps) < 0)
		st->broken = true;
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

	if (st->err == 0)
		st->err = -ECANCELED; /* the senders take no further part */
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
	st->ready = st->sent = 0;
	st->ready_end = st->end = 0;
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
	rc = ready_parts(fs, f, nparts, size);
	wait_parts(f);
	if (rc == 0 && st->err == 0 && st->sent < nparts)
		rc = -EAGAIN; /* no sender could be started for the tail */
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
	st->ready = st->sent = 0;
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
			rc = s3_mpu_part(fs->s3, f->key, id, i + 1, &b, fs->content_md5, etags[i],
					 &err);
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
