// SPDX-License-Identifier: MIT
/*
 * node: what a path is. Resolves a path to its attributes through the
 * metadata cache, revalidating with a conditional HEAD after stat_ttl and
 * asking S3 only what the cache cannot answer:
 *
 *   fresh cache entry (file or directory)       -> 0 requests
 *   path in a directory whose listing is fresh  -> 0 requests (negative)
 *   stale entry with an ETag                    -> HEAD If-None-Match (304 keeps it)
 *   unknown                                     -> HEAD key, then HEAD key/ and
 *                                                  LIST key/ (max 1) for a directory
 *
 * A file and a directory of the same name: the directory wins, as in s3fs.
 * Owns the conversion of cache entries to struct stat and of S3 metadata to
 * entries. Knows nothing of open files beyond asking ops_file for them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "s3vfs/fs.h"
#include "s3vfs/log.h"

/*
 * How long after a listing its default attributes are served as they are.
 * libfuse's high-level readdirplus asks getattr for every entry it returns,
 * right after our readdir (and `ls -l` then stats each from the kernel's
 * copy): those calls must cost nothing, so that a cold `ls -l` costs its
 * LIST pages and no HEAD (DESIGN.md: defaults apply until the metadata is
 * fetched). A getattr later than this learns the real metadata with one
 * HEAD, cached by ETag from then on, across remounts too.
 */
#define LISTING_WINDOW_MS 2000

void fs_cache_result(int rc, const char *what)
{
	if (rc < 0 && rc != -EAGAIN)
		log_warn("metadata cache: %s: %s", what, strerror(-rc));
}

int fs_key(struct s3vfs *fs, const char *path, enum objmap_type t, char out[OBJMAP_KEY_BUF])
{
	return objmap_path_to_key(&fs->map, path, t, out);
}

void fs_defaults(const struct s3vfs *fs, bool is_dir, time_t last_modified,
		 struct s3attr_defaults *out)
{
	out->uid = fs->uid;
	out->gid = fs->gid;
	out->umask = fs->umask;
	out->last_modified = last_modified;
	out->is_dir = is_dir;
}

static uint64_t fnv_add(uint64_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

static ino_t entry_ino(const char *dir, const char *name, const struct meta_entry *e)
{
	uint64_t h = 1469598103934665603ull;

	if (!name && strcmp(dir, "/") == 0)
		return 1; /* the root's, as the kernel knows it */
	h = fnv_add(h, dir);
	if (name) {
		if (strcmp(dir, "/") != 0)
			h = fnv_add(h, "/");
		h = fnv_add(h, name);
	}
	if (e->kind == META_KIND_FILE && e->etag[0]) {
		h = (h ^ 0xffu) * 1099511628211ull; /* no path byte is 0xff in UTF-8 */
		h = fnv_add(h, e->etag);
	}
	/* 0 is "no entry" to readdir(3) users, 1 the root, 0xffffffff libfuse's "unknown" */
	if (h <= 1 || h == 0xffffffffu)
		h += 2;
	return (ino_t)h;
}

void fs_entry_to_stat(const struct s3vfs *fs, const char *dir, const char *name,
		      const struct meta_entry *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = entry_ino(dir, name, e);
	st->st_mode = e->mode;
	if ((st->st_mode & S_IFMT) == 0) {
		if (e->kind == META_KIND_DIR)
			st->st_mode |= S_IFDIR;
		else if (e->kind == META_KIND_SYMLINK)
			st->st_mode |= S_IFLNK;
		else
			st->st_mode |= S_IFREG;
	}
	/* The kind decided by the cache wins over a stray type in the mode. */
	if (e->kind == META_KIND_DIR && !S_ISDIR(st->st_mode))
		st->st_mode = S_IFDIR | (st->st_mode & 07777);
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_size = S_ISDIR(st->st_mode) ? 4096 : (off_t)e->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
	st->st_mtim = e->mtime;
	st->st_ctim = e->ctime.tv_sec ? e->ctime : e->mtime;
	st->st_atim = e->mtime;
	(void)fs;
}

/* An entry for an object without metadata (from a listing or implied). */
static void default_entry(const struct s3vfs *fs, enum meta_kind kind, time_t lm,
			  struct meta_entry *e)
{
	struct s3attr_defaults d;
	struct s3attr a;

	memset(e, 0, sizeof(*e));
	fs_defaults(fs, kind == META_KIND_DIR, lm ? lm : fs->start_time, &d);
	s3attr_decode(NULL, 0, &d, &a);
	e->kind = kind;
	e->mode = a.mode;
	e->uid = a.uid;
	e->gid = a.gid;
	e->mtime = a.mtime;
	e->ctime = a.ctime;
	e->last_modified = lm;
}

static void root_entry(const struct s3vfs *fs, struct meta_entry *e)
{
	default_entry(fs, META_KIND_DIR, fs->start_time, e);
}

/* Turn a HEAD result into a cache entry and the HEAD info to remember. */
static void info_to_entry(const struct s3vfs *fs, const char *key,
			  const struct s3_object_info *info, struct meta_entry *e,
			  struct meta_headinfo *hi)
{
	const struct s3attr_kv *kv = (const struct s3attr_kv *)info->meta;
	bool is_dir = s3attr_is_dir(key, info->size, info->content_type, kv, info->nmeta);
	struct s3attr_defaults d;
	struct s3attr a;

	fs_defaults(fs, is_dir, info->last_modified, &d);
	s3attr_decode(kv, info->nmeta, &d, &a);
	memset(e, 0, sizeof(*e));
	e->kind = S_ISDIR(a.mode)   ? META_KIND_DIR
		  : S_ISLNK(a.mode) ? META_KIND_SYMLINK
				    : META_KIND_FILE;
	e->size = info->size;
	e->mode = a.mode;
	e->uid = a.uid;
	e->gid = a.gid;
	e->mtime = a.mtime;
	e->ctime = a.ctime;
	snprintf(e->etag, sizeof(e->etag), "%s", info->etag);
	e->last_modified = info->last_modified;
	e->meta_known = true;
	memset(hi, 0, sizeof(*hi));
	hi->mode = a.mode;
	hi->uid = a.uid;
	hi->gid = a.gid;
	hi->mtime = a.mtime;
	hi->ctime = a.ctime;
	hi->atime = a.atime;
	const char *x = s3attr_kv_get(kv, info->nmeta, "xattr");
	if (x) {
		hi->blob = (void *)x; /* borrowed for headinfo_put */
		hi->blob_len = strlen(x);
	}
}

int fs_head_install(struct s3vfs *fs, const char *key, struct meta_entry *out,
		    struct s3_object_info *out_info)
{
	struct s3_object_info info = { 0 };
	struct meta_headinfo hi;
	struct meta_entry e;
	struct meta_fill fill;
	struct aws_error err;
	int rc;

	meta_cache_fill_begin(fs->mc, &fill);
	rc = s3_head(fs->s3, key, NULL, &info, &err);
	size_t klen = strlen(key);
	if ((rc == 0 || rc == -ENOENT) && klen > 0 && key[klen - 1] == '/')
		fs_chain_note_marker(fs, key, rc == 0 ? &info : NULL); /* free knowledge */
	if (rc == -ENOENT) {
		fs_cached(meta_cache_mark_negative(fs->mc, key, &fill));
		return rc;
	}
	if (rc < 0) {
		char msg[512];
		log_error("HEAD %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
		return rc;
	}
	info_to_entry(fs, key, &info, &e, &hi);
	fs_cached(meta_cache_headinfo_put(fs->mc, key, e.etag, e.last_modified, &hi));
	fs_cached(meta_cache_upsert(fs->mc, key, &e, &fill));
	if (out)
		*out = e;
	if (out_info)
		*out_info = info;
	else
		s3_object_info_cleanup(&info);
	return 0;
}

/* Revalidate a stale entry with a conditional HEAD. 0: *e is current. */
static int revalidate(struct s3vfs *fs, const char *key, struct meta_entry *e)
{
	struct s3_object_info info = { 0 };
	struct meta_fill fill;
	struct aws_error err;
	int rc;

	if (!e->etag[0] || !e->meta_known) {
		meta_entry_cleanup(e);
		return fs_head_install(fs, key, e, NULL);
	}
	meta_cache_fill_begin(fs->mc, &fill);
	rc = s3_head(fs->s3, key, e->etag, &info, &err);
	if (rc == 0 && info.not_modified) {
		fs_cached(meta_cache_touch(fs->mc, key, e->etag, &fill));
		return 0;
	}
	s3_object_info_cleanup(&info);
	meta_entry_cleanup(e);
	if (rc == -ENOENT) {
		fs_cached(meta_cache_mark_negative(fs->mc, key, &fill));
		return rc;
	}
	/* Changed: fetch it whole (the 200 of a conditional HEAD would do,
	 * but one code path for installing is worth the request). */
	return rc < 0 ? rc : fs_head_install(fs, key, e, NULL);
}

static int count_entry(void *arg, const struct s3_list_entry *e)
{
	(void)e;
	(*(unsigned *)arg)++;
	return 0;
}

/* Is dkey ("a/b/") a directory: a marker object, or keys under it? */
static int probe_dir(struct s3vfs *fs, const char *dkey, struct meta_entry *out)
{
	struct s3_list_opts lo = { .prefix = dkey, .max_keys = 1 };
	struct meta_fill fill;
	struct aws_error err;
	char *next = NULL;
	unsigned found = 0;
	int rc;

	rc = fs_head_install(fs, dkey, out, NULL);
	if (rc != -ENOENT)
		return rc;
	meta_cache_fill_begin(fs->mc, &fill);
	rc = s3_list_page(fs->s3, &lo, count_entry, &found, &next, &err);
	free(next);
	if (rc < 0)
		return rc;
	if (found == 0) {
		fs_cached(meta_cache_mark_negative(fs->mc, dkey, &fill));
		return -ENOENT;
	}
	default_entry(fs, META_KIND_DIR, 0, out);
	fs_cached(meta_cache_upsert(fs->mc, dkey, out, &fill));
	return 0;
}

/* The staged state of an open file, if it has one. */
static bool open_file_entry(struct s3vfs *fs, const char *key, struct meta_entry *out)
{
	struct fs_file *f = fs_open_find(fs, key);
	bool found = false;

	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	if (f->staged) {
		struct stat st;
		memset(out, 0, sizeof(*out));
		out->kind = META_KIND_FILE;
		out->size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : f->size;
		out->mode = f->attr.mode;
		out->uid = f->attr.uid;
		out->gid = f->attr.gid;
		out->mtime = f->attr.mtime;
		out->ctime = f->attr.ctime;
		out->meta_known = true;
		found = true;
	}
	pthread_mutex_unlock(&f->lock);
	fs_file_put(fs, f);
	return found;
}

static bool fresh(const struct s3vfs *fs, int64_t age_ms)
{
	return age_ms >= 0 && age_ms < fs->ttl_ms;
}

/* The file form of a key: cache, then revalidation or HEAD. */
static int lookup_file(struct s3vfs *fs, const char *fkey, struct meta_entry *out)
{
	int64_t age = -1;
	int rc = meta_cache_lookup(fs->mc, fkey, out, &age);

	if (rc == -ENOENT)
		return fs_head_install(fs, fkey, out, NULL);
	if (rc < 0)
		return rc;
	if (out->kind == META_KIND_NEGATIVE) {
		meta_entry_cleanup(out);
		return fresh(fs, age) ? -ENOENT : fs_head_install(fs, fkey, out, NULL);
	}
	if (fresh(fs, age) &&
	    (out->meta_known || out->kind == META_KIND_DIR || age < LISTING_WINDOW_MS))
		return 0;
	if (fresh(fs, age)) {
		/* Listed, never HEADed, asked for after the listing: learn its
		 * metadata once; keep the listing's answer if that fails. */
		struct meta_entry full;
		if (fs_head_install(fs, fkey, &full, NULL) == 0) {
			meta_entry_cleanup(out);
			*out = full;
		}
		return 0;
	}
	return revalidate(fs, fkey, out);
}

/* Can the cache answer for path at once (so no request is needed)? */
static bool cache_answers(struct s3vfs *fs, const char *fkey, const char *dkey)
{
	struct meta_entry e;
	int64_t age = -1;
	bool yes = false;

	if (dkey && meta_cache_lookup(fs->mc, dkey, &e, &age) == 0) {
		yes = fresh(fs, age) && e.kind == META_KIND_DIR;
		meta_entry_cleanup(&e);
	}
	if (!yes && meta_cache_lookup(fs->mc, fkey, &e, &age) == 0) {
		yes = fresh(fs, age);
		meta_entry_cleanup(&e);
	}
	return yes;
}

int fs_lookup(struct s3vfs *fs, const char *path, struct meta_entry *out)
{
	char fkey[OBJMAP_KEY_BUF], dkey[OBJMAP_KEY_BUF];
	struct meta_entry d;
	int64_t age = -1;
	int rc;

	if (strcmp(path, "/") == 0) {
		root_entry(fs, out);
		return 0;
	}
	rc = fs_key(fs, path, OBJMAP_FILE, fkey);
	if (rc < 0)
		return rc == -EPERM ? -ENOENT : rc;
	/* A 1024-byte key can be a file but not a directory (its marker would
	 * need 1025): then only the file form is asked for. */
	bool dir_ok = fs_key(fs, path, OBJMAP_DIR, dkey) == 0;
	if (open_file_entry(fs, fkey, out))
		return 0;
	/* In an events chain the names are the chain's. Whether the parent is
	 * one is asked of S3 only when the cache cannot answer anyway. */
	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, false, &cp);
	if (rc == 0 && !cache_answers(fs, fkey, dir_ok ? dkey : NULL))
		rc = fs_chain_route(fs, path, true, &cp);
	if (rc != 0)
		return rc < 0 ? rc : fs_chain_lookup(fs, &cp, out);
	/* A chain's directory stays one (a marking is for good): no revalidation. */
	if (dir_ok && fs_chain_known(fs, dkey)) {
		if (meta_cache_lookup(fs->mc, dkey, &d, &age) == 0) {
			if (d.kind == META_KIND_DIR) {
				*out = d;
				return 0;
			}
			meta_entry_cleanup(&d);
		}
		default_entry(fs, META_KIND_DIR, 0, out);
		return 0;
	}
	/* The directory form, from the cache: a fresh directory entry wins
	 * over any file of the same name; a fresh negative one saves the probe. */
	bool dir_known = false;
	if (dir_ok && meta_cache_lookup(fs->mc, dkey, &d, &age) == 0) {
		if (fresh(fs, age) && d.kind == META_KIND_DIR) {
			*out = d;
			return 0;
		}
		dir_known = fresh(fs, age);
		meta_entry_cleanup(&d);
	}
	rc = lookup_file(fs, fkey, out);
	if (rc != -ENOENT || !dir_ok || dir_known)
		return rc;
	return probe_dir(fs, dkey, out);
}

/* Attributes of an open file, by its handle (it may be unlinked by now). */
void fs_handle_entry(struct fs_file *f, struct meta_entry *e)
{
	struct stat st;

	pthread_mutex_lock(&f->lock);
	memset(e, 0, sizeof(*e));
	e->kind = META_KIND_FILE;
	e->size = f->staged && fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : f->size;
	e->mode = f->attr.mode;
	e->uid = f->attr.uid;
	e->gid = f->attr.gid;
	e->mtime = f->attr.mtime;
	e->ctime = f->attr.ctime;
	if (!f->staged) /* the version it reads: the inode number says which */
		snprintf(e->etag, sizeof(e->etag), "%s", f->etag);
	pthread_mutex_unlock(&f->lock);
}

/*
 * A plain file's new version while a descriptor reads the old one: the path
 * shows the old version until its inode is retired (retire.c).
 */
static void old_version_shown(struct s3vfs *fs, const char *path, struct meta_entry *e)
{
	char key[OBJMAP_KEY_BUF];
	struct fs_file *f;

	if (!fs->retire || e->kind != META_KIND_FILE || !e->etag[0] ||
	    fs_key(fs, path, OBJMAP_FILE, key) < 0)
		return;
	f = fs_old_version_open(fs, key, e);
	if (!f)
		return;
	if (fs_retire_path(fs, path, f)) {
		meta_entry_cleanup(e);
		fs_handle_entry(f, e);
	}
	fs_file_put(fs, f);
}

int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct s3vfs *fs = fs_ctx();
	struct meta_entry e;
	int rc = 0;

	struct fs_file *f = fi ? (struct fs_file *)(uintptr_t)fi->fh : NULL;
	if (f) {
		fs_handle_entry(f, &e);
		fs_content_note_open(fs, path, f);
	} else {
		rc = fs_lookup(fs, path, &e);
		if (rc == 0)
			old_version_shown(fs, path, &e);
	}
	if (rc < 0)
		return rc;
	/* (no path: the file was unlinked while open; its key names it) */
	fs_entry_to_stat(fs, path ? path : f->key, NULL, &e, st);
	meta_entry_cleanup(&e);
	return 0;
}
