// SPDX-License-Identifier: MIT
/*
 * ops_file: open files. Every open of a key shares one struct fs_file, so
 * that two descriptors of a file see each other's writes. Reads of a file
 * nobody wrote go to S3 through a read window of ranged GETs; the first
 * write (or truncate) stages the whole object in a local file under the
 * staging directory, and flush, fsync and release upload it through the
 * upload engine, which returns only once S3 acknowledged the object (the
 * durability promise, DESIGN.md). A file created with O_CREAT is uploaded
 * even if nothing is written and even if it was opened read-only or with
 * mode 0000: no zero-byte placeholder is PUT before its content.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3vfs/datacache.h"
#include "s3vfs/chain.h"
#include "s3vfs/fs.h"
#include "s3vfs/log.h"
#include "s3vfs/upload.h"

struct fs_file *fs_open_find(struct s3vfs *fs, const char *key)
{
	struct fs_file *f;

	pthread_mutex_lock(&fs->open_lock);
	for (f = fs->open_files; f; f = f->next) {
		if (!f->superseded && strcmp(f->key, key) == 0) {
			f->refs++;
			break;
		}
	}
	pthread_mutex_unlock(&fs->open_lock);
	return f;
}

/* f (locked) only reads a version of its key other than e's: the object
 * changed since it was opened, and this mount has nothing of its own in it. */
static bool reads_other_version_locked(const struct fs_file *f, const struct meta_entry *e)
{
	return !f->staged && !f->dirty && !f->unlinked && !f->cf.ch && f->etag[0] && e->etag[0] &&
	       strcmp(f->etag, e->etag) != 0;
}

/*
 * An open file that reads an older version than e's: a new open must read
 * e's version, so it gets a handle of its own instead of sharing this one.
 * Called under open_lock, whose order is after the handle's lock: a busy
 * handle is taken as not stale (shared, as before: it is the current one a
 * moment later).
 */
static bool stale_beside(struct fs_file *f, const struct meta_entry *e)
{
	bool stale;

	if (!e->etag[0] || pthread_mutex_trylock(&f->lock) != 0)
		return false;
	stale = reads_other_version_locked(f, e);
	pthread_mutex_unlock(&f->lock);
	return stale;
}

static void file_free(struct s3vfs *fs, struct fs_file *f)
{
	fs_stream_cleanup(fs, f);
	if (f->fd >= 0)
		close(f->fd);
	if (f->staging[0])
		unlink(f->staging);
	fs_ra_cleanup(f);
	free(f->cf.pkey);
	free(f->kpath);
	s3attr_kvlist_cleanup(&f->extra);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void fs_file_ref(struct s3vfs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&fs->open_lock);
	f->refs++;
	pthread_mutex_unlock(&fs->open_lock);
}

void fs_file_put(struct s3vfs *fs, struct fs_file *f)
{
	struct fs_file **pp;
	bool last;

	pthread_mutex_lock(&fs->open_lock);
	last = --f->refs == 0;
	if (last) {
		for (pp = &fs->open_files; *pp; pp = &(*pp)->next) {
			if (*pp == f) {
				*pp = f->next;
				break;
			}
		}
		if (--fs->live_files == 0)
			pthread_cond_broadcast(&fs->files_gone);
	}
	pthread_mutex_unlock(&fs->open_lock);
	if (last)
		file_free(fs, f);
}

void fs_files_close_all(struct s3vfs *fs)
{
	struct fs_file *list[256];
	int n;

	/*
	 * The session is over: releases that never came (a signal ended the
	 * loop first) are done here, uploading what was not sent yet. Then wait
	 * until every file is freed: background fetches and parts hold
	 * references, and they must end before the clients they use go away.
	 */
	do {
		pthread_mutex_lock(&fs->open_lock);
		n = 0;
		for (struct fs_file *f = fs->open_files; f && n < 256; f = f->next) {
			if (f->opens > 0) {
				f->refs++; /* ours, for the loop below */
				list[n++] = f;
			}
		}
		pthread_mutex_unlock(&fs->open_lock);
		for (int i = 0; i < n; i++) {
			struct fs_file *f = list[i];
			pthread_mutex_lock(&f->lock);
			int frc = f->cf.ch ? fs_chain_flush_locked(fs, f, true)
					   : fs_file_flush_locked(fs, f);
			if (frc < 0)
				log_error("%s: upload at exit failed", f->key);
			pthread_mutex_unlock(&f->lock);
			pthread_mutex_lock(&fs->open_lock);
			int opens = f->opens;
			f->opens = 0;
			pthread_mutex_unlock(&fs->open_lock);
			while (opens-- > 0)
				fs_file_put(fs, f);
			fs_file_put(fs, f);
		}
	} while (n == 256);
	pthread_mutex_lock(&fs->open_lock);
	while (fs->live_files > 0)
		pthread_cond_wait(&fs->files_gone, &fs->open_lock);
	pthread_mutex_unlock(&fs->open_lock);
}

struct fs_file *fs_old_version_open(struct s3vfs *fs, const char *key, const struct meta_entry *e)
{
	struct fs_file *f = fs_open_find(fs, key);
	bool old = false;

	if (!f)
		return NULL;
	pthread_mutex_lock(&f->lock);
	old = reads_other_version_locked(f, e);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&fs->open_lock);
	old = old && f->opens > 0;
	pthread_mutex_unlock(&fs->open_lock);
	if (!old) {
		fs_file_put(fs, f);
		return NULL;
	}
	return f;
}

int fs_file_get(struct s3vfs *fs, const char *key, const struct meta_entry *e, struct fs_file **out)
{
	struct fs_file *f, *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->fd = -1;
	n->refs = 1;
	pthread_mutex_init(&n->lock, NULL);
	fs_ra_init(n);
	fs_stream_init(n);
	snprintf(n->key, sizeof(n->key), "%s", key);
	n->size = e->size;
	snprintf(n->etag, sizeof(n->etag), "%s", e->etag);
	n->attr.mode = e->mode;
	n->attr.uid = e->uid;
	n->attr.gid = e->gid;
	n->attr.mtime = e->mtime;
	n->attr.ctime = e->ctime;
	n->attr.atime = e->mtime;

	pthread_mutex_lock(&fs->open_lock);
	for (f = fs->open_files; f; f = f->next) {
		if (!f->superseded && strcmp(f->key, key) == 0)
			break;
	}
	if (f && stale_beside(f, e)) {
		f->superseded = true;
		f = NULL;
	}
	if (f) {
		f->refs++;
	} else {
		n->next = fs->open_files;
		fs->open_files = n;
		fs->live_files++;
	}
	pthread_mutex_unlock(&fs->open_lock);
	if (f) {
		file_free(fs, n);
		*out = f;
	} else {
		*out = n;
	}
	return 0;
}

static int staging_create(struct s3vfs *fs, struct fs_file *f)
{
	snprintf(f->staging, sizeof(f->staging), "%s/stage-XXXXXX", fs->staging_dir);
	f->fd = mkostemp(f->staging, O_CLOEXEC);
	if (f->fd < 0) {
		int rc = -errno;
		log_error("cannot create a staging file in %s: %s", fs->staging_dir, strerror(-rc));
		f->staging[0] = '\0';
		return rc;
	}
	return 0;
}

struct fd_sink {
	int fd;
	uint64_t off;
};

static int fd_sink_write(void *arg, const void *data, size_t n)
{
	struct fd_sink *s = arg;
	const char *p = data;

	while (n > 0) {
		ssize_t w = pwrite(s->fd, p, n, (off_t)s->off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
		s->off += (uint64_t)w;
	}
	return 0;
}

/* Bring the whole object into the staging file (f->lock held). Keeps the
 * object's other metadata pairs and content type for the upload. */
static int ensure_staged(struct s3vfs *fs, struct fs_file *f, bool want_content)
{
	struct s3_object_info info = { 0 };
	struct aws_error err;
	int rc;

	if (f->staged)
		return 0;
	rc = staging_create(fs, f);
	if (rc < 0)
		return rc;
	if (want_content && f->size > 0) {
		struct fd_sink sink = { .fd = f->fd };
		fs_stream_break(f); /* not a new file written from 0 */
		rc = s3_get(fs->s3, f->key, NULL, fd_sink_write, &sink, &info, &err);
		if (rc < 0) {
			char msg[512];
			log_error("GET %s: %s", f->key, aws_error_str(&err, msg, sizeof(msg)));
			close(f->fd);
			f->fd = -1;
			unlink(f->staging);
			f->staging[0] = '\0';
			s3_object_info_cleanup(&info);
			return rc;
		}
		snprintf(f->etag, sizeof(f->etag), "%s", info.etag);
		snprintf(f->content_type, sizeof(f->content_type), "%s", info.content_type);
		fs_pc_begin(fs, f, info.etag, f->size);
		/* Keep the pairs we do not own (chmod-safe rewrite). */
		s3attr_kvlist_cleanup(&f->extra);
		f->extra.kv = calloc(info.nmeta ? info.nmeta : 1, sizeof(*f->extra.kv));
		for (size_t i = 0; f->extra.kv && i < info.nmeta; i++) {
			f->extra.kv[i].name = info.meta[i].name;
			f->extra.kv[i].value = info.meta[i].value;
			info.meta[i].name = info.meta[i].value = NULL;
			f->extra.n++;
		}
		s3_object_info_cleanup(&info);
	}
	f->staged = true;
	return 0;
}

int fs_file_fill(struct s3vfs *fs, struct fs_file *f, const char *key, const char *etag)
{
	struct fd_sink sink = { .fd = f->fd };
	struct s3_get_opts o = { .if_match = etag && etag[0] ? etag : NULL };
	struct aws_error err;
	int rc = s3_get(fs->s3, key, &o, fd_sink_write, &sink, NULL, &err);

	if (rc < 0) {
		char msg[512];
		log_error("GET %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
	}
	return rc;
}

void fs_file_release_handle(struct s3vfs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&fs->open_lock);
	f->opens--;
	pthread_mutex_unlock(&fs->open_lock);
	fs_file_put(fs, f);
}

/* Stage f from the upload engine's pending copy of its key (f->lock held). */
static int stage_pending(struct s3vfs *fs, struct fs_file *f)
{
	char buf[65536];
	int pfd = -1;
	off_t off = 0;
	int rc = upload_pending_open(fs->up, f->key, &pfd);

	if (rc < 0)
		return rc == -ENOENT ? 0 : rc; /* uploaded meanwhile: S3 has it */
	rc = staging_create(fs, f);
	for (ssize_t n; rc == 0 && (n = pread(pfd, buf, sizeof(buf), off)) != 0; off += n) {
		if (n < 0 || pwrite(f->fd, buf, (size_t)n, off) != n)
			rc = -EIO;
	}
	close(pfd);
	if (rc == 0) {
		f->staged = true;
		f->size = (uint64_t)off;
		fs_stream_break(f);
	}
	return rc;
}

int fs_file_stage(struct s3vfs *fs, struct fs_file *f, bool want_content)
{
	return ensure_staged(fs, f, want_content);
}

int fs_file_put_opts(const struct fs_file *f, struct s3attr_kvlist *pairs, struct s3_put_opts *po)
{
	int rc = s3attr_merge(f->extra.kv, f->extra.n, &f->attr,
			      S3ATTR_MODE | S3ATTR_UID | S3ATTR_GID | S3ATTR_MTIME | S3ATTR_CTIME,
			      NULL, pairs);
	if (rc < 0)
		return rc;
	*po = (struct s3_put_opts){
		.content_type = f->content_type[0] ? f->content_type : NULL,
		.meta = (const struct s3_meta *)pairs->kv,
		.nmeta = pairs->n,
	};
	return 0;
}

int fs_file_flush_locked(struct s3vfs *fs, struct fs_file *f)
{
	struct s3attr_kvlist pairs = { 0 };
	char etag[S3_ETAG_MAX];
	struct meta_entry e;
	struct stat st;
	int rc;

	if (f->cf.ch)
		return fs_chain_flush_locked(fs, f, false);
	if (!f->dirty || f->unlinked)
		return f->failed && !f->unlinked ? -EIO
						 : 0; /* not acknowledged yet: say so again */
	if (fstat(f->fd, &st) < 0)
		return -errno;
	struct s3_put_opts po;
	rc = fs_file_put_opts(f, &pairs, &po);
	if (rc < 0)
		return rc;
	rc = fs_stream_finish(fs, f, (uint64_t)st.st_size, etag);
	if (rc == 0)
		f->attr.mtime = f->stream.attr.mtime; /* what the object carries */
	else
		rc = fs_pc_finish(fs, f, (uint64_t)st.st_size, &po, etag);
	if (rc == -ENOENT)
		rc = upload_file(fs->up, f->key, f->fd, f->staging, (uint64_t)st.st_size, &po,
				 etag);
	if (rc == 0)
		fs_pc_begin(fs, f, etag, (uint64_t)st.st_size); /* the new base version */
	else
		fs_pc_off(f);
	s3attr_kvlist_cleanup(&pairs);
	if (rc == -EIO) {
		/* The engine holds this version now and retries it: a later close
		 * must not send it again, and the mount shows what is pending. */
		log_error("upload of %s failed: %s (kept; it will be retried in the background)",
			  f->key, strerror(-rc));
		f->dirty = false;
		f->failed = true;
		fs_attr_entry(&f->attr, META_KIND_FILE, (uint64_t)st.st_size, "", &e);
		e.last_modified = 0;
		fs_cached(meta_cache_upsert(fs->mc, f->key, &e, NULL));
		return rc;
	}
	if (rc < 0) {
		log_error("upload of %s failed: %s", f->key, strerror(-rc));
		return rc;
	}
	f->dirty = false;
	f->failed = false;
	f->size = (uint64_t)st.st_size;
	snprintf(f->etag, sizeof(f->etag), "%s", etag);
	fs_kc_note(fs, f->key, etag); /* the kernel's pages are what we uploaded */
	fs_attr_entry(&f->attr, META_KIND_FILE, f->size, etag, &e);
	e.last_modified = 0; /* S3 does not say; a listing will */
	fs_cached(meta_cache_upsert(fs->mc, f->key, &e, NULL));
	return 0;
}

/*
 * The kernel drops a FUSE file's cached pages at each open unless the open
 * says keep_cache. We say it when the object's ETag (validated within
 * stat_ttl) is the version the kernel's pages came from, so a hot file is
 * read once and then served by the page cache with no request. A slot per
 * key hash; a collision only costs a re-read.
 */
static uint64_t key_hash(const char *key)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ? h : 1;
}

void fs_kc_note(struct s3vfs *fs, const char *key, const char *etag)
{
	uint64_t h = key_hash(key);
	struct fs_kc_slot *s;

	if (!fs->kc)
		return;
	pthread_mutex_lock(&fs->kc_lock);
	s = &fs->kc[h % FS_KC_SLOTS];
	s->hash = etag && etag[0] ? h : 0;
	snprintf(s->etag, sizeof(s->etag), "%s", etag ? etag : "");
	pthread_mutex_unlock(&fs->kc_lock);
}

bool fs_kc_keep(struct s3vfs *fs, const char *key, const char *etag)
{
	uint64_t h = key_hash(key);
	bool keep = false;

	if (!fs->kc || !etag[0])
		return false;
	pthread_mutex_lock(&fs->kc_lock);
	struct fs_kc_slot *s = &fs->kc[h % FS_KC_SLOTS];
	keep = s->hash == h && strcmp(s->etag, etag) == 0;
	s->hash = h;
	snprintf(s->etag, sizeof(s->etag), "%s", etag);
	pthread_mutex_unlock(&fs->kc_lock);
	return keep;
}

void fs_file_opened(struct s3vfs *fs, struct fs_file *f, struct fuse_file_info *fi)
{
	/* (f->lock is not held: it comes before open_lock) */
	pthread_mutex_lock(&fs->open_lock);
	f->opens++;
	pthread_mutex_unlock(&fs->open_lock);
	fi->fh = (uintptr_t)f;
	/* A descriptor that cannot write, on a file with nothing to upload (not
	 * created or truncated by this open), has nothing to say at close(2):
	 * the kernel skips its FLUSH, one round trip less per read-only open (a
	 * web server opens and closes a hot file on every request). */
	pthread_mutex_lock(&f->lock);
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY && !f->dirty;
	pthread_mutex_unlock(&f->lock);
	/* A descriptor that cannot read (cp, a shell's >, a writer streaming
	 * out a file) sends its bytes straight from the writer's buffer: no
	 * copy into the kernel's page cache of the file, which nothing would
	 * read (readers on other descriptors have the range invalidated by the
	 * kernel). Such a descriptor cannot be mmap(2)ed anyway. (Set, never
	 * cleared: a chain's .head is direct_io for every descriptor.) */
	if ((fi->flags & O_ACCMODE) == O_WRONLY)
		fi->direct_io = 1;
}

static struct fs_file *fh(struct fuse_file_info *fi)
{
	return (struct fs_file *)(uintptr_t)fi->fh;
}

int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	char key[OBJMAP_KEY_BUF];
	struct meta_entry e;
	struct fs_file *f = NULL;
	int rc;

	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, false, &cp);
	if (rc != 0)
		return rc < 0 ? rc : fs_chain_open(fs, &cp, path, fi);
	rc = fs_key(fs, path, OBJMAP_FILE, key);
	if (rc < 0)
		return rc == -EPERM ? -ENOENT : rc;
	rc = fs_lookup(fs, path, &e);
	if (rc < 0)
		return rc;
	if (e.kind == META_KIND_DIR)
		rc = -EISDIR;
	bool old = false;
	if (rc == 0 && (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC) &&
	    fs->retire) {
		/* Descriptors read an older version: this one too, on the
		 * same inode, until the inode is retired (retire.c). */
		struct fs_file *of = fs_old_version_open(fs, key, &e);
		if (of && fs_retire_path(fs, path, of)) {
			meta_entry_cleanup(&e);
			fs_handle_entry(of, &e);
			old = true;
		}
		if (of)
			fs_file_put(fs, of);
	}
	if (rc == 0)
		rc = fs_file_get(fs, key, &e, &f);
	if (rc == 0 && !(fi->flags & O_TRUNC))
		fi->keep_cache = old || fs_kc_keep(fs, key, e.etag);
	bool pending = rc == 0 && !e.etag[0] && upload_is_pending(fs->up, key);
	meta_entry_cleanup(&e);
	if (rc < 0)
		return rc;
	if (pending) {
		/* Not in S3 yet: its bytes are the engine's staged copy. */
		pthread_mutex_lock(&f->lock);
		rc = f->staged ? 0 : stage_pending(fs, f);
		pthread_mutex_unlock(&f->lock);
		if (rc < 0) {
			fs_file_put(fs, f);
			return rc;
		}
	}
	if (fi->flags & O_TRUNC) {
		pthread_mutex_lock(&f->lock);
		rc = ensure_staged(fs, f, false);
		if (rc == 0 && ftruncate(f->fd, 0) < 0)
			rc = -errno;
		if (rc == 0)
			f->dirty = true;
		pthread_mutex_unlock(&f->lock);
	}
	if (rc < 0) {
		fs_file_put(fs, f);
		return rc;
	}
	fs_file_opened(fs, f, fi);
	return 0;
}

int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	struct fuse_context *cx = fuse_get_context();
	char key[OBJMAP_KEY_BUF];
	struct meta_entry e;
	struct fs_file *f;
	struct timespec now;
	int rc;

	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, true, &cp);
	if (rc != 0)
		return rc < 0 ? rc : fs_chain_create(fs, &cp, path, mode, fi);
	if (!objmap_file_name_ok(path))
		return -EINVAL; /* it would list as an s3fs legacy directory */
	rc = fs_key(fs, path, OBJMAP_FILE, key);
	if (rc < 0)
		return rc;
	clock_gettime(CLOCK_REALTIME, &now);
	struct s3attr a = { .mode = S_IFREG | (mode & 07777),
			    .uid = cx->uid,
			    .gid = cx->gid,
			    .mtime = now,
			    .ctime = now,
			    .atime = now };
	fs_attr_entry(&a, META_KIND_FILE, 0, "", &e);
	rc = fs_file_get(fs, key, &e, &f);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&f->lock);
	rc = ensure_staged(fs, f, false);
	if (rc == 0 && ftruncate(f->fd, 0) < 0)
		rc = -errno;
	if (rc == 0) {
		f->attr = a;
		f->dirty = true; /* uploaded at close even if nothing is written */
	}
	pthread_mutex_unlock(&f->lock);
	if (rc < 0) {
		fs_file_put(fs, f);
		return rc;
	}
	e.last_modified = 0;
	fs_cached(meta_cache_upsert(fs->mc, key, &e, NULL));
	fs_file_opened(fs, f, fi);
	return 0;
}

int fs_mem_sink_write(void *arg, const void *data, size_t n)
{
	struct fs_mem_sink *s = arg;
	if (n > s->cap - s->len)
		return -EPROTO; /* more than the range asked for */
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	return 0;
}

int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	struct fs_file *f = fh(fi);
	int rc;

	pthread_mutex_lock(&f->lock);
	if (f->staged) {
		ssize_t n = pread(f->fd, buf, size, off);
		rc = n < 0 ? -errno : (int)n;
	} else {
		rc = fs_ra_read(fs, f, buf, size, (uint64_t)off);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	struct fs_file *f = fh(fi);
	int rc;

	(void)path;
	pthread_mutex_lock(&f->lock);
	rc = f->cf.ch && f->cf.committed && f->cf.kind != CHAIN_CONTENT
		     ? -EPERM
		     : ensure_staged(fs, f, true);
	if (rc == 0) {
		f->cf.written = true;
		ssize_t n = pwrite(f->fd, buf, size, off);
		rc = n < 0 ? -errno : (int)n;
	}
	if (rc > 0) {
		f->dirty = true;
		clock_gettime(CLOCK_REALTIME, &f->attr.mtime);
		f->attr.ctime = f->attr.mtime;
		fs_stream_wrote(fs, f, (uint64_t)off, (size_t)rc);
		fs_pc_touch(fs, f, (uint64_t)off, (uint64_t)rc);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* Truncate an open file's staged content (f->lock held). */
static int truncate_locked(struct s3vfs *fs, struct fs_file *f, off_t size)
{
	int rc = ensure_staged(fs, f, size > 0);
	if (size != 0 || f->stream.upload_id)
		fs_stream_break(f);
	fs_pc_off(f); /* the parts past the new end are not the staged version's */
	if (rc == 0 && ftruncate(f->fd, size) < 0)
		rc = -errno;
	if (rc == 0) {
		f->dirty = true;
		clock_gettime(CLOCK_REALTIME, &f->attr.mtime);
		f->attr.ctime = f->attr.mtime;
	}
	return rc;
}

int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	char key[OBJMAP_KEY_BUF];
	struct meta_entry e;
	struct fs_file *f;
	int rc;

	if (fi) {
		f = fh(fi);
		pthread_mutex_lock(&f->lock);
		rc = f->cf.ch && f->cf.committed && f->cf.kind != CHAIN_CONTENT
			     ? -EPERM
			     : truncate_locked(fs, f, size);
		if (rc == 0 && f->cf.ch)
			f->cf.written = true;
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, false, &cp);
	if (rc < 0)
		return rc;
	if (rc == 1 && cp.kind == CHAIN_CONTENT)
		return cp.head_file ? -EPERM : fs_content_truncate(fs, &cp, size);
	if (rc == 1) {
		/* Only an append still open may be cut; history may not. */
		if (fs_key(fs, path, OBJMAP_FILE, key) < 0 || !(f = fs_chain_pending(fs, key)))
			return -EPERM;
		pthread_mutex_lock(&f->lock);
		rc = f->cf.ch && !f->cf.committed ? truncate_locked(fs, f, size) : -EPERM;
		pthread_mutex_unlock(&f->lock);
		fs_file_put(fs, f);
		return rc;
	}
	/* truncate(2) of a path: stage, cut, upload now (the file is closed). */
	rc = fs_key(fs, path, OBJMAP_FILE, key);
	if (rc == 0)
		rc = fs_lookup(fs, path, &e);
	if (rc < 0)
		return rc;
	rc = e.kind == META_KIND_DIR ? -EISDIR : fs_file_get(fs, key, &e, &f);
	meta_entry_cleanup(&e);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&f->lock);
	rc = truncate_locked(fs, f, size);
	if (rc == 0)
		rc = fs_file_flush_locked(fs, f);
	pthread_mutex_unlock(&f->lock);
	fs_file_put(fs, f);
	return rc;
}

int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	struct fs_file *f = fh(fi);
	int rc;

	(void)path;
	pthread_mutex_lock(&f->lock);
	rc = fs_file_flush_locked(fs, f);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	struct fs_file *f = fh(fi);
	int rc;

	(void)path;
	(void)datasync;
	pthread_mutex_lock(&f->lock);
	rc = f->cf.ch ? fs_chain_flush_locked(fs, f, true) : fs_file_flush_locked(fs, f);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	struct fs_file *f = fh(fi);

	/* close() already got flush's answer; this is the last chance for
	 * writes through a descriptor that was never flushed (mmap). */
	pthread_mutex_lock(&f->lock);
	int rc = f->cf.ch ? fs_chain_flush_locked(fs, f, true) : fs_file_flush_locked(fs, f);
	if (rc < 0 && !f->cf.ch)
		log_error("%s: upload at release failed", path);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&fs->open_lock);
	f->opens--;
	bool gone = f->superseded && f->opens == 0;
	pthread_mutex_unlock(&fs->open_lock);
	if (gone) /* its hidden name, if it was retired, goes too */
		fs_retire_released(fs, f);
	fs_file_put(fs, f);
	return 0;
}

int fs_unlink(const char *path)
{
	struct s3vfs *fs = fs_ctx();
	char key[OBJMAP_KEY_BUF];
	struct aws_error err = { 0 };
	int rc;

	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, false, &cp);
	if (rc == 1 && cp.kind == CHAIN_CONTENT)
		return cp.head_file ? -EPERM : fs_content_unlink(fs, &cp);
	if (rc != 0) {
		struct meta_entry e;
		if (rc < 0 || (rc = fs_chain_lookup(fs, &cp, &e)) < 0)
			return rc;
		return -EPERM; /* history is immutable */
	}
	rc = fs_key(fs, path, OBJMAP_FILE, key);
	if (rc < 0)
		return rc == -EPERM ? -ENOENT : rc;
	/* POSIX: an open file stays readable after unlink, so keep a local
	 * copy of its content first, and never upload it again. */
	struct fs_file *f = fs_open_find(fs, key);
	if (f) {
		pthread_mutex_lock(&f->lock);
		rc = ensure_staged(fs, f, true);
		pthread_mutex_unlock(&f->lock);
	}
	if (rc == 0)
		rc = s3_delete(fs->s3, key, &err);
	if (rc == 0 && f) {
		pthread_mutex_lock(&f->lock);
		f->unlinked = true;
		pthread_mutex_unlock(&f->lock);
	}
	if (rc == 0 && fs->dc)
		fs_cached(datacache_invalidate(fs->dc, key));
	if (f)
		fs_file_put(fs, f);
	if (rc < 0) {
		char msg[512];
		log_error("unlink %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
		return rc;
	}
	fs_cached(meta_cache_mark_negative(fs->mc, key, NULL));
	return 0;
}

int fs_symlink(const char *target, const char *path)
{
	struct s3vfs *fs = fs_ctx();
	struct fuse_context *cx = fuse_get_context();
	char key[OBJMAP_KEY_BUF], etag[S3_ETAG_MAX];
	struct meta_entry e;
	struct timespec now;
	int rc;

	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, true, &cp);
	if (rc != 0)
		return rc < 0 ? rc : -EPERM;
	if (!objmap_file_name_ok(path))
		return -EINVAL;
	rc = fs_key(fs, path, OBJMAP_FILE, key);
	if (rc < 0)
		return rc;
	clock_gettime(CLOCK_REALTIME, &now);
	struct s3attr a = { .mode = S_IFLNK | 0777,
			    .uid = cx->uid,
			    .gid = cx->gid,
			    .mtime = now,
			    .ctime = now,
			    .atime = now };
	struct http_body body = { .data = target, .fd = -1, .len = strlen(target) };
	rc = fs_put_object(fs, key, &body, &a, NULL, 0, NULL, etag);
	if (rc < 0)
		return rc;
	fs_attr_entry(&a, META_KIND_SYMLINK, body.len, etag, &e);
	e.last_modified = 0;
	e.symlink = (char *)target;
	fs_cached(meta_cache_upsert(fs->mc, key, &e, NULL));
	return 0;
}

int fs_readlink(const char *path, char *buf, size_t size)
{
	struct s3vfs *fs = fs_ctx();
	char key[OBJMAP_KEY_BUF];
	struct meta_entry e;
	struct aws_error err;
	int rc;

	if (size == 0)
		return -EINVAL;
	rc = fs_key(fs, path, OBJMAP_FILE, key);
	if (rc == 0)
		rc = fs_lookup(fs, path, &e);
	if (rc < 0)
		return rc;
	if (e.symlink) {
		snprintf(buf, size, "%s", e.symlink);
		meta_entry_cleanup(&e);
		return 0;
	}
	meta_entry_cleanup(&e);
	struct fs_mem_sink s = { .buf = buf, .cap = size - 1 };
	struct s3_get_opts o = { .len = size - 1 };
	rc = s3_get(fs->s3, key, &o, fs_mem_sink_write, &s, NULL, &err);
	if (rc < 0)
		return rc;
	buf[s.len] = '\0';
	return 0;
}
