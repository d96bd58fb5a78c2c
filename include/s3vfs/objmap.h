/* SPDX-License-Identifier: MIT */
/*
 * objmap: how file paths map to S3 keys for a mount of BUCKET:/PREFIX, in
 * the layout s3fs-fuse uses, so that a bucket can move between the two.
 *
 *   file   /a/b.txt  <->  PREFIX "a/b.txt"
 *   dir    /a        <->  PREFIX "a/"  (marker object, or implied by keys under it)
 *   root   /         <->  PREFIX       ("" for a whole bucket, else "data/")
 *   legacy dir            PREFIX "a_$folder$"  (old s3fs/S3 Organizer marker)
 *
 * Keys that cannot be names (empty, "." or ".." components, components over
 * 255 bytes) are never shown. Any other byte but '/' and NUL is a valid Linux
 * name byte, so tabs, newlines and control characters are kept. Children
 * named like the internal folder (".s3vfs" by default) are hidden at every
 * level; paths through it are refused.
 *
 * Pure functions over fixed-size buffers: no allocation, no I/O. A struct
 * objmap is immutable after objmap_init() and may be shared by threads.
 */
#ifndef S3VFS_OBJMAP_H
#define S3VFS_OBJMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "s3vfs/compiler.h"

#define OBJMAP_NAME_MAX	     255  /* bytes in one path component (NAME_MAX) */
#define OBJMAP_KEY_MAX	     1024 /* bytes in an S3 key */
#define OBJMAP_KEY_BUF	     (OBJMAP_KEY_MAX + 1)
#define OBJMAP_NAME_BUF	     (OBJMAP_NAME_MAX + 1)
#define OBJMAP_FOLDER_SUFFIX "_$folder$"
#define OBJMAP_INTERNAL_DEF  ".s3vfs"

struct objmap {
	char prefix[OBJMAP_KEY_BUF]; /* normalized: "" or "a/b/" */
	size_t prefix_len;
	char internal[OBJMAP_NAME_BUF]; /* hidden folder name; "" hides nothing */
};

/*
 * Normalize a mount prefix: "/data/" and "data" -> "data/", "" and "/" -> "".
 * One leading and one trailing '/' are optional. -EINVAL for empty, "." or
 * ".." components ("a//b", "//", "a/./b") and for a result over
 * OBJMAP_KEY_MAX bytes. out is written only on success.
 */
int objmap_normalize_prefix(const char *in, char out[OBJMAP_KEY_BUF]) WARN_UNUSED;

/*
 * prefix as for objmap_normalize_prefix (NULL means ""); internal is the
 * hidden folder's name, ".s3vfs" or ".s3vfs/" (NULL or "" hides nothing).
 * -EINVAL for a bad prefix or an internal name that is not one valid name.
 */
int objmap_init(struct objmap *m, const char *prefix, const char *internal) WARN_UNUSED;

enum objmap_type {
	OBJMAP_FILE,
	OBJMAP_DIR, /* the key gets a trailing '/', except the root's */
};

/*
 * Key of an absolute path ("/" or "/a/b"), the directory form with OBJMAP_DIR.
 * -EINVAL: not absolute, or an empty, "." or ".." component ("/a//b", "/a/").
 * -ENAMETOOLONG: a component over 255 bytes, or a key over 1024 bytes.
 * -EPERM: a component names the internal folder. Lookups should turn this
 * into ENOENT (the folder is not in the mount's namespace), creations keep it.
 * out is written only on success.
 */
int objmap_path_to_key(const struct objmap *m, const char *path, enum objmap_type type,
		       char out[OBJMAP_KEY_BUF]) WARN_UNUSED;

/*
 * What one entry of a listing of a directory is. Ordered by precedence:
 * when a name turns up more than once (file "x", prefix "x/", marker
 * "x_$folder$") the greater kind wins, see objmap_child_merge().
 */
enum objmap_child_kind {
	OBJMAP_SKIP = 0,	  /* not a name, hidden, or the directory's own marker */
	OBJMAP_CHILD_FILE,	  /* "x" (may still be a legacy directory object: HEAD) */
	OBJMAP_CHILD_DIR_IMPLIED, /* CommonPrefix "x/", or a deeper key "x/..." */
	OBJMAP_CHILD_DIR_FOLDER,  /* legacy marker "x_$folder$" */
	OBJMAP_CHILD_DIR_MARKER,  /* marker object "x/" itself */
};

/*
 * Classify a key (or, with is_prefix, a CommonPrefix) from a listing of the
 * directory whose key is dir_key (objmap_path_to_key with OBJMAP_DIR). On a
 * kind other than OBJMAP_SKIP, out_name holds the child's name. Keys outside
 * dir_key, and CommonPrefixes without a '/', are skipped.
 */
enum objmap_child_kind objmap_child(const struct objmap *m, const char *dir_key, const char *key,
				    bool is_prefix, char out_name[OBJMAP_NAME_BUF]);

/* The kind to keep when one name was seen as both a and b: directories win
 * over a file (as in s3fs, the file is shadowed), a marker object over a
 * legacy marker over an implied directory (the first two carry metadata). */
enum objmap_child_kind objmap_child_merge(enum objmap_child_kind a, enum objmap_child_kind b);

bool objmap_child_is_dir(enum objmap_child_kind k);

/* May a file be created at path? Not when its name ends in "_$folder$": s3fs's
 * legacy directory markers are named so, and the file would list as a directory. */
bool objmap_file_name_ok(const char *path);

/* Is this one component the internal folder's name? */
bool objmap_is_internal(const struct objmap *m, const char *name, size_t len);

#endif
