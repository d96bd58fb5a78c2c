// SPDX-License-Identifier: MIT
/*
 * objmap: the path <-> key mapping of a mount (see objmap.h). It owns the
 * naming rules only: what a valid name is, where the prefix goes, which
 * listing entries are children and of what kind. It must not know how a
 * listing is fetched, what is cached, or what an object's metadata says;
 * whether a zero-byte "x" is a legacy directory is s3attr's question.
 */
#include "s3vfs/objmap.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#define FOLDER_SUFFIX_LEN (sizeof(OBJMAP_FOLDER_SUFFIX) - 1)

/* 0 if s[0..len) (no '/') can be a file name; -EINVAL or -ENAMETOOLONG. */
static int check_name(const char *s, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (len > OBJMAP_NAME_MAX)
		return -ENAMETOOLONG;
	if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
		return -EINVAL;
	return 0;
}

bool objmap_is_internal(const struct objmap *m, const char *name, size_t len)
{
	size_t ilen = strlen(m->internal);

	return ilen != 0 && ilen == len && memcmp(name, m->internal, len) == 0;
}

int objmap_normalize_prefix(const char *in, char out[OBJMAP_KEY_BUF])
{
	size_t len;

	if (!in)
		in = "";
	if (in[0] == '/')
		in++;
	len = strlen(in);
	if (len == 0) {
		out[0] = '\0';
		return 0;
	}
	if (in[len - 1] == '/')
		len--;
	/* Room for the trailing '/' we add. */
	if (len + 1 > OBJMAP_KEY_MAX)
		return -EINVAL;
	for (size_t i = 0; i <= len;) {
		const char *end = memchr(in + i, '/', len - i);
		size_t clen = end ? (size_t)(end - (in + i)) : len - i;

		/* The prefix is not shown as names, so only its structure is
		 * checked: long components are S3's business. */
		if (clen == 0 || (check_name(in + i, clen) == -EINVAL))
			return -EINVAL;
		i += clen + 1;
	}
	memcpy(out, in, len);
	out[len] = '/';
	out[len + 1] = '\0';
	return 0;
}

int objmap_init(struct objmap *m, const char *prefix, const char *internal)
{
	char pfx[OBJMAP_KEY_BUF];
	size_t ilen = internal ? strlen(internal) : 0;
	int rc = 0;

	rc = objmap_normalize_prefix(prefix, pfx);
	if (rc < 0)
		return rc;
	if (ilen > 0 && internal[ilen - 1] == '/')
		ilen--;
	if (ilen > 0 && (memchr(internal, '/', ilen) || check_name(internal, ilen) < 0))
		return -EINVAL;
	if (ilen == 0 && internal && internal[0] == '/')
		return -EINVAL;
	memcpy(m->prefix, pfx, sizeof(pfx));
	m->prefix_len = strlen(pfx);
	memcpy(m->internal, internal ? internal : "", ilen);
	m->internal[ilen] = '\0';
	return 0;
}

bool objmap_file_name_ok(const char *path)
{
	const char *name = strrchr(path, '/');
	size_t len;

	name = name ? name + 1 : path;
	len = strlen(name);
	return !(len >= FOLDER_SUFFIX_LEN && memcmp(name + len - FOLDER_SUFFIX_LEN,
						    OBJMAP_FOLDER_SUFFIX, FOLDER_SUFFIX_LEN) == 0);
}

int objmap_path_to_key(const struct objmap *m, const char *path, enum objmap_type type,
		       char out[OBJMAP_KEY_BUF])
{
	size_t plen;
	size_t klen;

	if (!path || path[0] != '/')
		return -EINVAL;
	path++;
	plen = strlen(path);
	/* The root: its directory key is the prefix itself, which already
	 * ends in '/' (or is "", the bucket's root). */
	if (plen == 0) {
		memcpy(out, m->prefix, m->prefix_len + 1);
		return 0;
	}
	for (size_t i = 0; i <= plen;) {
		const char *end = strchr(path + i, '/');
		size_t clen = end ? (size_t)(end - (path + i)) : plen - i;
		int rc = check_name(path + i, clen);

		if (rc < 0)
			return rc;
		if (objmap_is_internal(m, path + i, clen))
			return -EPERM;
		i += clen + 1;
	}
	klen = m->prefix_len + plen + (type == OBJMAP_DIR ? 1 : 0);
	if (klen > OBJMAP_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(out, m->prefix, m->prefix_len);
	memcpy(out + m->prefix_len, path, plen);
	if (type == OBJMAP_DIR)
		out[klen - 1] = '/';
	out[klen] = '\0';
	return 0;
}

/*
 * The kind of the child named by rest (the key with the directory's key
 * taken off) and the length of its name. A listing made with delimiter '/'
 * only ever gives "x", "x_$folder$", "" (the directory's marker) and, as
 * CommonPrefixes, "x/"; deeper keys come from listings without a delimiter
 * and still imply that "x" is a directory.
 */
static enum objmap_child_kind child_kind(const char *rest, bool is_prefix, size_t *out_len)
{
	const char *slash = strchr(rest, '/');
	size_t len = slash ? (size_t)(slash - rest) : strlen(rest);

	*out_len = len;
	if (slash) {
		if (!is_prefix && slash[1] == '\0')
			return OBJMAP_CHILD_DIR_MARKER;
		return OBJMAP_CHILD_DIR_IMPLIED;
	}
	if (is_prefix || len == 0)
		return OBJMAP_SKIP;
	/* A bare "_$folder$" leaves an empty name, which check_name refuses. */
	if (len >= FOLDER_SUFFIX_LEN &&
	    memcmp(rest + len - FOLDER_SUFFIX_LEN, OBJMAP_FOLDER_SUFFIX, FOLDER_SUFFIX_LEN) == 0) {
		*out_len = len - FOLDER_SUFFIX_LEN;
		return OBJMAP_CHILD_DIR_FOLDER;
	}
	return OBJMAP_CHILD_FILE;
}

enum objmap_child_kind objmap_child(const struct objmap *m, const char *dir_key, const char *key,
				    bool is_prefix, char out_name[OBJMAP_NAME_BUF])
{
	size_t dlen = strlen(dir_key);
	enum objmap_child_kind kind;
	const char *rest;
	size_t len = 0;

	assert(dlen == 0 || dir_key[dlen - 1] == '/');
	if (strncmp(key, dir_key, dlen) != 0)
		return OBJMAP_SKIP;
	rest = key + dlen;
	kind = child_kind(rest, is_prefix, &len);
	if (kind == OBJMAP_SKIP || check_name(rest, len) < 0 || objmap_is_internal(m, rest, len))
		return OBJMAP_SKIP;
	memcpy(out_name, rest, len);
	out_name[len] = '\0';
	return kind;
}

enum objmap_child_kind objmap_child_merge(enum objmap_child_kind a, enum objmap_child_kind b)
{
	return a > b ? a : b;
}

bool objmap_child_is_dir(enum objmap_child_kind k)
{
	return k == OBJMAP_CHILD_DIR_IMPLIED || k == OBJMAP_CHILD_DIR_FOLDER ||
	       k == OBJMAP_CHILD_DIR_MARKER;
}
