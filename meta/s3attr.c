// SPDX-License-Identifier: MIT
/*
 * s3attr: the codec between struct stat fields / extended attributes and S3
 * user metadata pairs (see s3attr.h). It owns the formats: which names, which
 * number syntax, the xattr JSON + base64 + percent-encoding, the 2 KiB
 * budget, and the rule that pairs it does not own pass through untouched. It
 * must not know how pairs reach S3 (s3.h), paths (objmap decides names), or
 * what the mount does with the attributes.
 *
 * Readers are lenient where s3fs-fuse and rclone differ (octal or decimal
 * mode, RFC 3339 or decimal times) and strict where a wrong guess would
 * corrupt data (xattr values: malformed is -EINVAL, never a partial list).
 */
#include "s3vfs/s3attr.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "s3vfs/buf.h"
#include "s3vfs/objmap.h"

_Static_assert(sizeof(time_t) == 8, "times are parsed as 64-bit seconds");
_Static_assert(sizeof(uid_t) == 4 && sizeof(gid_t) == 4, "ids are 32-bit");

#define NSEC_PER_SEC 1000000000L
/* The xattr pair's own name counts against the metadata budget. */
#define XATTR_PAIR_NAME "xattr"
#define XATTR_OUT_MAX	(S3ATTR_META_MAX - (sizeof(XATTR_PAIR_NAME) - 1))

/* ---- pair lists ---- */

void s3attr_kvlist_cleanup(struct s3attr_kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->kv[i].name);
		free(l->kv[i].value);
	}
	free(l->kv);
	l->kv = NULL;
	l->n = 0;
}

const char *s3attr_kv_get(const struct s3attr_kv *kv, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (kv[i].name && kv[i].value && strcasecmp(kv[i].name, name) == 0)
			return kv[i].value;
	}
	return NULL;
}

/* Append copies of name and value; l->kv has room (the caller sized it). */
static int kvlist_push(struct s3attr_kvlist *l, const char *name, const char *value)
{
	char *n = strdup(name);
	char *v = strdup(value);

	if (!n || !v) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	l->kv[l->n].name = n;
	l->kv[l->n].value = v;
	l->n++;
	return 0;
}

/* ---- numbers and times ---- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits only in base 10 or 8: no sign, no space, no "0x" (strtoull takes all three). */
static int parse_uint(const char *s, int base, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end = NULL;

	if (!is_digit(s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Fits st_mode: 16 bits, and the type bits name a type (or none). */
static bool mode_plausible(uint64_t v)
{
	if (v > 0177777)
		return false;
	switch (v & S_IFMT) {
	case 0:
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return true;
	default:
		return false;
	}
}

/*
 * s3fs writes decimal ("33188") and never a leading zero; rclone writes
 * octal ("100644", its docs show "0100644"). Decimal is tried first unless
 * the leading 0 says octal; octal only when the decimal reading is not a
 * st_mode. No real octal form with type bits reads as a plausible decimal
 * one except FIFOs ("10644" = 024624, a character device): decimal wins.
 */
static int parse_mode(const char *s, mode_t *out)
{
	bool octal = s[0] == '0' && s[1] != '\0';
	uint64_t v = 0;

	if (!octal && parse_uint(s, 10, UINT64_MAX, &v) == 0 && mode_plausible(v)) {
		*out = (mode_t)v;
		return 0;
	}
	if (parse_uint(s, 8, UINT64_MAX, &v) == 0 && mode_plausible(v)) {
		*out = (mode_t)v;
		return 0;
	}
	return -EINVAL;
}

/* At least one digit of a fraction; the first 9 make nanoseconds, the rest
 * are dropped. Returns the end, NULL if there is no digit. */
static const char *parse_frac(const char *p, long *out_ns)
{
	long ns = 0;
	int nd = 0;

	if (!is_digit(*p))
		return NULL;
	for (; is_digit(*p); p++) {
		if (nd < 9) {
			ns = ns * 10 + (*p - '0');
			nd++;
		}
	}
	for (; nd < 9; nd++)
		ns *= 10;
	*out_ns = ns;
	return p;
}

/* "-?digits(.digits)?": s3fs ("sec" or "sec.nnnnnnnnn") and rclone floats. */
static int parse_time_dec(const char *s, struct timespec *out)
{
	bool neg = s[0] == '-';
	const char *p = neg ? s + 1 : s;
	int64_t sec = 0;
	long ns = 0;

	if (!is_digit(*p))
		return -EINVAL;
	for (; is_digit(*p); p++) {
		int d = *p - '0';

		if (sec > (INT64_MAX - d) / 10)
			return -EINVAL;
		sec = sec * 10 + d;
	}
	if (*p == '.') {
		p = parse_frac(p + 1, &ns);
		if (!p)
			return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;
	/* -1.25 is 1.25 s before the epoch: tv_sec -2, tv_nsec 0.75 s. */
	if (neg) {
		sec = -sec;
		if (ns) {
			sec -= 1;
			ns = NSEC_PER_SEC - ns;
		}
	}
	out->tv_sec = sec;
	out->tv_nsec = ns;
	return 0;
}

/* Value of n decimal digits, -1 if any is not a digit. */
static int fixed_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (year >= 0). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	/* Floor division: year 0's January and February belong to era -1. */
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return (int64_t)era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Zone of an RFC 3339 time: "Z" or "+hh:mm"/"-hh:mm" ending the string. */
static int parse_zone(const char *p, long *out_off)
{
	int sign;
	int hh;
	int mm;

	if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
		*out_off = 0;
		return 0;
	}
	if (p[0] != '+' && p[0] != '-')
		return -EINVAL;
	sign = p[0] == '-' ? -1 : 1;
	hh = fixed_digits(p + 1, 2);
	mm = p[1] && p[2] && p[3] == ':' ? fixed_digits(p + 4, 2) : -1;
	if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || p[6] != '\0')
		return -EINVAL;
	*out_off = sign * (hh * 3600L + mm * 60L);
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm)", as rclone writes times. */
static int parse_rfc3339(const char *s, struct timespec *out)
{
	int y = fixed_digits(s, 4);
	int mo = fixed_digits(s + 5, 2);
	int d = fixed_digits(s + 8, 2);
	int h = fixed_digits(s + 11, 2);
	int mi = fixed_digits(s + 14, 2);
	int se = fixed_digits(s + 17, 2);
	const char *p = s + 19;
	long ns = 0;
	long off = 0;

	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || se < 0 || se > 60)
		return -EINVAL;
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return -EINVAL;
	if (*p == '.') {
		p = parse_frac(p + 1, &ns);
		if (!p)
			return -EINVAL;
	}
	if (parse_zone(p, &off) < 0)
		return -EINVAL;
	out->tv_sec = days_from_civil(y, mo, d) * 86400 + h * 3600L + mi * 60L + se - off;
	out->tv_nsec = ns;
	return 0;
}

static int parse_time(const char *s, struct timespec *out)
{
	/* The shortest RFC 3339 time is 20 bytes; the check keeps the fixed
	 * offsets of parse_rfc3339 inside the string. */
	if (strlen(s) >= 20 && s[4] == '-')
		return parse_rfc3339(s, out);
	return parse_time_dec(s, out);
}

static int parse_id(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	/* (uid_t)-1 means "no change" to chown(2): never an owner. */
	if (parse_uint(s, 10, UINT32_MAX - 1, &v) < 0)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* ---- decoding ---- */

static const struct time_field {
	const char *name;
	unsigned bit;
	size_t off;
} time_fields[] = {
	{ "mtime", S3ATTR_MTIME, offsetof(struct s3attr, mtime) },
	{ "ctime", S3ATTR_CTIME, offsetof(struct s3attr, ctime) },
	{ "atime", S3ATTR_ATIME, offsetof(struct s3attr, atime) },
};

/* The type bits: def->is_dir (from the key or Content-Type) outranks the
 * mode; a mode without type bits is a regular file. */
static mode_t fix_type(mode_t mode, bool is_dir)
{
	if (is_dir)
		return (mode & ~(mode_t)S_IFMT) | S_IFDIR;
	if ((mode & S_IFMT) == 0)
		return mode | S_IFREG;
	return mode;
}

unsigned s3attr_decode(const struct s3attr_kv *kv, size_t n, const struct s3attr_defaults *def,
		       struct s3attr *out)
{
	struct s3attr a;
	unsigned have = 0;
	const char *v;
	uint32_t id = 0;

	a.mode = (def->is_dir ? 0777 : 0666) & ~def->umask & 07777;
	a.uid = def->uid;
	a.gid = def->gid;
	v = s3attr_kv_get(kv, n, "mode");
	if (v && parse_mode(v, &a.mode) == 0)
		have |= S3ATTR_MODE;
	a.mode = fix_type(a.mode, def->is_dir);
	v = s3attr_kv_get(kv, n, "uid");
	if (v && parse_id(v, &id) == 0) {
		a.uid = id;
		have |= S3ATTR_UID;
	}
	v = s3attr_kv_get(kv, n, "gid");
	if (v && parse_id(v, &id) == 0) {
		a.gid = id;
		have |= S3ATTR_GID;
	}
	for (size_t i = 0; i < ARRAY_SIZE(time_fields); i++) {
		struct timespec *t = (struct timespec *)((char *)&a + time_fields[i].off);

		v = s3attr_kv_get(kv, n, time_fields[i].name);
		if (v && parse_time(v, t) == 0) {
			have |= time_fields[i].bit;
		} else {
			t->tv_sec = def->last_modified;
			t->tv_nsec = 0;
		}
	}
	*out = a;
	return have;
}

/* Content-Type without parameters, compared case-insensitively. */
static bool content_type_is_dir(const char *ct)
{
	static const char *const dir_types[] = { "application/x-directory",
						 "httpd/unix-directory" };
	size_t len;

	while (*ct == ' ' || *ct == '\t')
		ct++;
	len = strcspn(ct, ";");
	while (len > 0 && (ct[len - 1] == ' ' || ct[len - 1] == '\t'))
		len--;
	for (size_t i = 0; i < ARRAY_SIZE(dir_types); i++) {
		if (strlen(dir_types[i]) == len && strncasecmp(ct, dir_types[i], len) == 0)
			return true;
	}
	return false;
}

bool s3attr_is_dir(const char *key, uint64_t size, const char *content_type,
		   const struct s3attr_kv *kv, size_t n)
{
	size_t klen = strlen(key);
	size_t slen = sizeof(OBJMAP_FOLDER_SUFFIX) - 1;
	const char *v;
	mode_t mode = 0;

	if (klen > 0 && key[klen - 1] == '/')
		return true;
	if (klen > slen && strcmp(key + klen - slen, OBJMAP_FOLDER_SUFFIX) == 0)
		return true;
	if (size != 0)
		return false;
	if (content_type && content_type_is_dir(content_type))
		return true;
	v = s3attr_kv_get(kv, n, "mode");
	return v && parse_mode(v, &mode) == 0 && S_ISDIR(mode);
}

/* ---- base64 and percent-encoding ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard alphabet with padding, as s3fs writes it. */
static int b64_encode(struct buf *b, const unsigned char *in, size_t len)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		char q[4];

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		q[0] = b64_chars[(v >> 18) & 63];
		q[1] = b64_chars[(v >> 12) & 63];
		q[2] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? b64_chars[v & 63] : '=';
		rc = buf_add(b, q, 4);
	}
	return rc;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;

	return p ? (int)(p - b64_chars) : -1;
}

/*
 * Padded or not; any other character, a '=' inside, or a lone last
 * character is -EINVAL. Leftover low bits are ignored (s3fs does too).
 * *out is malloc'd (NULL when the value is empty).
 */
static int b64_decode(const char *s, size_t slen, unsigned char **out, size_t *out_len)
{
	unsigned char *bytes = NULL;
	size_t n = slen;
	size_t o = 0;
	uint32_t acc = 0;

	if (n % 4 == 0) {
		for (int pad = 0; pad < 2 && n > 0 && s[n - 1] == '='; pad++)
			n--;
	}
	if (n % 4 == 1)
		return -EINVAL;
	if (n > 0) {
		bytes = malloc(n / 4 * 3 + 2);
		if (!bytes)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);

		if (v < 0) {
			free(bytes);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			bytes[o++] = (unsigned char)(acc >> 16);
			bytes[o++] = (unsigned char)(acc >> 8);
			bytes[o++] = (unsigned char)acc;
		}
	}
	if (n % 4 >= 2)
		bytes[o++] = (unsigned char)(acc >> (n % 4 == 2 ? 4 : 10));
	if (n % 4 == 3)
		bytes[o++] = (unsigned char)(acc >> 2);
	*out = bytes;
	*out_len = o;
	return 0;
}

/* s3fs's urlEncodePath: unreserved characters and '/' stay, the rest is %XX.
 * The result is printable ASCII, safe in a header. */
static int pct_encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || is_digit((char)*p) ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == '/') {
			rc = buf_addc(b, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			rc = buf_add(b, e, sizeof(e));
		}
	}
	return rc;
}

static int hex_value(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Strict: '%' takes two hex digits, and %00 is refused. *out malloc'd. */
static int pct_decode(const char *s, char **out, size_t *out_len)
{
	size_t len = strlen(s);
	char *d = malloc(len + 1);
	size_t o = 0;

	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int hi;
		int lo;

		if (s[i] != '%') {
			d[o++] = s[i];
			continue;
		}
		hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
		lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(d);
			return -EINVAL;
		}
		d[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	d[o] = '\0';
	*out = d;
	*out_len = o;
	return 0;
}

/* ---- extended attributes ---- */

void s3attr_xattrs_cleanup(struct s3attr_xattrs *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->v[i].name);
		free(x->v[i].value);
	}
	free(x->v);
	x->v = NULL;
	x->n = 0;
}

static bool xattr_name_ok(const char *name, size_t len)
{
	return len > 0 && len <= S3ATTR_XATTR_NAME_MAX && !memchr(name, '\0', len);
}

/* Append name = base64-decoded value to x, whose array has room. */
static int xattr_add_decoded(struct s3attr_xattrs *x, const char *name, size_t nlen, json_t *jv)
{
	struct s3attr_xattr *e = &x->v[x->n];
	int rc = 0;

	if (!xattr_name_ok(name, nlen) || !json_is_string(jv))
		return -EINVAL;
	e->name = strndup(name, nlen);
	if (!e->name)
		return -ENOMEM;
	rc = b64_decode(json_string_value(jv), json_string_length(jv), &e->value, &e->len);
	if (rc < 0) {
		free(e->name);
		return rc;
	}
	x->n++;
	return 0;
}

static int xattrs_from_json(const char *text, size_t len, struct s3attr_xattrs *x)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *name;
	size_t nlen;
	json_t *jv;
	int rc = 0;

	if (!root)
		return json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
	if (!json_is_object(root)) {
		rc = -EINVAL;
		goto out;
	}
	x->v = calloc(json_object_size(root) + 1, sizeof(*x->v));
	if (!x->v) {
		rc = -ENOMEM;
		goto out;
	}
	json_object_keylen_foreach(root, name, nlen, jv)
	{
		rc = xattr_add_decoded(x, name, nlen, jv);
		if (rc < 0)
			goto out;
	}
out:
	json_decref(root);
	return rc;
}

int s3attr_xattrs_decode(const char *value, struct s3attr_xattrs *out)
{
	struct s3attr_xattrs x = { 0 };
	const char *p = value;
	char *text = NULL;
	size_t len = 0;
	int rc = 0;

	if (strlen(value) > S3ATTR_XATTR_IN_MAX)
		return -E2BIG;
	while (*p == ' ' || *p == '\t')
		p++;
	/* An empty value is an empty list: s3fs never writes one, other
	 * tools may. */
	if (*p == '\0') {
		*out = x;
		return 0;
	}
	/* Raw JSON cannot start with '%'; encoded JSON starts with %7B. */
	if (*p == '{') {
		rc = xattrs_from_json(p, strlen(p), &x);
	} else {
		rc = pct_decode(p, &text, &len);
		if (rc == 0)
			rc = xattrs_from_json(text, len, &x);
	}
	free(text);
	if (rc < 0) {
		s3attr_xattrs_cleanup(&x);
		return rc;
	}
	*out = x;
	return 0;
}

/* {"name":"b64",...} for a list; *out from jansson (free() it). */
static int xattrs_to_json(const struct s3attr_xattrs *x, char **out)
{
	json_t *root = json_object();
	struct buf b;
	int rc = 0;

	buf_init(&b, XATTR_OUT_MAX);
	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < x->n; i++) {
		json_t *s;

		/* Base64 grows 3 bytes to 4: a longer value cannot fit anyway,
		 * and the check keeps the buffer's -E2BIG for "too long". */
		if (x->v[i].len / 3 * 4 > XATTR_OUT_MAX) {
			rc = -ENOSPC;
			goto out;
		}
		buf_reset(&b);
		rc = b64_encode(&b, x->v[i].value, x->v[i].len);
		if (rc < 0)
			goto out;
		s = json_stringn(buf_str(&b), buf_len(&b));
		/* _new steals s, also on failure; -1 is a bad (non-UTF-8) name. */
		if (!s || json_object_set_new(root, x->v[i].name, s) < 0) {
			rc = s ? -EINVAL : -ENOMEM;
			goto out;
		}
	}
	*out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!*out)
		rc = -ENOMEM;
out:
	if (rc == -E2BIG)
		rc = -ENOSPC;
	buf_cleanup(&b);
	json_decref(root);
	return rc;
}

int s3attr_xattrs_encode(const struct s3attr_xattrs *x, char **out)
{
	char *json = NULL;
	struct buf b;
	int rc = 0;

	if (x->n == 0) {
		*out = NULL;
		return 0;
	}
	rc = xattrs_to_json(x, &json);
	if (rc < 0)
		return rc;
	buf_init(&b, XATTR_OUT_MAX);
	rc = pct_encode(&b, json);
	free(json);
	if (rc < 0)
		return rc == -E2BIG ? -ENOSPC : rc;
	*out = buf_take(&b);
	return 0;
}

static ssize_t xattr_index(const struct s3attr_xattrs *x, const char *name)
{
	for (size_t i = 0; i < x->n; i++) {
		if (strcmp(x->v[i].name, name) == 0)
			return (ssize_t)i;
	}
	return -1;
}

const struct s3attr_xattr *s3attr_xattrs_find(const struct s3attr_xattrs *x, const char *name)
{
	ssize_t i = xattr_index(x, name);

	return i < 0 ? NULL : &x->v[i];
}

/* Does e alone fit in the metadata budget? 0, -E2BIG, -EINVAL, -ENOMEM. */
static int xattr_fits_alone(struct s3attr_xattr *e)
{
	struct s3attr_xattrs one = { .v = e, .n = 1 };
	char *enc = NULL;
	int rc = s3attr_xattrs_encode(&one, &enc);

	free(enc);
	return rc == -ENOSPC ? -E2BIG : rc;
}

int s3attr_xattrs_set(struct s3attr_xattrs *x, const char *name, const void *value, size_t len,
		      int flags)
{
	struct s3attr_xattr e = { 0 };
	ssize_t i = xattr_index(x, name);
	size_t nlen = strlen(name);
	int rc = 0;

	if (nlen == 0)
		return -EINVAL;
	if (nlen > S3ATTR_XATTR_NAME_MAX)
		return -ERANGE;
	if (len > S3ATTR_META_MAX)
		return -E2BIG;
	if (i >= 0 && (flags & XATTR_CREATE))
		return -EEXIST;
	if (i < 0 && (flags & XATTR_REPLACE))
		return -ENODATA;
	e.name = strdup(name);
	e.value = len ? malloc(len) : NULL;
	e.len = len;
	if (!e.name || (len && !e.value)) {
		rc = -ENOMEM;
		goto out;
	}
	if (len)
		memcpy(e.value, value, len);
	rc = xattr_fits_alone(&e);
	if (rc < 0)
		goto out;
	if (i < 0) {
		struct s3attr_xattr *v = realloc(x->v, (x->n + 1) * sizeof(*v));

		if (!v) {
			rc = -ENOMEM;
			goto out;
		}
		x->v = v;
		i = (ssize_t)x->n++;
	} else {
		free(x->v[i].name);
		free(x->v[i].value);
	}
	x->v[i] = e;
	return 0;
out:
	free(e.name);
	free(e.value);
	return rc;
}

int s3attr_xattrs_remove(struct s3attr_xattrs *x, const char *name)
{
	ssize_t i = xattr_index(x, name);

	if (i < 0)
		return -ENODATA;
	free(x->v[i].name);
	free(x->v[i].value);
	memmove(&x->v[i], &x->v[i + 1], (x->n - (size_t)i - 1) * sizeof(x->v[0]));
	x->n--;
	return 0;
}

/* ---- encoding: merge ---- */

/* A pair this module writes; value NULL means "drop the pair". */
struct own_pair {
	const char *name;
	char *value;
	bool done;
};

#define OWN_PAIRS_MAX 7

/* "sec" or "sec.nnnnnnnnn"; before the epoch the fraction keeps its sign
 * ("-1.250000000"), which is how parse_time_dec and s3fs read it. */
static int fmt_time(char *dst, size_t n, struct timespec t)
{
	if (t.tv_nsec < 0 || t.tv_nsec >= NSEC_PER_SEC)
		return -EINVAL;
	if (t.tv_nsec == 0)
		snprintf(dst, n, "%lld", (long long)t.tv_sec);
	else if (t.tv_sec >= 0)
		snprintf(dst, n, "%lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
	else
		snprintf(dst, n, "-%lld.%09ld", -((long long)t.tv_sec + 1),
			 NSEC_PER_SEC - t.tv_nsec);
	return 0;
}

/* The value of one owned stat field, malloc'd. */
static int own_value(const struct s3attr *a, unsigned bit, char **out)
{
	char num[48];
	int rc = 0;

	switch (bit) {
	case S3ATTR_MODE:
		snprintf(num, sizeof(num), "%u", (unsigned)a->mode);
		break;
	case S3ATTR_UID:
		snprintf(num, sizeof(num), "%u", (unsigned)a->uid);
		break;
	case S3ATTR_GID:
		snprintf(num, sizeof(num), "%u", (unsigned)a->gid);
		break;
	case S3ATTR_MTIME:
		rc = fmt_time(num, sizeof(num), a->mtime);
		break;
	case S3ATTR_CTIME:
		rc = fmt_time(num, sizeof(num), a->ctime);
		break;
	default:
		assert(bit == S3ATTR_ATIME);
		rc = fmt_time(num, sizeof(num), a->atime);
		break;
	}
	if (rc < 0)
		return rc;
	*out = strdup(num);
	return *out ? 0 : -ENOMEM;
}

static const struct {
	const char *name;
	unsigned bit;
} own_names[] = {
	{ "mode", S3ATTR_MODE },   { "uid", S3ATTR_UID },     { "gid", S3ATTR_GID },
	{ "mtime", S3ATTR_MTIME }, { "ctime", S3ATTR_CTIME }, { "atime", S3ATTR_ATIME },
};

/* The owned pairs that which selects, values formatted. */
static int own_pairs(const struct s3attr *a, unsigned which, const struct s3attr_xattrs *xattrs,
		     struct own_pair p[OWN_PAIRS_MAX], size_t *np)
{
	int rc = 0;

	*np = 0;
	for (size_t i = 0; i < ARRAY_SIZE(own_names); i++) {
		if (!(which & own_names[i].bit))
			continue;
		p[*np] = (struct own_pair){ .name = own_names[i].name };
		rc = own_value(a, own_names[i].bit, &p[*np].value);
		if (rc < 0)
			return rc;
		(*np)++;
	}
	if (which & S3ATTR_XATTR) {
		p[*np] = (struct own_pair){ .name = XATTR_PAIR_NAME };
		if (xattrs)
			rc = s3attr_xattrs_encode(xattrs, &p[*np].value);
		if (rc < 0)
			return rc;
		(*np)++;
	}
	return 0;
}

static struct own_pair *own_find(struct own_pair *p, size_t np, const char *name)
{
	for (size_t i = 0; i < np; i++) {
		if (strcasecmp(p[i].name, name) == 0)
			return &p[i];
	}
	return NULL;
}

static bool value_header_safe(const char *v)
{
	return !strpbrk(v, "\r\n");
}

int s3attr_merge(const struct s3attr_kv *old, size_t nold, const struct s3attr *attr,
		 unsigned which, const struct s3attr_xattrs *xattrs, struct s3attr_kvlist *out)
{
	struct own_pair p[OWN_PAIRS_MAX];
	struct s3attr_kvlist l = { 0 };
	size_t np = 0;
	size_t total = 0;
	int rc = 0;

	assert(attr || !(which & S3ATTR_STAT));
	rc = own_pairs(attr, which, xattrs, p, &np);
	if (rc < 0)
		goto out;
	l.kv = calloc(nold + np + 1, sizeof(*l.kv));
	if (!l.kv) {
		rc = -ENOMEM;
		goto out;
	}
	/* Old pairs keep their place; an owned one takes the new value (or is
	 * dropped), and a second pair of that name is dropped. */
	for (size_t i = 0; rc == 0 && i < nold; i++) {
		struct own_pair *q = own_find(p, np, old[i].name);

		if (!q && !value_header_safe(old[i].value))
			rc = -EINVAL;
		else if (!q)
			rc = kvlist_push(&l, old[i].name, old[i].value);
		else if (!q->done && q->value)
			rc = kvlist_push(&l, q->name, q->value);
		if (q)
			q->done = true;
	}
	for (size_t i = 0; rc == 0 && i < np; i++) {
		if (!p[i].done && p[i].value)
			rc = kvlist_push(&l, p[i].name, p[i].value);
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		total += strlen(l.kv[i].name) + strlen(l.kv[i].value);
	if (rc == 0 && total > S3ATTR_META_MAX)
		rc = -ENOSPC;
	if (rc == 0) {
		*out = l;
		l = (struct s3attr_kvlist){ 0 };
	}
out:
	for (size_t i = 0; i < np; i++)
		free(p[i].value);
	s3attr_kvlist_cleanup(&l);
	return rc;
}
