// SPDX-License-Identifier: MIT
/*
 * fs/upload: the engine that turns staged files into S3 objects and keeps the
 * durability promise (see upload.h). It owns the choice between one PUT and a
 * parallel multipart upload, the files of the staging directory (pending
 * data, metadata sidecars, records of multipart uploads in flight), the order
 * of the uploads of one key, and the background retry thread. The journal
 * (meta_journal.h) is its commit record of what is pending and s3.h its wire.
 * It must not know FUSE, open files, or how the caller staged its data.
 *
 * Files in the staging directory (tag = "<pid>-<start ms>" of the engine
 * that named them, seq a counter of that engine):
 *   upl-<tag>-<seq>.data            pending data: a copy of the caller's bytes
 *   upl-<tag>-<seq>.data.meta.json  its sidecar: content type, user metadata
 *   upl-mpu-<tag>-<seq>.json        a multipart upload in flight: key, id
 *   *.tmp                           a sidecar or record being written
 * The directory belongs to one cache (one mount at a time, as the cache's
 * lock ensures): files named so are the engine's to delete.
 *
 * Invariants:
 * 1. A journal row is the commit point of a pending upload: its data, its
 *    sidecar and their directory are synced before the row is added, and
 *    -EIO is returned only once the row is in the journal.
 * 2. One upload of a key at a time: each key has a FIFO of turns (struct
 *    upload_key). upload_file() waits for its turn; the retry thread takes
 *    a turn only when nobody holds or waits for one. Only the holder of a
 *    key's turn adds or removes that key's rows.
 * 3. Newer write wins. A key has at most one live row (k->row_id), the
 *    newest data that S3 has not acknowledged. upload_file() of a key with
 *    a live row first records its own data as the key's row (state
 *    UPLOADING), which drops the older row, then uploads: so an older
 *    pending upload is never sent after a newer write started, even across
 *    a crash or power cut. Without a live row, a plain upload_file() writes
 *    no row unless it fails. A row that is not its key's live row is stale:
 *    it is removed, never uploaded (retry_row).
 * 4. A row is dropped data first (row_drop): its staged data is unlinked
 *    before the row is removed, so a row that outlives a failed removal can
 *    never upload anything. A row whose staged data is gone is removed with
 *    an error in the log.
 * 5. A multipart upload is recorded (upl-mpu-*) from its create until its
 *    complete or abort succeeded. A record not of an upload in flight here
 *    (e->live) is a leftover of a crash or a failed abort: mpu_sweep, at
 *    each retry round, aborts its upload and removes it. Uploads made
 *    outside the engine (streams, part copies) are recorded the same way
 *    (upload_mpu_track). A create whose reply was lost and that was sent
 *    again leaves an upload of the same key started in the same seconds:
 *    upload_mpu_orphans aborts it right after the create. Only a crash
 *    between a create and its record is left to the bucket's lifecycle
 *    rule (AbortIncompleteMultipartUpload).
 * 6. e->npending counts keys with a live row; stats->pending_uploads moves
 *    with it.
 *
 * A pending upload, and the function behind each step:
 *
 *   upload_file --transient failure--> pend_record: row FAILED
 *       |  ok: key_clear_row                 |  ^
 *       v                           retry_row|  | failure: FAILED, last_error
 *     done                                   v  |
 *                                         UPLOADING --ok: key_clear_row--> done
 *
 * upload_file() of a key with a live row records its data first (UPLOADING,
 * invariant 3) and then ends as above, or by key_clear_row on a permanent
 * error (the caller keeps its data).
 *
 * Threads. upload_file() runs in its caller's thread, which sends parts
 * with up to cfg.parallel - 1 threads started for that upload: a per-upload
 * set needs no queue and no shutdown protocol, and a thread costs little
 * next to a multipart upload. The retry thread retries rows one at a time
 * (their parts in parallel likewise); upload_engine_free() joins it after
 * at most the request in flight.
 *
 * Lock order: a key's turn (a thread holds at most one) -> e->lock -> the
 * metadata cache's lock (a leaf). e->lock is never held across a request, a
 * journal call or file I/O; a multipart job's lock is a leaf of its own.
 */
#include "s3vfs/upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "s3vfs/log.h"
#include "s3vfs/meta_cache.h"
#include "s3vfs/meta_journal.h"
#include "s3vfs/stats.h"

#define UPL_PREFIX	 "upl-"
#define UPL_MPU_PREFIX	 "upl-mpu-"
#define UPL_DATA_SUFFIX	 ".data"
#define UPL_SIDE_SUFFIX	 ".meta.json"
#define UPL_REC_SUFFIX	 ".json"
#define UPL_TMP_SUFFIX	 ".tmp"
#define UPL_KEY_BUCKETS	 256
#define UPL_PARALLEL_MAX 64
#define UPL_OBJECT_MAX	 (5ull << 40)  /* S3's largest object */
#define UPL_PART_MAX	 (5ull << 30)  /* and part */
#define UPL_JSON_MAX	 (1024 * 1024) /* a sidecar or record, at most */
#define UPL_META_MAX	 1000	       /* user metadata entries in a sidecar */
#define UPL_COPY_CHUNK	 (1024 * 1024) /* read/write fallback of a copy */
#define UPL_ERR_MAX	 META_ERROR_MAX
#define MIB		 (1024ull * 1024)

/* One key with a writer, a waiter or a live pending row. */
struct upload_key {
	struct upload_key *next; /* hash chain; protected by e->lock */
	uint64_t next_ticket;	 /* turns handed out; protected by e->lock */
	uint64_t serving;	 /* the turn that may run; protected by e->lock */
	/* The key's live row (0: none) and its staged data. Protected by
	 * e->lock; changed only by the holder of the key's turn. */
	int64_t row_id;
	char *staging;
	char key[];
};

/* A multipart upload in flight, by the seq of its record (invariant 5). */
struct upload_live {
	struct upload_live *next; /* protected by e->lock */
	uint64_t seq;
};

struct upload_engine {
	struct upload_config cfg; /* immutable; cfg.staging_dir is dir */
	char *dir;		  /* immutable: real path of the staging directory */
	char tag[48];		  /* immutable: "<pid>-<start ms>" */
	struct s3_client *s3;
	struct meta_cache *mc;
	struct stats *stats;  /* may be NULL */
	_Atomic uint64_t seq; /* names of new files */

	pthread_mutex_t lock;
	pthread_cond_t turn_cv;			  /* a key's turn moved on */
	pthread_cond_t wake_cv;			  /* stop or kick, for the retry thread */
	pthread_cond_t idle_cv;			  /* npending fell, or a round ended */
	struct upload_key *keys[UPL_KEY_BUCKETS]; /* protected by lock */
	struct upload_live *live;		  /* protected by lock */
	uint64_t npending;			  /* protected by lock (invariant 6) */
	bool stop;				  /* protected by lock */
	bool kick;				  /* protected by lock: run a round now */
	bool started;				  /* protected by lock */
	pthread_t thread;			  /* the retry thread, when started */
};

/* Content type and user metadata of a pending upload, read from its sidecar. */
struct upload_side {
	char *content_type;
	struct s3_meta *meta;
	size_t nmeta;
};

void upload_config_default(struct upload_config *c)
{
	memset(c, 0, sizeof(*c));
	c->multipart_threshold = 16 * MIB;
	c->part_size = 16 * MIB;
	c->parallel = 4;
	c->retry_interval_ms = 5000;
}

/* ---- small helpers ------------------------------------------------------ */

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Absolute CLOCK_MONOTONIC time ms from now, for the condition variables. */
static struct timespec deadline_after(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* The error of a failed upload as one line for the log and the journal. */
static const char *err_text(int rc, const struct aws_error *err, char *out, size_t size)
{
	char tmp[128];

	if (err->status || err->transport)
		return aws_error_str(err, out, (unsigned)size);
	snprintf(out, size, "%s", strerror_r(-rc, tmp, sizeof(tmp)));
	return out;
}

/*
 * Is a failed upload worth keeping for a later attempt? The wire layer has
 * already retried; what is left is either the network or the service being
 * down (keep the data) or an answer that will not change (the caller gets
 * the error, nothing is kept).
 */
static bool upload_transient(int rc, const struct aws_error *err)
{
	switch (-rc) {
	case EIO:
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case EPROTO:
	case EPIPE:
	case EBUSY: /* 409: a conflicting operation was in progress */
		return true;
	case EAGAIN:
		/* SlowDown after every retry is the service; a failed condition
		 * is an answer. */
		return err->status != 412 && strcmp(err->code, "PreconditionFailed") != 0 &&
		       strcmp(err->code, "ConditionalRequestConflict") != 0;
	case ENOENT:
		/* Someone aborted our multipart upload: a new one will do. A
		 * missing bucket is permanent. */
		return strcmp(err->code, "NoSuchUpload") == 0;
	default:
		return false;
	}
}

/* Start a thread with every signal blocked: signals belong to the main loop. */
static int thread_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = -pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static bool stopping(struct upload_engine *e)
{
	pthread_mutex_lock(&e->lock);
	bool stop = e->stop;
	pthread_mutex_unlock(&e->lock);
	return stop;
}

/* ---- keys and their turns (invariant 2) ---------------------------------- */

static size_t key_bucket(const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	return (size_t)(h % UPL_KEY_BUCKETS);
}

static struct upload_key *key_find_locked(struct upload_engine *e, const char *key)
{
	struct upload_key *k = e->keys[key_bucket(key)];

	while (k && strcmp(k->key, key) != 0)
		k = k->next;
	return k;
}

static struct upload_key *key_get_locked(struct upload_engine *e, const char *key)
{
	struct upload_key *k = key_find_locked(e, key);
	size_t len = strlen(key), b = key_bucket(key);

	if (k || !(k = calloc(1, sizeof(*k) + len + 1)))
		return k;
	memcpy(k->key, key, len + 1);
	k->next = e->keys[b];
	e->keys[b] = k;
	return k;
}

/* Free k once nobody holds or waits for a turn and it has no live row. */
static void key_put_locked(struct upload_engine *e, struct upload_key *k)
{
	if (k->serving != k->next_ticket || k->row_id != 0)
		return;
	struct upload_key **pp = &e->keys[key_bucket(k->key)];
	while (*pp != k)
		pp = &(*pp)->next;
	*pp = k->next;
	free(k->staging);
	free(k);
}

/*
 * Take key's turn: wait for it (wait), or take it only if it is free now.
 * 0 and *out; -EBUSY (!wait, someone holds or waits); -ENOMEM.
 */
static int key_acquire(struct upload_engine *e, const char *key, bool wait, struct upload_key **out)
{
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	struct upload_key *k = key_get_locked(e, key);
	if (!k) {
		rc = -ENOMEM;
		goto out;
	}
	if (!wait && k->serving != k->next_ticket) {
		rc = -EBUSY;
		goto out;
	}
	uint64_t ticket = k->next_ticket++;
	while (k->serving != ticket)
		pthread_cond_wait(&e->turn_cv, &e->lock);
	*out = k;
out:
	pthread_mutex_unlock(&e->lock);
	return rc;
}

static void key_release(struct upload_engine *e, struct upload_key *k)
{
	pthread_mutex_lock(&e->lock);
	k->serving++;
	key_put_locked(e, k);
	pthread_cond_broadcast(&e->turn_cv);
	pthread_mutex_unlock(&e->lock);
}

/*
 * Make (id, staging) k's live row (id 0: none; staging is taken over) and
 * hand out the previous one. The caller holds k's turn.
 */
static void key_swap_row(struct upload_engine *e, struct upload_key *k, int64_t id, char *staging,
			 int64_t *out_old_id, char **out_old_staging)
{
	pthread_mutex_lock(&e->lock);
	bool had = k->row_id != 0;
	*out_old_id = k->row_id;
	*out_old_staging = k->staging;
	k->row_id = id;
	k->staging = staging;
	if (had && id == 0) {
		e->npending--;
		if (e->stats)
			atomic_fetch_sub(&e->stats->pending_uploads, 1);
		pthread_cond_broadcast(&e->idle_cv);
	} else if (!had && id != 0) {
		e->npending++;
		if (e->stats)
			atomic_fetch_add(&e->stats->pending_uploads, 1);
	}
	pthread_mutex_unlock(&e->lock);
}

static int64_t key_row(struct upload_engine *e, struct upload_key *k)
{
	pthread_mutex_lock(&e->lock);
	int64_t id = k->row_id;
	pthread_mutex_unlock(&e->lock);
	return id;
}

/* ---- files of the staging directory ------------------------------------ */

/* A new name "<dir>/<prefix><tag>-<seq><suffix>" in out[size]; *out_seq its seq. */
static int stage_name(struct upload_engine *e, const char *prefix, const char *suffix, char *out,
		      size_t size, uint64_t *out_seq)
{
	uint64_t seq = atomic_fetch_add(&e->seq, 1);
	int n = snprintf(out, size, "%s/%s%s-%" PRIu64 "%s", e->dir, prefix, e->tag, seq, suffix);

	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	if (out_seq)
		*out_seq = seq;
	return 0;
}

static int side_path(const char *data, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", data, UPL_SIDE_SUFFIX);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write path whole and durably: a synced temporary file renamed over it,
 * then the directory dir synced. */
static int file_write_synced(const char *dir, const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd = -1;
	int rc = 0;

	int n = snprintf(tmp, sizeof(tmp), "%s%s", path, UPL_TMP_SUFFIX);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Copy with read and write, where copy_file_range cannot (other file system
 * types, old kernels). */
static int copy_plain(int in, int out, uint64_t size)
{
	char *buf = malloc(UPL_COPY_CHUNK);
	uint64_t done = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && done < size) {
		size_t want = size - done < UPL_COPY_CHUNK ? (size_t)(size - done) : UPL_COPY_CHUNK;
		ssize_t n = pread(in, buf, want, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? -errno : -EIO; /* shorter than size */
		else
			rc = write_all(out, buf, (size_t)n);
		if (n > 0)
			done += (uint64_t)n;
	}
	free(buf);
	return rc;
}

/*
 * A new synced file path with bytes [0, size) of in: a snapshot, because
 * the caller may write on to its file (or delete it) once we return. No
 * hard link, then, and copy_file_range lets the kernel clone or copy
 * without a trip through user space.
 */
static int stage_copy(int in, uint64_t size, const char *path)
{
	int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	off_t in_off = 0;
	uint64_t done = 0;
	int rc = 0;

	if (out < 0)
		return -errno;
	while (rc == 0 && done < size) {
		size_t want = size - done < (1u << 30) ? (size_t)(size - done) : (1u << 30);
		ssize_t n = copy_file_range(in, &in_off, out, NULL, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && done == 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
			rc = copy_plain(in, out, size);
		else if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		if (n < 0)
			break;
		done += (uint64_t)n;
	}
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
	if (close(out) != 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		unlink(path);
	return rc;
}

/* ---- sidecars and records (JSON) --------------------------------------- */

/* obj[name] = value (NULL: null). -EINVAL: not UTF-8, which JSON cannot carry. */
static int json_put_str(json_t *obj, const char *name, const char *value)
{
	json_t *v = value ? json_string(value) : json_null();

	if (!v)
		return -EINVAL;
	return json_object_set_new(obj, name, v) == 0 ? 0 : -ENOMEM;
}

static int json_write_synced(const char *dir, const char *path, json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	int rc = 0;

	if (!text)
		return -ENOMEM;
	rc = file_write_synced(dir, path, text, strlen(text));
	free(text);
	return rc;
}

/* The sidecar of data: what a later attempt needs besides the bytes and the
 * key (the key is repeated for a user who looks at the directory). */
static int sidecar_write(struct upload_engine *e, const char *data, const char *key,
			 const struct s3_put_opts *opts)
{
	char path[PATH_MAX];
	json_t *doc = json_object(), *meta = json_object();
	int rc = 0;

	if (!doc || !meta) {
		rc = -ENOMEM;
		goto out;
	}
	rc = side_path(data, path, sizeof(path));
	if (rc == 0)
		rc = json_object_set_new(doc, "version", json_integer(1)) == 0 ? 0 : -ENOMEM;
	if (rc == 0)
		rc = json_put_str(doc, "key", key);
	if (rc == 0)
		rc = json_put_str(doc, "content_type", opts ? opts->content_type : NULL);
	for (size_t i = 0; rc == 0 && opts && i < opts->nmeta; i++)
		rc = json_put_str(meta, opts->meta[i].name, opts->meta[i].value);
	if (rc == 0)
		rc = json_object_set(doc, "meta", meta) == 0 ? 0 : -ENOMEM;
	if (rc == 0)
		rc = json_write_synced(e->dir, path, doc);
out:
	json_decref(meta);
	json_decref(doc);
	return rc;
}

/* Load a JSON object of at most UPL_JSON_MAX bytes. -ENOENT, -EINVAL, -EFBIG. */
static int json_read(int dirfd, const char *path, json_t **out)
{
	json_error_t jerr;
	struct stat st;

	if (fstatat(dirfd, path, &st, 0) != 0)
		return -errno;
	if (st.st_size > UPL_JSON_MAX)
		return -EFBIG;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	json_t *doc = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!doc || !json_is_object(doc)) {
		log_warn("upload: %s: not a JSON object (%s)", path, doc ? "" : jerr.text);
		json_decref(doc);
		return -EINVAL;
	}
	*out = doc;
	return 0;
}

static void side_cleanup(struct upload_side *s)
{
	for (size_t i = 0; i < s->nmeta; i++) {
		free(s->meta[i].name);
		free(s->meta[i].value);
	}
	free(s->meta);
	free(s->content_type);
	memset(s, 0, sizeof(*s));
}

static int side_fill(json_t *doc, struct upload_side *s)
{
	json_t *ct = json_object_get(doc, "content_type");
	json_t *meta = json_object_get(doc, "meta");
	const char *name;
	json_t *v;

	if (json_is_string(ct) && !(s->content_type = strdup(json_string_value(ct))))
		return -ENOMEM;
	if (!meta)
		return 0;
	if (!json_is_object(meta) || json_object_size(meta) > UPL_META_MAX)
		return -EINVAL;
	s->meta = calloc(json_object_size(meta) + 1, sizeof(*s->meta));
	if (!s->meta)
		return -ENOMEM;
	json_object_foreach(meta, name, v)
	{
		if (!json_is_string(v))
			return -EINVAL;
		struct s3_meta *m = &s->meta[s->nmeta++];
		m->name = strdup(name);
		m->value = strdup(json_string_value(v));
		if (!m->name || !m->value)
			return -ENOMEM;
	}
	return 0;
}

/* The sidecar of data into out (side_cleanup). -ENOENT, -EINVAL, -ENOMEM. */
static int sidecar_read(const char *data, struct upload_side *out)
{
	char path[PATH_MAX];
	json_t *doc = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	rc = side_path(data, path, sizeof(path));
	if (rc == 0)
		rc = json_read(AT_FDCWD, path, &doc);
	if (rc == 0)
		rc = side_fill(doc, out);
	if (rc < 0)
		side_cleanup(out);
	json_decref(doc);
	return rc;
}

/* ---- one upload: PUT or multipart --------------------------------------- */

static struct s3_put_opts put_opts(struct upload_engine *e, const struct s3_put_opts *opts)
{
	struct s3_put_opts o = { 0 };

	if (opts)
		o = *opts;
	o.content_md5 = o.content_md5 || e->cfg.content_md5;
	return o;
}

static int upload_put(struct upload_engine *e, const char *key, int fd, uint64_t size,
		      const struct s3_put_opts *opts, char *out_etag, struct aws_error *err)
{
	struct http_body body = { .fd = fd, .offset = 0, .len = size };
	struct s3_put_opts o = put_opts(e, opts);

	return s3_put(e->s3, key, size ? &body : NULL, &o, out_etag, err);
}

/* The parts of a multipart upload and what its workers share. */
struct mpu_job {
	struct upload_engine *e;
	const char *key;
	const char *upload_id;
	int fd;
	uint64_t size;
	uint64_t part_size;
	int nparts;
	char (*etags)[S3_ETAG_MAX]; /* etags[i]: part i + 1's; each written by its sender */
	pthread_mutex_t lock;	    /* the fields below */
	int next;		    /* next part to send, 0-based; protected by lock */
	int rc;			    /* first failure; protected by lock */
	struct aws_error err;	    /* its details; protected by lock */
};

/* Part size and count for size bytes: the configured size, grown (in whole
 * MiB) when S3's 10000 parts would not hold the object. */
static int mpu_plan(const struct upload_config *c, uint64_t size, uint64_t *out_part, int *out_n)
{
	uint64_t part = c->part_size;

	if (size > UPL_OBJECT_MAX)
		return -EFBIG;
	if (size > part * S3_PARTS_MAX)
		part = ((size + S3_PARTS_MAX - 1) / S3_PARTS_MAX + MIB - 1) / MIB * MIB;
	*out_part = part;
	*out_n = (int)((size + part - 1) / part);
	return 0;
}

/* Send parts until none is left or one failed; each part is a window of the
 * file that http.c reads with pread, so memory does not grow with the file. */
static void *mpu_worker(void *arg)
{
	struct mpu_job *j = arg;

	for (;;) {
		pthread_mutex_lock(&j->lock);
		int i = j->rc == 0 && j->next < j->nparts ? j->next++ : -1;
		pthread_mutex_unlock(&j->lock);
		if (i < 0)
			break;
		uint64_t off = (uint64_t)i * j->part_size;
		uint64_t len = j->size - off < j->part_size ? j->size - off : j->part_size;
		struct http_body body = { .fd = j->fd, .offset = off, .len = len };
		struct aws_error err;
		aws_error_clear(&err);
		int rc = s3_mpu_part(j->e->s3, j->key, j->upload_id, i + 1, &body,
				     j->e->cfg.content_md5, j->etags[i], &err);
		if (rc < 0) {
			pthread_mutex_lock(&j->lock);
			if (j->rc == 0) {
				j->rc = rc;
				j->err = err;
			}
			pthread_mutex_unlock(&j->lock);
		}
	}
	return NULL;
}

static int mpu_send_parts(struct upload_engine *e, struct mpu_job *j, struct aws_error *err)
{
	pthread_t tids[UPL_PARALLEL_MAX];
	int want = (e->cfg.parallel < j->nparts ? e->cfg.parallel : j->nparts) - 1;
	int started = 0;

	/* Fewer threads than asked (pthread_create failed) is slower, not wrong. */
	while (started < want && thread_spawn(&tids[started], mpu_worker, j) == 0)
		started++;
	mpu_worker(j);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (j->rc < 0)
		*err = j->err;
	return j->rc;
}

static void live_add(struct upload_engine *e, struct upload_live *l)
{
	pthread_mutex_lock(&e->lock);
	l->next = e->live;
	e->live = l;
	pthread_mutex_unlock(&e->lock);
}

static void live_remove(struct upload_engine *e, struct upload_live *l)
{
	pthread_mutex_lock(&e->lock);
	struct upload_live **pp = &e->live;
	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	pthread_mutex_unlock(&e->lock);
}

/* Record a multipart upload in flight (invariant 5) in path. */
static int mpu_record(struct upload_engine *e, const char *path, const char *key,
		      const char *upload_id)
{
	json_t *doc = json_object();
	int rc = 0;

	if (!doc)
		return -ENOMEM;
	rc = json_put_str(doc, "key", key);
	if (rc == 0)
		rc = json_put_str(doc, "upload_id", upload_id);
	if (rc == 0)
		rc = json_write_synced(e->dir, path, doc);
	json_decref(doc);
	return rc;
}

struct orphans {
	const char *key;
	const char *keep;
	time_t since;
	char *ids[8];
	int n;
};

static int on_upload(void *arg, const struct s3_list_entry *le)
{
	struct orphans *o = arg;
	if (o->n < 8 && le->upload_id && strcmp(le->key, o->key) == 0 &&
	    strcmp(le->upload_id, o->keep) != 0 && le->last_modified >= o->since - 1) {
		o->ids[o->n] = strdup(le->upload_id);
		if (o->ids[o->n])
			o->n++;
	}
	return 0;
}

void upload_mpu_orphans(struct upload_engine *e, const char *key, const char *keep_id, time_t since)
{
	struct orphans o = { .key = key, .keep = keep_id, .since = since };
	struct aws_error err;

	if (s3_mpu_list(e->s3, key, on_upload, &o, &err) < 0)
		return; /* best effort: a lifecycle rule is the backstop */
	for (int i = 0; i < o.n; i++) {
		if (s3_mpu_abort(e->s3, key, o.ids[i], &err) == 0)
			log_info("upload: aborted a multipart upload of %s started with ours (a "
				 "create whose reply was lost)",
				 key);
		free(o.ids[i]);
	}
}

struct upload_track {
	struct upload_live live;
	char rec[PATH_MAX]; /* "" when it could not be recorded */
};

struct upload_track *upload_mpu_track(struct upload_engine *e, const char *key,
				      const char *upload_id)
{
	struct upload_track *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return NULL;
	rc = stage_name(e, UPL_MPU_PREFIX, UPL_REC_SUFFIX, t->rec, sizeof(t->rec), &t->live.seq);
	live_add(e, &t->live);
	if (rc == 0)
		rc = mpu_record(e, t->rec, key, upload_id);
	if (rc < 0) {
		log_warn("upload: cannot record the multipart upload of %s: %s", key,
			 strerror(-rc));
		t->rec[0] = '\0';
	}
	return t;
}

void upload_mpu_untrack(struct upload_engine *e, struct upload_track *t, bool gone)
{
	if (!t)
		return;
	/* Not gone (its abort failed): the record stays, no longer live, and
	 * the next sweep aborts the upload. */
	if (gone && t->rec[0])
		unlink(t->rec);
	live_remove(e, &t->live);
	free(t);
}

/* Parts and complete of a created upload; aborted on any failure. */
static int mpu_run(struct upload_engine *e, struct mpu_job *j, char *out_etag,
		   struct aws_error *err)
{
	struct upload_live live = { 0 };
	char rec[PATH_MAX];
	const char **etags = NULL;
	int rc = 0;

	/* The seq is known before the record exists, so a sweep that finds
	 * the record also finds it live. Without a record a crash leaks the
	 * upload to the bucket's lifecycle rule: no reason to fail the upload. */
	rc = stage_name(e, UPL_MPU_PREFIX, UPL_REC_SUFFIX, rec, sizeof(rec), &live.seq);
	live_add(e, &live);
	if (rc == 0)
		rc = mpu_record(e, rec, j->key, j->upload_id);
	if (rc < 0) {
		log_warn("upload: cannot record the multipart upload of %s: %s", j->key,
			 strerror(-rc));
		rec[0] = '\0';
	}
	rc = mpu_send_parts(e, j, err);
	etags = rc == 0 ? calloc((size_t)j->nparts, sizeof(*etags)) : NULL;
	if (rc == 0 && !etags)
		rc = -ENOMEM;
	for (int i = 0; rc == 0 && i < j->nparts; i++)
		etags[i] = j->etags[i];
	if (rc == 0)
		rc = s3_mpu_complete(e->s3, j->key, j->upload_id, etags, j->nparts, out_etag, err);
	bool gone = rc == 0;
	if (rc < 0) {
		struct aws_error aerr;
		aws_error_clear(&aerr);
		gone = s3_mpu_abort(e->s3, j->key, j->upload_id, &aerr) == 0;
		if (!gone)
			log_warn("upload: abort of a multipart upload of %s failed; retried later",
				 j->key);
	}
	if (gone && rec[0])
		unlink(rec);
	live_remove(e, &live);
	free(etags);
	return rc;
}

static int upload_mpu(struct upload_engine *e, const char *key, int fd, uint64_t size,
		      const struct s3_put_opts *opts, char *out_etag, struct aws_error *err)
{
	struct mpu_job j = { .e = e, .key = key, .fd = fd, .size = size };
	struct s3_put_opts o = put_opts(e, opts);
	char *upload_id = NULL;
	int rc = 0;

	rc = mpu_plan(&e->cfg, size, &j.part_size, &j.nparts);
	if (rc < 0)
		return rc;
	j.etags = calloc((size_t)j.nparts, sizeof(*j.etags));
	if (!j.etags)
		return -ENOMEM;
	rc = -pthread_mutex_init(&j.lock, NULL);
	if (rc < 0)
		goto out_etags;
	time_t t0 = time(NULL);
	rc = s3_mpu_create(e->s3, key, &o, &upload_id, err);
	if (rc < 0)
		goto out_lock;
	upload_mpu_orphans(e, key, upload_id, t0);
	j.upload_id = upload_id;
	rc = mpu_run(e, &j, out_etag, err);
	free(upload_id);
out_lock:
	pthread_mutex_destroy(&j.lock);
out_etags:
	free(j.etags);
	return rc;
}

/* In parts from the threshold on, but never in one part: that is a PUT. */
static bool upload_in_parts(const struct upload_engine *e, uint64_t size)
{
	return size >= e->cfg.multipart_threshold && size > e->cfg.part_size;
}

static int upload_do(struct upload_engine *e, const char *key, int fd, uint64_t size,
		     const struct s3_put_opts *opts, char *out_etag, struct aws_error *err)
{
	if (!upload_in_parts(e, size))
		return upload_put(e, key, fd, size, opts, out_etag, err);
	return upload_mpu(e, key, fd, size, opts, out_etag, err);
}

/* ---- pending rows ------------------------------------------------------- */

/* Drop a row, data first (invariant 4). staging may be NULL. */
static void row_drop(struct upload_engine *e, int64_t id, const char *staging)
{
	char side[PATH_MAX];

	if (staging) {
		if (unlink(staging) != 0 && errno != ENOENT)
			log_warn("upload: cannot remove %s: %s", staging, strerror(errno));
		if (side_path(staging, side, sizeof(side)) == 0 && unlink(side) != 0 &&
		    errno != ENOENT)
			log_warn("upload: cannot remove %s: %s", side, strerror(errno));
	}
	int rc = meta_journal_remove(e->mc, id);
	if (rc < 0 && rc != -ENOENT)
		log_warn("upload: pending row %" PRId64 " stays in the journal (%s); without its "
			 "data it will be removed, never uploaded",
			 id, strerror(-rc));
}

/* k has no live row any more (an upload of its newest data succeeded). The
 * row goes before the count falls, so that a drain that sees no pending
 * upload also sees an empty journal. The caller holds k's turn, so the
 * borrowed staging path cannot change meanwhile. */
static void key_clear_row(struct upload_engine *e, struct upload_key *k)
{
	int64_t old_id = 0;
	char *old_staging = NULL;

	pthread_mutex_lock(&e->lock);
	int64_t id = k->row_id;
	const char *staging = k->staging;
	pthread_mutex_unlock(&e->lock);
	if (id)
		row_drop(e, id, staging);
	key_swap_row(e, k, 0, NULL, &old_id, &old_staging);
	free(old_staging);
}

/*
 * Keep bytes [0, size) of fd as the pending upload of key, k's new live row
 * (invariants 1 and 3); an older row of k is dropped. The caller holds k's
 * turn. 0, or an errno with nothing kept.
 */
static int pend_record(struct upload_engine *e, struct upload_key *k, int fd, uint64_t size,
		       const struct s3_put_opts *opts, enum meta_pending_state state,
		       const char *why)
{
	char data[PATH_MAX], side[PATH_MAX];
	struct stat st;
	int64_t id = 0, old_id = 0;
	char *staging = NULL, *old_staging = NULL;
	int rc = 0;

	rc = stage_name(e, UPL_PREFIX, UPL_DATA_SUFFIX, data, sizeof(data), NULL);
	if (rc == 0)
		rc = side_path(data, side, sizeof(side));
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = -errno;
	if (rc == 0 && !(staging = strdup(data)))
		rc = -ENOMEM;
	if (rc < 0)
		goto out;
	rc = stage_copy(fd, size, data);
	if (rc < 0)
		goto out;
	rc = sidecar_write(e, data, k->key, opts); /* also syncs the directory */
	if (rc < 0)
		goto out_data;
	struct meta_pending p = { .key = k->key,
				  .staging_path = data,
				  .size = size,
				  .mtime = st.st_mtim,
				  .state = state,
				  .attempts = 1,
				  .last_error = (char *)why };
	rc = meta_journal_add(e->mc, &p, &id);
	if (rc < 0)
		goto out_side;
	key_swap_row(e, k, id, staging, &old_id, &old_staging);
	staging = NULL;
	if (old_id)
		row_drop(e, old_id, old_staging);
	free(old_staging);
	return 0;
out_side:
	unlink(side);
out_data:
	unlink(data);
out:
	if (rc < 0)
		log_error("upload: cannot keep the data of %s as pending: %s", k->key,
			  strerror(-rc));
	free(staging);
	return rc;
}

/* ---- upload_file --------------------------------------------------------- */

static int upload_check(struct upload_engine *e, const char *key, int fd, uint64_t size,
			const struct s3_put_opts *opts)
{
	struct stat st;

	if (!e || !key || !key[0] || fd < 0)
		return -EINVAL;
	if (strlen(key) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size)
		return -EINVAL;
	/* s3.c sends no conditions with a multipart upload: refuse rather than
	 * drop them silently. */
	if (opts && (opts->if_match || opts->if_none_match) && upload_in_parts(e, size))
		return -EINVAL;
	return 0;
}

/* The upload of k failed with rc: keep the data or give the error back. */
static int upload_failed(struct upload_engine *e, struct upload_key *k, int64_t pre_id, int rc,
			 const struct aws_error *err, int fd, uint64_t size,
			 const struct s3_put_opts *opts)
{
	char why[UPL_ERR_MAX];

	err_text(rc, err, why, sizeof(why));
	if (!upload_transient(rc, err)) {
		log_warn("upload: %s failed: %s", k->key, why);
		if (pre_id)
			key_clear_row(e, k); /* the caller keeps its data (upload.h) */
		return rc;
	}
	log_warn("upload: %s failed (%s): kept as pending", k->key, why);
	if (!pre_id)
		rc = pend_record(e, k, fd, size, opts, META_PENDING_FAILED, why);
	else
		rc = meta_journal_update(e->mc, pre_id, META_PENDING_FAILED, 1, why);
	/* A row that says UPLOADING is retried just the same. */
	return rc < 0 && !pre_id ? rc : -EIO;
}

int upload_file(struct upload_engine *e, const char *key, int fd, const char *staging_path,
		uint64_t size, const struct s3_put_opts *opts, char *out_etag)
{
	struct upload_key *k = NULL;
	struct aws_error err;
	char etag[S3_ETAG_MAX] = "";
	int64_t pre_id = 0;
	int rc = 0;

	(void)staging_path; /* pending data is copied from fd (stage_copy) */
	rc = upload_check(e, key, fd, size, opts);
	if (rc == 0)
		rc = key_acquire(e, key, true, &k);
	if (rc < 0)
		return rc;
	/* An older pending upload of key: this write replaces it before it is
	 * sent (invariant 3). If that cannot be recorded, the older row is
	 * still dropped once this upload succeeds. */
	if (key_row(e, k) && pend_record(e, k, fd, size, opts, META_PENDING_UPLOADING, NULL) == 0)
		pre_id = key_row(e, k);
	aws_error_clear(&err);
	rc = upload_do(e, key, fd, size, opts, etag, &err);
	if (rc == 0) {
		key_clear_row(e, k);
		if (out_etag)
			snprintf(out_etag, S3_ETAG_MAX, "%s", etag);
	} else {
		rc = upload_failed(e, k, pre_id, rc, &err, fd, size, opts);
	}
	key_release(e, k);
	return rc;
}

bool upload_is_pending(struct upload_engine *e, const char *key)
{
	pthread_mutex_lock(&e->lock);
	struct upload_key *k = key_find_locked(e, key);
	bool pending = k && k->row_id != 0;
	pthread_mutex_unlock(&e->lock);
	return pending;
}

int upload_pending_open(struct upload_engine *e, const char *key, int *out_fd)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&e->lock);
	struct upload_key *k = key_find_locked(e, key);
	if (k && k->row_id != 0 && k->staging) {
		int fd = open(k->staging, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -errno : 0;
		if (fd >= 0)
			*out_fd = fd;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

uint64_t upload_engine_pending(struct upload_engine *e)
{
	pthread_mutex_lock(&e->lock);
	uint64_t n = e->npending;
	pthread_mutex_unlock(&e->lock);
	return n;
}

/* ---- retries ------------------------------------------------------------- */

/*
 * Open a row's staged data (*out_fd) and read its sidecar (side). 0;
 * -ENOENT: the data is gone; another errno with why filled.
 */
static int retry_open(const struct meta_pending *row, int *out_fd, struct upload_side *side,
		      char *why, size_t size)
{
	struct stat st;
	int fd = open(row->staging_path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(why, size, "%s: %s", row->staging_path, strerror(-rc));
	} else if ((uint64_t)st.st_size < row->size) {
		rc = -EIO;
		snprintf(why, size, "%s is shorter than %" PRIu64 " bytes", row->staging_path,
			 row->size);
	}
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = sidecar_read(row->staging_path, side);
	if (rc < 0) /* the bytes matter more than their attributes */
		log_warn("upload: pending upload of %s: no metadata (%s)", row->key, strerror(-rc));
	*out_fd = fd;
	return 0;
}

/* One attempt at k's live row; the caller holds k's turn. */
static void retry_upload(struct upload_engine *e, struct upload_key *k,
			 const struct meta_pending *row)
{
	struct upload_side side = { 0 };
	struct s3_put_opts o = { 0 };
	struct aws_error err;
	char why[UPL_ERR_MAX] = "";
	uint32_t attempts = row->attempts + 1;
	int fd = -1;
	int rc = 0;

	aws_error_clear(&err);
	rc = retry_open(row, &fd, &side, why, sizeof(why));
	if (rc == -ENOENT) {
		log_error("upload: pending upload of %s lost its data %s: dropped", row->key,
			  row->staging_path);
		key_clear_row(e, k);
		return;
	}
	o.content_type = side.content_type;
	o.meta = side.meta;
	o.nmeta = side.nmeta;
	if (rc == 0)
		rc = meta_journal_update(e->mc, row->id, META_PENDING_UPLOADING, attempts,
					 row->last_error);
	if (rc == 0)
		rc = upload_do(e, row->key, fd, row->size, &o, NULL, &err);
	if (rc == 0) {
		log_info("upload: pending upload of %s done (attempt %" PRIu32 ")", row->key,
			 attempts);
		key_clear_row(e, k);
	} else {
		if (!why[0])
			err_text(rc, &err, why, sizeof(why));
		log_warn("upload: pending upload of %s failed again: %s", row->key, why);
		if (meta_journal_update(e->mc, row->id, META_PENDING_FAILED, attempts, why) < 0)
			log_warn("upload: cannot note the failure of %s in the journal", row->key);
	}
	side_cleanup(&side);
	if (fd >= 0)
		close(fd);
}

static void retry_row(struct upload_engine *e, const struct meta_pending *row)
{
	struct upload_key *k = NULL;

	/* Busy: upload_file() has the key, and its outcome decides the row. */
	if (key_acquire(e, row->key, false, &k) < 0)
		return;
	if (key_row(e, k) == row->id)
		retry_upload(e, k, row);
	else /* superseded, or its removal failed: stale (invariant 3) */
		row_drop(e, row->id, row->staging_path);
	key_release(e, k);
}

static void retry_round(struct upload_engine *e)
{
	struct meta_pending *rows = NULL;
	size_t n = 0;

	if (upload_engine_pending(e) == 0)
		return;
	int rc = meta_journal_list(e->mc, &rows, &n);
	if (rc < 0) {
		log_warn("upload: cannot read the journal: %s", strerror(-rc));
		return;
	}
	for (size_t i = 0; i < n && !stopping(e); i++)
		retry_row(e, &rows[i]);
	meta_journal_list_free(rows, n);
}

/* Is name the record of an upload in flight in this engine? */
static bool record_is_live(struct upload_engine *e, const char *name)
{
	const char *p = name + strlen(UPL_MPU_PREFIX);
	size_t tlen = strlen(e->tag);
	char *end = NULL;
	bool live = false;

	if (strncmp(p, e->tag, tlen) != 0 || p[tlen] != '-' || p[tlen + 1] < '0' ||
	    p[tlen + 1] > '9')
		return false;
	errno = 0;
	uint64_t seq = strtoull(p + tlen + 1, &end, 10);
	if (errno != 0 || strcmp(end, UPL_REC_SUFFIX) != 0)
		return false;
	pthread_mutex_lock(&e->lock);
	for (struct upload_live *l = e->live; l && !live; l = l->next)
		live = l->seq == seq;
	pthread_mutex_unlock(&e->lock);
	return live;
}

/* Abort the upload of a leftover record and remove it (invariant 5). */
static void record_abort(struct upload_engine *e, int dirfd, const char *name)
{
	struct aws_error err;
	json_t *doc = NULL;
	int rc = json_read(dirfd, name, &doc);

	if (rc == -ENOENT)
		return;
	json_t *key = rc == 0 ? json_object_get(doc, "key") : NULL;
	json_t *id = rc == 0 ? json_object_get(doc, "upload_id") : NULL;
	if (json_is_string(key) && json_is_string(id)) {
		aws_error_clear(&err);
		rc = s3_mpu_abort(e->s3, json_string_value(key), json_string_value(id), &err);
		if (rc == 0)
			log_info("upload: aborted a leftover multipart upload of %s",
				 json_string_value(key));
	} else {
		log_warn("upload: %s/%s is not a multipart record: removed", e->dir, name);
		rc = 0;
	}
	if (rc == 0)
		unlinkat(dirfd, name, 0);
	json_decref(doc);
}

static void mpu_sweep(struct upload_engine *e)
{
	DIR *d = opendir(e->dir);
	struct dirent *de;

	if (!d) {
		log_warn("upload: cannot read %s: %s", e->dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) && !stopping(e)) {
		if (has_prefix(de->d_name, UPL_MPU_PREFIX) &&
		    has_suffix(de->d_name, UPL_REC_SUFFIX) && !record_is_live(e, de->d_name))
			record_abort(e, dirfd(d), de->d_name);
	}
	closedir(d);
}

static void *retry_main(void *arg)
{
	struct upload_engine *e = arg;

	pthread_mutex_lock(&e->lock);
	while (!e->stop) {
		struct timespec at = deadline_after(e->cfg.retry_interval_ms);
		while (!e->stop && !e->kick) {
			if (pthread_cond_timedwait(&e->wake_cv, &e->lock, &at) == ETIMEDOUT)
				break;
		}
		if (e->stop)
			break;
		e->kick = false;
		pthread_mutex_unlock(&e->lock);
		mpu_sweep(e);
		retry_round(e);
		pthread_mutex_lock(&e->lock);
		pthread_cond_broadcast(&e->idle_cv);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

int upload_engine_start(struct upload_engine *e)
{
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	if (!e->started) {
		e->kick = true; /* leftovers of an earlier process: at once */
		rc = thread_spawn(&e->thread, retry_main, e);
		e->started = rc == 0;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int upload_engine_drain(struct upload_engine *e, long timeout_ms)
{
	struct timespec at = deadline_after(timeout_ms > 0 ? timeout_ms : 0);
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	if (!e->started) { /* no thread to ask: one round here */
		pthread_mutex_unlock(&e->lock);
		retry_round(e);
		pthread_mutex_lock(&e->lock);
	} else {
		e->kick = true;
		pthread_cond_signal(&e->wake_cv);
		while (e->npending > 0 && !e->stop) {
			if (pthread_cond_timedwait(&e->idle_cv, &e->lock, &at) == ETIMEDOUT)
				break;
		}
	}
	rc = e->npending > 0 ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* ---- life cycle ----------------------------------------------------------- */

/* Take the rows an earlier process left, oldest first: the newest of each
 * key is its live row, older ones are dropped (invariant 3). */
static int load_row(struct upload_engine *e, const struct meta_pending *row)
{
	int64_t old_id = 0;
	char *old_staging = NULL;
	char *staging = strdup(row->staging_path);

	if (!staging)
		return -ENOMEM;
	pthread_mutex_lock(&e->lock);
	struct upload_key *k = key_get_locked(e, row->key);
	pthread_mutex_unlock(&e->lock);
	if (!k) {
		free(staging);
		return -ENOMEM;
	}
	key_swap_row(e, k, row->id, staging, &old_id, &old_staging);
	if (old_id) {
		log_info("upload: an older pending upload of %s is superseded", row->key);
		row_drop(e, old_id, old_staging);
	}
	free(old_staging);
	return 0;
}

static bool inode_in(const struct stat *set, size_t n, const struct stat *st)
{
	for (size_t i = 0; i < n; i++) {
		if (set[i].st_dev == st->st_dev && set[i].st_ino == st->st_ino)
			return true;
	}
	return false;
}

/* Is name in dir a file of ours that no live row needs (invariant 1: a
 * crash between staging and the journal row)? Records are mpu_sweep's. */
static bool is_orphan(int dirfd, const char *name, const struct stat *live, size_t nlive)
{
	char data[NAME_MAX + 1];
	struct stat st;

	if (!has_prefix(name, UPL_PREFIX))
		return false;
	if (has_suffix(name, UPL_TMP_SUFFIX))
		return true;
	if (has_suffix(name, UPL_DATA_SUFFIX UPL_SIDE_SUFFIX)) {
		size_t n = strlen(name) - strlen(UPL_SIDE_SUFFIX);
		memcpy(data, name, n);
		data[n] = '\0';
		return fstatat(dirfd, data, &st, 0) != 0 || !inode_in(live, nlive, &st);
	}
	if (has_suffix(name, UPL_DATA_SUFFIX) && !has_prefix(name, UPL_MPU_PREFIX))
		return fstatat(dirfd, name, &st, 0) == 0 && !inode_in(live, nlive, &st);
	return false;
}

/* Remove the orphans of the staging directory. Runs in upload_engine_new(),
 * before anything else can stage a file. */
static void orphan_sweep(struct upload_engine *e)
{
	struct stat *live = calloc(e->npending + 1, sizeof(*live));
	size_t nlive = 0, removed = 0;
	struct dirent *de;
	DIR *d = NULL;

	if (!live)
		return;
	for (size_t b = 0; b < UPL_KEY_BUCKETS; b++) {
		for (struct upload_key *k = e->keys[b]; k; k = k->next) {
			if (k->staging && stat(k->staging, &live[nlive]) == 0)
				nlive++;
		}
	}
	d = opendir(e->dir);
	while (d && (de = readdir(d))) {
		if (is_orphan(dirfd(d), de->d_name, live, nlive) &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	if (d)
		closedir(d);
	if (removed)
		log_info("upload: removed %zu orphaned file(s) from %s", removed, e->dir);
	free(live);
}

static int engine_load(struct upload_engine *e)
{
	struct meta_pending *rows = NULL;
	size_t n = 0;
	int rc = meta_journal_list(e->mc, &rows, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = load_row(e, &rows[i]);
	meta_journal_list_free(rows, n);
	if (rc == 0)
		orphan_sweep(e);
	if (rc == 0 && e->npending)
		log_info("upload: %" PRIu64 " pending upload(s) resumed", e->npending);
	return rc;
}

/* The staging directory, created 0700 if missing; *out its real path. */
static int staging_open(const char *dir, char **out)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (stat(dir, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*out = realpath(dir, NULL);
	return *out ? 0 : -errno;
}

/* glibc's init functions cannot fail with these arguments. */
static void sync_init(struct upload_engine *e)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->turn_cv, NULL);
	pthread_cond_init(&e->wake_cv, &ca);
	pthread_cond_init(&e->idle_cv, &ca);
	pthread_condattr_destroy(&ca);
}

static int config_check(const struct upload_config *c)
{
	if (!c || !c->staging_dir || !c->staging_dir[0] || c->part_size < S3_PART_MIN ||
	    c->part_size > UPL_PART_MAX || c->parallel < 1 || c->parallel > UPL_PARALLEL_MAX ||
	    c->retry_interval_ms <= 0)
		return -EINVAL;
	return 0;
}

int upload_engine_new(const struct upload_config *cfg, struct s3_client *s3, struct meta_cache *mc,
		      struct stats *stats, struct upload_engine **out)
{
	struct upload_engine *e = NULL;
	int rc = 0;

	rc = config_check(cfg);
	if (rc < 0 || !s3 || !mc || !out)
		return rc < 0 ? rc : -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->s3 = s3;
	e->mc = mc;
	e->stats = stats;
	snprintf(e->tag, sizeof(e->tag), "%ld-%" PRId64, (long)getpid(), meta_cache_now_ms());
	rc = staging_open(cfg->staging_dir, &e->dir);
	if (rc < 0) {
		log_error("upload: staging directory %s: %s", cfg->staging_dir, strerror(-rc));
		free(e);
		return rc;
	}
	e->cfg.staging_dir = e->dir;
	sync_init(e);
	rc = engine_load(e);
	if (rc < 0) {
		upload_engine_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

void upload_engine_free(struct upload_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	bool started = e->started;
	pthread_cond_signal(&e->wake_cv);
	pthread_cond_broadcast(&e->idle_cv);
	pthread_mutex_unlock(&e->lock);
	if (started)
		pthread_join(e->thread, NULL);
	for (size_t b = 0; b < UPL_KEY_BUCKETS; b++) {
		while (e->keys[b]) {
			struct upload_key *k = e->keys[b];
			e->keys[b] = k->next;
			free(k->staging);
			free(k);
		}
	}
	pthread_cond_destroy(&e->idle_cv);
	pthread_cond_destroy(&e->wake_cv);
	pthread_cond_destroy(&e->turn_cv);
	pthread_mutex_destroy(&e->lock);
	free(e->dir);
	free(e);
}
