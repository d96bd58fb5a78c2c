/* SPDX-License-Identifier: MIT */
/*
 * content: versioned trees on a changeset chain (DESIGN.md "Content view").
 * Each changeset of a content chain is a JSON list of changes (put a file
 * whose body is a content-addressed blob, make a directory, delete a path);
 * the tree at version v is the changes of versions 1..v applied in order.
 * Every CONTENT_SNAP_EVERY versions a full snapshot of the tree is stored,
 * so materializing any version reads one snapshot and fewer than
 * CONTENT_SNAP_EVERY changesets, however long the history.
 *
 * Objects, under the chain directory's key DIR:
 *   DIR.s3vfs/blobs/<sha256 hex>          file bodies, written once
 *   DIR.s3vfs/cs/...                      changesets (chain.h)
 *   DIR.s3vfs/snap/<version:020>-<id>     the tree at version (id: its changeset)
 *
 * Owns the JSON formats, the trees, and their caches (changeset bodies and
 * snapshots in the blob store, recent trees in memory). Knows nothing of
 * FUSE. Thread-safe; trees handed out are shared and immutable (ref counted).
 */
#ifndef S3VFS_CONTENT_H
#define S3VFS_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3vfs/buf.h"
#include "s3vfs/chain.h"
#include "s3vfs/compiler.h"

#define CONTENT_SNAP_EVERY 32
#define CONTENT_SHA_BUF	   65
#define CONTENT_PATH_MAX   1024

/* One path of a tree: a file (blob) or a directory. */
struct content_entry {
	char *path; /* relative to the chain directory: "a/b.html" (no leading '/') */
	bool is_dir;
	char blob[CONTENT_SHA_BUF]; /* files: sha256 of the body */
	char etag[CHAIN_ETAG_MAX];  /* files: the blob object's ETag */
	uint64_t size;
	uint32_t mode;	  /* permission bits */
	int64_t mtime_ms; /* as the writer set it: the same on every server */
};

enum content_op { CONTENT_PUT = 1, CONTENT_DIR = 2, CONTENT_DEL = 3 };

struct content_change {
	enum content_op op;
	struct content_entry e; /* DEL: only e.path */
};

/* A tree: entries sorted by path (strcmp), unique. */
struct content_tree {
	int refs;
	uint64_t version;
	struct content_entry *v;
	size_t n, cap;
};

void content_tree_put(struct content_tree *t); /* drop a reference; NULL is a no-op */
struct content_tree *content_tree_ref(struct content_tree *t);
/* A deep copy (refs 1), for staging changes on top. */
int content_tree_clone(const struct content_tree *t, struct content_tree **out) WARN_UNUSED;
struct content_tree *content_tree_new_empty(void);
/* Index of path's own entry, or -1. */
long content_tree_find(const struct content_tree *t, const char *path);
/* Is path a directory: its own dir entry or anything under it ("" is). */
bool content_tree_is_dir(const struct content_tree *t, const char *path);
/* Walk the direct children of directory dir ("" for the top), each once:
 * name, and the child's entry (NULL for an implied directory). fn returns
 * nonzero to stop. */
int content_tree_children(const struct content_tree *t, const char *dir,
			  int (*fn)(void *arg, const char *name, const struct content_entry *e),
			  void *arg);
/* Apply changes in order (DEL removes the path and everything under it;
 * PUT and DIR replace). -EINVAL for a bad path, -ENOMEM. */
int content_tree_apply(struct content_tree *t, const struct content_change *c,
		       size_t n) WARN_UNUSED;
/* The changes that turn from into to (for rollback). */
int content_tree_diff(const struct content_tree *from, const struct content_tree *to,
		      struct content_change **out, size_t *out_n) WARN_UNUSED;
void content_changes_free(struct content_change *c, size_t n);
/* A relative path a tree may hold: not empty, no leading or trailing '/', no
 * empty, "." or ".." component, no component over 255 bytes. */
bool content_path_ok(const char *path);

/* JSON: changes of one changeset, and snapshots. decode: -EPROTO. */
int content_changes_encode(const struct content_change *c, size_t n, struct buf *out) WARN_UNUSED;
int content_changes_decode(const char *json, size_t len, struct content_change **out,
			   size_t *out_n) WARN_UNUSED;
int content_tree_encode(const struct content_tree *t, struct buf *out) WARN_UNUSED;
int content_tree_decode(const char *json, size_t len, struct content_tree **out) WARN_UNUSED;

/* ---- the store: trees of chains, over chain.h ------------------------------ */

struct content_store;
struct s3_client;
struct meta_cache;

int content_store_new(struct chain_store *chains, struct s3_client *s3, struct meta_cache *mc,
		      struct content_store **out) WARN_UNUSED;
void content_store_free(struct content_store *cs);

/*
 * The tree of ch at version (0: empty), with a reference for the caller.
 * The chain's links must reach version (chain_refresh). -ENOENT past the
 * known head, -EIO (logged) when a changeset or snapshot cannot be read.
 */
int content_tree_at(struct content_store *cs, struct chain *ch, uint64_t version,
		    struct content_tree **out) WARN_UNUSED;

/*
 * Store a file body as a blob of ch: sha256 of fd[0, size), then PUT unless
 * known (in hint, a tree that may hold it, or by a HEAD). Fills e's blob,
 * etag and size.
 */
int content_blob_put(struct content_store *cs, struct chain *ch, int fd, uint64_t size,
		     const struct content_tree *hint, struct content_entry *e) WARN_UNUSED;
/* The key of a blob (sha) of ch. -ENAMETOOLONG. */
int content_blob_key(struct chain *ch, const char *sha, char *out, size_t cap) WARN_UNUSED;

/* Commit changes as one changeset named label; a snapshot follows when the
 * version is a multiple of CONTENT_SNAP_EVERY. Errors as chain_commit. */
int content_commit(struct content_store *cs, struct chain *ch, const struct content_change *c,
		   size_t n, const char *label, struct chain_link *out) WARN_UNUSED;

#endif
