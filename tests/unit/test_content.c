// SPDX-License-Identifier: MIT
/*
 * test_content: trees of content chains (content.c) without a server:
 * applying changes (files replace directories, deletes take subtrees, names
 * that sort between "a" and "a/"), listing children once each, diffs that
 * turn one tree into another, and the JSON of changesets and snapshots
 * round-tripping and refusing what is not ours.
 */
#include "s3vfs/content.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct content_change put(const char *path, const char *sha, uint64_t size)
{
	struct content_change c;
	memset(&c, 0, sizeof(c));
	c.op = CONTENT_PUT;
	c.e.path = (char *)path;
	snprintf(c.e.blob, sizeof(c.e.blob), "%s", sha);
	snprintf(c.e.etag, sizeof(c.e.etag), "\"e-%s\"", path);
	c.e.size = size;
	c.e.mode = 0644;
	c.e.mtime_ms = 1700000000123;
	return c;
}

static struct content_change op(enum content_op o, const char *path)
{
	struct content_change c;
	memset(&c, 0, sizeof(c));
	c.op = o;
	c.e.path = (char *)path;
	c.e.mode = 0755;
	c.e.is_dir = o == CONTENT_DIR;
	return c;
}

struct names {
	char buf[512];
};

static int collect(void *arg, const char *name, const struct content_entry *e)
{
	struct names *n = arg;
	size_t len = strlen(n->buf);
	snprintf(n->buf + len, sizeof(n->buf) - len, "%s%s%s,", name, e ? "" : "(implied)",
		 e && e->is_dir ? "/" : "");
	return 0;
}

static const char *children(const struct content_tree *t, const char *dir)
{
	static struct names n;
	n.buf[0] = '\0';
	CHECK_INT(content_tree_children(t, dir, collect, &n), 0);
	return n.buf;
}

static void test_apply(void)
{
	struct content_tree *t = content_tree_new_empty();
	struct content_change c[] = {
		put("index.html", SHA_A, 10), put("a/x.txt", SHA_B, 3), put("a-b", SHA_A, 10),
		put("a.txt", SHA_A, 10),      op(CONTENT_DIR, "empty"), put("a/y/z", SHA_B, 3),
	};
	CHECK_INT(content_tree_apply(t, c, 6), 0);
	CHECK_INT(t->n, 6);
	CHECK_STR(children(t, ""), "a-b,a.txt,a(implied),empty/,index.html,"); /* key order */
	CHECK_STR(children(t, "a"), "x.txt,y(implied),");
	CHECK(content_tree_is_dir(t, "a"));
	CHECK(content_tree_is_dir(t, "a/y"));
	CHECK(content_tree_is_dir(t, "empty"));
	CHECK(!content_tree_is_dir(t, "a-b"));
	CHECK(!content_tree_is_dir(t, "nothing"));
	CHECK(content_tree_find(t, "a/x.txt") >= 0);

	/* Deleting "a" takes "a/..." but not "a-b" or "a.txt" (they sort between). */
	struct content_change d = op(CONTENT_DEL, "a");
	CHECK_INT(content_tree_apply(t, &d, 1), 0);
	CHECK_STR(children(t, ""), "a-b,a.txt,empty/,index.html,");
	CHECK_INT(t->n, 4);

	/* A file replaces a directory and everything in it. */
	struct content_change e[] = { put("empty/f", SHA_A, 1), put("empty", SHA_B, 2) };
	CHECK_INT(content_tree_apply(t, e, 2), 0);
	CHECK_STR(children(t, ""), "a-b,a.txt,empty,index.html,");
	CHECK(content_tree_find(t, "empty/f") < 0);

	/* Bad paths are refused. */
	static const char *const bad[] = { "", "/a", "a/", "a//b", "./a", "a/../b", "..", "." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct content_change b = put(bad[i], SHA_A, 1);
		CHECK_INT(content_tree_apply(t, &b, 1), -EINVAL);
	}
	content_tree_put(t);
}

static void test_diff(void)
{
	struct content_tree *from = content_tree_new_empty(), *to = content_tree_new_empty();
	struct content_change a[] = { put("keep", SHA_A, 1), put("change", SHA_A, 1),
				      put("gone/x", SHA_A, 1) };
	struct content_change b[] = { put("keep", SHA_A, 1), put("change", SHA_B, 2),
				      put("new", SHA_B, 2), op(CONTENT_DIR, "d") };
	CHECK_INT(content_tree_apply(from, a, 3), 0);
	CHECK_INT(content_tree_apply(to, b, 4), 0);
	struct content_change *c = NULL;
	size_t n = 0;
	CHECK_INT(content_tree_diff(from, to, &c, &n), 0);
	CHECK_INT(n, 4); /* del gone/x, put change, dir d, put new */
	struct content_tree *t = NULL;
	CHECK_INT(content_tree_clone(from, &t), 0);
	CHECK_INT(content_tree_apply(t, c, n), 0);
	CHECK_INT(t->n, to->n);
	for (size_t i = 0; i < t->n && i < to->n; i++) {
		CHECK_STR(t->v[i].path, to->v[i].path);
		CHECK_STR(t->v[i].blob, to->v[i].blob);
	}
	content_changes_free(c, n);
	content_tree_put(t);
	content_tree_put(from);
	content_tree_put(to);
}

static void test_json(void)
{
	struct content_change c[] = { put("a b/ü.html", SHA_A, 10), op(CONTENT_DIR, "d"),
				      op(CONTENT_DEL, "old") };
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK_INT(content_changes_encode(c, 3, &b), 0);
	struct content_change *d = NULL;
	size_t n = 0;
	CHECK_INT(content_changes_decode(buf_str(&b), buf_len(&b), &d, &n), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(d[0].e.path, "a b/ü.html");
		CHECK_STR(d[0].e.blob, SHA_A);
		CHECK_STR(d[0].e.etag, "\"e-a b/ü.html\"");
		CHECK_INT(d[0].e.mtime_ms, 1700000000123);
		CHECK_INT(d[1].op, CONTENT_DIR);
		CHECK_INT(d[2].op, CONTENT_DEL);
	}
	content_changes_free(d, n);

	struct content_tree *t = content_tree_new_empty(), *u = NULL;
	CHECK_INT(content_tree_apply(t, c, 2), 0);
	t->version = 64;
	buf_cleanup(&b);
	buf_init(&b, 1 << 20);
	CHECK_INT(content_tree_encode(t, &b), 0);
	CHECK_INT(content_tree_decode(buf_str(&b), buf_len(&b), &u), 0);
	if (u) {
		CHECK_INT(u->version, 64);
		CHECK_INT(u->n, 2);
		content_tree_put(u);
	}
	buf_cleanup(&b);
	content_tree_put(t);

	static const char *const bad[] = {
		"",
		"[]",
		"{\"changes\":{}}",
		"{\"changes\":[{\"op\":\"put\",\"path\":\"x\"}]}",
		"{\"changes\":[{\"op\":\"zap\",\"path\":\"x\"}]}",
		"{\"changes\":[{\"op\":\"del\",\"path\":\"../x\"}]}",
		"{\"changes\":[{\"op\":\"put\",\"path\":\"x\",\"blob\":\"zz\",\"etag\":\"e\","
		"\"size\":1,\"mode\":420,\"mtime\":1}]}",
		"{\"changes\":[{\"op\":\"put\",\"path\":\"x\",\"blob\":\"" SHA_A
		"\",\"etag\":\"e\","
		"\"size\":-1,\"mode\":420,\"mtime\":1}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = NULL;
		n = 0;
		CHECK_INT(content_changes_decode(bad[i], strlen(bad[i]), &d, &n), -EPROTO);
	}
	const char *unsorted =
		"{\"content\":1,\"version\":1,\"entries\":[{\"path\":\"b\",\"dir\":true,"
		"\"mode\":493,\"mtime\":0},{\"path\":\"a\",\"dir\":true,\"mode\":493,"
		"\"mtime\":0}]}";
	u = NULL;
	CHECK_INT(content_tree_decode(unsorted, strlen(unsorted), &u), -EPROTO);
}

int main(void)
{
	test_apply();
	test_diff();
	test_json();
	return unit_end("content");
}
