/* SPDX-License-Identifier: MIT */
/*
 * s3attr: POSIX attributes and extended attributes as S3 user metadata, in
 * the encoding s3fs-fuse writes (x-amz-meta-mode, -uid, -gid, -mtime, -ctime,
 * -atime, -xattr), also reading what rclone writes.
 *
 * Metadata travels as name/value pairs, names without "x-amz-meta-" and in
 * lower case (struct s3attr_kv has the layout of s3.h's struct s3_meta, so
 * a HEAD result can be passed by copying its pointers).
 *
 * Decoding never fails as a whole: a missing or malformed field takes the
 * caller's default and is left out of the returned mask. Encoding keeps
 * every pair it does not own (chmod must not drop a stranger's headers) and
 * produces values that are printable ASCII with no CR/LF.
 *
 * Pure functions, no I/O. Lists belong to their caller; none is shared.
 */
#ifndef S3VFS_S3ATTR_H
#define S3VFS_S3ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "s3vfs/compiler.h"

/* S3 caps all user metadata of an object (names + values, bytes) at 2 KiB. */
#define S3ATTR_META_MAX 2048
/* Longest x-amz-meta-xattr value decoded: other servers allow more than S3. */
#define S3ATTR_XATTR_IN_MAX   (64 * 1024)
#define S3ATTR_XATTR_NAME_MAX 255

/* One user metadata pair. In lists made here both strings are owned. */
struct s3attr_kv {
	char *name;
	char *value;
};

struct s3attr_kvlist {
	struct s3attr_kv *kv;
	size_t n;
};

/* Free all pairs; the list is left empty. A zeroed list needs no cleanup. */
void s3attr_kvlist_cleanup(struct s3attr_kvlist *l);

/* Value of the first pair named name (ASCII case-insensitive), NULL if none. */
const char *s3attr_kv_get(const struct s3attr_kv *kv, size_t n, const char *name);

/* Fields, as bits: what s3attr_decode() found, what s3attr_merge() writes. */
enum {
	S3ATTR_MODE = 1u << 0,
	S3ATTR_UID = 1u << 1,
	S3ATTR_GID = 1u << 2,
	S3ATTR_MTIME = 1u << 3,
	S3ATTR_CTIME = 1u << 4,
	S3ATTR_ATIME = 1u << 5,
	S3ATTR_XATTR = 1u << 6, /* merge only */
	S3ATTR_STAT =
		S3ATTR_MODE | S3ATTR_UID | S3ATTR_GID | S3ATTR_MTIME | S3ATTR_CTIME | S3ATTR_ATIME,
};

struct s3attr {
	mode_t mode; /* full st_mode, with the type bits */
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
	struct timespec ctime;
	struct timespec atime;
};

/* What an object without (valid) metadata gets. */
struct s3attr_defaults {
	uid_t uid;	      /* the mount's */
	gid_t gid;	      /* the mount's */
	mode_t umask;	      /* permissions: 0777 (dirs) or 0666 (files) & ~umask */
	time_t last_modified; /* of the object: for absent times */
	bool is_dir;	      /* known to be a directory (s3attr_is_dir): forces S_IFDIR */
};

/*
 * Fill out from the pairs, each field from its pair or, if that is absent or
 * malformed, from def. Returns the S3ATTR_* bits of the fields that came
 * from the pairs.
 *
 * mode: decimal st_mode as s3fs writes it ("33188"); an octal string as
 * rclone writes it ("100644", "0100644") is recognized when the decimal
 * reading is not a plausible st_mode, or by its leading 0. Without type bits
 * S_IFREG (S_IFDIR with def->is_dir) is added. Times: decimal seconds with an
 * optional fraction ("1700000000", "1700000000.5", s3fs and rclone) or
 * RFC 3339 ("2023-11-14T22:13:20.5Z", rclone). uid, gid: decimal.
 */
unsigned s3attr_decode(const struct s3attr_kv *kv, size_t n, const struct s3attr_defaults *def,
		       struct s3attr *out);

/*
 * Is an object a directory? A key ending in '/' or "_$folder$" is one
 * whatever its content. Otherwise only a zero-byte object is, when its
 * Content-Type is application/x-directory (or httpd/unix-directory, as
 * Nextcloud writes) or its mode has S_IFDIR (old s3fs "a" directories).
 * content_type may be NULL.
 */
bool s3attr_is_dir(const char *key, uint64_t size, const char *content_type,
		   const struct s3attr_kv *kv, size_t n);

/* ---- extended attributes: x-amz-meta-xattr ---- */

/*
 * s3fs keeps all of an object's xattrs in one value: the JSON object
 * {"name":"<base64 of the value>",...}, percent-encoded. Values are bytes.
 */
struct s3attr_xattr {
	char *name;
	unsigned char *value; /* NULL when len is 0 */
	size_t len;
};

struct s3attr_xattrs {
	struct s3attr_xattr *v;
	size_t n;
};

/* Free all entries; the list is left empty. A zeroed list needs no cleanup. */
void s3attr_xattrs_cleanup(struct s3attr_xattrs *x);

/*
 * Parse a x-amz-meta-xattr value, percent-encoded or raw JSON (starting with
 * '{'), into out (overwritten, not freed: pass an empty list). -EINVAL: bad
 * percent escape, not a JSON object of strings, a duplicate or bad name, bad
 * base64. -E2BIG: over S3ATTR_XATTR_IN_MAX. -ENOMEM. out written only on 0.
 */
int s3attr_xattrs_decode(const char *value, struct s3attr_xattrs *out) WARN_UNUSED;

/*
 * The x-amz-meta-xattr value for a list, in list order; *out is malloc'd,
 * NULL for an empty list (the pair is then dropped, as s3fs does).
 * -ENOSPC: longer than S3 metadata can hold. -EINVAL: a name that is not
 * UTF-8. -ENOMEM.
 */
int s3attr_xattrs_encode(const struct s3attr_xattrs *x, char **out) WARN_UNUSED;

/* The entry named name (exact match), NULL if none. Borrowed. */
const struct s3attr_xattr *s3attr_xattrs_find(const struct s3attr_xattrs *x, const char *name);

/*
 * Add or replace name = value[0..len). flags are setxattr(2)'s: XATTR_CREATE
 * fails with -EEXIST if present, XATTR_REPLACE with -ENODATA if absent.
 * -EINVAL: empty or non-UTF-8 name. -ERANGE: name over 255 bytes. -E2BIG:
 * this one attribute alone cannot fit in S3 metadata (the whole list not
 * fitting is found by s3attr_xattrs_encode or s3attr_merge: -ENOSPC).
 * -ENOMEM. The list is unchanged on error.
 */
int s3attr_xattrs_set(struct s3attr_xattrs *x, const char *name, const void *value, size_t len,
		      int flags) WARN_UNUSED;

/* Remove name. -ENODATA if absent. */
int s3attr_xattrs_remove(struct s3attr_xattrs *x, const char *name) WARN_UNUSED;

/* ---- encoding ---- */

/*
 * The pairs to send on PUT or CopyObject (REPLACE): old's pairs in order,
 * the fields in which replaced by attr's (written in place if old had them,
 * appended if not), every other pair copied verbatim. S3ATTR_XATTR in which
 * writes xattrs' encoding (NULL or empty: the pair is dropped). attr may be
 * NULL when which has no S3ATTR_STAT bit. Values written: decimal st_mode,
 * uid, gid; times as decimal seconds, with ".nnnnnnnnn" when there are
 * nanoseconds (as s3fs writes them).
 * -ENOSPC: the pairs (names + values) exceed S3ATTR_META_MAX. -EINVAL: an
 * old value with CR or LF, a time with tv_nsec out of range, a bad xattr name. -ENOMEM. out
 * (overwritten, not freed) is written only on 0; free it with s3attr_kvlist_cleanup.
 */
int s3attr_merge(const struct s3attr_kv *old, size_t nold, const struct s3attr *attr,
		 unsigned which, const struct s3attr_xattrs *xattrs,
		 struct s3attr_kvlist *out) WARN_UNUSED;

#endif
