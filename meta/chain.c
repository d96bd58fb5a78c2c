// SPDX-License-Identifier: MIT
/*
 * meta/chain: the changeset-chain protocol (see chain.h): commits with a
 * conditional head write, verification of links back from the head, and the
 * cache of verified links. It talks to S3 and DynamoDB through s3.h and
 * ddb.h and keeps verified links in the metadata cache's blob store; it must
 * not know FUSE, paths or how a chain is shown.
 *
 * DESIGN
 *
 * Objects. A changeset is the S3 object
 *	<dir>.s3vfs/cs/<version:020>-<id>-<parent>-<time ms:013>-<name>
 * written once and never changed. The head is the DynamoDB item
 *	{pk: "<bucket>/<dir>", version: N, id: "<id>", updated: ms}
 * absent while the chain has no changeset.
 *
 * Invariants.
 *  I1. A changeset is visible (chain_walk, chain_link_get) only after the
 *      head has named it or a changeset above it: every visible link was
 *      reached by following parent ids down from a head that was read.
 *  I2. Visible links are contiguous: link i has version i and names link
 *      i-1 as its parent (version 1 names CHAIN_ROOT_ID). ch->links[i-1]
 *      is version i.
 *  I3. A verified link never changes: it is cached for good (memory, blob
 *      store) and a head that contradicts the cache is an error, never a
 *      reason to rewrite history.
 *  I4. The head only moves by UpdateItem with the condition that it is
 *      still at the version the writer built on (attribute_not_exists(pk)
 *      for version 1). Two writers can never both commit version v.
 *  I5. One append commits at most once: every id an append tried is
 *      remembered until it returns, and before it tries again it checks
 *      that none of them reached the chain (a lost response is resolved by
 *      a consistent read of the head, never by guessing).
 *  I6. Objects that lost a race (orphans) are deleted best-effort; one that
 *      stays is harmless, since I1 never shows it.
 *
 * States of one append (chain_commit):
 *
 *	START --read_head--> BASED --put_changeset--> PUT --update_head--> DONE
 *	                       ^                         |  ECANCELED / lost
 *	                       |                         v
 *	                       +------ (auto) ------ RESOLVE --ours--> DONE
 *	                                                 |--explicit--> EEXIST
 *	                                                 `--unknown---> EIO
 *
 * RESOLVE (resolve_attempt) reads the head consistently: our id at the head,
 * or on the verified chain under it, is DONE (I5); a head still at our base
 * means our UpdateItem never applied, and the same UpdateItem is sent again
 * (same id, same version: it cannot apply twice); a head past our base
 * without our id means we lost, and the orphan goes (I6).
 *
 * States of the cache of one chain: EMPTY --load_links--> LOADED (what the
 * blob store held) --chain_refresh/sync_to--> VERIFIED up to the head read.
 * A failed verification leaves the links as they were and returns -EIO.
 */
#include "s3vfs/chain.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "s3vfs/buf.h"
#include "s3vfs/ddb.h"
#include "s3vfs/log.h"
#include "s3vfs/meta_cache.h"
#include "s3vfs/s3.h"
#include "s3vfs/stats.h"

#define BLOB_NS	       "chain-link"
#define VERSION_DIGITS 20
#define TIME_DIGITS    13
#define KEY_BUF	       1100
#define ATTEMPTS_DEF   64
#define HEAD_READS     5 /* consistent reads tried when an outcome is unknown */

/* ---- kinds, names and keys ------------------------------------------------ */

enum chain_kind chain_kind_parse(const char *s)
{
	if (!s || !*s)
		return CHAIN_NONE;
	if (strcmp(s, "events") == 0)
		return CHAIN_EVENTS;
	if (strcmp(s, "content") == 0)
		return CHAIN_CONTENT;
	return CHAIN_BAD;
}

const char *chain_kind_name(enum chain_kind k)
{
	switch (k) {
	case CHAIN_EVENTS:
		return "events";
	case CHAIN_CONTENT:
		return "content";
	case CHAIN_NONE:
		return "";
	default:
		return "?";
	}
}

bool chain_name_ok(const char *name)
{
	size_t n = strlen(name);
	return n > 0 && n <= CHAIN_NAME_MAX && name[0] != '.' && !memchr(name, '/', n);
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* n decimal digits (n <= 20) to a value; -ERANGE past UINT64_MAX. */
static int digits_value(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int chain_cs_format(char *out, size_t cap, const struct chain_link *l)
{
	if (l->version == 0 || strlen(l->id) != CHAIN_ID_LEN || strlen(l->parent) != CHAIN_ID_LEN ||
	    l->time_ms < 0 || l->time_ms > 9999999999999LL || !chain_name_ok(l->name))
		return -EINVAL;
	int n = snprintf(out, cap, "%020" PRIu64 "-%s-%s-%013" PRId64 "-%s", l->version, l->id,
			 l->parent, l->time_ms, l->name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int chain_cs_parse(const char *s, struct chain_link *out)
{
	const size_t vid = VERSION_DIGITS, id1 = vid + 1, par = id1 + CHAIN_ID_LEN + 1,
		     tim = par + CHAIN_ID_LEN + 1, nam = tim + TIME_DIGITS + 1;
	size_t n = strlen(s);
	uint64_t v, t;

	if (n <= nam || s[vid] != '-' || s[par - 1] != '-' || s[tim - 1] != '-' ||
	    s[nam - 1] != '-')
		return -EINVAL;
	if (!all_digits(s, vid) || !all_hex(s + id1, CHAIN_ID_LEN) ||
	    !all_hex(s + par, CHAIN_ID_LEN) || !all_digits(s + tim, TIME_DIGITS))
		return -EINVAL;
	if (digits_value(s, vid, &v) < 0 || v == 0 || digits_value(s + tim, TIME_DIGITS, &t) < 0)
		return -EINVAL;
	if (!chain_name_ok(s + nam))
		return -EINVAL;
	out->version = v;
	memcpy(out->id, s + id1, CHAIN_ID_LEN);
	out->id[CHAIN_ID_LEN] = '\0';
	memcpy(out->parent, s + par, CHAIN_ID_LEN);
	out->parent[CHAIN_ID_LEN] = '\0';
	out->time_ms = (int64_t)t;
	snprintf(out->name, sizeof(out->name), "%s", s + nam);
	return 0;
}

int chain_view_parse(const char *name, uint64_t *version, const char **rest)
{
	size_t d = 0;
	uint64_t v;

	while (name[d] >= '0' && name[d] <= '9')
		d++;
	if (d < CHAIN_VERSION_W || d > VERSION_DIGITS || name[d] != '-' || name[d + 1] == '\0')
		return 0;
	if (digits_value(name, d, &v) < 0 || v == 0)
		return 0;
	/* Only the form a listing shows: "00000001-x", not "000000001-x". */
	char canon[24];
	if (snprintf(canon, sizeof(canon), "%0*" PRIu64, CHAIN_VERSION_W, v) != (int)d)
		return 0;
	*version = v;
	*rest = name + d + 1;
	return 1;
}

int chain_view_name(const struct chain_link *l, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%0*" PRIu64 "-%s", CHAIN_VERSION_W, l->version, l->name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---- the store ------------------------------------------------------------ */

struct chain {
	struct chain *next; /* protected by the store's lock */
	char *dir_key;	    /* "a/b/" */
	char *pk;	    /* "<bucket>/a/b/" */
	pthread_mutex_t lock;
	/* Everything below is protected by lock. */
	bool loaded;		  /* the blob store was read */
	struct chain_link *links; /* verified: links[i].version == i + 1 (I2) */
	size_t n, cap;
	struct chain_head head; /* last read or written */
	bool head_known;
	int64_t head_ms; /* monotonic ms of that read */
};

struct chain_store {
	struct chain_config cfg; /* strings below are our copies */
	char *bucket;
	char *table;
	pthread_mutex_t lock;
	struct chain *chains; /* protected by lock */
	int table_state;      /* 0 unknown, 1 usable; protected by lock */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t rand64(void)
{
	uint64_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint64_t)wall_ms() * 6364136223846793005ull ^ (uint64_t)getpid();
	return r;
}

static void new_id(char out[CHAIN_ID_BUF])
{
	uint64_t r;
	do
		r = rand64();
	while (r == 0); /* the root id is all zeros */
	snprintf(out, CHAIN_ID_BUF, "%016" PRIx64, r);
}

int chain_store_new(const struct chain_config *cfg, struct chain_store **out)
{
	struct chain_store *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	cs->cfg = *cfg;
	cs->bucket = strdup(cfg->bucket ? cfg->bucket : "");
	cs->table = strdup(cfg->table ? cfg->table : "");
	if (!cs->bucket || !cs->table) {
		free(cs->bucket);
		free(cs->table);
		free(cs);
		return -ENOMEM;
	}
	cs->cfg.bucket = cs->bucket;
	cs->cfg.table = cs->table;
	if (!cs->cfg.max_attempts)
		cs->cfg.max_attempts = ATTEMPTS_DEF;
	pthread_mutex_init(&cs->lock, NULL);
	*out = cs;
	return 0;
}

static void chain_free(struct chain *ch)
{
	free(ch->dir_key);
	free(ch->pk);
	free(ch->links);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}

void chain_store_free(struct chain_store *cs)
{
	if (!cs)
		return;
	while (cs->chains) {
		struct chain *ch = cs->chains;
		cs->chains = ch->next;
		chain_free(ch);
	}
	pthread_mutex_destroy(&cs->lock);
	free(cs->bucket);
	free(cs->table);
	free(cs);
}

int chain_get(struct chain_store *cs, const char *dir_key, struct chain **out)
{
	size_t n = strlen(dir_key);
	struct chain *ch;

	if (n == 0 || dir_key[n - 1] != '/')
		return -EINVAL;
	if (n > S3_KEY_MAX - 80)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&cs->lock);
	for (ch = cs->chains; ch; ch = ch->next)
		if (strcmp(ch->dir_key, dir_key) == 0)
			break;
	if (!ch) {
		ch = calloc(1, sizeof(*ch));
		struct buf b;
		buf_init(&b, 4096);
		if (ch && buf_printf(&b, "%s/%s", cs->bucket, dir_key) == 0) {
			ch->pk = buf_take(&b);
			ch->dir_key = strdup(dir_key);
		}
		buf_cleanup(&b);
		if (!ch || !ch->pk || !ch->dir_key) {
			if (ch) {
				free(ch->pk);
				free(ch->dir_key);
				free(ch);
			}
			pthread_mutex_unlock(&cs->lock);
			return -ENOMEM;
		}
		pthread_mutex_init(&ch->lock, NULL);
		ch->next = cs->chains;
		cs->chains = ch;
	}
	pthread_mutex_unlock(&cs->lock);
	*out = ch;
	return 0;
}

const char *chain_dir_key(const struct chain *ch)
{
	return ch->dir_key;
}

void chain_forget(struct chain_store *cs, const char *dir_key)
{
	struct chain *ch;

	pthread_mutex_lock(&cs->lock);
	for (ch = cs->chains; ch; ch = ch->next)
		if (strcmp(ch->dir_key, dir_key) == 0)
			break;
	pthread_mutex_unlock(&cs->lock);
	if (!ch)
		return;
	/* Links stay (a recreated chain verifies against them and fails loudly
	 * rather than mixing histories); only the head is forgotten. */
	pthread_mutex_lock(&ch->lock);
	ch->head_known = false;
	pthread_mutex_unlock(&ch->lock);
}

void chain_head_get(struct chain *ch, struct chain_head *out)
{
	pthread_mutex_lock(&ch->lock);
	if (ch->head_known)
		*out = ch->head;
	else if (ch->n > 0)
		*out = (struct chain_head){ .version = ch->n };
	else
		*out = (struct chain_head){ 0 };
	if (!ch->head_known && ch->n > 0)
		memcpy(out->id, ch->links[ch->n - 1].id, CHAIN_ID_BUF);
	pthread_mutex_unlock(&ch->lock);
}

int chain_link_get(struct chain *ch, uint64_t version, struct chain_link *out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&ch->lock);
	if (version >= 1 && version <= ch->n) {
		*out = ch->links[version - 1];
		rc = 0;
	}
	pthread_mutex_unlock(&ch->lock);
	return rc;
}

int chain_walk(struct chain *ch, uint64_t after, int (*fn)(void *arg, const struct chain_link *l),
	       void *arg)
{
	struct chain_link *snap = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&ch->lock);
	if (ch->n > after) {
		n = ch->n - after;
		snap = malloc(n * sizeof(*snap));
		if (snap)
			memcpy(snap, ch->links + after, n * sizeof(*snap));
		else
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&ch->lock);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = fn(arg, &snap[i]);
	free(snap);
	return rc < 0 ? rc : 0;
}

int chain_link_key(const struct chain *ch, const struct chain_link *l, char *out, size_t cap)
{
	char rel[KEY_BUF];
	int rc = chain_cs_format(rel, sizeof(rel), l);
	if (rc < 0)
		return rc;
	int n = snprintf(out, cap, "%s" CHAIN_CS_DIR "%s", ch->dir_key, rel);
	return n < 0 || (size_t)n >= cap || n > S3_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* ---- verified links in the blob store ------------------------------------- */

/* Blob key of a link: "<dir>#<version:020>", so that one prefix walk of
 * "<dir>#" gives the chain in version order and no other chain. */
static int blob_key(const struct chain *ch, uint64_t version, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s#%020" PRIu64, ch->dir_key, version);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Value: "<id> <parent> <time> <size> <etag>\n<name>". */
static int blob_encode(const struct chain_link *l, struct buf *b)
{
	return buf_printf(b, "%s %s %" PRId64 " %" PRIu64 " %s\n%s", l->id, l->parent, l->time_ms,
			  l->size, l->etag[0] ? l->etag : "-", l->name);
}

/* Next space-separated field of *p, NUL-terminated in place. */
static char *field(char **p)
{
	char *s = *p, *e = strpbrk(s, " \n");
	if (!e)
		return NULL;
	*e = '\0';
	*p = e + 1;
	return s;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int blob_decode(char *v, uint64_t version, struct chain_link *l)
{
	char *p = v, *id = field(&p), *par = field(&p), *t = field(&p), *sz = field(&p),
	     *et = field(&p);
	int64_t tm, size;

	if (!et || strlen(id) != CHAIN_ID_LEN || strlen(par) != CHAIN_ID_LEN ||
	    parse_i64(t, &tm) < 0 || parse_i64(sz, &size) < 0 || size < 0 || !chain_name_ok(p) ||
	    strlen(et) >= sizeof(l->etag))
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	l->version = version;
	memcpy(l->id, id, CHAIN_ID_BUF);
	memcpy(l->parent, par, CHAIN_ID_BUF);
	l->time_ms = tm;
	l->size = (uint64_t)size;
	snprintf(l->etag, sizeof(l->etag), "%s", strcmp(et, "-") == 0 ? "" : et);
	snprintf(l->name, sizeof(l->name), "%s", p);
	return 0;
}

static int links_push_locked(struct chain *ch, const struct chain_link *l)
{
	assert(l->version == ch->n + 1);
	if (ch->n == ch->cap) {
		size_t cap = ch->cap ? ch->cap * 2 : 64;
		struct chain_link *nl = realloc(ch->links, cap * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		ch->links = nl;
		ch->cap = cap;
	}
	ch->links[ch->n++] = *l;
	return 0;
}

struct load_ctx {
	struct chain *ch;
	size_t plen;
};

static int on_blob(void *arg, const char *key, const void *value, size_t len)
{
	struct load_ctx *lc = arg;
	struct chain *ch = lc->ch;
	struct chain_link l;
	uint64_t v;
	char *copy;

	if (strlen(key) != lc->plen + VERSION_DIGITS ||
	    digits_value(key + lc->plen, VERSION_DIGITS, &v) < 0 || v != ch->n + 1)
		return 1; /* a gap: trust only the contiguous start (I2) */
	copy = strndup(value, len);
	if (!copy)
		return -ENOMEM;
	int rc = blob_decode(copy, v, &l);
	free(copy);
	const char *want = ch->n ? ch->links[ch->n - 1].id : CHAIN_ROOT_ID;
	if (rc < 0 || strcmp(l.parent, want) != 0) {
		log_warn("chain %s: cached link %" PRIu64 " is damaged; it will be re-read",
			 ch->dir_key, v);
		return 1;
	}
	rc = links_push_locked(ch, &l);
	return rc < 0 ? rc : 0;
}

static void load_links_locked(struct chain_store *cs, struct chain *ch)
{
	char prefix[KEY_BUF];
	struct load_ctx lc = { .ch = ch };

	if (ch->loaded)
		return;
	ch->loaded = true;
	if (!cs->cfg.mc ||
	    snprintf(prefix, sizeof(prefix), "%s#", ch->dir_key) >= (int)sizeof(prefix))
		return;
	lc.plen = strlen(prefix);
	int rc = meta_cache_blob_list(cs->cfg.mc, BLOB_NS, prefix, on_blob, &lc);
	if (rc < 0)
		log_warn("chain %s: cannot read cached links: %s", ch->dir_key, strerror(-rc));
}

static void store_link(struct chain_store *cs, struct chain *ch, const struct chain_link *l)
{
	char key[KEY_BUF];
	struct buf b;

	if (!cs->cfg.mc || blob_key(ch, l->version, key, sizeof(key)) < 0)
		return;
	buf_init(&b, 4096);
	int rc = blob_encode(l, &b);
	if (rc == 0)
		rc = meta_cache_blob_put(cs->cfg.mc, BLOB_NS, key, buf_str(&b), buf_len(&b));
	if (rc < 0)
		log_warn("chain %s: cannot cache link %" PRIu64 ": %s", ch->dir_key, l->version,
			 strerror(-rc));
	buf_cleanup(&b);
}

/* ---- the head ------------------------------------------------------------- */

static json_t *head_key(const struct chain *ch)
{
	return json_pack("{s:o}", "pk", ddb_s(ch->pk));
}

static void log_ddb(const char *what, const struct chain *ch, const struct aws_error *err)
{
	char msg[512];
	log_error("chain %s: %s: %s", ch->dir_key, what, aws_error_str(err, msg, sizeof(msg)));
}

static bool table_missing(int rc, const struct aws_error *err)
{
	return rc == -ENOENT && strcmp(err->code, "ResourceNotFoundException") == 0;
}

/* Create the table when allowed and not known to exist. */
static int ensure_table(struct chain_store *cs, const struct chain *ch)
{
	struct aws_error err = { 0 };
	int rc = 0;

	pthread_mutex_lock(&cs->lock);
	if (cs->table_state == 1 || !cs->cfg.create_table) {
		pthread_mutex_unlock(&cs->lock);
		return 0;
	}
	char *status = NULL;
	rc = ddb_describe_table(cs->cfg.ddb, cs->table, &status, &err);
	free(status);
	if (rc == -ENOENT) {
		log_info("creating DynamoDB table %s (PAY_PER_REQUEST)", cs->table);
		rc = ddb_create_table(cs->cfg.ddb, cs->table, "pk", NULL, 0, &err);
		if (rc == -EEXIST)
			rc = 0;
	}
	if (rc == 0)
		rc = ddb_wait_active(cs->cfg.ddb, cs->table, 60000, &err);
	if (rc == 0)
		cs->table_state = 1;
	pthread_mutex_unlock(&cs->lock);
	if (rc < 0) {
		char what[96];
		snprintf(what, sizeof(what), "cannot create the head table %s (%s)", cs->table,
			 strerror(-rc));
		log_ddb(what, ch, &err);
		return -EIO;
	}
	return 0;
}

/* GetItem of the head. No item: version 0. */
static int read_head(struct chain_store *cs, struct chain *ch, bool consistent,
		     struct chain_head *out)
{
	struct aws_error err = { 0 };
	json_t *key, *item = NULL;
	const char *id;
	long long v;
	int rc;

	if (!cs->cfg.ddb) {
		log_error("chain %s: no DynamoDB client (dynamodb_endpoint/region)", ch->dir_key);
		return -EIO;
	}
	rc = ensure_table(cs, ch);
	if (rc < 0)
		return rc;
	key = head_key(ch);
	if (!key)
		return -ENOMEM;
	rc = ddb_get_item(cs->cfg.ddb, cs->table, key, consistent || cs->cfg.consistent_reads,
			  &item, &err);
	json_decref(key);
	if (rc == -ENOENT && !table_missing(rc, &err)) {
		*out = (struct chain_head){ 0 };
		return 0;
	}
	if (table_missing(rc, &err)) {
		log_error("chain %s: DynamoDB table %s does not exist (mount with "
			  "-o chain_create_table to create it)",
			  ch->dir_key, cs->table);
		return -EIO;
	}
	if (rc < 0) {
		log_ddb("reading the head", ch, &err);
		return -EIO;
	}
	rc = ddb_item_int(item, "version", &v);
	if (rc == 0)
		rc = ddb_item_str(item, "id", &id);
	if (rc == 0 && (v < 1 || strlen(id) != CHAIN_ID_LEN || !all_hex(id, CHAIN_ID_LEN)))
		rc = -EPROTO;
	if (rc == 0) {
		out->version = (uint64_t)v;
		memcpy(out->id, id, CHAIN_ID_BUF);
	} else {
		log_error("chain %s: the head item in %s is malformed", ch->dir_key, cs->table);
		rc = -EIO;
	}
	json_decref(item);
	return rc;
}

/* The conditional write of the head: -ECANCELED when it was not at base. */
static int update_head(struct chain_store *cs, struct chain *ch, const struct chain_head *base,
		       const struct chain_link *l, struct aws_error *err)
{
	struct ddb_cond cond = { 0 };
	json_t *key = head_key(ch);
	json_t *names = json_pack("{s:s,s:s,s:s}", "#v", "version", "#i", "id", "#u", "updated");
	json_t *values = json_pack("{s:o,s:o,s:o}", ":v", ddb_n((long long)l->version), ":i",
				   ddb_s(l->id), ":u", ddb_n(wall_ms()));
	int rc = -ENOMEM;

	if (key && names && values) {
		if (base->version == 0) {
			cond.condition = "attribute_not_exists(pk)";
		} else {
			json_object_set_new(values, ":e", ddb_n((long long)base->version));
			cond.condition = "#v = :e";
		}
		cond.names = names;
		cond.values = values;
		rc = ddb_update_item(cs->cfg.ddb, cs->table, key, "SET #v = :v, #i = :i, #u = :u",
				     &cond, NULL, err);
	}
	json_decref(key);
	json_decref(names);
	json_decref(values);
	return rc;
}

static void note_head_locked(struct chain *ch, const struct chain_head *h)
{
	ch->head = *h;
	ch->head_known = true;
	ch->head_ms = mono_ms();
}

/* ---- verification --------------------------------------------------------- */

struct cands {
	const struct chain *ch;
	size_t plen;	 /* of "<dir>.s3vfs/cs/" */
	uint64_t lo, hi; /* versions wanted: (lo, hi] */
	struct chain_link *v;
	size_t n, cap;
	int err;
};

static int on_cs_entry(void *arg, const struct s3_list_entry *e)
{
	struct cands *c = arg;
	struct chain_link l;

	if (e->is_prefix || strlen(e->key) <= c->plen)
		return 0;
	memset(&l, 0, sizeof(l));
	if (chain_cs_parse(e->key + c->plen, &l) < 0)
		return 0; /* not ours: never trusted (I1) */
	if (l.version <= c->lo || l.version > c->hi)
		return 0;
	l.size = e->size;
	snprintf(l.etag, sizeof(l.etag), "%s", e->etag ? e->etag : "");
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct chain_link *nv = realloc(c->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = l;
	return 0;
}

/* Candidates are in key order, i.e. by version. The one of version v with id. */
static const struct chain_link *cand_find(const struct cands *c, uint64_t v, const char *id)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) { /* first index with version >= v */
		size_t mid = lo + (hi - lo) / 2;
		if (c->v[mid].version < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < c->n && c->v[i].version == v; i++)
		if (strcmp(c->v[i].id, id) == 0)
			return &c->v[i];
	return NULL;
}

/*
 * Make the verified links reach head h (ch->lock held; the lock is dropped
 * around the LIST, so the state is re-checked after it).
 */
static int sync_to_locked(struct chain_store *cs, struct chain *ch, const struct chain_head *h)
{
	char prefix[KEY_BUF], after[KEY_BUF];
	struct cands c = { .ch = ch };
	struct aws_error err = { 0 };
	uint64_t k = ch->n;
	int rc;

	if (h->version == k) {
		if (k == 0 || strcmp(ch->links[k - 1].id, h->id) == 0)
			return 0;
		log_error("chain %s: the head names changeset %s at version %" PRIu64
			  " but the chain has %s there",
			  ch->dir_key, h->id, k, ch->links[k - 1].id);
		return -EIO;
	}
	if (h->version < k) {
		/* Heads never move back (I4). Our links are verified (I3), so a
		 * head behind them is a stale read; a consistent one decides. */
		return -EAGAIN;
	}
	snprintf(prefix, sizeof(prefix), "%s" CHAIN_CS_DIR, ch->dir_key);
	c.plen = strlen(prefix);
	c.lo = k;
	c.hi = h->version;
	struct s3_list_opts lo = { .prefix = prefix };
	if (k > 0) {
		if (snprintf(after, sizeof(after), "%s%020" PRIu64 ".", prefix, k) >=
		    (int)sizeof(after))
			return -ENAMETOOLONG;
		lo.start_after = after;
	}
	pthread_mutex_unlock(&ch->lock);
	char *next = NULL;
	do {
		char *tok = next;
		lo.continuation = tok;
		next = NULL;
		rc = s3_list_page(cs->cfg.s3, &lo, on_cs_entry, &c, &next, &err);
		free(tok);
	} while (rc == 0 && next && (c.n == 0 || c.v[c.n - 1].version <= c.hi));
	free(next);
	pthread_mutex_lock(&ch->lock);
	if (rc < 0) {
		char msg[512];
		log_error("chain %s: listing changesets: %s", ch->dir_key,
			  aws_error_str(&err, msg, sizeof(msg)));
		free(c.v);
		return -EIO;
	}
	if (ch->n != k) { /* someone else synced meanwhile */
		free(c.v);
		return ch->n >= h->version ? 0 : -EAGAIN;
	}
	/* Walk back from the head through the parents (I1). */
	size_t want_n = (size_t)(h->version - k);
	struct chain_link *path = calloc(want_n ? want_n : 1, sizeof(*path));
	const char *want = h->id;
	rc = path ? 0 : -ENOMEM;
	for (uint64_t v = h->version; rc == 0 && v > k; v--) {
		const struct chain_link *l = cand_find(&c, v, want);
		if (!l) {
			log_error("chain %s: the head points at changeset %s (version %" PRIu64
				  "), which is missing in S3",
				  ch->dir_key, want, v);
			rc = -EIO;
			break;
		}
		path[v - k - 1] = *l;
		want = l->parent;
	}
	if (rc == 0) {
		const char *base = k ? ch->links[k - 1].id : CHAIN_ROOT_ID;
		if (strcmp(want, base) != 0) {
			log_error("chain %s: changeset %s at version %" PRIu64
				  " does not link to the verified chain",
				  ch->dir_key, path[0].id, k + 1);
			rc = -EIO;
		}
	}
	for (size_t i = 0; rc == 0 && i < want_n; i++) {
		rc = links_push_locked(ch, &path[i]);
		if (rc == 0)
			store_link(cs, ch, &path[i]);
	}
	free(path);
	free(c.v);
	return rc;
}

int chain_refresh(struct chain_store *cs, struct chain *ch, bool force)
{
	struct chain_head h;
	int rc;

	pthread_mutex_lock(&ch->lock);
	load_links_locked(cs, ch);
	bool fresh = ch->head_known && mono_ms() - ch->head_ms < cs->cfg.head_ttl_ms;
	if (fresh && !force && ch->n >= ch->head.version) {
		pthread_mutex_unlock(&ch->lock);
		return 0;
	}
	pthread_mutex_unlock(&ch->lock);
	for (int tries = 0;; tries++) {
		rc = read_head(cs, ch, tries > 0, &h);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&ch->lock);
		rc = sync_to_locked(cs, ch, &h);
		if (rc == 0)
			note_head_locked(ch, &h);
		pthread_mutex_unlock(&ch->lock);
		if (rc != -EAGAIN)
			return rc;
		if (tries >= 2) {
			log_error("chain %s: the head stays behind the verified chain",
				  ch->dir_key);
			return -EIO;
		}
	}
}

/* ---- commit --------------------------------------------------------------- */

static void percent_encode(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < cap; p++) {
		if (*p >= 0x21 && *p < 0x7f && *p != '%') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

static int put_changeset(struct chain_store *cs, struct chain *ch, const struct chain_append *a,
			 struct chain_link *l)
{
	char key[KEY_BUF + CHAIN_NAME_MAX], vs[24], ts[24], name[CHAIN_NAME_MAX * 3 + 1];
	char n_v[] = "s3vfs-version", n_i[] = "s3vfs-id", n_p[] = "s3vfs-parent",
	     n_n[] = "s3vfs-name", n_t[] = "mtime", id[CHAIN_ID_BUF], parent[CHAIN_ID_BUF];
	struct aws_error err = { 0 };
	int rc = chain_link_key(ch, l, key, sizeof(key));

	if (rc < 0)
		return rc;
	snprintf(vs, sizeof(vs), "%" PRIu64, l->version);
	snprintf(ts, sizeof(ts), "%" PRId64, l->time_ms / 1000);
	percent_encode(l->name, name, sizeof(name));
	memcpy(id, l->id, CHAIN_ID_BUF);
	memcpy(parent, l->parent, CHAIN_ID_BUF);
	struct s3_meta meta[] = {
		{ n_v, vs }, { n_i, id }, { n_p, parent }, { n_n, name }, { n_t, ts },
	};
	struct s3_put_opts po = {
		.content_type = a->content_type,
		.meta = meta,
		.nmeta = sizeof(meta) / sizeof(meta[0]),
		.content_md5 = true,
	};
	struct http_body body = { .data = a->data, .fd = a->fd, .len = a->size };
	rc = s3_put(cs->cfg.s3, key, &body, &po, l->etag, &err);
	if (rc < 0) {
		char msg[512];
		log_error("chain %s: PUT of changeset %s: %s", ch->dir_key, l->name,
			  aws_error_str(&err, msg, sizeof(msg)));
		return -EIO;
	}
	l->size = a->size;
	return 0;
}

static void delete_orphan(struct chain_store *cs, struct chain *ch, const struct chain_link *l)
{
	char key[KEY_BUF + CHAIN_NAME_MAX];
	struct aws_error err = { 0 };

	if (chain_link_key(ch, l, key, sizeof(key)) == 0 && s3_delete(cs->cfg.s3, key, &err) < 0)
		log_debug("chain %s: orphan %s stays (it is never shown)", ch->dir_key, key);
}

/*
 * After a failed or unanswered UpdateItem for l: 1 if l is on the chain, 0
 * with *head when it is not, <0 when the head cannot be read. Only the
 * current attempt can be ours: an earlier one was given up only once the
 * head had moved past its base without it, so its condition can never hold
 * again (I4, I5).
 */
static int resolve_attempt(struct chain_store *cs, struct chain *ch, const struct chain_link *a,
			   struct chain_head *head)
{
	struct chain_link l;
	int rc = -EIO;

	for (int i = 0; i < HEAD_READS; i++) {
		rc = read_head(cs, ch, true, head);
		if (rc == 0)
			break;
		sleep_ms(100L << i);
	}
	if (rc < 0)
		return rc;
	if (head->version < a->version)
		return 0;
	if (head->version == a->version)
		return strcmp(head->id, a->id) == 0;
	/* The head moved past the attempt. Even a write refused at once may
	 * have been sent twice (libcurl resends a request silently when a
	 * reused connection dies before the reply), the first applied and
	 * built upon: was it ours underneath? */
	pthread_mutex_lock(&ch->lock);
	load_links_locked(cs, ch);
	rc = sync_to_locked(cs, ch, head);
	if (rc == 0)
		note_head_locked(ch, head);
	pthread_mutex_unlock(&ch->lock);
	if (rc < 0)
		return rc == -EAGAIN ? -EIO : rc;
	return chain_link_get(ch, a->version, &l) == 0 && strcmp(l.id, a->id) == 0;
}

/* The committed link joins the verified chain if it sits right on top. */
static void committed(struct chain_store *cs, struct chain *ch, const struct chain_link *l)
{
	struct chain_head h = { .version = l->version };

	memcpy(h.id, l->id, CHAIN_ID_BUF);
	pthread_mutex_lock(&ch->lock);
	if (ch->n + 1 == l->version &&
	    strcmp(ch->n ? ch->links[ch->n - 1].id : CHAIN_ROOT_ID, l->parent) == 0 &&
	    links_push_locked(ch, l) == 0)
		store_link(cs, ch, l);
	if (!ch->head_known || ch->head.version <= l->version)
		note_head_locked(ch, &h);
	pthread_mutex_unlock(&ch->lock);
	atomic_fetch_add(&cs->cfg.stats->chain_commits, 1);
}

/* The head an append builds on: the cached one, or a fresh read. */
static int base_head(struct chain_store *cs, struct chain *ch, bool fresh_read,
		     struct chain_head *out)
{
	if (!fresh_read) {
		pthread_mutex_lock(&ch->lock);
		bool ok = ch->head_known && mono_ms() - ch->head_ms < cs->cfg.head_ttl_ms;
		if (ok)
			*out = ch->head;
		pthread_mutex_unlock(&ch->lock);
		if (ok)
			return 0;
	}
	int rc = read_head(cs, ch, fresh_read, out);
	if (rc == 0) {
		pthread_mutex_lock(&ch->lock);
		note_head_locked(ch, out);
		pthread_mutex_unlock(&ch->lock);
	}
	return rc;
}

/* An explicit version against head h: 0 to go on, -EEXIST, -EINVAL. */
static int check_expect(uint64_t expect, const struct chain_head *h)
{
	if (h->version >= expect)
		return -EEXIST;
	return h->version + 1 < expect ? -EINVAL : 0;
}

/*
 * One UpdateItem for l on base, resolved (RESOLVE in the design block):
 * 0 committed, 1 lost to another writer (l is an orphan), <0 unknown.
 */
static int try_update(struct chain_store *cs, struct chain *ch, const struct chain_head *base,
		      const struct chain_link *l)
{
	for (int same = 0;; same++) {
		struct aws_error err = { 0 };
		struct chain_head now;
		int rc = update_head(cs, ch, base, l, &err);

		if (rc == 0)
			return 0;
		if (rc == -ECANCELED)
			atomic_fetch_add(&cs->cfg.stats->chain_conflicts, 1);
		else
			log_warn("chain %s: head update for %s unanswered (%s); resolving",
				 ch->dir_key, l->name, strerror(-rc));
		int r = resolve_attempt(cs, ch, l, &now);
		if (r < 0)
			return r;
		if (r == 1)
			return 0;
		if (now.version > base->version)
			return 1;
		/* The head is still at base: our write never applied. Send the
		 * same one again (same id: it cannot apply twice); if DynamoDB
		 * keeps not answering, the outcome stays unknown and the object
		 * stays, in case a late write names it. */
		if (rc == -ECANCELED || same >= 3)
			return -EIO;
	}
}

int chain_commit(struct chain_store *cs, struct chain *ch, const struct chain_append *a,
		 struct chain_link *out)
{
	struct chain_head base;
	struct chain_link l;
	bool fresh = a->expect != 0; /* an assertion is checked against a fresh head */
	int rc;

	if (!chain_name_ok(a->name))
		return -EINVAL;
	for (unsigned attempt = 0;; attempt++) {
		rc = base_head(cs, ch, fresh, &base);
		if (rc < 0)
			return rc;
		if (a->expect && (rc = check_expect(a->expect, &base)) < 0)
			return rc;
		memset(&l, 0, sizeof(l));
		l.version = base.version + 1;
		memcpy(l.parent, base.version ? base.id : CHAIN_ROOT_ID, CHAIN_ID_BUF);
		new_id(l.id);
		l.time_ms = wall_ms();
		snprintf(l.name, sizeof(l.name), "%s", a->name);
		rc = put_changeset(cs, ch, a, &l);
		if (rc < 0)
			return rc;
		rc = try_update(cs, ch, &base, &l);
		if (rc == 0) {
			committed(cs, ch, &l);
			*out = l;
			return 0;
		}
		if (rc < 0) {
			log_error("chain %s: append of %s: outcome unknown (DynamoDB did not "
				  "answer); not retried",
				  ch->dir_key, l.name);
			return -EIO;
		}
		delete_orphan(cs, ch, &l); /* lost: its condition can never hold (I6) */
		fresh = true;
		if (attempt + 1 >= cs->cfg.max_attempts) {
			log_error("chain %s: append of %s lost %u races; giving up", ch->dir_key,
				  a->name, attempt + 1);
			return -EBUSY;
		}
		if (!a->expect) /* else check_expect decides at once with the fresh head */
			sleep_ms((long)(rand64() % (5u + 5u * (attempt < 10 ? attempt : 10))));
	}
}
