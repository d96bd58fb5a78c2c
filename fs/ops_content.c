// SPDX-License-Identifier: MIT
/*
 * ops_content: content chains as the shell and a web server see them. The
 * chain directory shows the tree at the head (meta/content.c builds it);
 * "<dir>/.versions/N/" shows version N read-only and "<dir>/.head" the head.
 * A file closed after a write, an unlink, mkdir, rmdir, rename, chmod or
 * utimens inside the chain each commit one changeset, unless a transaction
 * is open on the chain in this mount: then the change is staged, shown by
 * this mount only, and committed with the others as one changeset at
 * "setfattr -n user.s3vfs.txn -v commit DIR" (or dropped at "abort").
 * "setfattr -n user.s3vfs.rollback -v N DIR" commits the tree of version N.
 *
 * What a reader sees (the consistency a deploy gets): each mount reads the
 * head at most every stat_ttl and shows that version's tree, whole. A file
 * opened within stat_ttl of its attributes being reported to the kernel is
 * served from the version those attributes came from (its "pin"), so that
 * size and bytes always belong to one version: after a publish, every file
 * switches within 2 x stat_ttl, each file whole.
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
#include "s3vfs/content.h"
#include "s3vfs/fs.h"
#include "s3vfs/log.h"

#define VERSIONS      ".versions"
#define PIN_BUCKETS   1024
#define PIN_MAX	      65536
#define PIN_MARGIN_MS 1000 /* see pin_get */

/* A transaction open in this mount on one chain. */
struct fs_txn {
	struct fs_txn *next;
	struct chain *ch;
	struct content_tree *tree; /* the head's tree with the staged changes */
	struct content_change *c;  /* the staged changes, in order */
	size_t n, cap;
};

/* The version a path's attributes were last reported from. */
struct pin {
	struct pin *next;
	struct content_entry e; /* e.path: the key of the pin */
	int64_t at_ms;
	char key[];
};

struct fs_content {
	struct content_store *store;
	pthread_mutex_t lock;
	struct fs_txn *txns;	       /* protected by lock */
	struct pin *pins[PIN_BUCKETS]; /* protected by lock */
	size_t npins;		       /* protected by lock */
};

int fs_content_init(struct s3vfs *fs)
{
	struct fs_content *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	if (fs->chains) {
		rc = content_store_new(fs->chains, fs->s3, fs->mc, &c->store);
		if (rc < 0) {
			free(c);
			return rc;
		}
	}
	pthread_mutex_init(&c->lock, NULL);
	fs->content = c;
	return 0;
}

static void txn_free(struct fs_txn *t)
{
	content_tree_put(t->tree);
	content_changes_free(t->c, t->n);
	free(t);
}

void fs_content_cleanup(struct s3vfs *fs)
{
	struct fs_content *c = fs->content;

	if (!c)
		return;
	while (c->txns) {
		struct fs_txn *t = c->txns;
		c->txns = t->next;
		log_warn("%s: a transaction was open at unmount; its %zu staged changes are "
			 "dropped",
			 chain_dir_key(t->ch), t->n);
		txn_free(t);
	}
	for (size_t i = 0; i < PIN_BUCKETS; i++) {
		while (c->pins[i]) {
			struct pin *p = c->pins[i];
			c->pins[i] = p->next;
			free(p->e.path);
			free(p);
		}
	}
	content_store_free(c->store);
	pthread_mutex_destroy(&c->lock);
	free(c);
	fs->content = NULL;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* ---- pins -------------------------------------------------------------------- */

static void pins_trim_locked(struct s3vfs *fs)
{
	struct fs_content *c = fs->content;
	int64_t now = meta_cache_now_ms();

	for (size_t i = 0; i < PIN_BUCKETS; i++) {
		for (struct pin **pp = &c->pins[i]; *pp;) {
			struct pin *p = *pp;
			if (now - p->at_ms >= fs->ttl_ms) {
				*pp = p->next;
				free(p->e.path);
				free(p);
				c->npins--;
			} else {
				pp = &p->next;
			}
		}
	}
}

/* The kernel was told e for path (a key in the path's namespace). */
static void pin_set(struct s3vfs *fs, const char *key, const struct content_entry *e)
{
	struct fs_content *c = fs->content;
	size_t b = hash_str(key) % PIN_BUCKETS;
	struct pin *p;

	pthread_mutex_lock(&c->lock);
	for (p = c->pins[b]; p; p = p->next)
		if (strcmp(p->key, key) == 0)
			break;
	if (!p) {
		if (c->npins >= PIN_MAX)
			pins_trim_locked(fs);
		size_t len = strlen(key) + 1;
		p = calloc(1, sizeof(*p) + len);
		if (!p) {
			pthread_mutex_unlock(&c->lock);
			return;
		}
		memcpy(p->key, key, len);
		p->next = c->pins[b];
		c->pins[b] = p;
		c->npins++;
	}
	free(p->e.path);
	p->e = *e;
	p->e.path = NULL;
	p->at_ms = meta_cache_now_ms();
	pthread_mutex_unlock(&c->lock);
}

/* The entry path was last reported with, if the kernel may still hold it. */
static bool pin_get(struct s3vfs *fs, const char *key, struct content_entry *out)
{
	struct fs_content *c = fs->content;
	size_t b = hash_str(key) % PIN_BUCKETS;
	bool found = false;

	pthread_mutex_lock(&c->lock);
	for (struct pin *p = c->pins[b]; p; p = p->next) {
		if (strcmp(p->key, key) == 0) {
			/* The kernel's timer starts when it gets the reply, a little
			 * after ours: a margin keeps the pin until the kernel's ends. */
			found = meta_cache_now_ms() - p->at_ms < fs->ttl_ms + PIN_MARGIN_MS;
			if (found) {
				*out = p->e;
				out->path = NULL;
			}
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* The path (in the mount) of rel in chain ch. */
static int pin_path(struct s3vfs *fs, struct chain *ch, const char *rel, char *out, size_t cap)
{
	const char *dk = chain_dir_key(ch);
	size_t pl = strlen(fs->map.prefix);
	if (strncmp(dk, fs->map.prefix, pl) != 0)
		return -EINVAL;
	int n = snprintf(out, cap, "/%s%s", dk + pl, rel);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Forget the pins of path and of everything under it ("" under a chain: all). */
static void pin_drop(struct s3vfs *fs, const char *path)
{
	struct fs_content *c = fs->content;
	size_t len = strlen(path);

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < PIN_BUCKETS; i++) {
		for (struct pin **pp = &c->pins[i]; *pp;) {
			struct pin *p = *pp;
			if (strncmp(p->key, path, len) == 0 &&
			    (p->key[len] == '\0' || p->key[len] == '/' || path[len - 1] == '/')) {
				*pp = p->next;
				free(p->e.path);
				free(p);
				c->npins--;
			} else {
				pp = &p->next;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* This mount changed paths: what it serves of them is the change now (the
 * kernel learned the new size from the write itself). */
static void pins_changed(struct s3vfs *fs, struct chain *ch, const struct content_change *c,
			 size_t n)
{
	char path[OBJMAP_KEY_BUF + 8];
	for (size_t i = 0; i < n; i++) {
		if (pin_path(fs, ch, c[i].e.path, path, sizeof(path)) < 0)
			continue;
		if (c[i].op == CONTENT_PUT)
			pin_set(fs, path, &c[i].e);
		else
			pin_drop(fs, path);
	}
}

void fs_content_note_open(struct s3vfs *fs, const char *path, struct fs_file *f)
{
	static const char blobs[] = "/.s3vfs/blobs/";
	struct content_entry e;

	if (!path || !fs->content)
		return;
	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&f->lock);
	const char *b = strstr(f->key, blobs);
	bool blob = b && strlen(b + sizeof(blobs) - 1) == CONTENT_SHA_BUF - 1 && !f->staged;
	if (blob) {
		memcpy(e.blob, b + sizeof(blobs) - 1, CONTENT_SHA_BUF);
		snprintf(e.etag, sizeof(e.etag), "%s", f->etag);
		e.size = f->size;
		e.mode = f->attr.mode & 07777;
		e.mtime_ms = (int64_t)f->attr.mtime.tv_sec * 1000 + f->attr.mtime.tv_nsec / 1000000;
	}
	pthread_mutex_unlock(&f->lock);
	/* The kernel now holds these attributes for stat_ttl more: the path
	 * keeps being served from this version as long. */
	if (blob)
		pin_set(fs, path, &e);
}

/* ---- the tree a path sees ------------------------------------------------- */

static struct fs_txn *txn_find_locked(struct fs_content *c, struct chain *ch)
{
	for (struct fs_txn *t = c->txns; t; t = t->next)
		if (t->ch == ch)
			return t;
	return NULL;
}

/* The tree at the head (refreshed at most every stat_ttl). */
static int head_tree(struct s3vfs *fs, struct chain *ch, struct content_tree **out)
{
	struct chain_head h;
	int rc = chain_refresh(fs->chains, ch, false);

	if (rc < 0)
		return rc;
	chain_head_get(ch, &h);
	return content_tree_at(fs->content->store, ch, h.version, out);
}

/* What this mount shows of ch: its open transaction's tree, else the head's. */
static int view_tree(struct s3vfs *fs, struct chain *ch, struct content_tree **out)
{
	struct fs_content *c = fs->content;

	pthread_mutex_lock(&c->lock);
	struct fs_txn *t = txn_find_locked(c, ch);
	if (t)
		*out = content_tree_ref(t->tree);
	pthread_mutex_unlock(&c->lock);
	return t ? 0 : head_tree(fs, ch, out);
}

/* Where a path of a content chain points. */
struct where {
	struct content_tree *tree; /* the tree rel is in (a reference) */
	const char *rel;	   /* path within tree; "" for its top */
	bool history;		   /* under .versions: read-only */
	bool versions_dir;	   /* ".versions" itself */
	uint64_t version;	   /* of tree when history */
};

static void where_cleanup(struct where *w)
{
	content_tree_put(w->tree);
	w->tree = NULL;
}

/* Parse "N" or "N/rest" of a .versions path. */
static int parse_version(const char *s, uint64_t *v, const char **rest)
{
	char *end = NULL;
	if (*s < '1' || *s > '9')
		return -ENOENT;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || (*end && *end != '/'))
		return -ENOENT;
	*v = n;
	*rest = *end ? end + 1 : end;
	return 0;
}

static int locate(struct s3vfs *fs, const struct fs_cpath *cp, struct where *w)
{
	const char *rel = cp->rel;
	size_t vl = strlen(VERSIONS);
	int rc;

	memset(w, 0, sizeof(*w));
	if (strncmp(rel, VERSIONS, vl) == 0 && (rel[vl] == '\0' || rel[vl] == '/')) {
		w->history = true;
		if (rel[vl] == '\0') {
			w->versions_dir = true;
			return chain_refresh(fs->chains, cp->ch, false);
		}
		rc = parse_version(rel + vl + 1, &w->version, &w->rel);
		if (rc < 0)
			return rc;
		rc = chain_refresh(fs->chains, cp->ch, false);
		if (rc == 0)
			rc = content_tree_at(fs->content->store, cp->ch, w->version, &w->tree);
		return rc;
	}
	w->rel = rel;
	return view_tree(fs, cp->ch, &w->tree);
}

static void dir_entry(const struct s3vfs *fs, mode_t perm, int64_t mtime_ms, struct meta_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = META_KIND_DIR;
	e->mode = S_IFDIR | perm;
	e->uid = fs->uid;
	e->gid = fs->gid;
	e->mtime.tv_sec = (time_t)(mtime_ms / 1000);
	e->mtime.tv_nsec = (long)(mtime_ms % 1000) * 1000000L;
	e->ctime = e->mtime;
	e->meta_known = true;
}

static void file_entry(const struct s3vfs *fs, const struct content_entry *ce, bool ro,
		       struct meta_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = META_KIND_FILE;
	e->size = ce->size;
	e->mode = S_IFREG | (ro ? (ce->mode & 0555) : (ce->mode & 07777));
	e->uid = fs->uid;
	e->gid = fs->gid;
	e->mtime.tv_sec = (time_t)(ce->mtime_ms / 1000);
	e->mtime.tv_nsec = (long)(ce->mtime_ms % 1000) * 1000000L;
	e->ctime = e->mtime;
	snprintf(e->etag, sizeof(e->etag), "%s", ce->etag);
	e->last_modified = (int64_t)e->mtime.tv_sec;
	e->meta_known = true;
}

/* Attributes of a path in a tree: 0, -ENOENT. */
static int tree_stat(struct s3vfs *fs, const struct where *w, struct meta_entry *out,
		     struct content_entry *ce)
{
	if (!w->rel[0]) {
		dir_entry(fs, w->history ? 0555 : 0755, 0, out);
		return 0;
	}
	long i = content_tree_find(w->tree, w->rel);
	if (i >= 0 && !w->tree->v[i].is_dir) {
		file_entry(fs, &w->tree->v[i], w->history, out);
		if (ce)
			*ce = w->tree->v[i];
		return 0;
	}
	if (i >= 0 || content_tree_is_dir(w->tree, w->rel)) {
		const struct content_entry *d = i >= 0 ? &w->tree->v[i] : NULL;
		dir_entry(fs,
			  w->history ? 0555
			  : d	     ? d->mode & 07777
				     : 0755,
			  d ? d->mtime_ms : 0, out);
		return 0;
	}
	return -ENOENT;
}

/*
 * The handle of a blob a descriptor opened at cp->path still reads, when the
 * path now shows another blob: the path shows that one until its inode is
 * retired (retire.c). A reference or NULL.
 */
static struct fs_file *old_blob_open(struct s3vfs *fs, const struct fs_cpath *cp, const char *blob)
{
	char key[OBJMAP_KEY_BUF];
	struct fs_file *f;

	if (!fs->retire || content_blob_key(cp->ch, blob, key, sizeof(key)) < 0)
		return NULL;
	pthread_mutex_lock(&fs->open_lock);
	for (f = fs->open_files; f; f = f->next) {
		if (f->kpath && !f->superseded && f->opens > 0 && strcmp(f->kpath, cp->path) == 0 &&
		    strcmp(f->key, key) != 0)
			break;
	}
	if (f)
		f->refs++;
	pthread_mutex_unlock(&fs->open_lock);
	if (f && fs_retire_path(fs, cp->path, f))
		return f;
	if (f)
		fs_file_put(fs, f);
	return NULL;
}

int fs_content_lookup(struct s3vfs *fs, const struct fs_cpath *cp, struct meta_entry *out)
{
	struct content_entry ce;
	struct where w;
	int rc = locate(fs, cp, &w);

	if (rc < 0)
		return rc;
	if (w.versions_dir) {
		dir_entry(fs, 0555, 0, out);
		return 0;
	}
	memset(&ce, 0, sizeof(ce));
	rc = tree_stat(fs, &w, out, &ce);
	struct fs_file *old = NULL;
	if (rc == 0 && out->kind == META_KIND_FILE && !w.history &&
	    (old = old_blob_open(fs, cp, ce.blob)) != NULL) {
		meta_entry_cleanup(out);
		fs_handle_entry(old, out);
		fs_file_put(fs, old);
	} else if (rc == 0 && out->kind == META_KIND_FILE && !w.history) {
		pin_set(fs, cp->path, &ce);
	}
	where_cleanup(&w);
	return rc;
}

/* ---- listings ----------------------------------------------------------------- */

struct lister {
	struct s3vfs *fs;
	const char *dir;
	void *buf;
	fuse_fill_dir_t filler;
	enum fuse_fill_dir_flags flags;
	bool ro;
};

static int on_child(void *arg, const char *name, const struct content_entry *e)
{
	struct lister *l = arg;
	struct meta_entry me;
	struct stat st;

	if (e && !e->is_dir)
		file_entry(l->fs, e, l->ro, &me);
	else
		dir_entry(l->fs,
			  l->ro ? 0555
			  : e	? e->mode & 07777
				: 0755,
			  e ? e->mtime_ms : 0, &me);
	fs_entry_to_stat(l->fs, l->dir, name, &me, &st);
	return l->filler(l->buf, name, &st, 0, l->flags) ? 1 : 0;
}

int fs_content_readdir(struct s3vfs *fs, const struct fs_cpath *cp, void *buf,
		       fuse_fill_dir_t filler, enum fuse_fill_dir_flags flags)
{
	struct lister l = {
		.fs = fs, .dir = cp->path, .buf = buf, .filler = filler, .flags = flags
	};
	struct where w;
	int rc = locate(fs, cp, &w);

	if (rc < 0)
		return rc;
	if (w.versions_dir) {
		struct chain_head h;
		chain_head_get(cp->ch, &h);
		for (uint64_t v = 1; v <= h.version; v++) {
			char name[24];
			snprintf(name, sizeof(name), "%" PRIu64, v);
			if (filler(buf, name, NULL, 0, 0))
				break;
		}
		return 0;
	}
	l.ro = w.history;
	if (w.rel[0] && !content_tree_is_dir(w.tree, w.rel))
		rc = content_tree_find(w.tree, w.rel) >= 0 ? -ENOTDIR : -ENOENT;
	else
		rc = content_tree_children(w.tree, w.rel, on_child, &l);
	where_cleanup(&w);
	return rc;
}

/* ---- changes -------------------------------------------------------------------- */

/* Commit one change, or stage it in the open transaction. */
static int change(struct s3vfs *fs, struct chain *ch, const struct content_change *c, size_t n,
		  const char *label)
{
	struct fs_content *fc = fs->content;
	struct chain_link l;
	int rc = 0;

	pthread_mutex_lock(&fc->lock);
	struct fs_txn *t = txn_find_locked(fc, ch);
	if (t) {
		/* Staged: applied to the transaction's tree and kept for commit. */
		if (t->n + n > t->cap) {
			size_t cap = (t->cap ? t->cap * 2 : 64) + n;
			struct content_change *nc = realloc(t->c, cap * sizeof(*nc));
			if (!nc)
				rc = -ENOMEM;
			else {
				t->c = nc;
				t->cap = cap;
			}
		}
		for (size_t i = 0; rc == 0 && i < n; i++) {
			t->c[t->n] = c[i];
			t->c[t->n].e.path = strdup(c[i].e.path);
			if (!t->c[t->n].e.path)
				rc = -ENOMEM;
			else
				t->n++;
		}
		if (rc == 0)
			rc = content_tree_apply(t->tree, c, n);
		pthread_mutex_unlock(&fc->lock);
		if (rc == 0)
			pins_changed(fs, ch, c, n);
		return rc;
	}
	pthread_mutex_unlock(&fc->lock);
	rc = content_commit(fc->store, ch, c, n, label, &l);
	if (rc == 0)
		pins_changed(fs, ch, c, n);
	if (rc == 0)
		log_debug("%s: %s committed as version %" PRIu64, chain_dir_key(ch), label,
			  l.version);
	else
		log_error("%s: %s not committed: %s", chain_dir_key(ch), label, strerror(-rc));
	return rc == -EEXIST || rc == -EINVAL ? -EIO : rc;
}

static int writable(const struct fs_cpath *cp, const struct where *w)
{
	if (w->history || w->versions_dir || cp->head_file)
		return -EROFS; /* history is read-only */
	return 0;
}

int fs_content_mkdir(struct s3vfs *fs, const struct fs_cpath *cp, mode_t mode)
{
	struct where w;
	int rc = locate(fs, cp, &w);

	if (rc < 0)
		return rc == -ENOENT && w.history ? -EROFS : rc;
	rc = writable(cp, &w);
	if (rc == 0 &&
	    (content_tree_find(w.tree, w.rel) >= 0 || content_tree_is_dir(w.tree, w.rel)))
		rc = -EEXIST;
	where_cleanup(&w);
	if (rc < 0)
		return rc;
	if (!content_path_ok(cp->rel))
		return -EINVAL;
	struct content_change c = { .op = CONTENT_DIR };
	c.e.path = (char *)cp->rel;
	c.e.is_dir = true;
	c.e.mode = mode & 07777;
	c.e.mtime_ms = meta_cache_now_ms();
	return change(fs, cp->ch, &c, 1, "mkdir");
}

struct any {
	int n;
};

static int count_child(void *arg, const char *name, const struct content_entry *e)
{
	(void)name;
	(void)e;
	((struct any *)arg)->n++;
	return 1;
}

/* Remove rel: a file (dir false) or an empty directory (dir true). */
static int remove_path(struct s3vfs *fs, const struct fs_cpath *cp, bool dir)
{
	struct where w;
	struct any a = { 0 };
	int rc = locate(fs, cp, &w);

	if (rc < 0)
		return rc;
	rc = writable(cp, &w);
	if (rc == 0 && !w.rel[0])
		rc = -EBUSY;
	bool is_dir = rc == 0 && content_tree_is_dir(w.tree, w.rel);
	if (rc == 0 && !is_dir && content_tree_find(w.tree, w.rel) < 0)
		rc = -ENOENT;
	if (rc == 0 && dir && !is_dir)
		rc = -ENOTDIR;
	if (rc == 0 && !dir && is_dir)
		rc = -EISDIR;
	if (rc == 0 && dir && content_tree_children(w.tree, w.rel, count_child, &a) == 0 && a.n)
		rc = -ENOTEMPTY;
	where_cleanup(&w);
	if (rc < 0)
		return rc;
	struct content_change c = { .op = CONTENT_DEL };
	c.e.path = (char *)cp->rel;
	return change(fs, cp->ch, &c, 1, dir ? "rmdir" : "delete");
}

int fs_content_unlink(struct s3vfs *fs, const struct fs_cpath *cp)
{
	return remove_path(fs, cp, false);
}

int fs_content_rmdir(struct s3vfs *fs, const struct fs_cpath *cp)
{
	return remove_path(fs, cp, true);
}

/* Move every entry at or under from to the same place under to, in c. */
static int move_changes(const struct content_tree *t, const char *from, const char *to,
			struct content_change **out, size_t *out_n)
{
	size_t flen = strlen(from), n = 0;
	struct content_change *c = calloc(t->n * 2 + 2, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c[n].op = CONTENT_DEL;
	c[n].e.path = strdup(to);
	if (!c[n++].e.path)
		goto nomem;
	for (size_t i = 0; i < t->n; i++) {
		const struct content_entry *e = &t->v[i];
		if (strncmp(e->path, from, flen) != 0 || (e->path[flen] && e->path[flen] != '/'))
			continue;
		char path[CONTENT_PATH_MAX * 2 + 2];
		int len = snprintf(path, sizeof(path), "%s%s", to, e->path + flen);
		if (len < 0 || (size_t)len >= sizeof(path) || !content_path_ok(path)) {
			content_changes_free(c, n);
			return -ENAMETOOLONG;
		}
		c[n].op = e->is_dir ? CONTENT_DIR : CONTENT_PUT;
		c[n].e = *e;
		c[n].e.path = strdup(path);
		if (!c[n++].e.path)
			goto nomem;
	}
	c[n].op = CONTENT_DEL;
	c[n].e.path = strdup(from);
	if (!c[n++].e.path)
		goto nomem;
	*out = c;
	*out_n = n;
	return 0;
nomem:
	content_changes_free(c, n);
	return -ENOMEM;
}

int fs_content_rename(struct s3vfs *fs, const struct fs_cpath *from, const struct fs_cpath *to,
		      unsigned int flags)
{
	struct content_change *c = NULL;
	struct where w, wt;
	size_t n = 0;
	int rc;

	if (from->ch != to->ch)
		return -EXDEV;
	rc = locate(fs, from, &w);
	if (rc < 0)
		return rc;
	rc = writable(from, &w);
	if (rc == 0) {
		rc = locate(fs, to, &wt);
		if (rc == 0) {
			rc = writable(to, &wt);
			where_cleanup(&wt);
		}
	}
	bool src_dir = rc == 0 && content_tree_is_dir(w.tree, w.rel);
	bool src_file = rc == 0 && content_tree_find(w.tree, w.rel) >= 0;
	if (rc == 0 && !w.rel[0])
		rc = -EBUSY;
	if (rc == 0 && !src_dir && !src_file)
		rc = -ENOENT;
	if (rc == 0 && !content_path_ok(to->rel))
		rc = -EINVAL;
	size_t fl = strlen(from->rel);
	if (rc == 0 && src_dir && strncmp(to->rel, from->rel, fl) == 0 && to->rel[fl] == '/')
		rc = -EINVAL; /* into itself */
	bool dst_dir = rc == 0 && content_tree_is_dir(w.tree, to->rel);
	bool dst_file = rc == 0 && content_tree_find(w.tree, to->rel) >= 0 && !dst_dir;
	if (rc == 0 && (dst_dir || dst_file) && (flags & RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && src_dir && dst_file)
		rc = -ENOTDIR;
	if (rc == 0 && !src_dir && dst_dir)
		rc = -EISDIR;
	if (rc == 0 && src_dir && dst_dir) {
		struct any a = { 0 };
		if (content_tree_children(w.tree, to->rel, count_child, &a) == 0 && a.n)
			rc = -ENOTEMPTY;
	}
	if (rc == 0 && strcmp(from->rel, to->rel) == 0) {
		where_cleanup(&w);
		return 0;
	}
	if (rc == 0)
		rc = move_changes(w.tree, from->rel, to->rel, &c, &n);
	where_cleanup(&w);
	if (rc < 0)
		return rc;
	/* An implied directory (no entry of its own) moves by its contents. */
	rc = change(fs, from->ch, c, n, "rename");
	content_changes_free(c, n);
	return rc;
}

int fs_content_attr(struct s3vfs *fs, const struct fs_cpath *cp, const mode_t *mode,
		    const struct timespec *mtime)
{
	struct where w;
	int rc = locate(fs, cp, &w);

	if (rc < 0)
		return rc;
	rc = writable(cp, &w);
	long i = rc == 0 ? content_tree_find(w.tree, w.rel) : -1;
	struct content_change c = { 0 };
	if (rc == 0 && i < 0) {
		if (!w.rel[0] || content_tree_is_dir(w.tree, w.rel)) {
			c.op = CONTENT_DIR; /* an implied directory gets an entry */
			c.e.is_dir = true;
			c.e.mode = 0755;
		} else {
			rc = -ENOENT;
		}
	} else if (rc == 0) {
		c.op = w.tree->v[i].is_dir ? CONTENT_DIR : CONTENT_PUT;
		c.e = w.tree->v[i];
	}
	if (rc == 0 && !w.rel[0]) {
		where_cleanup(&w);
		return 0; /* the chain directory itself: its marker, not the tree */
	}
	if (rc == 0) {
		c.e.path = (char *)cp->rel;
		if (mode)
			c.e.mode = *mode & 07777;
		if (mtime)
			c.e.mtime_ms = (int64_t)mtime->tv_sec * 1000 + mtime->tv_nsec / 1000000;
		rc = change(fs, cp->ch, &c, 1, mode ? "chmod" : "touch");
	}
	where_cleanup(&w);
	return rc;
}

/* ---- files ------------------------------------------------------------------------ */

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND));
}

/* A staged file for writing rel; filled from ce's blob unless truncating. */
static int start_write(struct s3vfs *fs, const struct fs_cpath *cp, const struct content_entry *ce,
		       mode_t mode, bool trunc, struct fuse_file_info *fi)
{
	char key[OBJMAP_KEY_BUF], pkey[OBJMAP_KEY_BUF];
	struct meta_entry e;
	struct fs_file *f;
	struct timespec now;
	int rc;

	if (!content_path_ok(cp->rel))
		return -EINVAL;
	rc = fs_key(fs, cp->path, OBJMAP_FILE, pkey);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fs->open_lock);
	uint64_t nth = ++fs->appends;
	pthread_mutex_unlock(&fs->open_lock);
	/* A private open file (never shared with readers of the blob), which
	 * starts as the blob so that reads and partial writes see it. */
	snprintf(key, sizeof(key), "\n%" PRIu64 "\n%s", nth, cp->rel);
	char *pk = strdup(pkey);
	if (!pk)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	memset(&e, 0, sizeof(e));
	e.kind = META_KIND_FILE;
	e.mode = S_IFREG | (ce ? ce->mode : mode & 07777);
	e.uid = fs->uid; /* a content tree's files are the mount's */
	e.gid = fs->gid;
	rc = fs_file_get(fs, key, &e, &f);
	if (rc < 0) {
		free(pk);
		return rc;
	}
	pthread_mutex_lock(&f->lock);
	rc = fs_file_stage(fs, f, false);
	if (rc == 0 && ce && !trunc && ce->size > 0) {
		char bkey[OBJMAP_KEY_BUF];
		rc = content_blob_key(cp->ch, ce->blob, bkey, sizeof(bkey));
		if (rc == 0)
			rc = fs_file_fill(fs, f, bkey, NULL);
	}
	if (rc == 0) {
		f->attr.mode = S_IFREG | (ce ? ce->mode : mode & 07777);
		f->attr.mtime = now;
		f->attr.ctime = now;
		f->dirty = true;
		fs_stream_break(f);
		fs_pc_off(f);
		f->cf = (struct fs_chainfile){ .ch = cp->ch, .kind = CHAIN_CONTENT, .pkey = pk };
		pk = NULL;
		snprintf(f->cf.name, sizeof(f->cf.name), "%s", cp->rel);
		f->cf.fresh = trunc || !ce; /* a new or emptied file is a change */
	}
	pthread_mutex_unlock(&f->lock);
	free(pk);
	if (rc < 0) {
		fs_file_put(fs, f);
		return rc;
	}
	fs_file_opened(fs, f, fi);
	return 0;
}

int fs_content_create(struct s3vfs *fs, const struct fs_cpath *cp, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct where w;
	int rc = locate(fs, cp, &w);

	if (rc < 0)
		return w.history || w.versions_dir ? -EROFS : rc;
	rc = writable(cp, &w);
	if (rc == 0 && content_tree_is_dir(w.tree, w.rel))
		rc = -EISDIR;
	where_cleanup(&w);
	return rc < 0 ? rc : start_write(fs, cp, NULL, mode, true, fi);
}

int fs_content_open(struct s3vfs *fs, const struct fs_cpath *cp, struct fuse_file_info *fi)
{
	char key[OBJMAP_KEY_BUF];
	struct content_entry ce;
	struct meta_entry e;
	struct fs_file *f;
	struct where w;
	int rc = locate(fs, cp, &w);

	if (rc < 0)
		return rc;
	if (w.versions_dir) {
		where_cleanup(&w);
		return -EISDIR;
	}
	memset(&ce, 0, sizeof(ce));
	rc = tree_stat(fs, &w, &e, &ce);
	if (rc == 0 && e.kind == META_KIND_DIR)
		rc = -EISDIR;
	if (rc == 0 && wants_write(fi->flags))
		rc = writable(cp, &w);
	where_cleanup(&w);
	if (rc < 0)
		return rc;
	if (wants_write(fi->flags))
		return start_write(fs, cp, &ce, 0, (fi->flags & O_TRUNC) != 0, fi);
	/* Reading: the version the kernel was told of, if it may still hold it. */
	struct content_entry pinned;
	if (!w.history && pin_get(fs, cp->path, &pinned) && strcmp(pinned.blob, ce.blob) != 0) {
		ce = pinned;
		file_entry(fs, &ce, false, &e);
	}
	struct fs_file *old = w.history ? NULL : old_blob_open(fs, cp, ce.blob);
	if (old) { /* the inode's version, until it is retired */
		snprintf(key, sizeof(key), "%s", old->key);
		meta_entry_cleanup(&e);
		fs_handle_entry(old, &e);
		fs_file_put(fs, old);
		fi->keep_cache = 1;
	} else {
		rc = content_blob_key(cp->ch, ce.blob, key, sizeof(key));
		if (rc < 0)
			return rc;
		fi->keep_cache = fs_kc_keep(fs, cp->path, ce.blob);
	}
	rc = fs_file_get(fs, key, &e, &f);
	if (rc < 0)
		return rc;
	if (!w.history) {
		char *kp = strdup(cp->path);
		pthread_mutex_lock(&fs->open_lock);
		if (!f->kpath) {
			f->kpath = kp;
			kp = NULL;
		}
		pthread_mutex_unlock(&fs->open_lock);
		free(kp);
	}
	fs_file_opened(fs, f, fi);
	return 0;
}

int fs_content_flush_locked(struct s3vfs *fs, struct fs_file *f, bool force)
{
	struct content_change c = { .op = CONTENT_PUT };
	struct content_tree *hint = NULL;
	struct stat st;
	int rc;

	/* A flush after a write (or an attribute change) saves the file, and
	 * close() returns once the change is committed (or staged). A shell's
	 * "> file" flushes its first descriptor before it writes: a new or
	 * truncated file never written is therefore saved at the release of
	 * its last descriptor, just after close() returned, so that the shell's
	 * file is one version, not an empty one and then its content. */
	if (!f->cf.written && !(force && f->cf.fresh))
		return 0;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	(void)view_tree(fs, f->cf.ch, &hint); /* unchanged bodies are not sent again */
	c.e.path = f->cf.name;
	c.e.mode = f->attr.mode & 07777;
	c.e.mtime_ms = (int64_t)f->attr.mtime.tv_sec * 1000 + f->attr.mtime.tv_nsec / 1000000;
	rc = content_blob_put(fs->content->store, f->cf.ch, f->fd, (uint64_t)st.st_size, hint,
			      &c.e);
	content_tree_put(hint);
	if (rc == 0)
		rc = change(fs, f->cf.ch, &c, 1, "write");
	if (rc < 0) {
		log_error("%s: %s not saved: %s", chain_dir_key(f->cf.ch), f->cf.name,
			  strerror(-rc));
		return rc;
	}
	f->cf.written = false;
	f->cf.fresh = false;
	f->dirty = false;
	return 0;
}

int fs_content_truncate(struct s3vfs *fs, const struct fs_cpath *cp, off_t size)
{
	struct fuse_file_info fi = { .flags = O_WRONLY };
	int rc = fs_content_open(fs, cp, &fi);
	struct fs_file *f;

	if (rc < 0)
		return rc;
	f = (struct fs_file *)(uintptr_t)fi.fh;
	pthread_mutex_lock(&f->lock);
	if (ftruncate(f->fd, size) < 0)
		rc = -errno;
	if (rc == 0) {
		f->cf.written = true;
		clock_gettime(CLOCK_REALTIME, &f->attr.mtime);
		rc = fs_content_flush_locked(fs, f, true);
	}
	pthread_mutex_unlock(&f->lock);
	fs_file_release_handle(fs, f);
	return rc;
}

/* ---- controls: transactions and rollback ------------------------------------------- */

static int txn_begin(struct s3vfs *fs, struct chain *ch)
{
	struct fs_content *c = fs->content;
	struct content_tree *head = NULL, *tree = NULL;
	int rc = head_tree(fs, ch, &head);

	if (rc < 0)
		return rc;
	rc = content_tree_clone(head, &tree);
	content_tree_put(head);
	if (rc < 0)
		return rc;
	struct fs_txn *t = calloc(1, sizeof(*t));
	if (!t) {
		content_tree_put(tree);
		return -ENOMEM;
	}
	t->ch = ch;
	t->tree = tree;
	pthread_mutex_lock(&c->lock);
	if (txn_find_locked(c, ch)) {
		rc = -EBUSY; /* one at a time per chain and mount */
	} else {
		t->next = c->txns;
		c->txns = t;
	}
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		txn_free(t);
	return rc;
}

static struct fs_txn *txn_take(struct s3vfs *fs, struct chain *ch)
{
	struct fs_content *c = fs->content;
	struct fs_txn *t = NULL;

	pthread_mutex_lock(&c->lock);
	for (struct fs_txn **pp = &c->txns; *pp; pp = &(*pp)->next) {
		if ((*pp)->ch == ch) {
			t = *pp;
			*pp = t->next;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return t;
}

static int txn_end(struct s3vfs *fs, struct chain *ch, bool commit)
{
	struct chain_link l;
	struct fs_txn *t = txn_take(fs, ch);
	int rc = 0;

	if (!t)
		return -ENOENT; /* no transaction open */
	if (commit && t->n > 0) {
		rc = content_commit(fs->content->store, ch, t->c, t->n, "transaction", &l);
		if (rc == 0)
			log_info("%s: transaction of %zu changes committed as version %" PRIu64,
				 chain_dir_key(ch), t->n, l.version);
		else
			log_error("%s: transaction of %zu changes not committed: %s",
				  chain_dir_key(ch), t->n, strerror(-rc));
	}
	if (!commit) {
		char path[OBJMAP_KEY_BUF + 8];
		if (pin_path(fs, ch, "", path, sizeof(path)) == 0)
			pin_drop(fs, path); /* the staged versions are gone */
	}
	txn_free(t);
	return rc == -EEXIST || rc == -EINVAL ? -EIO : rc;
}

static int rollback(struct s3vfs *fs, struct chain *ch, const char *arg)
{
	struct content_tree *head = NULL, *old = NULL;
	struct content_change *c = NULL;
	const char *rest;
	uint64_t v;
	size_t n = 0;
	int rc;

	if (parse_version(arg, &v, &rest) < 0 || *rest)
		return -EINVAL;
	rc = head_tree(fs, ch, &head);
	if (rc == 0)
		rc = content_tree_at(fs->content->store, ch, v, &old);
	if (rc == -ENOENT)
		rc = -EINVAL; /* no such version */
	if (rc == 0)
		rc = content_tree_diff(head, old, &c, &n);
	if (rc == 0 && n > 0) {
		char label[40];
		snprintf(label, sizeof(label), "rollback-to-%" PRIu64, v);
		rc = change(fs, ch, c, n, label);
	}
	content_changes_free(c, n);
	content_tree_put(head);
	content_tree_put(old);
	return rc;
}

int fs_content_control(struct s3vfs *fs, struct chain *ch, const char *name, const char *value)
{
	if (strcmp(name, FS_XATTR_TXN) == 0) {
		if (strcmp(value, "begin") == 0)
			return txn_begin(fs, ch);
		if (strcmp(value, "commit") == 0)
			return txn_end(fs, ch, true);
		if (strcmp(value, "abort") == 0)
			return txn_end(fs, ch, false);
		return -EINVAL;
	}
	if (strcmp(name, FS_XATTR_ROLLBACK) == 0)
		return rollback(fs, ch, value);
	return -EINVAL;
}

int fs_content_txn_state(struct s3vfs *fs, struct chain *ch, size_t *out_n)
{
	struct fs_content *c = fs->content;

	pthread_mutex_lock(&c->lock);
	struct fs_txn *t = txn_find_locked(c, ch);
	if (t)
		*out_n = t->n;
	pthread_mutex_unlock(&c->lock);
	return t ? 1 : 0;
}
