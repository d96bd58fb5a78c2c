// SPDX-License-Identifier: MIT
/*
 * ops_attr: attribute and extended-attribute changes, statfs, access, link.
 * A change to an object S3 already holds is a server-side CopyObject onto
 * itself with the metadata directive REPLACE, after a HEAD that fetches the
 * current pairs so that pairs we do not own survive (s3fs's and rclone's and
 * anyone's). A change to a file open with unsent writes only updates what
 * its upload will carry. The root has no object: changes to it succeed and
 * do nothing. "user.s3vfs.stats" on the root reads the mount's counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "s3vfs/chain.h"
#include "s3vfs/fs.h"
#include "s3vfs/log.h"
#include "s3vfs/upload.h"

#define STATS_XATTR "user.s3vfs.stats"

/* What to change: attributes (which: S3ATTR_* bits) and/or xattrs. */
struct change {
	unsigned which;
	struct s3attr attr; /* fields named by which */
	/* xattr edit: set name=value (value != NULL) or remove name */
	const char *xname;
	const char *xvalue;
	size_t xlen;
	int xflags;
	/* metadata pair edit: set mname=mvalue */
	const char *mname;
	const char *mvalue;
};

/* Set name=value in pairs, replacing a pair of that name. */
static int kvlist_set(struct s3attr_kvlist *l, const char *name, const char *value)
{
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (strcasecmp(l->kv[i].name, name) == 0) {
			free(l->kv[i].name);
			free(l->kv[i].value);
			l->kv[i].name = n;
			l->kv[i].value = v;
			return 0;
		}
	}
	struct s3attr_kv *kv = realloc(l->kv, (l->n + 1) * sizeof(*kv));
	if (!kv) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	l->kv = kv;
	l->kv[l->n].name = n;
	l->kv[l->n].value = v;
	l->n++;
	return 0;
}

static void apply_attr(const struct change *c, struct s3attr *a)
{
	if (c->which & S3ATTR_MODE)
		a->mode = (a->mode & S_IFMT) | (c->attr.mode & 07777);
	if (c->which & S3ATTR_UID)
		a->uid = c->attr.uid;
	if (c->which & S3ATTR_GID)
		a->gid = c->attr.gid;
	if (c->which & S3ATTR_MTIME)
		a->mtime = c->attr.mtime;
	if (c->which & S3ATTR_ATIME)
		a->atime = c->attr.atime;
	clock_gettime(CLOCK_REALTIME, &a->ctime);
}

/* Open with unsent writes: the change rides with the upload. 1 if taken. */
static int change_open_file(struct s3vfs *fs, const char *key, const struct change *c)
{
	struct fs_file *f = fs_open_find(fs, key);
	int taken = 0;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	if (f->dirty && !c->xname) {
		apply_attr(c, &f->attr);
		fs_stream_break(f); /* an upload under way carries the old attributes */
		taken = 1;
	} else if (!c->xname) {
		apply_attr(c, &f->attr); /* keep the handle in step, then rewrite */
	}
	pthread_mutex_unlock(&f->lock);
	fs_file_put(fs, f);
	return taken;
}

static int edit_xattrs(const struct change *c, const struct s3_object_info *info,
		       struct s3attr_xattrs *x)
{
	const char *cur = s3attr_kv_get((const struct s3attr_kv *)info->meta, info->nmeta, "xattr");
	int rc = cur ? s3attr_xattrs_decode(cur, x) : 0;
	if (rc < 0)
		return rc;
	if (c->xvalue)
		return s3attr_xattrs_set(x, c->xname, c->xvalue, c->xlen, c->xflags);
	return s3attr_xattrs_remove(x, c->xname);
}

/* HEAD, change, CopyObject onto itself; or PUT a marker for an implicit dir. */
static int rewrite(struct s3vfs *fs, const char *key, bool is_dir, const struct change *c)
{
	struct s3_object_info info = { 0 };
	struct s3attr_kvlist pairs = { 0 };
	struct s3attr_xattrs x = { 0 };
	struct s3attr_defaults d;
	struct aws_error err;
	struct s3attr a;
	char etag[S3_ETAG_MAX];
	int rc;

	rc = s3_head(fs->s3, key, NULL, &info, &err);
	if (rc == -ENOENT && is_dir)
		info.last_modified = time(NULL); /* implicit: a marker will hold it */
	else if (rc < 0)
		return rc;
	bool exists = rc == 0;
	const struct s3attr_kv *kv = (const struct s3attr_kv *)info.meta;
	fs_defaults(fs, is_dir, info.last_modified, &d);
	s3attr_decode(kv, info.nmeta, &d, &a);
	apply_attr(c, &a);
	unsigned which = S3ATTR_STAT;
	rc = 0;
	if (c->xname) {
		rc = edit_xattrs(c, &info, &x);
		which |= S3ATTR_XATTR;
	}
	if (rc == 0)
		rc = s3attr_merge(kv, info.nmeta, &a, which, &x, &pairs);
	if (rc == 0 && c->mname)
		rc = kvlist_set(&pairs, c->mname, c->mvalue);
	struct s3_put_opts po = {
		.content_type = info.content_type[0] ? info.content_type
				: is_dir	     ? "application/x-directory"
						     : NULL,
		.meta = (const struct s3_meta *)pairs.kv,
		.nmeta = pairs.n,
	};
	if (rc == 0 && exists)
		rc = s3_copy(fs->s3, key, key, &po, info.etag, etag, &err);
	else if (rc == 0)
		rc = s3_put(fs->s3, key, NULL, &po, etag, &err);
	if (rc == -EAGAIN)
		rc = -EBUSY; /* changed under us between HEAD and copy */
	if (rc < 0 && (err.status || err.code[0])) {
		char msg[512];
		log_error("metadata update of %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
	}
	/* Forget what we knew: the next lookup HEADs the new version. */
	fs_cached(meta_cache_delete(fs->mc, key));
	s3attr_xattrs_cleanup(&x);
	s3attr_kvlist_cleanup(&pairs);
	s3_object_info_cleanup(&info);
	return rc;
}

static int change_path(const char *path, const struct change *c)
{
	struct s3vfs *fs = fs_ctx();
	char key[OBJMAP_KEY_BUF];
	struct meta_entry e;
	int rc;

	if (strcmp(path, "/") == 0)
		return c->xname ? -ENOTSUP : 0;
	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, false, &cp);
	if (rc < 0)
		return rc;
	if (rc == 1 && cp.kind == CHAIN_CONTENT) {
		if (c->xname || cp.head_file)
			return -EPERM;
		if (c->which & (S3ATTR_UID | S3ATTR_GID) &&
		    !(c->which & (S3ATTR_MODE | S3ATTR_MTIME)))
			return 0; /* a content tree keeps no owners: they are the mount's */
		/* A file open for writing carries the change to its save. */
		struct fs_file *f = NULL;
		if (fs_key(fs, path, OBJMAP_FILE, key) == 0 && (f = fs_chain_pending(fs, key))) {
			pthread_mutex_lock(&f->lock);
			apply_attr(c, &f->attr);
			f->cf.written = true; /* a change to save, even without a write */
			pthread_mutex_unlock(&f->lock);
			fs_file_put(fs, f);
			return 0;
		}
		mode_t m = c->attr.mode;
		return fs_content_attr(fs, &cp, c->which & S3ATTR_MODE ? &m : NULL,
				       c->which & S3ATTR_MTIME ? &c->attr.mtime : NULL);
	}
	if (rc == 1) {
		/* An append still open takes attributes (touch); history does not. */
		struct fs_file *f = NULL;
		if (!c->xname && fs_key(fs, path, OBJMAP_FILE, key) == 0 &&
		    (f = fs_chain_pending(fs, key))) {
			pthread_mutex_lock(&f->lock);
			apply_attr(c, &f->attr);
			pthread_mutex_unlock(&f->lock);
			fs_file_put(fs, f);
			return 0;
		}
		rc = fs_chain_lookup(fs, &cp, &e);
		if (rc == 0)
			meta_entry_cleanup(&e);
		return rc < 0 ? rc : -EPERM;
	}
	rc = fs_lookup(fs, path, &e);
	if (rc < 0)
		return rc;
	bool is_dir = e.kind == META_KIND_DIR;
	meta_entry_cleanup(&e);
	rc = fs_key(fs, path, is_dir ? OBJMAP_DIR : OBJMAP_FILE, key);
	if (rc < 0)
		return rc;
	if (!is_dir && change_open_file(fs, key, c))
		return 0;
	if (!is_dir && c->xname) {
		/* Unsent data goes first, so the copy carries it. */
		struct fs_file *f = fs_open_find(fs, key);
		if (f) {
			pthread_mutex_lock(&f->lock);
			rc = fs_file_flush_locked(fs, f);
			pthread_mutex_unlock(&f->lock);
			fs_file_put(fs, f);
			if (rc < 0)
				return rc;
		}
	}
	return rewrite(fs, key, is_dir, c);
}

int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct change c = { .which = S3ATTR_MODE, .attr.mode = mode };
	(void)fi;
	return change_path(path, &c);
}

int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct change c = { 0 };
	(void)fi;
	if (uid != (uid_t)-1) {
		c.which |= S3ATTR_UID;
		c.attr.uid = uid;
	}
	if (gid != (gid_t)-1) {
		c.which |= S3ATTR_GID;
		c.attr.gid = gid;
	}
	return c.which ? change_path(path, &c) : 0;
}

int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct change c = { 0 };
	struct timespec now;

	(void)fi;
	clock_gettime(CLOCK_REALTIME, &now);
	if (!tv || tv[1].tv_nsec != UTIME_OMIT) {
		c.which |= S3ATTR_MTIME;
		c.attr.mtime = !tv || tv[1].tv_nsec == UTIME_NOW ? now : tv[1];
	}
	if (!tv || tv[0].tv_nsec != UTIME_OMIT) {
		c.which |= S3ATTR_ATIME;
		c.attr.atime = !tv || tv[0].tv_nsec == UTIME_NOW ? now : tv[0];
	}
	return c.which ? change_path(path, &c) : 0;
}

int fs_set_dir_meta(struct s3vfs *fs, const char *dkey, const char *name, const char *value)
{
	struct change c = { .mname = name, .mvalue = value };
	return rewrite(fs, dkey, true, &c);
}

int fs_setxattr(const char *path, const char *name, const char *value, size_t size, int flags)
{
	if (strncmp(name, "user.", 5) != 0)
		return -ENOTSUP; /* S3 metadata cannot carry security or trusted xattrs */
	if (fs_chain_xattr(name))
		return fs_chain_setxattr(fs_ctx(), path, name, value, size);
	if (strncmp(name, "user.s3vfs.", 11) == 0)
		return -EPERM;
	struct change c = {
		.xname = name, .xvalue = value ? value : "", .xlen = size, .xflags = flags
	};
	return change_path(path, &c);
}

int fs_removexattr(const char *path, const char *name)
{
	if (strncmp(name, "user.s3vfs.", 11) == 0)
		return -EPERM;
	struct change c = { .xname = name };
	return change_path(path, &c);
}

/* The xattrs of path, from the remembered HEAD of its current version. */
static int load_xattrs(struct s3vfs *fs, const char *path, struct s3attr_xattrs *x)
{
	char key[OBJMAP_KEY_BUF];
	struct meta_headinfo hi;
	struct meta_entry e;
	int rc;

	rc = fs_lookup(fs, path, &e);
	if (rc < 0)
		return rc;
	rc = fs_key(fs, path, e.kind == META_KIND_DIR ? OBJMAP_DIR : OBJMAP_FILE, key);
	if (rc == 0 && meta_cache_headinfo_get(fs->mc, key, e.etag, e.last_modified, &hi) < 0) {
		meta_entry_cleanup(&e);
		rc = fs_head_install(fs, key, &e, NULL);
		if (rc == -ENOENT)
			return 0; /* an implicit directory: no xattrs */
		if (rc == 0)
			rc = meta_cache_headinfo_get(fs->mc, key, e.etag, e.last_modified, &hi);
	}
	meta_entry_cleanup(&e);
	if (rc == -ENOENT)
		return 0; /* the object changed meanwhile: report none rather than fail */
	if (rc < 0)
		return rc;
	if (hi.blob) {
		char *v = strndup(hi.blob, hi.blob_len);
		rc = v ? s3attr_xattrs_decode(v, x) : -ENOMEM;
		free(v);
	}
	meta_headinfo_cleanup(&hi);
	return rc;
}

static int copy_out(const void *data, size_t len, char *out, size_t size)
{
	if (size == 0)
		return (int)len;
	if (len > size)
		return -ERANGE;
	memcpy(out, data, len);
	return (int)len;
}

static int stats_json(struct s3vfs *fs, char *value, size_t size)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	atomic_store(&fs->stats.pending_uploads, upload_engine_pending(fs->up));
	int rc = stats_to_json(&fs->stats, &b);
	if (rc == 0)
		rc = copy_out(buf_str(&b), buf_len(&b), value, size);
	buf_cleanup(&b);
	return rc;
}

int fs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct s3vfs *fs = fs_ctx();
	struct s3attr_xattrs x = { 0 };
	int rc;

	if (strcmp(name, STATS_XATTR) == 0 && strcmp(path, "/") == 0)
		return stats_json(fs, value, size);
	if (fs_chain_xattr(name))
		return fs_chain_getxattr(fs, path, name, value, size);
	/* The kernel asks for security.capability on every write: we keep only
	 * what users set, so other namespaces are answered without a request. */
	if (strcmp(path, "/") == 0 || strncmp(name, "user.", 5) != 0)
		return -ENODATA;
	rc = load_xattrs(fs, path, &x);
	if (rc < 0)
		return rc;
	const struct s3attr_xattr *a = s3attr_xattrs_find(&x, name);
	rc = a ? copy_out(a->value, a->len, value, size) : -ENODATA;
	s3attr_xattrs_cleanup(&x);
	return rc;
}

int fs_listxattr(const char *path, char *list, size_t size)
{
	struct s3vfs *fs = fs_ctx();
	struct s3attr_xattrs x = { 0 };
	struct buf b;
	int rc = 0;

	buf_init(&b, 1 << 20);
	if (strcmp(path, "/") == 0)
		rc = buf_add(&b, STATS_XATTR, sizeof(STATS_XATTR));
	else
		rc = load_xattrs(fs, path, &x);
	for (size_t i = 0; rc == 0 && i < x.n; i++)
		rc = buf_add(&b, x.v[i].name, strlen(x.v[i].name) + 1);
	if (rc == 0)
		rc = copy_out(b.ptr ? b.ptr : "", buf_len(&b), list, size);
	buf_cleanup(&b);
	s3attr_xattrs_cleanup(&x);
	return rc;
}

int fs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	/* S3 has no capacity: report a large, constant one (1 PiB). */
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_blocks = (1ull << 50) / 4096;
	st->f_bfree = st->f_blocks;
	st->f_bavail = st->f_blocks;
	st->f_files = 1u << 30;
	st->f_ffree = st->f_files;
	st->f_favail = st->f_files;
	st->f_namemax = OBJMAP_NAME_MAX;
	return 0;
}

int fs_access(const char *path, int mask)
{
	struct s3vfs *fs = fs_ctx();
	struct meta_entry e;
	int rc = fs_lookup(fs, path, &e);

	(void)mask; /* permissions: the kernel checks them (default_permissions) */
	if (rc == 0)
		meta_entry_cleanup(&e);
	return rc;
}

int fs_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EPERM; /* S3 has no hard links */
}
