// SPDX-License-Identifier: MIT
/*
 * meta/content: trees of content chains (see content.h): the JSON of
 * changesets and snapshots, applying changes, materializing the tree of a
 * version from a snapshot and the changesets after it, blobs by sha256. It
 * must not know FUSE or how a tree is shown.
 *
 * Invariants.
 *  C1. A tree is immutable once handed out (content_tree_at): changes are
 *      made on a clone. Trees are shared by reference count.
 *  C2. tree(v) = apply(tree(s), changes(s+1..v)) for the snapshot s <= v,
 *      and every snapshot equals the tree it names: a snapshot is written
 *      only from a tree materialized from verified changesets (I1 of
 *      chain.c), and it is keyed by its version and changeset id, so one
 *      of a dead branch (an orphan's id) is never read.
 *  C3. A blob's key is the sha256 of its bytes: a blob is written once and
 *      never changes, so any tree may point at it.
 */
#include "s3vfs/content.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "s3vfs/log.h"
#include "s3vfs/meta_cache.h"
#include "s3vfs/s3.h"

#define NS_CS	   "content-cs"
#define NS_SNAP	   "content-snap"
#define TREES_KEPT 8 /* recent trees kept in memory */
#define KEY_BUF	   1100
#define JSON_MAX   (64u << 20)
#define SHA_CHUNK  (1u << 20)

/* ---- trees ------------------------------------------------------------------ */

static void entry_cleanup(struct content_entry *e)
{
	free(e->path);
	e->path = NULL;
}

static int entry_copy(struct content_entry *dst, const struct content_entry *src)
{
	*dst = *src;
	dst->path = strdup(src->path);
	return dst->path ? 0 : -ENOMEM;
}

struct content_tree *content_tree_new_empty(void)
{
	struct content_tree *t = calloc(1, sizeof(*t));
	if (t)
		t->refs = 1;
	return t;
}

struct content_tree *content_tree_ref(struct content_tree *t)
{
	if (t)
		__atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
	return t;
}

void content_tree_put(struct content_tree *t)
{
	if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < t->n; i++)
		entry_cleanup(&t->v[i]);
	free(t->v);
	free(t);
}

int content_tree_clone(const struct content_tree *t, struct content_tree **out)
{
	struct content_tree *c = content_tree_new_empty();

	if (!c)
		return -ENOMEM;
	c->version = t->version;
	c->v = calloc(t->n ? t->n : 1, sizeof(*c->v));
	if (!c->v) {
		free(c);
		return -ENOMEM;
	}
	c->cap = t->n ? t->n : 1;
	for (size_t i = 0; i < t->n; i++) {
		if (entry_copy(&c->v[i], &t->v[i]) < 0) {
			c->n = i;
			content_tree_put(c);
			return -ENOMEM;
		}
	}
	c->n = t->n;
	*out = c;
	return 0;
}

/* First index whose path is >= path. */
static size_t lower_bound(const struct content_tree *t, const char *path)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->v[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

long content_tree_find(const struct content_tree *t, const char *path)
{
	size_t i = lower_bound(t, path);
	return i < t->n && strcmp(t->v[i].path, path) == 0 ? (long)i : -1;
}

/* Does some entry lie under "path/"? */
static bool has_under(const struct content_tree *t, const char *path)
{
	char pre[CONTENT_PATH_MAX + 2];
	int n = snprintf(pre, sizeof(pre), "%s/", path);
	if (n < 0 || (size_t)n >= sizeof(pre))
		return false;
	size_t i = lower_bound(t, pre);
	return i < t->n && strncmp(t->v[i].path, pre, (size_t)n) == 0;
}

bool content_tree_is_dir(const struct content_tree *t, const char *path)
{
	if (!path[0])
		return true;
	long i = content_tree_find(t, path);
	if (i >= 0)
		return t->v[i].is_dir;
	return has_under(t, path);
}

int content_tree_children(const struct content_tree *t, const char *dir,
			  int (*fn)(void *arg, const char *name, const struct content_entry *e),
			  void *arg)
{
	char pre[CONTENT_PATH_MAX + 2], child[2 * CONTENT_PATH_MAX + 4];
	size_t plen = 0;

	if (dir[0]) {
		int n = snprintf(pre, sizeof(pre), "%s/", dir);
		if (n < 0 || (size_t)n >= sizeof(pre))
			return -ENAMETOOLONG;
		plen = (size_t)n;
	} else {
		pre[0] = '\0';
	}
	for (size_t i = lower_bound(t, pre); i < t->n; i++) {
		const struct content_entry *e = &t->v[i];
		if (strncmp(e->path, pre, plen) != 0)
			break;
		const char *rest = e->path + plen;
		const char *slash = strchr(rest, '/');
		size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
		if (len == 0 || plen + len + 1 >= sizeof(child))
			continue;
		if (slash) {
			/* A deeper path: its child is a directory, given once, at
			 * its own entry if it has one, else at its first path. */
			memcpy(child, e->path, plen + len);
			child[plen + len] = '\0';
			if (content_tree_find(t, child) >= 0)
				continue;
			child[plen + len] = '/';
			child[plen + len + 1] = '\0';
			if (lower_bound(t, child) != i)
				continue;
		}
		char name[256];
		if (len >= sizeof(name))
			continue;
		memcpy(name, rest, len);
		name[len] = '\0';
		int rc = fn(arg, name, slash ? NULL : e);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

bool content_path_ok(const char *path)
{
	size_t n = strlen(path);
	if (n == 0 || n > CONTENT_PATH_MAX || path[0] == '/' || path[n - 1] == '/')
		return false;
	for (const char *p = path; *p;) {
		const char *s = strchr(p, '/');
		size_t len = s ? (size_t)(s - p) : strlen(p);
		if (len == 0 || len > 255 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += len + (s ? 1 : 0);
	}
	return true;
}

static int tree_insert_at(struct content_tree *t, size_t i, const struct content_entry *e)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct content_entry *nv = realloc(t->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = cap;
	}
	if (t->n > i)
		memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
	t->n++;
	int rc = entry_copy(&t->v[i], e);
	if (rc < 0) {
		memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
		t->n--;
	}
	return rc;
}

static void remove_range(struct content_tree *t, size_t i, size_t j)
{
	if (i == j)
		return;
	for (size_t k = i; k < j; k++)
		entry_cleanup(&t->v[k]);
	memmove(&t->v[i], &t->v[j], (t->n - j) * sizeof(*t->v));
	t->n -= j - i;
}

/* Remove path and everything under it ("a-b" and "a.txt" sort between "a"
 * and "a/x": the two ranges are found apart). */
static void tree_delete(struct content_tree *t, const char *path)
{
	char pre[CONTENT_PATH_MAX + 2];
	int n = snprintf(pre, sizeof(pre), "%s/", path);

	if (n > 0 && (size_t)n < sizeof(pre)) {
		size_t i = lower_bound(t, pre), j = i;
		while (j < t->n && strncmp(t->v[j].path, pre, (size_t)n) == 0)
			j++;
		remove_range(t, i, j);
	}
	long k = content_tree_find(t, path);
	if (k >= 0)
		remove_range(t, (size_t)k, (size_t)k + 1);
}

int content_tree_apply(struct content_tree *t, const struct content_change *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct content_entry *e = &c[i].e;
		if (!e->path || !content_path_ok(e->path))
			return -EINVAL;
		if (c[i].op == CONTENT_DEL) {
			tree_delete(t, e->path);
			continue;
		}
		if (c[i].op != CONTENT_PUT && c[i].op != CONTENT_DIR)
			return -EINVAL;
		/* A file replaces whatever was there (a directory goes whole). */
		if (c[i].op == CONTENT_PUT)
			tree_delete(t, e->path);
		size_t at = lower_bound(t, e->path);
		if (at < t->n && strcmp(t->v[at].path, e->path) == 0) {
			char *keep = t->v[at].path;
			t->v[at] = *e;
			t->v[at].path = keep;
		} else {
			int rc = tree_insert_at(t, at, e);
			if (rc < 0)
				return rc;
		}
		t->v[at].is_dir = c[i].op == CONTENT_DIR;
	}
	return 0;
}

void content_changes_free(struct content_change *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		entry_cleanup(&c[i].e);
	free(c);
}

static bool same_entry(const struct content_entry *a, const struct content_entry *b)
{
	return a->is_dir == b->is_dir && strcmp(a->blob, b->blob) == 0 && a->size == b->size &&
	       a->mode == b->mode && a->mtime_ms == b->mtime_ms;
}

int content_tree_diff(const struct content_tree *from, const struct content_tree *to,
		      struct content_change **out, size_t *out_n)
{
	struct content_change *c = calloc(from->n + to->n + 1, sizeof(*c));
	size_t n = 0;

	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < from->n; i++) {
		if (content_tree_find(to, from->v[i].path) >= 0)
			continue;
		c[n].op = CONTENT_DEL;
		c[n].e.path = strdup(from->v[i].path);
		if (!c[n++].e.path)
			goto nomem;
	}
	for (size_t i = 0; i < to->n; i++) {
		long j = content_tree_find(from, to->v[i].path);
		if (j >= 0 && same_entry(&from->v[j], &to->v[i]))
			continue;
		c[n].op = to->v[i].is_dir ? CONTENT_DIR : CONTENT_PUT;
		if (entry_copy(&c[n++].e, &to->v[i]) < 0)
			goto nomem;
	}
	*out = c;
	*out_n = n;
	return 0;
nomem:
	content_changes_free(c, n);
	return -ENOMEM;
}

/* ---- JSON ------------------------------------------------------------------- */

static json_t *entry_json(const char *op, const struct content_entry *e)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int rc = 0;
	if (op)
		rc |= json_object_set_new(o, "op", json_string(op));
	rc |= json_object_set_new(o, "path", json_string(e->path));
	if (!op || strcmp(op, "del") != 0) {
		if (e->is_dir) {
			rc |= json_object_set_new(o, "dir", json_true());
		} else {
			rc |= json_object_set_new(o, "blob", json_string(e->blob));
			rc |= json_object_set_new(o, "etag", json_string(e->etag));
			rc |= json_object_set_new(o, "size", json_integer((json_int_t)e->size));
		}
		rc |= json_object_set_new(o, "mode", json_integer(e->mode & 07777));
		rc |= json_object_set_new(o, "mtime", json_integer(e->mtime_ms));
	}
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int dump(json_t *root, struct buf *out)
{
	char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
	int rc = s ? buf_add(out, s, strlen(s)) : -ENOMEM;
	free(s);
	return rc;
}

static const char *op_name(enum content_op op)
{
	return op == CONTENT_PUT ? "put" : op == CONTENT_DIR ? "dir" : "del";
}

int content_changes_encode(const struct content_change *c, size_t n, struct buf *out)
{
	json_t *arr = json_array();
	json_t *root = json_pack("{s:i,s:o}", "content", 1, "changes", arr);
	int rc = root ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_t *o = entry_json(op_name(c[i].op), &c[i].e);
		if (!o || json_array_append_new(arr, o) < 0)
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = dump(root, out);
	json_decref(root);
	return rc;
}

static int hex_ok(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* One entry from JSON; with_op: a change (op required). -EPROTO. */
static int entry_from_json(json_t *o, bool with_op, enum content_op *op, struct content_entry *e)
{
	const char *path = json_string_value(json_object_get(o, "path"));
	const char *ops = with_op ? json_string_value(json_object_get(o, "op")) : NULL;

	memset(e, 0, sizeof(*e));
	if (!json_is_object(o) || !path || !content_path_ok(path))
		return -EPROTO;
	if (with_op) {
		if (!ops)
			return -EPROTO;
		*op = strcmp(ops, "put") == 0	? CONTENT_PUT
		      : strcmp(ops, "dir") == 0 ? CONTENT_DIR
		      : strcmp(ops, "del") == 0 ? CONTENT_DEL
						: 0;
		if (!*op)
			return -EPROTO;
	} else {
		*op = json_is_true(json_object_get(o, "dir")) ? CONTENT_DIR : CONTENT_PUT;
	}
	if (*op != CONTENT_DEL) {
		json_t *mode = json_object_get(o, "mode"), *mtime = json_object_get(o, "mtime");
		if (!json_is_integer(mode) || !json_is_integer(mtime))
			return -EPROTO;
		e->mode = (uint32_t)(json_integer_value(mode) & 07777);
		e->mtime_ms = json_integer_value(mtime);
		e->is_dir = *op == CONTENT_DIR;
	}
	if (*op == CONTENT_PUT) {
		const char *blob = json_string_value(json_object_get(o, "blob"));
		const char *etag = json_string_value(json_object_get(o, "etag"));
		json_t *size = json_object_get(o, "size");
		if (!blob || !hex_ok(blob, 64) || !etag || strlen(etag) >= sizeof(e->etag) ||
		    !json_is_integer(size) || json_integer_value(size) < 0)
			return -EPROTO;
		memcpy(e->blob, blob, 65);
		snprintf(e->etag, sizeof(e->etag), "%s", etag);
		e->size = (uint64_t)json_integer_value(size);
	}
	e->path = strdup(path);
	return e->path ? 0 : -ENOMEM;
}

static json_t *load(const char *json, size_t len)
{
	json_error_t jerr;
	if (len > JSON_MAX)
		return NULL;
	return json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
}

int content_changes_decode(const char *json, size_t len, struct content_change **out, size_t *out_n)
{
	json_t *root = load(json, len);
	json_t *arr = json_object_get(root, "changes");
	struct content_change *c = NULL;
	size_t n = 0;
	int rc = json_is_array(arr) ? 0 : -EPROTO;

	if (rc == 0) {
		c = calloc(json_array_size(arr) + 1, sizeof(*c));
		rc = c ? 0 : -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
		rc = entry_from_json(json_array_get(arr, i), true, &c[n].op, &c[n].e);
		if (rc == 0)
			n++;
	}
	json_decref(root);
	if (rc < 0) {
		content_changes_free(c, n);
		return rc;
	}
	*out = c;
	*out_n = n;
	return 0;
}

int content_tree_encode(const struct content_tree *t, struct buf *out)
{
	json_t *arr = json_array();
	json_t *root = json_pack("{s:i,s:I,s:o}", "content", 1, "version", (json_int_t)t->version,
				 "entries", arr);
	int rc = root ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < t->n; i++) {
		json_t *o = entry_json(NULL, &t->v[i]);
		if (!o || json_array_append_new(arr, o) < 0)
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = dump(root, out);
	json_decref(root);
	return rc;
}

int content_tree_decode(const char *json, size_t len, struct content_tree **out)
{
	json_t *root = load(json, len);
	json_t *arr = json_object_get(root, "entries");
	json_t *ver = json_object_get(root, "version");
	struct content_tree *t = content_tree_new_empty();
	int rc = t && json_is_array(arr) && json_is_integer(ver) ? 0 : -EPROTO;

	for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
		struct content_change c;
		rc = entry_from_json(json_array_get(arr, i), false, &c.op, &c.e);
		if (rc == 0) {
			/* Sorted and unique, or it is not ours. */
			if (t->n && strcmp(t->v[t->n - 1].path, c.e.path) >= 0)
				rc = -EPROTO;
			else
				rc = content_tree_apply(t, &c, 1);
			entry_cleanup(&c.e);
		}
	}
	if (rc == 0)
		t->version = (uint64_t)json_integer_value(ver);
	json_decref(root);
	if (rc < 0) {
		content_tree_put(t);
		return rc == -ENOMEM ? rc : -EPROTO;
	}
	*out = t;
	return 0;
}

/* ---- the store -------------------------------------------------------------- */

struct kept {
	struct chain *ch;
	struct content_tree *t; /* version t->version of ch */
	uint64_t used;
};

struct content_store {
	struct chain_store *chains;
	struct s3_client *s3;
	struct meta_cache *mc;
	pthread_mutex_t lock;
	struct kept kept[TREES_KEPT]; /* protected by lock */
	uint64_t clock;		      /* protected by lock */
};

int content_store_new(struct chain_store *chains, struct s3_client *s3, struct meta_cache *mc,
		      struct content_store **out)
{
	struct content_store *cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->chains = chains;
	cs->s3 = s3;
	cs->mc = mc;
	pthread_mutex_init(&cs->lock, NULL);
	*out = cs;
	return 0;
}

void content_store_free(struct content_store *cs)
{
	if (!cs)
		return;
	for (int i = 0; i < TREES_KEPT; i++)
		content_tree_put(cs->kept[i].t);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

/* The kept tree of ch with the highest version <= v (a reference), or NULL. */
static struct content_tree *kept_best(struct content_store *cs, struct chain *ch, uint64_t v)
{
	struct content_tree *best = NULL;
	int bi = -1;

	pthread_mutex_lock(&cs->lock);
	for (int i = 0; i < TREES_KEPT; i++) {
		struct kept *k = &cs->kept[i];
		if (k->ch == ch && k->t && k->t->version <= v &&
		    (!best || k->t->version > best->version)) {
			best = k->t;
			bi = i;
		}
	}
	if (best) {
		content_tree_ref(best);
		cs->kept[bi].used = ++cs->clock;
	}
	pthread_mutex_unlock(&cs->lock);
	return best;
}

static void keep(struct content_store *cs, struct chain *ch, struct content_tree *t)
{
	int victim = 0;

	pthread_mutex_lock(&cs->lock);
	for (int i = 0; i < TREES_KEPT; i++) {
		struct kept *k = &cs->kept[i];
		if (k->ch == ch && k->t && k->t->version == t->version) {
			pthread_mutex_unlock(&cs->lock);
			return;
		}
		if (!k->t || k->used < cs->kept[victim].used)
			victim = i;
		if (!k->t)
			break;
	}
	content_tree_put(cs->kept[victim].t);
	cs->kept[victim] = (struct kept){ .ch = ch, .t = content_tree_ref(t), .used = ++cs->clock };
	pthread_mutex_unlock(&cs->lock);
}

/* The cache only saves requests: a failure to fill it is logged, not fatal. */
static void cache_put(struct content_store *cs, const char *ns, const char *key, const void *val,
		      size_t len)
{
	int rc = meta_cache_blob_put(cs->mc, ns, key, val, len);
	if (rc < 0 && rc != -EEXIST)
		log_warn("content cache: %s %s: %s", ns, key, strerror(-rc));
}

static int blob_ns_key(struct chain *ch, uint64_t v, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s#%020" PRIu64, chain_dir_key(ch), v);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int buf_sink(void *arg, const void *data, size_t n)
{
	return buf_add(arg, data, n);
}

static int get_small(struct content_store *cs, const char *key, struct buf *out)
{
	struct aws_error err = { 0 };
	int rc = s3_get(cs->s3, key, NULL, buf_sink, out, NULL, &err);
	if (rc < 0 && rc != -ENOENT) {
		char msg[512];
		log_error("GET %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
	}
	return rc;
}

/* The changes of version v (cached for good: changesets never change). */
static int changes_of(struct content_store *cs, struct chain *ch, uint64_t v,
		      struct content_change **out, size_t *n)
{
	char bkey[KEY_BUF], key[KEY_BUF + 300];
	struct chain_link l;
	void *val = NULL;
	size_t len = 0;
	struct buf b;
	int rc;

	if (blob_ns_key(ch, v, bkey, sizeof(bkey)) == 0 && cs->mc &&
	    meta_cache_blob_get(cs->mc, NS_CS, bkey, &val, &len) == 0) {
		rc = content_changes_decode(val, len, out, n);
		free(val);
		if (rc == 0)
			return 0;
	}
	rc = chain_link_get(ch, v, &l);
	if (rc == 0)
		rc = chain_link_key(ch, &l, key, sizeof(key));
	if (rc < 0)
		return rc == -ENOENT ? -EIO : rc;
	buf_init(&b, JSON_MAX);
	rc = get_small(cs, key, &b);
	if (rc == 0)
		rc = content_changes_decode(buf_str(&b), buf_len(&b), out, n);
	if (rc == 0 && cs->mc)
		cache_put(cs, NS_CS, bkey, buf_str(&b), buf_len(&b));
	if (rc < 0)
		log_error("chain %s: changeset %" PRIu64 " is unreadable (%s)", chain_dir_key(ch),
			  v, strerror(-rc));
	buf_cleanup(&b);
	return rc < 0 ? -EIO : 0;
}

static int snap_key(struct chain *ch, uint64_t v, char *out, size_t cap)
{
	struct chain_link l;
	int rc = chain_link_get(ch, v, &l);
	if (rc < 0)
		return rc;
	int n = snprintf(out, cap, "%s.s3vfs/snap/%020" PRIu64 "-%s", chain_dir_key(ch), v, l.id);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The snapshot of version v: 0 and *out, -ENOENT when there is none. */
static int snapshot_of(struct content_store *cs, struct chain *ch, uint64_t v,
		       struct content_tree **out)
{
	char bkey[KEY_BUF], key[KEY_BUF];
	void *val = NULL;
	size_t len = 0;
	struct buf b;
	int rc;

	if (blob_ns_key(ch, v, bkey, sizeof(bkey)) == 0 && cs->mc &&
	    meta_cache_blob_get(cs->mc, NS_SNAP, bkey, &val, &len) == 0) {
		rc = content_tree_decode(val, len, out);
		free(val);
		if (rc == 0 && (*out)->version == v)
			return 0;
		if (rc == 0)
			content_tree_put(*out);
	}
	rc = snap_key(ch, v, key, sizeof(key));
	if (rc < 0)
		return rc;
	buf_init(&b, JSON_MAX);
	rc = get_small(cs, key, &b);
	if (rc == 0) {
		rc = content_tree_decode(buf_str(&b), buf_len(&b), out);
		if (rc == 0 && (*out)->version != v) {
			content_tree_put(*out);
			rc = -EPROTO;
		}
		if (rc == 0 && cs->mc)
			cache_put(cs, NS_SNAP, bkey, buf_str(&b), buf_len(&b));
		if (rc < 0)
			log_warn("chain %s: snapshot %" PRIu64 " is unreadable; using an older one",
				 chain_dir_key(ch), v);
	}
	buf_cleanup(&b);
	return rc < 0 ? -ENOENT : 0;
}

int content_tree_at(struct content_store *cs, struct chain *ch, uint64_t version,
		    struct content_tree **out)
{
	struct content_tree *base, *t = NULL;
	struct chain_head h;
	int rc;

	chain_head_get(ch, &h);
	if (version > h.version)
		return -ENOENT;
	base = kept_best(cs, ch, version);
	if (base && base->version == version) {
		*out = base;
		return 0;
	}
	/* From a kept tree when it is close, else from the snapshot under v. */
	uint64_t snap = version - version % CONTENT_SNAP_EVERY;
	if (!base || base->version < snap) {
		content_tree_put(base);
		base = NULL;
		for (uint64_t s = snap; s > 0 && !base; s -= CONTENT_SNAP_EVERY) {
			rc = snapshot_of(cs, ch, s, &base);
			if (rc < 0 && rc != -ENOENT)
				return rc;
		}
		if (!base && !(base = content_tree_new_empty()))
			return -ENOMEM;
	}
	rc = content_tree_clone(base, &t);
	content_tree_put(base);
	for (uint64_t v = t ? t->version + 1 : 0; rc == 0 && v <= version; v++) {
		struct content_change *c = NULL;
		size_t n = 0;
		rc = changes_of(cs, ch, v, &c, &n);
		if (rc == 0)
			rc = content_tree_apply(t, c, n);
		content_changes_free(c, n);
		if (rc == 0)
			t->version = v;
	}
	if (rc < 0) {
		content_tree_put(t);
		return rc;
	}
	keep(cs, ch, t);
	*out = t;
	return 0;
}

int content_blob_key(struct chain *ch, const char *sha, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s.s3vfs/blobs/%s", chain_dir_key(ch), sha);
	return n < 0 || (size_t)n >= cap || n > S3_KEY_MAX ? -ENAMETOOLONG : 0;
}

static int sha256_fd(int fd, uint64_t size, char out[CONTENT_SHA_BUF])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32];
	char *chunk = malloc(SHA_CHUNK);
	uint64_t off = 0;
	int rc = ctx && chunk ? 0 : -ENOMEM;

	if (rc == 0)
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while (rc == 0 && off < size) {
		size_t want = size - off < SHA_CHUNK ? (size_t)(size - off) : SHA_CHUNK;
		ssize_t r = pread(fd, chunk, want, (off_t)off);
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			break;
		}
		EVP_DigestUpdate(ctx, chunk, (size_t)r);
		off += (uint64_t)r;
	}
	if (rc == 0) {
		EVP_DigestFinal_ex(ctx, md, NULL);
		for (int i = 0; i < 32; i++)
			snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
	EVP_MD_CTX_free(ctx);
	free(chunk);
	return rc;
}

int content_blob_put(struct content_store *cs, struct chain *ch, int fd, uint64_t size,
		     const struct content_tree *hint, struct content_entry *e)
{
	char key[KEY_BUF];
	struct aws_error err = { 0 };
	int rc = sha256_fd(fd, size, e->blob);

	if (rc < 0)
		return rc;
	e->size = size;
	for (size_t i = 0; hint && i < hint->n; i++) {
		if (!hint->v[i].is_dir && strcmp(hint->v[i].blob, e->blob) == 0 &&
		    hint->v[i].size == size) {
			snprintf(e->etag, sizeof(e->etag), "%s", hint->v[i].etag);
			return 0; /* unchanged content is never uploaded twice (C3) */
		}
	}
	rc = content_blob_key(ch, e->blob, key, sizeof(key));
	if (rc < 0)
		return rc;
	struct s3_object_info info = { 0 };
	rc = s3_head(cs->s3, key, NULL, &info, &err);
	if (rc == 0 && info.size == size) {
		snprintf(e->etag, sizeof(e->etag), "%s", info.etag);
		s3_object_info_cleanup(&info);
		return 0;
	}
	s3_object_info_cleanup(&info);
	struct s3_put_opts po = { .content_md5 = true };
	struct http_body body = { .fd = fd, .len = size };
	char etag[S3_ETAG_MAX];
	rc = s3_put(cs->s3, key, &body, &po, etag, &err);
	if (rc < 0) {
		char msg[512];
		log_error("PUT %s: %s", key, aws_error_str(&err, msg, sizeof(msg)));
		return -EIO;
	}
	snprintf(e->etag, sizeof(e->etag), "%s", etag);
	return 0;
}

/* Write the snapshot of version v (best effort: readers fall back). */
static void write_snapshot(struct content_store *cs, struct chain *ch, uint64_t v)
{
	struct content_tree *t = NULL;
	char key[KEY_BUF], bkey[KEY_BUF];
	struct aws_error err = { 0 };
	struct buf b;

	if (content_tree_at(cs, ch, v, &t) < 0 || snap_key(ch, v, key, sizeof(key)) < 0) {
		content_tree_put(t);
		return;
	}
	buf_init(&b, JSON_MAX);
	int rc = content_tree_encode(t, &b);
	struct http_body body = { .data = buf_str(&b), .fd = -1, .len = buf_len(&b) };
	struct s3_put_opts po = { .content_type = "application/json", .content_md5 = true };
	if (rc == 0)
		rc = s3_put(cs->s3, key, &body, &po, NULL, &err);
	if (rc == 0 && cs->mc && blob_ns_key(ch, v, bkey, sizeof(bkey)) == 0)
		cache_put(cs, NS_SNAP, bkey, buf_str(&b), buf_len(&b));
	if (rc < 0)
		log_warn("chain %s: snapshot %" PRIu64 " not written (%s)", chain_dir_key(ch), v,
			 strerror(-rc));
	buf_cleanup(&b);
	content_tree_put(t);
}

int content_commit(struct content_store *cs, struct chain *ch, const struct content_change *c,
		   size_t n, const char *label, struct chain_link *out)
{
	struct buf b;
	char bkey[KEY_BUF];

	buf_init(&b, JSON_MAX);
	int rc = content_changes_encode(c, n, &b);
	if (rc == 0) {
		struct chain_append a = { .name = label,
					  .fd = -1,
					  .data = buf_str(&b),
					  .size = buf_len(&b),
					  .content_type = "application/json" };
		rc = chain_commit(cs->chains, ch, &a, out);
	}
	if (rc == 0 && cs->mc && blob_ns_key(ch, out->version, bkey, sizeof(bkey)) == 0)
		cache_put(cs, NS_CS, bkey, buf_str(&b), buf_len(&b));
	buf_cleanup(&b);
	if (rc == 0 && out->version % CONTENT_SNAP_EVERY == 0)
		write_snapshot(cs, ch, out->version);
	return rc;
}
