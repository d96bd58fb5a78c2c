// SPDX-License-Identifier: MIT
/*
 * ops_dir: directory operations. readdir is served from the metadata cache
 * while the directory's listing is fresh, else from ListObjectsV2 pages
 * (delimiter '/') that also fill the cache, so that `ls -l` costs its LIST
 * pages and no HEAD. mkdir writes an s3fs-style marker object "dir/";
 * rmdir refuses non-empty directories, implicit children included; rename
 * of a directory copies every key under it, then deletes the old ones (not
 * atomic, as in every S3 filesystem: the README says so).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3vfs/chain.h"
#include "s3vfs/fs.h"
#include "s3vfs/log.h"

/* ---- readdir ------------------------------------------------------------ */

/* Emits children, merging a file and a directory of the same name. */
struct emitter {
	struct s3vfs *fs;
	const char *dir;
	void *buf;
	fuse_fill_dir_t filler;
	enum fuse_fill_dir_flags flags;
	char prev[OBJMAP_NAME_BUF];
	struct stat prev_st;
	bool have_prev;
	bool full; /* the filler's buffer is full */
};

static void emit_flush(struct emitter *em)
{
	if (em->have_prev && !em->full &&
	    em->filler(em->buf, em->prev, &em->prev_st, 0, em->flags) != 0)
		em->full = true;
	em->have_prev = false;
}

static void emit(struct emitter *em, const char *name, const struct meta_entry *e)
{
	struct stat st;

	fs_entry_to_stat(em->fs, em->dir, name, e, &st);
	if (em->have_prev && strcmp(em->prev, name) == 0) {
		if (S_ISDIR(st.st_mode))
			em->prev_st = st; /* the directory wins */
		return;
	}
	emit_flush(em);
	snprintf(em->prev, sizeof(em->prev), "%s", name);
	em->prev_st = st;
	em->have_prev = true;
}

/* All pages of a listing, kept for the cache and as a fallback. */
struct listing {
	struct s3vfs *fs;
	const char *dir_key;
	struct meta_list_item *items;
	char **names;
	size_t n, cap;
	size_t page_start;
	bool internal; /* the internal folder showed up: perhaps a chain */
};

static void listing_cleanup(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free((char *)l->items[i].key);
		free(l->names[i]);
	}
	free(l->items);
	free(l->names);
}

static int listing_add(struct listing *l, const char *key, const char *name,
		       const struct meta_entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct meta_list_item *it = realloc(l->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		l->items = it;
		char **nm = realloc(l->names, cap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		l->names = nm;
		l->cap = cap;
	}
	char *k = strdup(key), *n = strdup(name);
	if (!k || !n) {
		free(k);
		free(n);
		return -ENOMEM;
	}
	l->items[l->n].key = k;
	l->items[l->n].e = *e;
	l->names[l->n] = n;
	l->n++;
	return 0;
}

/* A child from the cache. The walk holds the cache's lock, and the filler
 * may call back into fs_getattr (readdirplus): collect now, emit later. */
static int on_cached_child(void *arg, const char *name, const char *key, const struct meta_entry *e)
{
	struct meta_entry copy = *e;
	copy.symlink = NULL;
	return listing_add(arg, key, name, &copy);
}

static int on_list_entry(void *arg, const struct s3_list_entry *le)
{
	struct listing *l = arg;
	char name[OBJMAP_NAME_BUF], key[OBJMAP_KEY_BUF];
	struct s3attr_defaults d;
	struct s3attr a;
	struct meta_entry e;

	enum objmap_child_kind k =
		objmap_child(&l->fs->map, l->dir_key, le->key, le->is_prefix, name);
	if (k == OBJMAP_SKIP) {
		size_t dlen = strlen(l->dir_key), klen = strlen(le->key);
		if (le->is_prefix && klen > dlen + 1 &&
		    objmap_is_internal(&l->fs->map, le->key + dlen, klen - dlen - 1))
			l->internal = true;
		return 0;
	}
	bool dir = objmap_child_is_dir(k);
	if (dir && snprintf(key, sizeof(key), "%s%s/", l->dir_key, name) >= (int)sizeof(key))
		return 0;
	fs_defaults(l->fs, dir, le->last_modified ? le->last_modified : l->fs->start_time, &d);
	s3attr_decode(NULL, 0, &d, &a);
	memset(&e, 0, sizeof(e));
	e.kind = dir ? META_KIND_DIR : META_KIND_FILE;
	e.size = dir ? 0 : le->size;
	e.mode = a.mode;
	e.uid = a.uid;
	e.gid = a.gid;
	e.mtime = a.mtime;
	e.ctime = a.ctime;
	if (!dir)
		snprintf(e.etag, sizeof(e.etag), "%s", le->etag);
	e.last_modified = dir ? 0 : le->last_modified;
	return listing_add(l, dir ? key : le->key, name, &e);
}

/* A listing longer than this is refused (its entries are held in memory). */
#define LIST_MAX_ENTRIES 2000000

static uint64_t token_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Has the listing's server sent this continuation token before? */
static bool token_seen(uint64_t **seen, size_t *n, const char *token)
{
	uint64_t h = token_hash(token);
	for (size_t i = 0; i < *n; i++)
		if ((*seen)[i] == h)
			return true;
	if ((*n & (*n - 1)) == 0) { /* grow at powers of two */
		uint64_t *g = realloc(*seen, (*n ? *n * 2 : 16) * sizeof(*g));
		if (!g)
			return true; /* out of memory: stop, as for a loop */
		*seen = g;
	}
	(*seen)[(*n)++] = h;
	return false;
}

/*
 * List dir_key from S3 into l and the cache: 0 when the cache now has it
 * whole, 1 when it is listed but the cache could not take it (a write came
 * meanwhile), <0 when the listing failed: never a partial listing as a whole.
 */
static int list_dir(struct s3vfs *fs, struct listing *l)
{
	/* start-after skips the directory's own marker "dir/", which would
	 * otherwise push the 1,000th child onto a second page. */
	struct s3_list_opts lo = { .prefix = l->dir_key,
				   .delimiter = "/",
				   .start_after = l->dir_key[0] ? l->dir_key : NULL };
	struct meta_fill fill;
	struct aws_error err;
	char *token = NULL;
	uint64_t *seen = NULL;
	size_t nseen = 0;
	bool cached = true;
	int rc = 0;

	meta_cache_fill_begin(fs->mc, &fill);
	do {
		char *next = NULL;
		lo.continuation = token;
		l->page_start = l->n;
		rc = s3_list_page(fs->s3, &lo, on_list_entry, l, &next, &err);
		free(token);
		token = next;
		if (rc < 0)
			break;
		if (token && (token_seen(&seen, &nseen, token) || l->n > LIST_MAX_ENTRIES)) {
			log_error("LIST %s: the server's listing does not end (%zu entries, a "
				  "continuation token again); refused",
				  l->dir_key, l->n);
			rc = -EIO;
			break;
		}
		const struct meta_list_item *page = l->items ? l->items + l->page_start : NULL;
		int prc = meta_cache_put_page(fs->mc, &fill, l->dir_key, page, l->n - l->page_start,
					      token == NULL);
		if (prc < 0)
			cached = false;
	} while (token);
	free(token);
	free(seen);
	if (rc < 0) {
		char msg[512];
		if (rc != -EIO || err.status || err.transport)
			log_error("LIST %s: %s", l->dir_key, aws_error_str(&err, msg, sizeof(msg)));
		/* Pages already in the cache are entries, not a complete listing. */
		return rc == -EAGAIN ? -EIO : rc;
	}
	return cached ? 0 : 1;
}

static int cmp_names(const void *a, const void *b, void *arg)
{
	char **names = arg;
	return strcmp(names[*(const size_t *)a], names[*(const size_t *)b]);
}

/* Serve a listing from memory, when the cache could not take it. */
static int emit_listing(struct emitter *em, const struct listing *l)
{
	size_t *order = malloc((l->n ? l->n : 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		order[i] = i;
	qsort_r(order, l->n, sizeof(*order), cmp_names, l->names);
	for (size_t i = 0; i < l->n; i++)
		emit(em, l->names[order[i]], &l->items[order[i]].e);
	emit_flush(em);
	free(order);
	return 0;
}

/*
 * A directory in a chain, or a chain's own directory: 1 when listed here,
 * 0 when it is a plain directory, <0 error. check: ask S3 whether dkey is a
 * chain when not known.
 */
static int chain_readdir(struct s3vfs *fs, const char *path, const char *dkey, bool check,
			 void *buf, fuse_fill_dir_t filler, enum fuse_fill_dir_flags flags,
			 struct chain **ch)
{
	struct fs_cpath cp;
	int rc = fs_chain_route(fs, path, false, &cp);

	if (rc == 1 && cp.kind == CHAIN_CONTENT) {
		rc = fs_content_readdir(fs, &cp, buf, filler, flags);
		return rc < 0 ? rc : 1;
	}
	if (rc == 1)
		return -ENOENT; /* nothing below an event stream is a directory */
	if (rc < 0)
		return rc;
	rc = fs_chain_dir(fs, dkey, check, ch);
	if (rc == 1)
		rc = fs_chain_readdir(fs, *ch, path, buf, filler, flags);
	else if (rc == 2) {
		memset(&cp, 0, sizeof(cp));
		cp.ch = *ch;
		cp.kind = CHAIN_CONTENT;
		cp.path = path;
		cp.rel = "";
		cp.name = "";
		snprintf(cp.dkey, sizeof(cp.dkey), "%s", dkey);
		rc = fs_content_readdir(fs, &cp, buf, filler, flags);
	} else {
		return rc;
	}
	return rc < 0 ? rc : 1;
}

int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
	       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct s3vfs *fs = fs_ctx();
	struct emitter em = { .fs = fs, .dir = path, .buf = buf, .filler = filler };
	char dkey[OBJMAP_KEY_BUF];
	int64_t age = -1;
	int rc;

	(void)off;
	(void)fi;
	em.flags = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : 0;
	rc = fs_key(fs, path, OBJMAP_DIR, dkey);
	if (rc < 0)
		return rc == -EPERM ? -ENOENT : rc;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);

	struct chain *ch = NULL;
	rc = chain_readdir(fs, path, dkey, false, buf, filler, em.flags, &ch);
	if (rc != 0)
		return rc < 0 ? rc : 0;

	struct listing c = { .fs = fs, .dir_key = dkey };
	if (meta_cache_dir_lookup(fs->mc, dkey, &age) == 0 && age < fs->ttl_ms &&
	    meta_cache_dir_children(fs->mc, dkey, NULL, on_cached_child, &c) == 0) {
		rc = emit_listing(&em, &c);
		listing_cleanup(&c);
		return rc;
	}
	listing_cleanup(&c);
	memset(&c, 0, sizeof(c));
	c.fs = fs;
	c.dir_key = dkey;
	struct listing l = { .fs = fs, .dir_key = dkey };
	rc = list_dir(fs, &l);
	if (rc >= 0) {
		fs_chain_note_listing(fs, dkey, l.internal);
		int crc = l.internal
				  ? chain_readdir(fs, path, dkey, true, buf, filler, em.flags, &ch)
				  : 0;
		if (crc != 0) {
			/* It is a chain after all: show the chain, not its folder. */
			listing_cleanup(&l);
			return crc < 0 ? crc : 0;
		}
	}
	/* The cache now holds the listing with what it knew of each entry's
	 * metadata (HEADs of earlier mounts); else serve the pages as listed. */
	if (rc == 0 && meta_cache_dir_children(fs->mc, dkey, NULL, on_cached_child, &c) == 0)
		rc = emit_listing(&em, &c);
	else if (rc >= 0)
		rc = emit_listing(&em, &l);
	listing_cleanup(&c);
	listing_cleanup(&l);
	return rc < 0 ? rc : 0;
}

/* ---- mkdir, rmdir ------------------------------------------------------- */

static void caller_attr(mode_t mode, struct s3attr *a)
{
	struct fuse_context *cx = fuse_get_context();
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	a->mode = mode;
	a->uid = cx->uid;
	a->gid = cx->gid;
	a->mtime = now;
	a->ctime = now;
	a->atime = now;
}

void fs_attr_entry(const struct s3attr *a, enum meta_kind kind, uint64_t size, const char *etag,
		   struct meta_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->size = size;
	e->mode = a->mode;
	e->uid = a->uid;
	e->gid = a->gid;
	e->mtime = a->mtime;
	e->ctime = a->ctime;
	snprintf(e->etag, sizeof(e->etag), "%s", etag ? etag : "");
	e->last_modified = a->mtime.tv_sec;
	e->meta_known = true;
}

int fs_put_object(struct s3vfs *fs, const char *key, const struct http_body *body,
		  const struct s3attr *a, const struct s3attr_kv *extra, size_t nextra,
		  const char *content_type, char *out_etag)
{
	struct s3attr_kvlist pairs = { 0 };
	struct aws_error err;
	int rc;

	rc = s3attr_merge(extra, nextra, a,
			  S3ATTR_MODE | S3ATTR_UID | S3ATTR_GID | S3ATTR_MTIME | S3ATTR_CTIME, NULL,
			  &pairs);
	if (rc < 0)
		return rc;
	struct s3_put_opts po = {
		.content_type = content_type,
		.meta = (const struct s3_meta *)pairs.kv,
		.nmeta = pairs.n,
	};
	rc = s3_put(fs->s3, key, body, &po, out_etag, &err);
	if (rc < 0) {
		char msg[512];
		log_error("PUT %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
	}
	s3attr_kvlist_cleanup(&pairs);
	return rc;
}

int fs_mkdir(const char *path, mode_t mode)
{
	struct s3vfs *fs = fs_ctx();
	char dkey[OBJMAP_KEY_BUF], etag[S3_ETAG_MAX];
	struct meta_entry e;
	struct meta_fill fill;
	struct s3attr a;
	int rc;

	rc = fs_key(fs, path, OBJMAP_DIR, dkey);
	if (rc < 0)
		return rc;
	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, true, &cp);
	if (rc != 0)
		return rc < 0			  ? rc
		       : cp.kind == CHAIN_CONTENT ? fs_content_mkdir(fs, &cp, mode)
						  : -EPERM;
	const char *chain_kind = NULL;
	rc = fs_chain_mkdir_meta(fs, path, &chain_kind);
	if (rc < 0)
		return rc;
	caller_attr(S_IFDIR | (mode & 07777), &a);
	char mname[] = "s3vfs-chain", mvalue[16];
	snprintf(mvalue, sizeof(mvalue), "%s", chain_kind ? chain_kind : "");
	struct s3attr_kv kv = { .name = mname, .value = mvalue };
	if (chain_kind)
		rc = fs_chain_mkdir_done(fs, dkey, chain_kind); /* the hint first */
	if (rc == 0)
		rc = fs_put_object(fs, dkey, NULL, &a, chain_kind ? &kv : NULL, chain_kind ? 1 : 0,
				   "application/x-directory", etag);
	if (rc < 0)
		return rc;
	if (!chain_kind)
		fs_cached(fs_chain_mkdir_done(fs, dkey, NULL));
	fs_attr_entry(&a, META_KIND_DIR, 0, etag, &e);
	fs_cached(meta_cache_upsert(fs->mc, dkey, &e, NULL));
	/* A new directory is empty: its listing is complete as it is. */
	meta_cache_fill_begin(fs->mc, &fill);
	fs_cached(meta_cache_put_page(fs->mc, &fill, dkey, NULL, 0, true));
	return 0;
}

struct child_probe {
	const char *self;
	unsigned others;
};

static int on_probe_child(void *arg, const struct s3_list_entry *e)
{
	struct child_probe *p = arg;
	if (strcmp(e->key, p->self) != 0)
		p->others++;
	return 0;
}

/* 0 if nothing but the marker lies under dkey; -ENOTEMPTY otherwise. */
static int dir_empty(struct s3vfs *fs, const char *dkey)
{
	struct s3_list_opts lo = { .prefix = dkey, .max_keys = 2 };
	struct child_probe p = { .self = dkey };
	struct aws_error err;
	char *next = NULL;
	int rc = s3_list_page(fs->s3, &lo, on_probe_child, &p, &next, &err);

	free(next);
	if (rc < 0)
		return rc;
	return p.others ? -ENOTEMPTY : 0;
}

int fs_rmdir(const char *path)
{
	struct s3vfs *fs = fs_ctx();
	char dkey[OBJMAP_KEY_BUF];
	struct aws_error err;
	int rc;

	struct fs_cpath cp;
	rc = fs_chain_route(fs, path, false, &cp);
	if (rc != 0)
		return rc < 0 ? rc : cp.kind == CHAIN_CONTENT ? fs_content_rmdir(fs, &cp) : -ENOENT;
	rc = fs_key(fs, path, OBJMAP_DIR, dkey);
	struct chain *ch = NULL;
	int is_chain = rc == 0 ? fs_chain_dir(fs, dkey, true, &ch) : 0;
	if (is_chain < 0)
		return is_chain;
	if (rc == 0 && is_chain)
		rc = fs_chain_rmdir(fs, dkey, ch);
	if (rc == 0)
		rc = dir_empty(fs, dkey);
	if (rc == 0)
		rc = s3_delete(fs->s3, dkey, &err);
	if (rc == 0) {
		fs_cached(meta_cache_mark_negative(fs->mc, dkey, NULL));
		fs_chain_rmdir_done(fs, dkey);
	}
	return rc;
}

/* ---- rename ------------------------------------------------------------- */

/* The copy keeps the metadata: so does the cache, when it knew it. */
static void carry_entry(struct s3vfs *fs, const char *src, const char *dst, const char *etag)
{
	struct meta_entry e;
	int64_t age;
	bool found = meta_cache_lookup(fs->mc, src, &e, &age) == 0;

	if (found && e.meta_known && e.kind != META_KIND_NEGATIVE) {
		snprintf(e.etag, sizeof(e.etag), "%s", etag);
		e.last_modified = 0; /* S3 did not say; the ETag decides */
		fs_cached(meta_cache_upsert(fs->mc, dst, &e, NULL));
	} else {
		fs_cached(meta_cache_delete(fs->mc, dst));
	}
	if (found)
		meta_entry_cleanup(&e);
}

/* Copy every key under from_dkey to the same place under to_dkey, then
 * delete the originals. Not atomic: a failure leaves both trees partly. */
static int rename_dir(struct s3vfs *fs, const char *from_dkey, const char *to_dkey,
		      const struct meta_entry *e)
{
	struct s3_key_list l = { 0 };
	struct aws_error err = { 0 };
	size_t flen = strlen(from_dkey);
	int rc;

	rc = s3_list_keys(fs->s3, from_dkey, &l, &err);
	/* A chain's head is keyed by its path in DynamoDB: it cannot move. */
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		const char *c = strstr(l.keys[i] + flen - 1, "/" CHAIN_DESC_KEY);
		if (c && c[sizeof(CHAIN_DESC_KEY)] == '\0')
			rc = -EPERM;
	}
	/* Every new key must fit before the first copy: no half-moved tree. */
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		if (strlen(to_dkey) + strlen(l.keys[i] + flen) > OBJMAP_KEY_MAX)
			rc = -ENAMETOOLONG;
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		char dst[OBJMAP_KEY_BUF];
		if (snprintf(dst, sizeof(dst), "%s%s", to_dkey, l.keys[i] + flen) >=
		    (int)sizeof(dst)) {
			rc = -ENAMETOOLONG;
			break;
		}
		char etag[S3_ETAG_MAX];
		rc = s3_copy(fs->s3, l.keys[i], dst, NULL, NULL, etag, &err);
		if (rc == 0)
			carry_entry(fs, l.keys[i], dst, etag);
	}
	if (rc == 0 && l.n == 0)
		rc = -ENOENT;
	if (rc == 0)
		rc = s3_delete_many(fs->s3, (const char *const *)l.keys, l.n, &err);
	if (rc == 0) {
		struct meta_entry ne = *e;
		for (size_t i = 0; i < l.n; i++)
			fs_cached(meta_cache_mark_negative(fs->mc, l.keys[i], NULL));
		fs_cached(meta_cache_mark_negative(fs->mc, from_dkey, NULL));
		ne.symlink = NULL;
		fs_cached(meta_cache_upsert(fs->mc, to_dkey, &ne, NULL));
	} else {
		/* Partly moved, perhaps: forget both trees' listings. */
		fs_cached(meta_cache_dir_invalidate(fs->mc, from_dkey));
	}
	fs_cached(meta_cache_dir_invalidate(fs->mc, to_dkey));
	if (rc < 0 && (err.status || err.transport)) {
		char msg[512];
		log_error("rename %s -> %s: %s", from_dkey, to_dkey,
			  aws_error_str(&err, msg, sizeof(msg)));
	}
	s3_key_list_cleanup(&l);
	return rc;
}

static int rename_file(struct s3vfs *fs, const char *from, const char *to,
		       const struct meta_entry *e)
{
	char etag[S3_ETAG_MAX];
	struct aws_error err;
	struct meta_entry ne;
	int rc;

	struct fs_file *f = fs_open_find(fs, from);
	if (f) {
		pthread_mutex_lock(&f->lock);
		rc = fs_file_flush_locked(fs, f);
		pthread_mutex_unlock(&f->lock);
		fs_file_put(fs, f);
		if (rc < 0)
			return rc;
	}
	rc = s3_copy(fs->s3, from, to, NULL, NULL, etag, &err);
	if (rc == 0)
		rc = s3_delete(fs->s3, from, &err);
	if (rc < 0) {
		char msg[512];
		log_error("rename %s -> %s: %s", from, to, aws_error_str(&err, msg, sizeof(msg)));
		return rc;
	}
	ne = *e;
	ne.symlink = NULL;
	snprintf(ne.etag, sizeof(ne.etag), "%s", etag);
	ne.last_modified = time(NULL);
	fs_cached(meta_cache_upsert(fs->mc, to, &ne, NULL));
	fs_cached(meta_cache_mark_negative(fs->mc, from, NULL));
	return 0;
}

int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct s3vfs *fs = fs_ctx();
	char fkey[OBJMAP_KEY_BUF], tkey[OBJMAP_KEY_BUF];
	struct meta_entry src, dst;
	int rc;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	struct fs_cpath cf, ct;
	int rf = fs_chain_route(fs, from, false, &cf);
	int rt = rf < 0 ? 0 : fs_chain_route(fs, to, true, &ct);
	if (rf < 0 || rt < 0)
		return rf < 0 ? rf : rt;
	if ((rf && cf.kind == CHAIN_EVENTS) || (rt && ct.kind == CHAIN_EVENTS))
		return -EPERM; /* history is immutable */
	if (rf && rt)
		return fs_content_rename(fs, &cf, &ct, flags);
	if (rf || rt)
		return -EXDEV; /* in or out of a content chain: mv copies */
	rc = fs_lookup(fs, from, &src);
	if (rc < 0)
		return rc;
	bool src_dir = src.kind == META_KIND_DIR;
	rc = fs_lookup(fs, to, &dst);
	if (rc == 0) {
		bool dst_dir = dst.kind == META_KIND_DIR;
		meta_entry_cleanup(&dst);
		if (flags & RENAME_NOREPLACE)
			rc = -EEXIST;
		else if (src_dir && !dst_dir)
			rc = -ENOTDIR;
		else if (!src_dir && dst_dir)
			rc = -EISDIR;
		else if (dst_dir && fs_key(fs, to, OBJMAP_DIR, tkey) == 0)
			rc = dir_empty(fs, tkey);
	} else if (rc == -ENOENT) {
		rc = 0;
	}
	enum objmap_type t = src_dir ? OBJMAP_DIR : OBJMAP_FILE;
	if (rc == 0 && !src_dir && !objmap_file_name_ok(to))
		rc = -EINVAL; /* it would list as an s3fs legacy directory */
	if (rc == 0)
		rc = fs_key(fs, from, t, fkey);
	if (rc == 0)
		rc = fs_key(fs, to, t, tkey);
	if (rc == 0)
		rc = src_dir ? rename_dir(fs, fkey, tkey, &src) : rename_file(fs, fkey, tkey, &src);
	meta_entry_cleanup(&src);
	return rc;
}
