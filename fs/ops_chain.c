// SPDX-License-Identifier: MIT
/*
 * ops_chain: event-stream directories as the shell sees them. Knows which
 * directories are chains (the marker object's "s3vfs-chain" metadata), shows
 * an events chain as one read-only file per changeset named
 * "<version:08>-<name>" plus a hidden ".head", turns a file created in it
 * into an append committed when the file is closed, and refuses what would
 * change history. The protocol itself (commit, verification, link cache) is
 * meta/chain.c's; this file only maps paths and FUSE calls onto it.
 *
 * Which directory is a chain: a marking is permanent, so a known chain is
 * known for good; "not a chain" is trusted for stat_ttl. It is learned for
 * free from a HEAD of the directory's marker (node.c), from a listing that
 * shows no ".s3vfs/" folder (a marking always writes "<dir>.s3vfs/chain", so
 * a plain directory costs no extra request), from mkdir, and else by one
 * HEAD of the marker.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3vfs/chain.h"
#include "s3vfs/fs.h"
#include "s3vfs/log.h"

#define KIND_BUCKETS 1024
#define KIND_MAX     65536 /* entries before "not a chain" answers are dropped */
#define HEAD_NAME    ".head"
#define META_CHAIN   "s3vfs-chain"
#define META_SUBDIRS "s3vfs-chain-subdirs"
#define XATTR_CHAIN  "user.s3vfs.chain"
#define XATTR_SUBDIR "user.s3vfs.chain.subdirs"

struct kind_ent {
	struct kind_ent *next;
	int kind;	 /* enum chain_kind */
	int subdirs;	 /* the kind each new subdirectory gets */
	int64_t seen_ms; /* when learned; a chain is trusted for good */
	char key[];
};

struct fs_kinds {
	pthread_mutex_t lock;
	struct kind_ent *b[KIND_BUCKETS]; /* protected by lock */
	size_t n;			  /* protected by lock */
};

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

int fs_chains_init(struct s3vfs *fs)
{
	fs->kinds = calloc(1, sizeof(*fs->kinds));
	if (!fs->kinds)
		return -ENOMEM;
	pthread_mutex_init(&fs->kinds->lock, NULL);
	return 0;
}

void fs_chains_cleanup(struct s3vfs *fs)
{
	if (!fs->kinds)
		return;
	for (size_t i = 0; i < KIND_BUCKETS; i++) {
		while (fs->kinds->b[i]) {
			struct kind_ent *e = fs->kinds->b[i];
			fs->kinds->b[i] = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&fs->kinds->lock);
	free(fs->kinds);
	fs->kinds = NULL;
}

static bool is_plain(int kind, int subdirs)
{
	return kind == CHAIN_NONE && subdirs == CHAIN_NONE;
}

/* Drop the "not a chain" answers (they are only an optimization). */
static void kinds_trim_locked(struct fs_kinds *k)
{
	for (size_t i = 0; i < KIND_BUCKETS; i++) {
		struct kind_ent **pp = &k->b[i];
		while (*pp) {
			struct kind_ent *e = *pp;
			if (is_plain(e->kind, e->subdirs)) {
				*pp = e->next;
				free(e);
				k->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static void kind_set(struct s3vfs *fs, const char *dkey, int kind, int subdirs)
{
	struct fs_kinds *k = fs->kinds;
	size_t b = hash_key(dkey) % KIND_BUCKETS;
	struct kind_ent *e;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	for (e = k->b[b]; e; e = e->next)
		if (strcmp(e->key, dkey) == 0)
			break;
	if (!e && is_plain(kind, subdirs) && k->n >= KIND_MAX)
		kinds_trim_locked(k);
	if (!e) {
		size_t len = strlen(dkey) + 1;
		e = malloc(sizeof(*e) + len);
		if (!e) {
			pthread_mutex_unlock(&k->lock);
			return;
		}
		memcpy(e->key, dkey, len);
		e->next = k->b[b];
		k->b[b] = e;
		k->n++;
	}
	e->kind = kind;
	e->subdirs = subdirs;
	e->seen_ms = meta_cache_now_ms();
	pthread_mutex_unlock(&k->lock);
}

/* 1 and the kinds if known (a chain for good, a plain directory within
 * stat_ttl), else 0. */
static int kind_get(struct s3vfs *fs, const char *dkey, int *kind, int *subdirs)
{
	struct fs_kinds *k = fs->kinds;
	size_t b = hash_key(dkey) % KIND_BUCKETS;
	int found = 0;

	if (!dkey[0] || strcmp(dkey, fs->map.prefix) == 0) {
		*kind = *subdirs = CHAIN_NONE; /* the mount's root is never a chain */
		return 1;
	}
	if (!k)
		return 0;
	pthread_mutex_lock(&k->lock);
	for (struct kind_ent *e = k->b[b]; e; e = e->next) {
		if (strcmp(e->key, dkey) != 0)
			continue;
		bool trusted = (e->kind == CHAIN_EVENTS || e->kind == CHAIN_CONTENT ||
				e->subdirs != CHAIN_NONE) ||
			       meta_cache_now_ms() - e->seen_ms < fs->ttl_ms;
		if (trusted) {
			*kind = e->kind;
			*subdirs = e->subdirs;
			found = 1;
		}
		break;
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

/* The kinds a marker's HEAD (NULL: no marker) says, and note them. */
static void note_marker(struct s3vfs *fs, const char *dkey, const struct s3_object_info *info,
			int *kind, int *subdirs)
{
	*kind = *subdirs = CHAIN_NONE;
	if (info) {
		*kind = chain_kind_parse(s3_object_info_meta(info, META_CHAIN));
		*subdirs = chain_kind_parse(s3_object_info_meta(info, META_SUBDIRS));
		if (*kind == CHAIN_BAD)
			log_error("%s: marked as a chain of unknown kind \"%s\"", dkey,
				  s3_object_info_meta(info, META_CHAIN));
		if (*subdirs == CHAIN_BAD)
			*subdirs = CHAIN_NONE;
	}
	kind_set(fs, dkey, *kind, *subdirs);
}

void fs_chain_note_marker(struct s3vfs *fs, const char *dkey, const struct s3_object_info *info)
{
	int kind, subdirs;
	note_marker(fs, dkey, info, &kind, &subdirs);
}

void fs_chain_note_listing(struct s3vfs *fs, const char *dkey, bool has_internal)
{
	int kind, subdirs;

	/* Only the absence of the internal folder says something for free. */
	if (!has_internal && !kind_get(fs, dkey, &kind, &subdirs))
		kind_set(fs, dkey, CHAIN_NONE, CHAIN_NONE);
}

/* The kinds of dkey, asking S3 (HEAD of the marker) when not known. */
static int dir_kinds(struct s3vfs *fs, const char *dkey, bool check, int *kind, int *subdirs)
{
	struct s3_object_info info = { 0 };
	struct aws_error err = { 0 };
	int rc;

	if (kind_get(fs, dkey, kind, subdirs))
		return 0;
	if (!check) {
		*kind = *subdirs = CHAIN_NONE;
		return 0;
	}
	rc = s3_head(fs->s3, dkey, NULL, &info, &err);
	if (rc < 0 && rc != -ENOENT) {
		char msg[512];
		log_error("HEAD %s: %s", dkey, aws_error_str(&err, msg, sizeof(msg)));
		return rc;
	}
	/* What the HEAD said, even when stat_ttl=0 trusts no answer later. */
	note_marker(fs, dkey, rc == 0 ? &info : NULL, kind, subdirs);
	s3_object_info_cleanup(&info);
	return 0;
}

/* A chain of kind at dkey: 1 (events) or 2 (content) and *out, or -EIO. */
static int chain_of_kind(struct s3vfs *fs, const char *dkey, int kind, struct chain **out)
{
	if (kind != CHAIN_EVENTS && kind != CHAIN_CONTENT) {
		/* Unknown kinds are refused, never shown as plain directories
		 * that writes would corrupt. */
		log_error("%s: marked as a chain of a kind this s3vfs does not know", dkey);
		return -EIO;
	}
	if (!fs->chains) {
		log_error("%s is a chain, but chains are off (no DynamoDB)", dkey);
		return -EIO;
	}
	int rc = chain_get(fs->chains, dkey, out);
	return rc < 0 ? rc : kind == CHAIN_EVENTS ? 1 : 2;
}

bool fs_chain_known(struct s3vfs *fs, const char *dkey)
{
	int kind, subdirs;
	return kind_get(fs, dkey, &kind, &subdirs) &&
	       (kind == CHAIN_EVENTS || kind == CHAIN_CONTENT);
}

int fs_chain_dir(struct s3vfs *fs, const char *dkey, bool check, struct chain **out)
{
	int kind, subdirs;
	int rc = dir_kinds(fs, dkey, check, &kind, &subdirs);

	if (rc < 0)
		return rc;
	return kind == CHAIN_NONE ? 0 : chain_of_kind(fs, dkey, kind, out);
}

/* Split path into its parent's directory key and its last component. */
static int split_path(struct s3vfs *fs, const char *path, char dkey[OBJMAP_KEY_BUF],
		      const char **name)
{
	const char *slash = strrchr(path, '/');
	char parent[OBJMAP_KEY_BUF + 4096];
	size_t n;

	if (!slash || !slash[1])
		return -EINVAL;
	n = (size_t)(slash - path);
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	if (n == 0) {
		parent[0] = '/';
		parent[1] = '\0';
	} else {
		memcpy(parent, path, n);
		parent[n] = '\0';
	}
	*name = slash + 1;
	if (strcmp(parent, "/") == 0) {
		snprintf(dkey, OBJMAP_KEY_BUF, "%s", fs->map.prefix);
		return 0;
	}
	return fs_key(fs, parent, OBJMAP_DIR, dkey);
}

int fs_chain_route(struct s3vfs *fs, const char *path, bool check, struct fs_cpath *out)
{
	char anc[OBJMAP_KEY_BUF + 4096]; /* a path: the prefix is not in it, a leading / is */
	size_t n = strlen(path);
	int kind = CHAIN_NONE, subdirs, rc;

	if (strcmp(path, "/") == 0)
		return 0;
	if (n >= sizeof(anc))
		return -ENAMETOOLONG;
	memset(out, 0, sizeof(*out));
	memcpy(anc, path, n + 1);
	/* The nearest ancestor known to be a chain; else, with check, ask S3
	 * about the parent alone (the kernel looks ancestors up first, so a
	 * chain above is known by the time its descendants are asked for). */
	size_t plen = 0;
	for (;;) {
		char *slash = strrchr(anc, '/');
		if (!slash || slash == anc)
			break; /* the mount's root is never a chain */
		*slash = '\0';
		if (!plen)
			plen = strlen(anc);
		rc = fs_key(fs, anc, OBJMAP_DIR, out->dkey);
		if (rc < 0)
			return rc == -EPERM ? 0 : rc; /* the internal folder: not ours */
		if (kind_get(fs, out->dkey, &kind, &subdirs) && kind != CHAIN_NONE)
			goto found;
	}
	if (!check || !plen)
		return 0;
	memcpy(anc, path, n + 1);
	anc[plen] = '\0'; /* the parent again */
	rc = fs_key(fs, anc, OBJMAP_DIR, out->dkey);
	if (rc == 0)
		rc = dir_kinds(fs, out->dkey, true, &kind, &subdirs);
	if (rc < 0)
		return rc == -EPERM ? 0 : rc;
	if (kind == CHAIN_NONE)
		return 0;
found:
	rc = chain_of_kind(fs, out->dkey, kind, &out->ch);
	if (rc < 0)
		return rc;
	out->kind = kind;
	out->path = path;
	out->rel = path + strlen(anc) + 1;
	out->name = strrchr(path, '/') + 1;
	out->deep = strchr(out->rel, '/') != NULL;
	out->head_file = strcmp(out->rel, HEAD_NAME) == 0;
	if (!out->head_file && !out->deep)
		out->explicit_v = chain_view_parse(out->name, &out->version, &out->rest) == 1;
	if (!out->explicit_v)
		out->rest = out->name;
	return 1;
}

/* ---- what is shown -------------------------------------------------------- */

static void link_entry(const struct s3vfs *fs, const struct chain_link *l, struct meta_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = META_KIND_FILE;
	e->size = l->size;
	e->mode = S_IFREG | 0444;
	e->uid = fs->uid;
	e->gid = fs->gid;
	e->mtime.tv_sec = (time_t)(l->time_ms / 1000);
	e->mtime.tv_nsec = (long)(l->time_ms % 1000) * 1000000L;
	e->ctime = e->mtime;
	snprintf(e->etag, sizeof(e->etag), "%s", l->etag);
	e->last_modified = (int64_t)e->mtime.tv_sec;
	e->meta_known = true;
}

static int head_text(struct s3vfs *fs, struct chain *ch, char *out, size_t cap)
{
	struct chain_head h;
	int rc = chain_refresh(fs->chains, ch, false);

	if (rc < 0)
		return rc;
	chain_head_get(ch, &h);
	int n = snprintf(out, cap, "{\"version\":%" PRIu64 ",\"id\":\"%s\"}\n", h.version,
			 h.version ? h.id : "");
	return n < 0 || (size_t)n >= cap ? -EOVERFLOW : n;
}

/* The verified link a view name names: 0, -ENOENT. */
static int view_link(struct s3vfs *fs, const struct fs_cpath *cp, struct chain_link *l)
{
	if (!cp->explicit_v)
		return -ENOENT;
	if (chain_link_get(cp->ch, cp->version, l) < 0) {
		int rc = chain_refresh(fs->chains, cp->ch, false);
		if (rc < 0)
			return rc;
		if (chain_link_get(cp->ch, cp->version, l) < 0)
			return -ENOENT;
	}
	return strcmp(l->name, cp->rest) == 0 ? 0 : -ENOENT;
}

struct fs_file *fs_chain_pending(struct s3vfs *fs, const char *pkey)
{
	struct fs_file *cand[64], *found = NULL;
	size_t n = 0;

	/* Lock order: a handle's lock before open_lock (readers take a
	 * reference under their file's lock), so the candidates are taken
	 * under open_lock and looked at after it. */
	pthread_mutex_lock(&fs->open_lock);
	for (struct fs_file *f = fs->open_files; f && n < 64; f = f->next) {
		if (f->key[0] == '\n') { /* only appends and content writes have such keys */
			f->refs++;
			cand[n++] = f;
		}
	}
	pthread_mutex_unlock(&fs->open_lock);
	for (size_t i = 0; i < n; i++) {
		struct fs_file *f = cand[i];
		bool match = false;
		if (!found) {
			pthread_mutex_lock(&f->lock);
			match = f->cf.ch && !f->cf.committed && f->cf.pkey &&
				strcmp(f->cf.pkey, pkey) == 0;
			pthread_mutex_unlock(&f->lock);
		}
		if (match)
			found = f;
		else
			fs_file_put(fs, f);
	}
	return found;
}

/* The attributes of an append still being written as the path of cp. */
static int pending_entry(struct s3vfs *fs, const struct fs_cpath *cp, struct meta_entry *out)
{
	char key[OBJMAP_KEY_BUF];
	struct fs_file *f;
	struct stat st;

	if (fs_key(fs, cp->path, OBJMAP_FILE, key) < 0 || !(f = fs_chain_pending(fs, key)))
		return -ENOENT;
	pthread_mutex_lock(&f->lock);
	memset(out, 0, sizeof(*out));
	out->kind = META_KIND_FILE;
	out->size = f->fd >= 0 && fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	out->mode = f->attr.mode;
	out->uid = f->attr.uid;
	out->gid = f->attr.gid;
	out->mtime = f->attr.mtime;
	out->ctime = f->attr.ctime;
	out->meta_known = true;
	pthread_mutex_unlock(&f->lock);
	fs_file_put(fs, f);
	return 0;
}

int fs_chain_lookup(struct s3vfs *fs, const struct fs_cpath *cp, struct meta_entry *out)
{
	struct chain_link l;
	int rc;

	if (pending_entry(fs, cp, out) == 0)
		return 0;
	if (cp->kind == CHAIN_CONTENT && !cp->head_file)
		return fs_content_lookup(fs, cp, out);
	if (cp->deep)
		return -ENOENT; /* an event stream has no subdirectories */

	if (cp->head_file) {
		char text[128];
		rc = head_text(fs, cp->ch, text, sizeof(text));
		if (rc < 0)
			return rc;
		memset(&l, 0, sizeof(l));
		l.size = (uint64_t)rc;
		l.time_ms = meta_cache_now_ms();
		link_entry(fs, &l, out);
		return 0;
	}
	rc = view_link(fs, cp, &l);
	if (rc == 0)
		link_entry(fs, &l, out);
	return rc;
}

struct dir_emit {
	struct s3vfs *fs;
	const char *dir;
	void *buf;
	fuse_fill_dir_t filler;
	enum fuse_fill_dir_flags flags;
};

static int on_link(void *arg, const struct chain_link *l)
{
	struct dir_emit *d = arg;
	char name[OBJMAP_NAME_BUF + 32];
	struct meta_entry e;
	struct stat st;

	if (chain_view_name(l, name, sizeof(name)) < 0)
		return 0;
	link_entry(d->fs, l, &e);
	fs_entry_to_stat(d->fs, d->dir, name, &e, &st);
	return d->filler(d->buf, name, &st, 0, d->flags) ? 1 : 0;
}

int fs_chain_readdir(struct s3vfs *fs, struct chain *ch, const char *path, void *buf,
		     fuse_fill_dir_t filler, enum fuse_fill_dir_flags flags)
{
	struct dir_emit d = { .fs = fs, .dir = path, .buf = buf, .filler = filler, .flags = flags };
	int rc = chain_refresh(fs->chains, ch, false);

	if (rc < 0)
		return rc;
	return chain_walk(ch, 0, on_link, &d);
}

/* ---- appends ---------------------------------------------------------------- */

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND));
}

/* A new append named by cp, open on fi. */
static int start_append(struct s3vfs *fs, const struct fs_cpath *cp, const char *path, mode_t mode,
			struct fuse_file_info *fi)
{
	struct fuse_context *cx = fuse_get_context();
	char key[OBJMAP_KEY_BUF], pkey[OBJMAP_KEY_BUF];
	struct chain_head h;
	struct meta_entry e;
	struct fs_file *f;
	struct timespec now;
	int rc;

	if (!chain_name_ok(cp->rest) || cp->head_file)
		return cp->rest[0] == '.' || cp->head_file ? -EPERM : -EINVAL;
	if (cp->explicit_v) {
		/* Versions only grow: one at or under a known head is taken. */
		rc = chain_refresh(fs->chains, cp->ch, false);
		if (rc < 0)
			return rc;
		chain_head_get(cp->ch, &h);
		if (h.version >= cp->version)
			return -EEXIST;
	}
	rc = fs_key(fs, path, OBJMAP_FILE, pkey);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fs->open_lock);
	uint64_t nth = ++fs->appends;
	pthread_mutex_unlock(&fs->open_lock);
	/* Never an object key (a NUL-free name cannot hold '\n'): unique per append. */
	snprintf(key, sizeof(key), "\n%" PRIu64 "\n%s", nth, cp->rest);
	char *pk = strdup(pkey);
	if (!pk)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	struct s3attr a = { .mode = S_IFREG | (mode & 07777),
			    .uid = cx->uid,
			    .gid = cx->gid,
			    .mtime = now,
			    .ctime = now,
			    .atime = now };
	fs_attr_entry(&a, META_KIND_FILE, 0, "", &e);
	rc = fs_file_get(fs, key, &e, &f);
	if (rc < 0) {
		free(pk);
		return rc;
	}
	pthread_mutex_lock(&f->lock);
	rc = fs_file_stage(fs, f, false);
	if (rc == 0) {
		f->attr = a;
		f->dirty = true;
		fs_stream_break(f); /* one PUT at commit, never a multipart stream */
		f->cf = (struct fs_chainfile){ .ch = cp->ch,
					       .expect = cp->explicit_v ? cp->version : 0,
					       .pkey = pk };
		pk = NULL;
		snprintf(f->cf.name, sizeof(f->cf.name), "%s", cp->rest);
	}
	free(pk);
	pthread_mutex_unlock(&f->lock);
	if (rc < 0) {
		fs_file_put(fs, f);
		return rc;
	}
	fi->direct_io = 0;
	fs_file_opened(fs, f, fi);
	return 0;
}

int fs_chain_create(struct s3vfs *fs, const struct fs_cpath *cp, const char *path, mode_t mode,
		    struct fuse_file_info *fi)
{
	if (cp->head_file)
		return -EPERM;
	if (cp->kind == CHAIN_CONTENT)
		return fs_content_create(fs, cp, mode, fi);
	if (cp->deep)
		return -ENOENT;
	return start_append(fs, cp, path, mode, fi);
}

/* .head: a snapshot of the head in a staged file, read with direct I/O. */
static int open_head(struct s3vfs *fs, const struct fs_cpath *cp, const char *path,
		     struct fuse_file_info *fi)
{
	char key[OBJMAP_KEY_BUF], text[128];
	struct meta_entry e;
	struct fs_file *f;
	int n, rc;

	if (wants_write(fi->flags))
		return -EPERM;
	n = head_text(fs, cp->ch, text, sizeof(text));
	if (n < 0)
		return n;
	rc = fs_key(fs, path, OBJMAP_FILE, key);
	if (rc < 0)
		return rc;
	memset(&e, 0, sizeof(e));
	e.kind = META_KIND_FILE;
	e.mode = S_IFREG | 0444;
	rc = fs_file_get(fs, key, &e, &f);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&f->lock);
	rc = fs_file_stage(fs, f, false);
	if (rc == 0 && (ftruncate(f->fd, 0) < 0 || pwrite(f->fd, text, (size_t)n, 0) != n))
		rc = -EIO;
	pthread_mutex_unlock(&f->lock);
	if (rc < 0) {
		fs_file_put(fs, f);
		return rc;
	}
	fi->direct_io = 1; /* its size changes under the kernel's feet */
	fs_file_opened(fs, f, fi);
	return 0;
}

int fs_chain_open(struct s3vfs *fs, const struct fs_cpath *cp, const char *path,
		  struct fuse_file_info *fi)
{
	char key[OBJMAP_KEY_BUF];
	struct chain_link l;
	struct meta_entry e;
	struct fs_file *f;
	int rc;

	if (cp->head_file)
		return open_head(fs, cp, path, fi);
	if (cp->kind == CHAIN_CONTENT)
		return fs_content_open(fs, cp, fi);
	if (cp->deep)
		return -ENOENT;
	rc = view_link(fs, cp, &l);
	if (rc == -ENOENT && wants_write(fi->flags))
		/* A name the kernel still holds from an earlier append: a new one. */
		return start_append(fs, cp, path, 0644, fi);
	if (rc < 0)
		return rc;
	if (wants_write(fi->flags))
		return -EPERM; /* committed changesets are immutable */
	rc = chain_link_key(cp->ch, &l, key, sizeof(key));
	if (rc < 0)
		return rc;
	link_entry(fs, &l, &e);
	fi->keep_cache = fs_kc_keep(fs, key, e.etag);
	rc = fs_file_get(fs, key, &e, &f);
	if (rc < 0)
		return rc;
	fs_file_opened(fs, f, fi);
	return 0;
}

int fs_chain_flush_locked(struct s3vfs *fs, struct fs_file *f, bool force)
{
	struct chain_link l;
	struct stat st;
	int rc;

	if (f->cf.kind == CHAIN_CONTENT)
		return fs_content_flush_locked(fs, f, force);
	if (f->cf.committed)
		return f->cf.err;
	/* A shell's "> file" opens, dups and closes the first descriptor before
	 * anything is written: that flush must not commit an empty changeset. */
	if (!force && !f->cf.written)
		return 0;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	struct chain_append a = {
		.name = f->cf.name,
		.expect = f->cf.expect,
		.fd = f->fd,
		.size = (uint64_t)st.st_size,
	};
	rc = chain_commit(fs->chains, f->cf.ch, &a, &l);
	f->cf.committed = true;
	f->cf.err = rc;
	f->dirty = false;
	if (rc == 0)
		log_debug("%s: committed %s as version %" PRIu64, f->cf.pkey, l.name, l.version);
	else if (rc != -EEXIST && rc != -EINVAL)
		log_error("%s: append failed: %s", f->cf.pkey, strerror(-rc));
	return rc;
}

/* ---- markings --------------------------------------------------------------- */

static bool is_chain_xattr(const char *name)
{
	return strcmp(name, XATTR_CHAIN) == 0 || strcmp(name, XATTR_SUBDIR) == 0 ||
	       strcmp(name, FS_XATTR_TXN) == 0 || strcmp(name, FS_XATTR_ROLLBACK) == 0;
}

/* A control of a content chain directory (transactions, rollback). */
static int content_control(struct s3vfs *fs, const char *path, const char *name, const char *v)
{
	char dkey[OBJMAP_KEY_BUF];
	struct chain *ch = NULL;
	int rc;

	if (strcmp(path, "/") == 0)
		return -EINVAL;
	rc = fs_key(fs, path, OBJMAP_DIR, dkey);
	if (rc == 0)
		rc = fs_chain_dir(fs, dkey, true, &ch);
	if (rc < 0)
		return rc == -EPERM ? -ENOENT : rc;
	if (rc != 2)
		return -EINVAL; /* not a content chain */
	return fs_content_control(fs, ch, name, v);
}

bool fs_chain_xattr(const char *name)
{
	return is_chain_xattr(name);
}

struct any_child {
	const char *self;
	size_t dlen;
	const char *internal;
	unsigned n;
};

static int on_child(void *arg, const struct s3_list_entry *e)
{
	struct any_child *c = arg;
	const char *rest = e->key + c->dlen;
	size_t ilen = strlen(c->internal);

	if (strcmp(e->key, c->self) == 0)
		return 0;
	if (ilen && strncmp(rest, c->internal, ilen) == 0 && rest[ilen] == '/')
		return 0;
	c->n++;
	return 0;
}

/* Does anything but the marker and the internal folder lie under dkey? */
static int has_children(struct s3vfs *fs, const char *dkey)
{
	struct any_child c = { .self = dkey, .dlen = strlen(dkey), .internal = fs->map.internal };
	struct s3_list_opts lo = { .prefix = dkey, .delimiter = "/", .max_keys = 3 };
	struct aws_error err = { 0 };
	char *next = NULL;
	int rc = s3_list_page(fs->s3, &lo, on_child, &c, &next, &err);

	free(next);
	return rc < 0 ? rc : c.n > 0;
}

/* Write the hint object "<dir>.s3vfs/chain" that listings see. */
static int put_hint(struct s3vfs *fs, const char *dkey, const char *kind)
{
	char key[OBJMAP_KEY_BUF + 32];
	struct aws_error err = { 0 };
	char body[32];
	int n = snprintf(body, sizeof(body), "%s\n", kind);

	if (snprintf(key, sizeof(key), "%s" CHAIN_DESC_KEY, dkey) >= (int)sizeof(key))
		return -ENAMETOOLONG;
	struct http_body b = { .data = body, .fd = -1, .len = (uint64_t)n };
	int rc = s3_put(fs->s3, key, &b, NULL, NULL, &err);
	if (rc < 0) {
		char msg[512];
		log_error("PUT %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
	}
	return rc;
}

int fs_chain_setxattr(struct s3vfs *fs, const char *path, const char *name, const char *value,
		      size_t size)
{
	char dkey[OBJMAP_KEY_BUF], v[32];
	struct meta_entry e;
	int kind, subdirs, rc;
	struct fs_cpath cp;

	if (strcmp(path, "/") == 0)
		return -EPERM;
	if (size == 0 || size >= sizeof(v))
		return -EINVAL;
	memcpy(v, value, size);
	v[size] = '\0';
	if (v[size - 1] == '\n')
		v[size - 1] = '\0';
	if (strcmp(name, FS_XATTR_TXN) == 0 || strcmp(name, FS_XATTR_ROLLBACK) == 0)
		return content_control(fs, path, name, v);
	int want = chain_kind_parse(v);
	if (want == CHAIN_BAD || want == CHAIN_NONE)
		return -EINVAL;
	if (want == CHAIN_CONTENT && strcmp(name, XATTR_SUBDIR) == 0)
		return -EINVAL; /* one content tree per chain; streams per subdirectory */
	rc = fs_chain_route(fs, path, true, &cp);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return -EPERM; /* inside a chain */
	rc = fs_lookup(fs, path, &e);
	if (rc < 0)
		return rc;
	bool dir = e.kind == META_KIND_DIR;
	meta_entry_cleanup(&e);
	if (!dir)
		return -ENOTDIR;
	rc = fs_key(fs, path, OBJMAP_DIR, dkey);
	if (rc == 0)
		rc = dir_kinds(fs, dkey, true, &kind, &subdirs);
	if (rc < 0)
		return rc;
	bool is_subdirs = strcmp(name, XATTR_SUBDIR) == 0;
	int cur = is_subdirs ? subdirs : kind;
	if (cur == want)
		return 0;
	if (cur != CHAIN_NONE || (!is_subdirs && subdirs != CHAIN_NONE) ||
	    (is_subdirs && kind != CHAIN_NONE))
		return -EBUSY; /* a marking is for good */
	if (!is_subdirs) {
		rc = has_children(fs, dkey);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return -ENOTEMPTY;
		rc = put_hint(fs, dkey, chain_kind_name(want));
		if (rc < 0)
			return rc;
	}
	rc = fs_set_dir_meta(fs, dkey, is_subdirs ? META_SUBDIRS : META_CHAIN,
			     chain_kind_name(want));
	if (rc < 0)
		return rc;
	kind_set(fs, dkey, is_subdirs ? kind : want, is_subdirs ? want : subdirs);
	log_info("%s: marked %s=%s", dkey, name, chain_kind_name(want));
	return 0;
}

int fs_chain_getxattr(struct s3vfs *fs, const char *path, const char *name, char *value,
		      size_t size)
{
	char dkey[OBJMAP_KEY_BUF];
	int kind, subdirs, rc;

	if (strcmp(path, "/") == 0 || strcmp(name, FS_XATTR_ROLLBACK) == 0)
		return -ENODATA;
	rc = fs_key(fs, path, OBJMAP_DIR, dkey);
	if (rc < 0)
		return rc == -EPERM ? -ENOENT : rc;
	if (strcmp(name, FS_XATTR_TXN) == 0) {
		struct chain *ch = NULL;
		size_t n = 0;
		char s[40];
		rc = fs_chain_dir(fs, dkey, true, &ch);
		if (rc < 0)
			return rc;
		if (rc != 2 || !fs_content_txn_state(fs, ch, &n))
			return -ENODATA;
		int len = snprintf(s, sizeof(s), "open %zu", n);
		if (size == 0)
			return len;
		if (size < (size_t)len)
			return -ERANGE;
		memcpy(value, s, (size_t)len);
		return len;
	}
	rc = dir_kinds(fs, dkey, true, &kind, &subdirs);
	if (rc < 0)
		return rc;
	int k = strcmp(name, XATTR_SUBDIR) == 0 ? subdirs : kind;
	if (k == CHAIN_NONE)
		return -ENODATA;
	const char *s = k == CHAIN_BAD ? "?" : chain_kind_name(k);
	size_t len = strlen(s);
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, s, len);
	return (int)len;
}

int fs_chain_mkdir_meta(struct s3vfs *fs, const char *path, const char **out_kind)
{
	char dkey[OBJMAP_KEY_BUF];
	const char *name;
	int kind, subdirs, rc;

	*out_kind = NULL;
	rc = split_path(fs, path, dkey, &name);
	if (rc < 0)
		return rc == -EPERM ? 0 : rc;
	rc = dir_kinds(fs, dkey, true, &kind, &subdirs);
	if (rc < 0)
		return rc;
	if (kind != CHAIN_NONE)
		return -EPERM; /* nothing but changesets inside a chain */
	if (subdirs != CHAIN_NONE)
		*out_kind = chain_kind_name(subdirs);
	return 0;
}

int fs_chain_mkdir_done(struct s3vfs *fs, const char *dkey, const char *kind)
{
	if (!kind) {
		kind_set(fs, dkey, CHAIN_NONE, CHAIN_NONE);
		return 0;
	}
	int rc = put_hint(fs, dkey, kind);
	if (rc == 0)
		kind_set(fs, dkey, chain_kind_parse(kind), CHAIN_NONE);
	return rc;
}

int fs_chain_rmdir(struct s3vfs *fs, const char *dkey, struct chain *ch)
{
	char key[OBJMAP_KEY_BUF + 32];
	struct aws_error err = { 0 };
	struct chain_head h;
	int rc = chain_refresh(fs->chains, ch, true);

	if (rc < 0)
		return rc;
	chain_head_get(ch, &h);
	if (h.version > 0)
		return -ENOTEMPTY;
	if (snprintf(key, sizeof(key), "%s" CHAIN_DESC_KEY, dkey) >= (int)sizeof(key))
		return -ENAMETOOLONG;
	rc = s3_delete(fs->s3, key, &err);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	chain_forget(fs->chains, dkey);
	return 0;
}

void fs_chain_rmdir_done(struct s3vfs *fs, const char *dkey)
{
	struct fs_kinds *k = fs->kinds;
	size_t b = hash_key(dkey) % KIND_BUCKETS;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	for (struct kind_ent **pp = &k->b[b]; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, dkey) == 0) {
			struct kind_ent *e = *pp;
			*pp = e->next;
			free(e);
			k->n--;
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
}
