// SPDX-License-Identifier: MIT
/*
 * fuzz_s3attr: POSIX attributes and xattrs as S3 user metadata
 * (meta/s3attr.c). The input is one control byte and NUL-separated fields:
 *
 *	byte 0: bit 0 the object is known to be a directory; bits 1-3 the
 *	        object's size (0 or not) and Content-Type choice; bits 4-7
 *	        the umask
 *	fields: name, value, name, value, ... (user metadata pairs)
 *
 * The pairs are decoded (s3attr_decode, s3attr_is_dir); the "xattr" pair's
 * value, or if there is none the last field, goes through
 * s3attr_xattrs_decode; then s3attr_merge writes the decoded attributes back
 * over the pairs. Properties, besides no crash, leak or UB:
 *  - a decoded mode always has a real file type (a directory when known to
 *    be one), times have 0 <= tv_nsec < 1e9, and fields not found are the
 *    defaults;
 *  - xattrs that decode have distinct, valid names; encoding them gives
 *    printable ASCII without CR/LF that fits the metadata budget, and
 *    decoding that gives the same list back (names, order, bytes);
 *  - merging keeps every pair it does not own, drops duplicates of those it
 *    owns, writes values with no CR/LF, and what it writes decodes back to
 *    the attributes it was given.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "s3vfs/s3attr.h"

#include "fuzz.h"

#define MAX_PAIRS (FUZZ_FIELDS_MAX / 2)

static const char *const content_types[] = {
	NULL,
	"application/x-directory",
	" httpd/unix-directory ; charset=x",
	"text/plain",
};

static bool attr_field_eq(const struct s3attr *a, const struct s3attr *b, unsigned bit)
{
	switch (bit) {
	case S3ATTR_MODE:
		return a->mode == b->mode;
	case S3ATTR_UID:
		return a->uid == b->uid;
	case S3ATTR_GID:
		return a->gid == b->gid;
	case S3ATTR_MTIME:
		return a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
	case S3ATTR_CTIME:
		return a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
	default:
		return a->atime.tv_sec == b->atime.tv_sec && a->atime.tv_nsec == b->atime.tv_nsec;
	}
}

static void check_decoded(const struct s3attr *a, unsigned have, const struct s3attr_defaults *def)
{
	const struct timespec *t[3] = { &a->mtime, &a->ctime, &a->atime };
	const unsigned bits[3] = { S3ATTR_MTIME, S3ATTR_CTIME, S3ATTR_ATIME };
	mode_t type = a->mode & S_IFMT;

	FUZZ_CHECK(!(have & ~(unsigned)S3ATTR_STAT), "mask 0x%x", have);
	FUZZ_CHECK(type == S_IFREG || type == S_IFDIR || type == S_IFLNK || type == S_IFIFO ||
			   type == S_IFSOCK || type == S_IFCHR || type == S_IFBLK,
		   "mode 0%o has no file type", (unsigned)a->mode);
	FUZZ_CHECK(!def->is_dir || S_ISDIR(a->mode), "a directory decoded as mode 0%o",
		   (unsigned)a->mode);
	FUZZ_CHECK((a->mode & ~(mode_t)(S_IFMT | 07777)) == 0, "mode 0%o", (unsigned)a->mode);
	if (!(have & S3ATTR_MODE))
		FUZZ_CHECK((a->mode & 07777) ==
				   ((def->is_dir ? 0777u : 0666u) & ~def->umask & 07777),
			   "default mode 0%o", (unsigned)a->mode);
	if (!(have & S3ATTR_UID))
		FUZZ_CHECK(a->uid == def->uid, "default uid");
	if (!(have & S3ATTR_GID))
		FUZZ_CHECK(a->gid == def->gid, "default gid");
	FUZZ_CHECK(a->uid != (uid_t)-1 && a->gid != (gid_t)-1, "owner -1 decoded");
	for (int i = 0; i < 3; i++) {
		FUZZ_CHECK(t[i]->tv_nsec >= 0 && t[i]->tv_nsec < 1000000000L, "tv_nsec %ld",
			   t[i]->tv_nsec);
		if (!(have & bits[i]))
			FUZZ_CHECK(t[i]->tv_sec == def->last_modified && t[i]->tv_nsec == 0,
				   "default time");
	}
}

static bool xattrs_equal(const struct s3attr_xattrs *a, const struct s3attr_xattrs *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->v[i].name, b->v[i].name) != 0 || a->v[i].len != b->v[i].len ||
		    (a->v[i].len && memcmp(a->v[i].value, b->v[i].value, a->v[i].len) != 0))
			return false;
	}
	return true;
}

/* Decode value; on success check the list and its encoding round trip. */
static int fuzz_xattrs(const char *value, struct s3attr_xattrs *out)
{
	struct s3attr_xattrs x = { 0 }, y = { 0 };
	char *enc = NULL;
	int rc;

	rc = s3attr_xattrs_decode(value, &x);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG, "s3attr_xattrs_decode: %d", rc);
	if (rc)
		return rc;
	for (size_t i = 0; i < x.n; i++) {
		size_t len = strlen(x.v[i].name);

		FUZZ_CHECK(len >= 1 && len <= S3ATTR_XATTR_NAME_MAX, "name of %zu bytes", len);
		FUZZ_CHECK(fuzz_utf8_ok(x.v[i].name, len), "name not UTF-8");
		FUZZ_CHECK((x.v[i].len == 0) == (x.v[i].value == NULL), "value/len");
		FUZZ_CHECK(s3attr_xattrs_find(&x, x.v[i].name) == &x.v[i], "duplicate name %s",
			   x.v[i].name);
	}
	rc = s3attr_xattrs_encode(&x, &enc);
	FUZZ_CHECK(rc == 0 || rc == -ENOSPC, "s3attr_xattrs_encode: %d", rc);
	if (rc == 0) {
		FUZZ_CHECK((x.n == 0) == (enc == NULL), "empty list encoding");
		if (enc) {
			FUZZ_CHECK(strlen(enc) <= S3ATTR_META_MAX, "encoding of %zu bytes",
				   strlen(enc));
			for (const char *p = enc; *p; p++)
				FUZZ_CHECK(*p > 0x20 && *p < 0x7f, "byte 0x%02x in encoding",
					   (unsigned char)*p);
			rc = s3attr_xattrs_decode(enc, &y);
			FUZZ_CHECK(rc == 0, "own encoding does not decode: %d", rc);
			FUZZ_CHECK(xattrs_equal(&x, &y), "decode(encode(x)) != x");
			s3attr_xattrs_cleanup(&y);
		}
		free(enc);
	}
	*out = x;
	return 0;
}

/* Merge a's fields (which) and xattrs over the pairs; check the result. */
static void fuzz_merge(const struct s3attr_kv *kv, size_t n, const struct s3attr *a, unsigned which,
		       const struct s3attr_xattrs *x, const struct s3attr_defaults *def)
{
	static const char *const owned[] = { "mode", "uid", "gid", "mtime", "ctime", "atime" };
	struct s3attr_kvlist out = { 0 };
	struct s3attr back;
	size_t total = 0;
	unsigned have;
	int rc;

	rc = s3attr_merge(kv, n, a, which, x, &out);
	FUZZ_CHECK(rc == 0 || rc == -ENOSPC || rc == -EINVAL, "s3attr_merge: %d", rc);
	if (rc)
		return;
	for (size_t i = 0; i < out.n; i++) {
		total += strlen(out.kv[i].name) + strlen(out.kv[i].value);
		FUZZ_CHECK(!strpbrk(out.kv[i].value, "\r\n"), "CR/LF in %s", out.kv[i].name);
	}
	FUZZ_CHECK(total <= S3ATTR_META_MAX, "%zu bytes of metadata", total);
	/* Each pair not owned is still there, in order. */
	for (size_t i = 0, j = 0; i < n; i++) {
		bool own = false;

		for (size_t k = 0; k < ARRAY_SIZE(owned); k++)
			own = own || ((which & (1u << k)) && strcasecmp(kv[i].name, owned[k]) == 0);
		own = own || ((which & S3ATTR_XATTR) && strcasecmp(kv[i].name, "xattr") == 0);
		if (own)
			continue;
		while (j < out.n && (strcmp(out.kv[j].name, kv[i].name) != 0 ||
				     strcmp(out.kv[j].value, kv[i].value) != 0))
			j++;
		FUZZ_CHECK(j < out.n, "pair %s dropped", kv[i].name);
		j++;
	}
	/* An owned name appears once, and reads back as written. */
	for (size_t k = 0; k < ARRAY_SIZE(owned); k++) {
		size_t count = 0;

		if (!(which & (1u << k)))
			continue;
		for (size_t i = 0; i < out.n; i++)
			count += strcasecmp(out.kv[i].name, owned[k]) == 0;
		FUZZ_CHECK(count == 1, "%zu pairs named %s", count, owned[k]);
	}
	have = s3attr_decode(out.kv, out.n, def, &back);
	for (unsigned bit = S3ATTR_MODE; bit <= S3ATTR_ATIME; bit <<= 1) {
		if (!(which & bit))
			continue;
		FUZZ_CHECK(have & bit, "field 0x%x written but not read back", bit);
		FUZZ_CHECK(attr_field_eq(a, &back, bit), "field 0x%x reads back differently", bit);
	}
	s3attr_kvlist_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_fields ff;
	struct s3attr_kv kv[MAX_PAIRS];
	struct s3attr_defaults def;
	struct s3attr a;
	struct s3attr_xattrs x = { 0 };
	const char *xv;
	size_t n = 0;
	unsigned have;
	uint8_t c;

	if (size < 1)
		return 0;
	c = data[0];
	fuzz_fields_split(&ff, data + 1, size - 1);
	for (size_t i = 0; i + 1 < ff.n && n < MAX_PAIRS; i += 2)
		kv[n++] = (struct s3attr_kv){ (char *)ff.f[i], (char *)ff.f[i + 1] };
	def = (struct s3attr_defaults){
		.uid = 1000,
		.gid = 1000,
		.umask = (mode_t)(c >> 4) * 0111 & 0777,
		.last_modified = 1700000000,
		.is_dir = c & 1,
	};

	have = s3attr_decode(kv, n, &def, &a);
	check_decoded(&a, have, &def);
	/* A known-directory flag from the key wins over the mode. */
	{
		bool d = s3attr_is_dir(ff.f[0], (c & 2) ? 0 : 4096, content_types[(c >> 2) & 3], kv,
				       n);
		size_t kl = strlen(ff.f[0]);
		if (kl > 0 && ff.f[0][kl - 1] == '/')
			FUZZ_CHECK(d, "key ending in / not a directory");
		if (!(c & 2) && !(kl > 0 && ff.f[0][kl - 1] == '/') &&
		    !(kl > 9 && strcmp(ff.f[0] + kl - 9, "_$folder$") == 0))
			FUZZ_CHECK(!d, "non-empty object %s a directory", ff.f[0]);
	}

	xv = s3attr_kv_get(kv, n, "xattr");
	if (!xv)
		xv = ff.f[ff.n - 1];
	if (fuzz_xattrs(xv, &x) == 0) {
		fuzz_merge(kv, n, &a, have | S3ATTR_XATTR, &x, &def);
		fuzz_merge(kv, n, &a, S3ATTR_STAT, &x, &def);
	}
	fuzz_merge(kv, n, NULL, 0, NULL, &def);
	s3attr_xattrs_cleanup(&x);
	fuzz_fields_free(&ff);
	return 0;
}
