// SPDX-License-Identifier: MIT
/*
 * fuzz_ddb_json: DynamoDB's JSON replies (s3/ddb.c). The input is a reply
 * body. ddb_call's parser (load_object) is private, so its steps are done
 * here with the same limits: at most 16 MiB, json_loadb with
 * JSON_REJECT_DUPLICATES, an object at the top. Then:
 *  - ddb_parse_error, as for an error reply, and the errno mapping and log
 *    text of what it found;
 *  - the reply as GetItem's ({"Item": {...}}), Query's ({"Items": [...]})
 *    and UpdateItem's ({"Attributes": {...}}), and the document itself as an
 *    item, read with ddb_item_str / ddb_item_int the way meta/chain.c reads a
 *    head ("version" as N, "id" as S) and under the other names it uses;
 *  - ddb_table_name_ok on the body as a string.
 * Properties, besides no crash, leak or UB: an error code has no '#' or ':'
 * and every field is NUL-terminated; a string read is exactly the JSON
 * string (no NUL inside); an integer read is what its text says.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "s3vfs/ddb.h"
#include "s3vfs/s3_err.h"

#include "fuzz.h"

#define DDB_MAX_REPLY (16u * 1024 * 1024) /* as s3/ddb.c */

static const char *const names[] = { "version", "id", "pk", "updated", "cs", "" };

static void check_error(const char *data, size_t n)
{
	struct aws_error err;
	char text[512];
	int rc;

	aws_error_clear(&err);
	err.status = 400;
	rc = ddb_parse_error(data, n, &err);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO, "ddb_parse_error: %d", rc);
	if (rc != 0)
		return;
	FUZZ_CHECK(strnlen(err.code, sizeof(err.code)) < sizeof(err.code) &&
			   strnlen(err.message, sizeof(err.message)) < sizeof(err.message),
		   "field not terminated");
	FUZZ_CHECK(!strchr(err.code, '#') && !strchr(err.code, ':'), "code %s", err.code);
	FUZZ_CHECK(err.status == 400, "status changed to %ld", err.status);
	rc = aws_error_errno(&err);
	FUZZ_CHECK(rc < 0, "error mapped to %d", rc);
	aws_error_str(&err, text, sizeof(text));
	FUZZ_CHECK(strnlen(text, sizeof(text)) < sizeof(text), "log text not terminated");
	/* A transport failure wins over whatever the body said. */
	err.transport = -ETIMEDOUT;
	FUZZ_CHECK(aws_error_errno(&err) == -ETIMEDOUT, "transport error lost");
}

/* N values: optional '-', digits, no overflow; what strtoll reads back. */
static void check_int_text(const char *s, long long v)
{
	char back[32];
	const char *p = s;

	if (*p == '-')
		p++;
	FUZZ_CHECK(*p >= '0' && *p <= '9', "integer from \"%s\"", s);
	for (const char *q = p; *q; q++)
		FUZZ_CHECK(*q >= '0' && *q <= '9', "integer from \"%s\"", s);
	/* Same value as its canonical text (leading zeros and "-0" aside). */
	while (p[0] == '0' && p[1] != '\0')
		p++;
	snprintf(back, sizeof(back), "%llu",
		 v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
	FUZZ_CHECK(strcmp(back, p) == 0, "%s read as %lld", s, v);
	FUZZ_CHECK(v >= 0 || s[0] == '-', "negative from \"%s\"", s);
	FUZZ_CHECK(v <= 0 || s[0] != '-', "positive from \"%s\"", s);
}

static void read_item(json_t *item)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *s = NULL;
		long long v = 0;
		int rc;

		rc = ddb_item_str(item, names[i], &s);
		FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EPROTO, "ddb_item_str: %d", rc);
		if (rc == 0) {
			json_t *attr = json_object_get(json_object_get(item, names[i]), "S");
			FUZZ_CHECK(s == json_string_value(attr), "not the item's own string");
			FUZZ_CHECK(strlen(s) == json_string_length(attr), "string with a NUL");
		}
		rc = ddb_item_int(item, names[i], &v);
		FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EPROTO, "ddb_item_int: %d", rc);
		if (rc == 0)
			check_int_text(json_string_value(json_object_get(
					       json_object_get(item, names[i]), "N")),
				       v);
	}
	/* chain.c's reading of a head item must not trip on anything. */
	{
		long long v = 0;
		const char *id = NULL;

		if (ddb_item_int(item, "version", &v) == 0 && ddb_item_str(item, "id", &id) == 0)
			FUZZ_CHECK(id != NULL, "id");
	}
	FUZZ_CHECK(ddb_item_str(item, NULL, &(const char *){ NULL }) == -EINVAL, "NULL name");
}

static void check_items(json_t *doc)
{
	json_t *items = json_object_get(doc, "Items");
	size_t i;
	json_t *it;

	read_item(doc);
	read_item(json_object_get(doc, "Item"));
	read_item(json_object_get(doc, "Attributes"));
	read_item(json_object_get(doc, "LastEvaluatedKey"));
	json_array_foreach(items, i, it)
	{
		if (i >= 64)
			break;
		read_item(it);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_error_t jerr;
	json_t *doc;
	char *s;

	check_error(text, size);
	if (size > 0 && size <= DDB_MAX_REPLY) {
		doc = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
		if (doc && json_is_object(doc))
			check_items(doc);
		json_decref(doc);
	}
	s = fuzz_strndup(data, size);
	if (ddb_table_name_ok(s)) {
		size_t n = strlen(s);
		FUZZ_CHECK(n >= 3 && n <= 255 &&
				   strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					     "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n,
			   "table name \"%s\" accepted", s);
	}
	free(s);
	return 0;
}
