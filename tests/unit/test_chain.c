// SPDX-License-Identifier: MIT
/*
 * test_chain: the pure parts of the chain module (chain.c): changeset keys
 * round-trip and refuse everything else, view names ("00000004-x.json"),
 * names a writer may use, and kinds. The protocol itself runs against RGW
 * and DynamoDB Local in tests/integration/test_chain_events.py.
 */
#include "s3vfs/chain.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

static struct chain_link link_of(uint64_t v, const char *id, const char *parent, int64_t t,
				 const char *name)
{
	struct chain_link l;

	memset(&l, 0, sizeof(l));
	l.version = v;
	snprintf(l.id, sizeof(l.id), "%s", id);
	snprintf(l.parent, sizeof(l.parent), "%s", parent);
	l.time_ms = t;
	snprintf(l.name, sizeof(l.name), "%s", name);
	return l;
}

static void test_cs_roundtrip(void)
{
	static const struct {
		uint64_t v;
		const char *name;
	} rows[] = {
		{ 1, "item-added.json" },
		{ 42, "a b c" },
		{ 99999999, "x" },
		{ 100000000, "nine-digits" },
		{ UINT64_MAX, "max" },
		{ 7, "-leading-dash" },
		{ 8, "00000001-looks-like-a-version" },
		{ 9, "ünïcödé.txt" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct chain_link l = link_of(rows[i].v, "0123456789abcdef", CHAIN_ROOT_ID,
					      1763761234567LL, rows[i].name);
		struct chain_link p;
		char key[1200];
		CHECK_INT(chain_cs_format(key, sizeof(key), &l), 0);
		memset(&p, 0, sizeof(p));
		CHECK_INT(chain_cs_parse(key, &p), 0);
		CHECK(p.version == rows[i].v);
		CHECK_STR(p.id, l.id);
		CHECK_STR(p.parent, l.parent);
		CHECK_INT(p.time_ms, l.time_ms);
		CHECK_STR(p.name, rows[i].name);
	}
	struct chain_link l = link_of(3, "0123456789abcdef", "fedcba9876543210", 5, "n");
	char key[200];
	CHECK_INT(chain_cs_format(key, sizeof(key), &l), 0);
	CHECK_STR(key, "00000000000000000003-0123456789abcdef-fedcba9876543210-0000000000005-n");
	CHECK_INT(chain_cs_format(key, 20, &l), -ENAMETOOLONG);
}

static void test_cs_format_refuses(void)
{
	char key[1200];
	struct chain_link l;

	l = link_of(0, "0123456789abcdef", CHAIN_ROOT_ID, 1, "x");
	CHECK_INT(chain_cs_format(key, sizeof(key), &l), -EINVAL); /* version 0 */
	l = link_of(1, "0123", CHAIN_ROOT_ID, 1, "x");
	CHECK_INT(chain_cs_format(key, sizeof(key), &l), -EINVAL); /* short id */
	l = link_of(1, "0123456789abcdef", CHAIN_ROOT_ID, -1, "x");
	CHECK_INT(chain_cs_format(key, sizeof(key), &l), -EINVAL); /* negative time */
	l = link_of(1, "0123456789abcdef", CHAIN_ROOT_ID, 1, ".hidden");
	CHECK_INT(chain_cs_format(key, sizeof(key), &l), -EINVAL);
	l = link_of(1, "0123456789abcdef", CHAIN_ROOT_ID, 1, "a/b");
	CHECK_INT(chain_cs_format(key, sizeof(key), &l), -EINVAL);
	l = link_of(1, "0123456789abcdef", CHAIN_ROOT_ID, 1, "");
	CHECK_INT(chain_cs_format(key, sizeof(key), &l), -EINVAL);
}

static void test_cs_parse_refuses(void)
{
	static const char *const bad[] = {
		"",
		"chain",
		"00000000000000000001",
		"00000000000000000001-0123456789abcdef-0000000000000000-0000000000001-",
		"00000000000000000000-0123456789abcdef-0000000000000000-0000000000001-x",
		"0000000000000000001-0123456789abcdef-0000000000000000-0000000000001-x",
		"000000000000000000001-0123456789abcdef-0000000000000000-0000000000001-x",
		"00000000000000000001-0123456789ABCDEF-0000000000000000-0000000000001-x",
		"00000000000000000001-0123456789abcdeg-0000000000000000-0000000000001-x",
		"00000000000000000001-0123456789abcdef-000000000000000-00000000000001-x",
		"00000000000000000001-0123456789abcdef-0000000000000000-000000000001-xx",
		"00000000000000000001_0123456789abcdef-0000000000000000-0000000000001-x",
		"0000000000000000000a-0123456789abcdef-0000000000000000-0000000000001-x",
		"99999999999999999999-0123456789abcdef-0000000000000000-0000000000001-x",
		"00000000000000000001-0123456789abcdef-0000000000000000-0000000000001-.x",
		"00000000000000000001-0123456789abcdef-0000000000000000-0000000000001-a/b",
		"00000000000000000001-0123456789abcdef-0000000000000000-0000000000001",
		"-0123456789abcdef-0000000000000000-0000000000001-x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct chain_link l;
		int rc = chain_cs_parse(bad[i], &l);
		if (rc != -EINVAL)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		CHECK_INT(rc, -EINVAL);
	}
}

static void test_view_names(void)
{
	static const struct {
		const char *name;
		int want;
		uint64_t v;
		const char *rest;
	} rows[] = {
		{ "00000004-x.json", 1, 4, "x.json" },
		{ "00000001-a-b", 1, 1, "a-b" },
		{ "99999999999999999999-x", 0, 0, NULL }, /* past UINT64_MAX */
		{ "18446744073709551615-x", 1, UINT64_MAX, "x" },
		{ "123456789-nine", 1, 123456789, "nine" },
		{ "0000004-seven-digits", 0, 0, NULL },
		{ "00000000-zero", 0, 0, NULL },
		{ "00000004-", 0, 0, NULL },
		{ "00000004", 0, 0, NULL },
		{ "00000004_x", 0, 0, NULL },
		{ "item-added.json", 0, 0, NULL },
		{ "", 0, 0, NULL },
		{ "000000000000000000001-x", 0, 0, NULL }, /* 21 digits */
		{ "000000001-alias", 0, 0, NULL },	   /* not the listed form of 1 */
		{ "0123456789-alias", 0, 0, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t v = 0;
		const char *rest = NULL;
		int got = chain_view_parse(rows[i].name, &v, &rest);
		CHECK_INT(got, rows[i].want);
		if (got == 1 && rows[i].want == 1) {
			CHECK(v == rows[i].v);
			CHECK_STR(rest, rows[i].rest);
		}
	}
	struct chain_link l = link_of(4, "0123456789abcdef", CHAIN_ROOT_ID, 0, "paid.json");
	char out[64];
	CHECK_INT(chain_view_name(&l, out, sizeof(out)), 0);
	CHECK_STR(out, "00000004-paid.json");
	l.version = 123456789;
	CHECK_INT(chain_view_name(&l, out, sizeof(out)), 0);
	CHECK_STR(out, "123456789-paid.json");
	CHECK_INT(chain_view_name(&l, out, 8), -ENAMETOOLONG);
	/* A view name parses back to the link it came from. */
	uint64_t v;
	const char *rest;
	CHECK_INT(chain_view_parse(out, &v, &rest), 0); /* truncated above: not one */
	CHECK_INT(chain_view_name(&l, out, sizeof(out)), 0);
	CHECK_INT(chain_view_parse(out, &v, &rest), 1);
	CHECK(v == 123456789);
	CHECK_STR(rest, "paid.json");
}

static void test_names_and_kinds(void)
{
	char long_name[300];

	CHECK(chain_name_ok("a"));
	CHECK(chain_name_ok("item added.json"));
	CHECK(!chain_name_ok(""));
	CHECK(!chain_name_ok(".head"));
	CHECK(!chain_name_ok("a/b"));
	memset(long_name, 'x', 255);
	long_name[255] = '\0';
	CHECK(chain_name_ok(long_name));
	long_name[255] = 'x';
	long_name[256] = '\0';
	CHECK(!chain_name_ok(long_name));

	CHECK_INT(chain_kind_parse("events"), CHAIN_EVENTS);
	CHECK_INT(chain_kind_parse("content"), CHAIN_CONTENT);
	CHECK_INT(chain_kind_parse(NULL), CHAIN_NONE);
	CHECK_INT(chain_kind_parse(""), CHAIN_NONE);
	CHECK_INT(chain_kind_parse("Events"), CHAIN_BAD);
	CHECK_INT(chain_kind_parse("events "), CHAIN_BAD);
	CHECK_STR(chain_kind_name(CHAIN_EVENTS), "events");
	CHECK_STR(chain_kind_name(CHAIN_CONTENT), "content");
}

int main(void)
{
	test_cs_roundtrip();
	test_cs_format_refuses();
	test_cs_parse_refuses();
	test_view_names();
	test_names_and_kinds();
	return unit_end("chain");
}
