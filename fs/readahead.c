// SPDX-License-Identifier: MIT
/*
 * readahead: reads of a file nobody is writing, served from chunks of the
 * object fetched by ranged GETs. A reader that goes on sequentially gets a
 * window of chunks fetched in parallel ahead of it (one chunk at first,
 * doubling at each chunk it finishes, up to read_parallel), so a single
 * `cat` of a large object keeps several connections busy, as mountpoint-s3
 * does; a random reader fetches just the 1 MiB blocks it touches.
 *
 * Each chunk is fetched by a short-lived thread that holds a reference on
 * the file, so the file outlives its fetches. Chunks live in the file's
 * slots, protected by the file's lock; a fetch fills a buffer that nobody
 * else touches until it marks the chunk ready under that lock. Every GET
 * carries If-Match with the ETag the file was opened at: bytes of two
 * versions are never mixed (a change mid-read is -EIO to the reader).
 * Memory: at most RA_SLOTS chunks per open file being read.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3vfs/datacache.h"
#include "s3vfs/fs.h"
#include "s3vfs/log.h"

#define RA_BLOCK (1u << 20) /* what a random read fetches */

enum { RA_EMPTY = 0, RA_LOADING, RA_READY, RA_FAILED };

struct ra_job {
	struct s3vfs *fs;
	struct fs_file *f;
	struct ra_chunk *c;
	char etag[S3_ETAG_MAX];
	uint64_t size;
	struct datacache_fill fill;
};

/* Keep the whole blocks of a fetched chunk in the disk cache (no lock held:
 * the chunk's buffer is the fetch's own until it is marked ready). */
static void cache_chunk(struct ra_job *j, const struct ra_chunk *c, uint64_t size)
{
	struct datacache *dc = j->fs->dc;
	uint64_t bs = j->fs->dc_block;

	if (!dc || !j->etag[0])
		return;
	for (uint64_t b = (c->off + bs - 1) / bs; b * bs < c->off + c->len; b++) {
		uint64_t start = b * bs, end = start + bs < size ? start + bs : size;
		if (end > c->off + c->len)
			break; /* a partial block: the next fetch of it stores it whole */
		int rc = datacache_write_block(dc, &j->fill, j->f->key, j->etag, size, b,
					       c->data + (start - c->off), (size_t)(end - start));
		if (rc < 0 && rc != -EAGAIN && rc != -ENOSPC) {
			log_warn("data cache: %s", strerror(-rc));
			break;
		}
	}
}

static void *fetch_main(void *arg)
{
	struct ra_job *j = arg;
	struct ra_chunk *c = j->c;
	struct fs_mem_sink s = { .buf = c->data, .cap = c->len };
	struct s3_get_opts o = { .offset = c->off,
				 .len = c->len,
				 .if_match = j->etag[0] ? j->etag : NULL };
	struct aws_error err;

	int rc = s3_get(j->fs->s3, j->f->key, &o, fs_mem_sink_write, &s, NULL, &err);
	if (rc == 0 && s.len != c->len)
		rc = -EPROTO;
	if (rc == 0)
		cache_chunk(j, c, j->size);
	if (rc < 0) {
		char msg[512];
		log_error("GET %s [%llu, +%zu): %s", j->f->key, (unsigned long long)c->off, c->len,
			  err.status || err.transport ? aws_error_str(&err, msg, sizeof(msg))
						      : strerror(-rc));
	}
	pthread_mutex_lock(&j->f->lock);
	c->state = rc == 0 ? RA_READY : RA_FAILED;
	c->err = rc == -EAGAIN ? -EIO : rc; /* 412: the object changed */
	j->f->ra.inflight--;
	pthread_cond_broadcast(&j->f->ra.cond);
	pthread_mutex_unlock(&j->f->lock);
	fs_file_put(j->fs, j->f);
	free(j);
	return NULL;
}

/* A slot for a new chunk at off (f->lock held): empty, else a finished
 * chunk behind the reader, else the least recently used finished one. */
static struct ra_chunk *slot_for(struct fs_file *f, uint64_t off)
{
	struct ra_chunk *empty = NULL, *lru = NULL;

	/* Reuse a buffer behind the reader before growing into a new slot,
	 * so a sequential reader holds only its window in memory. */
	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_chunk *c = &f->ra.slot[i];
		if (c->state == RA_EMPTY) {
			if (!empty)
				empty = c;
			continue;
		}
		if (c->state == RA_LOADING)
			continue;
		if (c->off + c->len + (4u << 20) <= off)
			return c; /* well behind the reader (its requests come a bit out of order)
				   */
		if (!lru || c->used < lru->used)
			lru = c;
	}
	return empty ? empty : lru;
}

/* Start fetching [off, off+len) into a slot (f->lock held). */
static int start_fetch(struct s3vfs *fs, struct fs_file *f, uint64_t off, size_t len)
{
	struct ra_chunk *c = slot_for(f, f->ra.pos); /* behind the reader, not the fetch */
	pthread_t th;

	if (!c)
		return -EBUSY; /* every slot is loading: the caller waits */
	struct ra_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	if (c->cap < len) {
		char *d = realloc(c->data, len);
		if (!d) {
			free(j);
			return -ENOMEM;
		}
		c->data = d;
		c->cap = len;
	}
	c->off = off;
	c->len = len;
	c->state = RA_LOADING;
	c->used = ++f->ra.clock;
	*j = (struct ra_job){ .fs = fs, .f = f, .c = c, .size = f->size };
	snprintf(j->etag, sizeof(j->etag), "%s", f->etag);
	if (fs->dc)
		datacache_fill_begin(fs->dc, &j->fill);
	fs_file_ref(fs, f);
	f->ra.inflight++;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&th, &at, fetch_main, j);
	pthread_attr_destroy(&at);
	if (e != 0) {
		f->ra.inflight--;
		c->state = RA_EMPTY;
		free(j);
		fs_file_put(fs, f); /* cannot drop the last reference: the caller holds one */
		return -e;
	}
	return 0;
}

/* The chunk holding off, if any is loading or ready (failed ones are retried). */
static struct ra_chunk *chunk_at(struct fs_file *f, uint64_t off)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_chunk *c = &f->ra.slot[i];
		if ((c->state == RA_LOADING || c->state == RA_READY) && off >= c->off &&
		    off < c->off + c->len)
			return c;
	}
	return NULL;
}

/* Where the first chunk after o starts, if before end; else end. */
static uint64_t next_chunk(struct fs_file *f, uint64_t o, uint64_t end)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_chunk *c = &f->ra.slot[i];
		if ((c->state == RA_LOADING || c->state == RA_READY) && c->off > o && c->off < end)
			end = c->off;
	}
	return end;
}

/*
 * Where a fetch for the reader at o should start: o's 1 MiB block, so that
 * chunks stay block-aligned for the disk cache, but not over a chunk that
 * already holds the bytes before o.
 */
static uint64_t fetch_start(struct fs_file *f, uint64_t o)
{
	uint64_t start = o / RA_BLOCK * RA_BLOCK;

	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_chunk *c = &f->ra.slot[i];
		uint64_t end = c->off + c->len;
		if ((c->state == RA_LOADING || c->state == RA_READY) && c->off < o && end > start &&
		    end <= o)
			start = end;
	}
	return start;
}

/* Keep the sequential window full ahead of off (f->lock held). */
static void fill_window(struct s3vfs *fs, struct fs_file *f, uint64_t off)
{
	uint64_t part = fs->read_part_size;
	uint64_t first = off / part * part;

	/* The reader's own part from where it is, then whole aligned parts. */
	for (unsigned k = 0; k <= f->ra.window; k++) {
		uint64_t o = k == 0 ? fetch_start(f, off) : first + k * part;
		if (o >= f->size)
			break;
		if (chunk_at(f, k == 0 ? off : o))
			continue;
		uint64_t end = first + (k + 1) * part;
		if (end > f->size)
			end = f->size;
		end = next_chunk(f, o, end); /* never fetch a byte twice */
		if (start_fetch(fs, f, o, (size_t)(end - o)) < 0)
			break;
	}
}

int fs_ra_read(struct s3vfs *fs, struct fs_file *f, char *buf, size_t size, uint64_t off)
{
	size_t done = 0;

	if (off >= f->size)
		return 0;
	if (size > f->size - off)
		size = (size_t)(f->size - off);
	/* The disk cache, unless a chunk in memory already covers off: a valid
	 * cached block makes no request. */
	if (fs->dc && f->etag[0] && !chunk_at(f, off)) {
		size_t got = 0;
		if (datacache_read(fs->dc, f->key, f->etag, f->size, off, buf, size, &got) == 0) {
			atomic_fetch_add(&fs->stats.cache_hits, 1);
			f->ra.next_off = off + got;
			return (int)got;
		}
		atomic_fetch_add(&fs->stats.cache_misses, 1);
	}
	/* The kernel reads ahead asynchronously: requests of one sequential
	 * reader arrive a little out of order. Near the expected place counts. */
	uint64_t slack = 4u << 20;
	bool seq = off + slack >= f->ra.next_off && off <= f->ra.next_off + slack;
	if (!seq) {
		f->ra.run = 0;
		f->ra.window = 0;
	} else if (f->ra.run < 64) {
		f->ra.run++;
	}
	while (done < size) {
		uint64_t o = off + done;
		f->ra.pos = o;
		if (f->ra.run >= 2)
			fill_window(fs, f, o);
		struct ra_chunk *c = chunk_at(f, o);
		if (!c) {
			uint64_t b = fetch_start(f, o);
			uint64_t end = b + RA_BLOCK < f->size ? b + RA_BLOCK : f->size;
			end = next_chunk(f, b, end);
			int rc = start_fetch(fs, f, b, (size_t)(end - b));
			if (rc == -EBUSY) {
				pthread_cond_wait(&f->ra.cond, &f->lock);
				continue;
			}
			if (rc < 0)
				return done ? (int)done : rc;
			continue;
		}
		while (c->state == RA_LOADING)
			pthread_cond_wait(&f->ra.cond, &f->lock);
		if (c->state != RA_READY || o < c->off || o >= c->off + c->len) {
			int err = c->state == RA_FAILED ? c->err : 0;
			if (c->state == RA_FAILED)
				c->state = RA_EMPTY;
			if (err)
				return done ? (int)done : err;
			continue; /* the slot was reused meanwhile: look again */
		}
		size_t n = (size_t)(c->off + c->len - o);
		if (n > size - done)
			n = size - done;
		memcpy(buf + done, c->data + (o - c->off), n);
		c->used = ++f->ra.clock;
		done += n;
		if (o + n == c->off + c->len && f->ra.window + 1 < fs->read_parallel)
			f->ra.window = f->ra.window ? f->ra.window * 2 : 1; /* finished a chunk */
		if (f->ra.window >= fs->read_parallel)
			f->ra.window = fs->read_parallel - 1;
	}
	if (off + done > f->ra.next_off || !seq)
		f->ra.next_off = off + done;
	return (int)done;
}

void fs_ra_init(struct fs_file *f)
{
	memset(&f->ra, 0, sizeof(f->ra));
	pthread_cond_init(&f->ra.cond, NULL);
}

void fs_ra_cleanup(struct fs_file *f)
{
	/* No fetch can be running: each holds a reference on f. */
	for (int i = 0; i < RA_SLOTS; i++)
		free(f->ra.slot[i].data);
	pthread_cond_destroy(&f->ra.cond);
}
