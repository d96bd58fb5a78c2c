/* SPDX-License-Identifier: MIT */
/*
 * chain: changeset chains (DESIGN.md "Changeset chains"). A chain is an
 * append-only sequence of immutable changesets, each an S3 object under the
 * chain directory's internal folder, linked to its parent by id; its head
 * (version, changeset id) is one DynamoDB item that moves only by
 * conditional write. This module owns the commit protocol, the verification
 * of links back from the head, and the cache of verified links (in memory
 * and in the SQLite blob store). It knows nothing of FUSE; meta/chain.c
 * opens with the design block (invariants, states, transitions).
 *
 * Thread-safe: every struct chain has its own lock; the store's list of
 * chains has another. A chain lives as long as its store.
 */
#ifndef S3VFS_CHAIN_H
#define S3VFS_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3vfs/compiler.h"
#include "s3vfs/s3_err.h"

struct s3_client;
struct ddb_client;
struct meta_cache;
struct stats;

#define CHAIN_ID_LEN	16 /* hex digits of a changeset id */
#define CHAIN_ID_BUF	(CHAIN_ID_LEN + 1)
#define CHAIN_ROOT_ID	"0000000000000000" /* the parent of version 1 */
#define CHAIN_NAME_MAX	255		   /* bytes of a changeset's name */
#define CHAIN_VERSION_W 8		   /* digits of the version in a view name */
#define CHAIN_ETAG_MAX	80
#define CHAIN_CS_DIR	".s3vfs/cs/"   /* under the chain directory's key */
#define CHAIN_DESC_KEY	".s3vfs/chain" /* the marking's hint object */

enum chain_kind {
	CHAIN_NONE = 0,
	CHAIN_EVENTS = 1,
	CHAIN_CONTENT = 2,
	CHAIN_BAD = -1, /* marked with a kind this build does not know */
};

/* "events" -> CHAIN_EVENTS, "content" -> CHAIN_CONTENT, NULL/"" -> CHAIN_NONE,
 * anything else CHAIN_BAD. */
enum chain_kind chain_kind_parse(const char *s);
const char *chain_kind_name(enum chain_kind k);

/* One changeset on a chain (or a candidate for one). */
struct chain_link {
	uint64_t version;
	char id[CHAIN_ID_BUF];
	char parent[CHAIN_ID_BUF];
	int64_t time_ms; /* commit time the writer put in the key */
	uint64_t size;
	char etag[CHAIN_ETAG_MAX];
	char name[CHAIN_NAME_MAX + 1];
};

/* The head item: version 0 and id "" for a chain with no changeset yet. */
struct chain_head {
	uint64_t version;
	char id[CHAIN_ID_BUF];
};

/* ---- names and keys (pure; fuzzed and unit-tested) ----------------------- */

/*
 * The part of a changeset key after "<dir>.s3vfs/cs/":
 *   <version:020>-<id:16 hex>-<parent:16 hex>-<time ms:013>-<name>
 * format: -ENAMETOOLONG if it does not fit cap, -EINVAL for a bad field.
 * parse: fills version, id, parent, time_ms and name (size and etag are
 * left alone); -EINVAL for anything else (orphan-looking junk is skipped by
 * callers, never trusted).
 */
int chain_cs_format(char *out, size_t cap, const struct chain_link *l) WARN_UNUSED;
int chain_cs_parse(const char *s, struct chain_link *out) WARN_UNUSED;

/*
 * A name in an events view: "<version:08+>-<name>" (the version as a listing
 * shows it: zero-padded to 8 digits, or its own digits past that; a '-',
 * then at least one byte). Returns 1 and *version, *rest (into name) when it
 * is one, 0 when it is a plain name.
 */
int chain_view_parse(const char *name, uint64_t *version, const char **rest);
/* The view name of l: "%08llu-<name>". -ENAMETOOLONG. */
int chain_view_name(const struct chain_link *l, char *out, size_t cap) WARN_UNUSED;
/* A changeset name a writer may use: not empty, no '/', not starting with
 * '.', at most CHAIN_NAME_MAX bytes. */
bool chain_name_ok(const char *name);

/* ---- the store ------------------------------------------------------------ */

struct chain_config {
	struct s3_client *s3;
	struct ddb_client *ddb; /* NULL: chains are unavailable (-EIO, logged) */
	struct meta_cache *mc;
	struct stats *stats;
	const char *bucket;
	const char *table;     /* DynamoDB table of heads */
	bool create_table;     /* create it (PAY_PER_REQUEST) when missing */
	bool consistent_reads; /* heads always read consistently */
	int64_t head_ttl_ms;   /* a head read is trusted this long */
	unsigned max_attempts; /* of an auto append under contention */
};

struct chain_store;
struct chain;

int chain_store_new(const struct chain_config *cfg, struct chain_store **out) WARN_UNUSED;
void chain_store_free(struct chain_store *cs);

/* The chain of directory key dir_key ("a/b/"), made on first use. Never
 * fails for a valid key but with -ENOMEM / -ENAMETOOLONG. */
int chain_get(struct chain_store *cs, const char *dir_key, struct chain **out) WARN_UNUSED;
/* The directory key of a chain ("a/b/"). */
const char *chain_dir_key(const struct chain *ch);
/* Forget what is known of dir_key's chain (after rmdir). */
void chain_forget(struct chain_store *cs, const char *dir_key);

/*
 * Bring the chain up to date: read the head (unless one read within
 * head_ttl_ms is known and force is false), then LIST and verify the links
 * not yet known. -EIO with a log line for a head pointing at a missing or
 * broken changeset, a missing table, an unreachable DynamoDB.
 */
int chain_refresh(struct chain_store *cs, struct chain *ch, bool force) WARN_UNUSED;
/* The head as last read or moved by this mount. */
void chain_head_get(struct chain *ch, struct chain_head *out);
/* The verified link at version (1..head): 0, or -ENOENT when not known. */
int chain_link_get(struct chain *ch, uint64_t version, struct chain_link *out) WARN_UNUSED;
/* Verified links known, in version order, from version after+1; fn returns
 * nonzero to stop. Called without the chain's lock held (a snapshot). */
int chain_walk(struct chain *ch, uint64_t after, int (*fn)(void *arg, const struct chain_link *l),
	       void *arg) WARN_UNUSED;
/* The key of a verified link's object (OBJMAP-sized buffer). */
int chain_link_key(const struct chain *ch, const struct chain_link *l, char *out,
		   size_t cap) WARN_UNUSED;

/* What an append carries besides its body. */
struct chain_append {
	const char *name; /* the writer's name, chain_name_ok() */
	uint64_t expect;  /* 0: next version; else this version exactly */
	int fd;		  /* body: fd[0, size), or data when fd < 0 */
	const void *data;
	uint64_t size;
	const char *content_type; /* may be NULL */
};

/*
 * Commit one changeset (the protocol in meta/chain.c). On 0, *out is the
 * committed link. -EEXIST: an explicit version is taken; -EINVAL: an explicit
 * version past head + 1; -EBUSY: an auto append lost more than max_attempts
 * races; -EIO: S3 or DynamoDB failed (the append is not committed and will
 * never be: a later commit can not resurrect it).
 */
int chain_commit(struct chain_store *cs, struct chain *ch, const struct chain_append *a,
		 struct chain_link *out) WARN_UNUSED;

#endif
