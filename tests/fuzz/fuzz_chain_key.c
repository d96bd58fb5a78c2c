// SPDX-License-Identifier: MIT
/*
 * fuzz_chain_key: the names and keys of changeset chains (meta/chain.c):
 * chain_cs_parse / chain_cs_format (the part of a changeset's S3 key after
 * ".s3vfs/cs/", which comes from any LIST of the bucket), chain_view_parse /
 * chain_view_name (names in an events view, from any lookup), chain_name_ok
 * and chain_kind_parse. The whole input is one string (cut at its first NUL).
 * Properties, besides no crash, leak or UB:
 *  - a key that parses has the documented fields, and formatting them gives
 *    back exactly that key (one key per changeset: no aliases);
 *  - a view name that parses has a version >= 1 and a non-empty rest inside
 *    the name; the view name of (version, rest) parses back to the same pair,
 *    and is the input itself when the input used the canonical width;
 *  - chain_name_ok is its documented rule;
 *  - chain_kind_parse knows "events" and "content" and names them back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "s3vfs/chain.h"

#include "fuzz.h"

#define KEY_CAP 1100 /* as meta/chain.c's KEY_BUF */

static bool hex16(const char *s)
{
	if (strlen(s) != CHAIN_ID_LEN)
		return false;
	for (size_t i = 0; i < CHAIN_ID_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static void check_cs(const char *s)
{
	struct chain_link l, l2;
	char back[KEY_CAP];
	int rc;

	memset(&l, 0x5a, sizeof(l));
	l.size = 7;
	rc = chain_cs_parse(s, &l);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "chain_cs_parse: %d", rc);
	if (rc)
		return;
	FUZZ_CHECK(l.version >= 1, "version 0");
	FUZZ_CHECK(hex16(l.id) && hex16(l.parent), "ids %.17s %.17s", l.id, l.parent);
	FUZZ_CHECK(l.time_ms >= 0 && l.time_ms <= 9999999999999LL, "time %" PRId64, l.time_ms);
	FUZZ_CHECK(memchr(l.name, '\0', sizeof(l.name)) && chain_name_ok(l.name), "name");
	FUZZ_CHECK(l.size == 7, "parse touched size");
	rc = chain_cs_format(back, sizeof(back), &l);
	FUZZ_CHECK(rc == 0, "a parsed key does not format: %d", rc);
	FUZZ_CHECK(strcmp(back, s) == 0, "\"%s\" formats back as \"%s\"", s, back);
	memset(&l2, 0x5a, sizeof(l2));
	l2.size = 7;
	FUZZ_CHECK(chain_cs_parse(back, &l2) == 0 && memcmp(&l, &l2, sizeof(l)) == 0,
		   "the formatted key parses differently");
	/* Too small a buffer is -ENAMETOOLONG, never an overflow. */
	FUZZ_CHECK(chain_cs_format(back, strlen(s), &l) == -ENAMETOOLONG, "short buffer");
}

static void check_view(const char *s)
{
	struct chain_link l;
	uint64_t v = 0, v2 = 0;
	const char *rest = NULL, *rest2 = NULL;
	char back[CHAIN_NAME_MAX + 32];
	size_t digits = strspn(s, "0123456789");
	int r;

	r = chain_view_parse(s, &v, &rest);
	FUZZ_CHECK(r == 0 || r == 1, "chain_view_parse: %d", r);
	if (r == 0)
		return;
	FUZZ_CHECK(v >= 1, "version 0");
	FUZZ_CHECK(rest == s + digits + 1 && rest[-1] == '-' && rest[0] != '\0', "rest");
	FUZZ_CHECK(digits >= CHAIN_VERSION_W && digits <= 20, "%zu digits", digits);
	memset(&l, 0, sizeof(l));
	l.version = v;
	if (strlen(rest) > CHAIN_NAME_MAX)
		return;
	memcpy(l.name, rest, strlen(rest) + 1);
	r = chain_view_name(&l, back, sizeof(back));
	FUZZ_CHECK(r == 0, "chain_view_name: %d", r);
	FUZZ_CHECK(chain_view_parse(back, &v2, &rest2) == 1 && v2 == v && strcmp(rest2, rest) == 0,
		   "view name %s does not parse back", back);
	/* Canonical: as many digits as the version needs, at least 8. */
	{
		char num[32];
		int w = snprintf(num, sizeof(num), "%" PRIu64, v);
		size_t canon = (size_t)w > CHAIN_VERSION_W ? (size_t)w : CHAIN_VERSION_W;

		if (digits == canon)
			FUZZ_CHECK(strcmp(back, s) == 0, "%s shown as %s", s, back);
	}
	FUZZ_CHECK(chain_view_name(&l, back, 4) == -ENAMETOOLONG, "short buffer");
}

static void check_name(const char *s)
{
	size_t n = strlen(s);
	bool want = n > 0 && n <= CHAIN_NAME_MAX && s[0] != '.' && !strchr(s, '/');

	FUZZ_CHECK(chain_name_ok(s) == want, "chain_name_ok(\"%s\")", s);
}

static void check_kind(const char *s)
{
	enum chain_kind k = chain_kind_parse(s);

	switch (k) {
	case CHAIN_EVENTS:
	case CHAIN_CONTENT:
		FUZZ_CHECK(strcmp(chain_kind_name(k), s) == 0, "kind %s", s);
		break;
	case CHAIN_NONE:
		FUZZ_CHECK(s[0] == '\0', "kind none for %s", s);
		break;
	case CHAIN_BAD:
		FUZZ_CHECK(strcmp(s, "events") && strcmp(s, "content") && s[0], "bad kind %s", s);
		break;
	default:
		FUZZ_CHECK(0, "kind %d", k);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);

	check_cs(s);
	check_view(s);
	check_name(s);
	check_kind(s);
	free(s);
	return 0;
}
