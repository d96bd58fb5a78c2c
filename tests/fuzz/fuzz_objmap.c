// SPDX-License-Identifier: MIT
/*
 * fuzz_objmap: the path <-> key mapping (meta/objmap.c). The input is one
 * control byte and NUL-separated fields:
 *
 *	byte 0: bits 0-1 the mount prefix: "", "data/", "a/b/c/" or field 0
 *	        (then the other fields move up by one); bit 2: no internal
 *	        folder (else ".s3vfs"); bit 3: the key is a CommonPrefix
 *	fields: prefix (bits 0-1 = 3 only), path, directory path, key
 *
 * Properties, besides no crash, leak or UB:
 *  - a normalized prefix is "" or "c/.../c/" with valid components, and
 *    normalizing it again changes nothing;
 *  - a key mapped from a path is exactly prefix + path without its '/'
 *    (+ '/' for a directory): it starts with the prefix, is at most 1024
 *    bytes, and the mapping adds no empty, "." or ".." component nor any
 *    "//", "/./", "/../"; no component is the internal folder;
 *  - FILE and DIR accept the same paths;
 *  - a mapped key listed in its parent's listing comes back as the same
 *    name and kind (a name ending in "_$folder$" reads as the legacy marker
 *    of a directory, as in s3fs);
 *  - a listing entry that objmap_child accepts has a valid name, and that
 *    name mapped under the directory gives back the key (or its first part).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "s3vfs/objmap.h"

#include "fuzz.h"

#define SUFFIX_LEN (sizeof(OBJMAP_FOLDER_SUFFIX) - 1)

/* Every '/'-separated component of s[0..n) is a name: not empty, ".", "..". */
static bool components_ok(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t c = 0;

		while (i + c < n && s[i + c] != '/')
			c++;
		if (c == 0 || (c == 1 && s[i] == '.') || (c == 2 && s[i] == '.' && s[i + 1] == '.'))
			return false;
		i += c + 1;
	}
	return true;
}

static void check_prefix(const char *in)
{
	char out[OBJMAP_KEY_BUF], again[OBJMAP_KEY_BUF];
	size_t n;
	int rc = objmap_normalize_prefix(in, out);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "objmap_normalize_prefix: %d", rc);
	if (rc)
		return;
	n = strlen(out);
	FUZZ_CHECK(n <= OBJMAP_KEY_MAX, "prefix of %zu bytes", n);
	if (n == 0)
		return;
	FUZZ_CHECK(out[0] != '/' && out[n - 1] == '/', "prefix \"%s\"", out);
	FUZZ_CHECK(components_ok(out, n - 1), "prefix \"%s\" has a bad component", out);
	FUZZ_CHECK(objmap_normalize_prefix(out, again) == 0 && strcmp(out, again) == 0,
		   "normalizing \"%s\" again gives \"%s\"", out, again);
}

/* The key of path as a FILE and a DIR (*dir_ok: dir was filled); checks
 * both; 0 or the FILE mapping's error. */
static int map_path(const struct objmap *m, const char *path, char file[OBJMAP_KEY_BUF],
		    char dir[OBJMAP_KEY_BUF], bool *dir_ok)
{
	int rf = objmap_path_to_key(m, path, OBJMAP_FILE, file);
	int rd = objmap_path_to_key(m, path, OBJMAP_DIR, dir);
	size_t plen, klen;

	FUZZ_CHECK(rf == 0 || rf == -EINVAL || rf == -ENAMETOOLONG || rf == -EPERM,
		   "objmap_path_to_key: %d", rf);
	/* A directory key is one byte longer: only the length check may differ. */
	FUZZ_CHECK(rf == rd || (rf == 0 && rd == -ENAMETOOLONG), "FILE %d, DIR %d for %s", rf, rd,
		   path);
	*dir_ok = rd == 0;
	if (rf)
		return rf;
	plen = strlen(path);
	FUZZ_CHECK(path[0] == '/', "relative path %s accepted", path);
	if (plen == 1) {
		FUZZ_CHECK(strcmp(file, m->prefix) == 0 && strcmp(dir, m->prefix) == 0,
			   "root is not the prefix");
		return 0;
	}
	klen = strlen(file);
	FUZZ_CHECK(klen <= OBJMAP_KEY_MAX, "key of %zu bytes", klen);
	FUZZ_CHECK(strncmp(file, m->prefix, m->prefix_len) == 0, "key %s escapes prefix %s", file,
		   m->prefix);
	FUZZ_CHECK(klen == m->prefix_len + plen - 1 && strcmp(file + m->prefix_len, path + 1) == 0,
		   "key %s is not prefix + %s", file, path);
	FUZZ_CHECK(components_ok(file + m->prefix_len, klen - m->prefix_len),
		   "key %s has a bad component", file);
	FUZZ_CHECK(!strstr(file, "//") && !strstr(file, "/./") && !strstr(file, "/../") &&
			   strcmp(file, "..") && strncmp(file, "../", 3) && strcmp(file, ".") &&
			   strncmp(file, "./", 2),
		   "key %s", file);
	for (const char *c = path + 1; *c;) {
		size_t n = strcspn(c, "/");
		FUZZ_CHECK(n <= OBJMAP_NAME_MAX, "component of %zu bytes", n);
		FUZZ_CHECK(!objmap_is_internal(m, c, n), "internal folder in %s", path);
		c += n;
		if (*c)
			c++;
	}
	if (rd == 0)
		FUZZ_CHECK(strlen(dir) == klen + 1 && strncmp(dir, file, klen) == 0 &&
				   dir[klen] == '/',
			   "dir key %s for file key %s", dir, file);
	return 0;
}

/* The listing of path's parent shows path's key as its name. */
static void check_listed(const struct objmap *m, const char *path, const char *file,
			 const char *dir)
{
	const char *name = strrchr(path, '/') + 1;
	size_t nlen = strlen(name);
	char parent[OBJMAP_KEY_BUF], pfile[OBJMAP_KEY_BUF];
	char got[OBJMAP_NAME_BUF];
	char *ppath;
	bool pdir_ok = false;
	enum objmap_child_kind k;
	bool folder =
		nlen >= SUFFIX_LEN && strcmp(name + nlen - SUFFIX_LEN, OBJMAP_FOLDER_SUFFIX) == 0;
	bool stem_ok = false;

	if (folder) {
		size_t sl = nlen - SUFFIX_LEN;
		stem_ok = sl > 0 && !(name[0] == '.' && (sl == 1 || (sl == 2 && name[1] == '.'))) &&
			  !objmap_is_internal(m, name, sl);
	}
	/* "/a/b" -> "/a", "/a" -> "/" */
	ppath = strndup(path, name - path > 1 ? (size_t)(name - path - 1) : 1);
	FUZZ_OOM(ppath);
	FUZZ_CHECK(map_path(m, ppath, pfile, parent, &pdir_ok) == 0 && pdir_ok,
		   "parent %s of %s refused", ppath, path);
	free(ppath);

	k = objmap_child(m, parent, file, false, got);
	if (folder && !stem_ok) {
		/* "_$folder$", "._$folder$", ".s3vfs_$folder$": the marker of a
		 * directory that cannot be shown. */
		FUZZ_CHECK(k == OBJMAP_SKIP, "%s listed as kind %d", file, k);
	} else if (folder) {
		FUZZ_CHECK(k == OBJMAP_CHILD_DIR_FOLDER && strlen(got) == nlen - SUFFIX_LEN &&
				   strncmp(got, name, nlen - SUFFIX_LEN) == 0,
			   "%s listed as kind %d name %s", file, k, got);
	} else {
		FUZZ_CHECK(k == OBJMAP_CHILD_FILE && strcmp(got, name) == 0,
			   "%s listed as kind %d name %s", file, k, got);
	}
	if (dir) {
		k = objmap_child(m, parent, dir, false, got);
		FUZZ_CHECK(k == OBJMAP_CHILD_DIR_MARKER && strcmp(got, name) == 0,
			   "dir %s listed as kind %d", dir, k);
		k = objmap_child(m, parent, dir, true, got);
		FUZZ_CHECK(k == OBJMAP_CHILD_DIR_IMPLIED && strcmp(got, name) == 0,
			   "prefix %s listed as kind %d", dir, k);
	}
}

/* A listing entry of dir_path: what objmap_child accepts maps back. */
static void check_child(const struct objmap *m, const char *dir_path, const char *key,
			bool is_prefix)
{
	char dfile[OBJMAP_KEY_BUF], dkey[OBJMAP_KEY_BUF], name[OBJMAP_NAME_BUF];
	char cfile[OBJMAP_KEY_BUF], cdir[OBJMAP_KEY_BUF];
	char *cpath;
	size_t dlen, nlen, clen, klen = strlen(key);
	bool dir_ok = false, cdir_ok = false;
	enum objmap_child_kind k;
	int rc;

	if (map_path(m, dir_path, dfile, dkey, &dir_ok) != 0 || !dir_ok)
		return;
	k = objmap_child(m, dkey, key, is_prefix, name);
	FUZZ_CHECK(k >= OBJMAP_SKIP && k <= OBJMAP_CHILD_DIR_MARKER, "kind %d", k);
	if (k == OBJMAP_SKIP)
		return;
	dlen = strlen(dkey);
	nlen = strlen(name);
	FUZZ_CHECK(strncmp(key, dkey, dlen) == 0, "child %s outside %s", key, dkey);
	FUZZ_CHECK(nlen >= 1 && nlen <= OBJMAP_NAME_MAX && !strchr(name, '/') &&
			   strcmp(name, ".") && strcmp(name, ".."),
		   "child name \"%s\"", name);
	FUZZ_CHECK(!objmap_is_internal(m, name, nlen), "internal folder listed");
	FUZZ_CHECK(!is_prefix || k == OBJMAP_CHILD_DIR_IMPLIED, "prefix %s is kind %d", key, k);

	/* The name, mapped as a child of dir_path, names the key again. */
	clen = strlen(dir_path) + nlen + 2;
	cpath = malloc(clen);
	FUZZ_OOM(cpath);
	snprintf(cpath, clen, "%s%s%s", dir_path, strcmp(dir_path, "/") ? "/" : "", name);
	rc = map_path(m, cpath, cfile, cdir, &cdir_ok);
	free(cpath);
	/* Only a key longer than S3 allows can name a child too long to map. */
	if (rc == 0 && !cdir_ok && k != OBJMAP_CHILD_FILE && k != OBJMAP_CHILD_DIR_FOLDER)
		rc = -ENAMETOOLONG;
	if (rc == -ENAMETOOLONG) {
		FUZZ_CHECK(klen > OBJMAP_KEY_MAX, "child %s of a %zu-byte key too long", name,
			   klen);
		return;
	}
	FUZZ_CHECK(rc == 0, "child %s of %s: %d", name, dir_path, rc);
	switch (k) {
	case OBJMAP_CHILD_FILE:
		FUZZ_CHECK(strcmp(cfile, key) == 0, "file %s maps to %s", key, cfile);
		break;
	case OBJMAP_CHILD_DIR_MARKER:
		FUZZ_CHECK(strcmp(cdir, key) == 0, "marker %s maps to %s", key, cdir);
		break;
	case OBJMAP_CHILD_DIR_FOLDER:
		FUZZ_CHECK(strncmp(key, cfile, strlen(cfile)) == 0 &&
				   strcmp(key + strlen(cfile), OBJMAP_FOLDER_SUFFIX) == 0,
			   "legacy marker %s maps to %s", key, cfile);
		break;
	default:
		FUZZ_CHECK(strncmp(key, cdir, strlen(cdir)) == 0, "key %s is not under %s", key,
			   cdir);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefixes[] = { "", "data/", "a/b/c/" };
	struct fuzz_fields ff;
	struct objmap m;
	const char *path, *dir_path, *key;
	char file[OBJMAP_KEY_BUF], dir[OBJMAP_KEY_BUF];
	bool dir_ok = false;
	unsigned sel;
	size_t f = 0;
	int rc;

	if (size < 1)
		return 0;
	sel = data[0] & 3;
	fuzz_fields_split(&ff, data + 1, size - 1);
	if (sel == 3) {
		check_prefix(ff.f[f]);
		rc = objmap_init(&m, ff.f[f++], data[0] & 4 ? NULL : OBJMAP_INTERNAL_DEF);
		if (rc)
			goto out;
	} else {
		rc = objmap_init(&m, prefixes[sel], data[0] & 4 ? NULL : OBJMAP_INTERNAL_DEF);
		FUZZ_CHECK(rc == 0, "objmap_init: %d", rc);
	}
	FUZZ_CHECK(m.prefix_len == strlen(m.prefix), "prefix_len");
	path = ff.f[f];
	dir_path = ff.f[f + 1][0] ? ff.f[f + 1] : "/";
	key = ff.f[f + 2];

	if (map_path(&m, path, file, dir, &dir_ok) == 0 && strcmp(path, "/") != 0)
		check_listed(&m, path, file, dir_ok ? dir : NULL);
	check_child(&m, dir_path, key, data[0] & 8);
	/* The path field is a key too, the key field a path. */
	check_child(&m, dir_path, path, data[0] & 8);
	if (map_path(&m, key, file, dir, &dir_ok) == 0 && strcmp(key, "/") != 0)
		check_listed(&m, key, file, dir_ok ? dir : NULL);
	check_prefix(path);
out:
	fuzz_fields_free(&ff);
	return 0;
}
