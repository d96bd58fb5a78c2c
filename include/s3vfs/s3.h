/* SPDX-License-Identifier: MIT */
/*
 * s3: the S3 operations of one bucket, over aws.c. Keys are plain object
 * keys (no leading '/'); this module does the URI encoding. It knows nothing
 * of paths, files, SQLite or FUSE.
 *
 * Every function returns 0 or a negative errno and, when err is non-NULL,
 * fills it with the details of a failure. Thread-safe: a client may be used
 * by many threads at once.
 */
#ifndef S3VFS_S3_H
#define S3VFS_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3vfs/compiler.h"
#include "s3vfs/http.h"
#include "s3vfs/retry.h"
#include "s3vfs/s3_err.h"
#include "s3vfs/xml.h"

struct creds_provider;

#define S3_KEY_MAX	1024
#define S3_MAX_META	64 /* user metadata entries kept from a HEAD/GET */
#define S3_PART_MIN	(5u * 1024 * 1024)
#define S3_PARTS_MAX	10000
#define S3_DELETE_BATCH 1000

struct s3_config {
	const char *endpoint; /* "http://127.0.0.1:7480"; NULL: https://s3.REGION.amazonaws.com */
	const char *region;   /* NULL: us-east-1 */
	const char *bucket;
	bool path_style; /* http://host/bucket/key instead of http://bucket.host/key */
};

struct s3_client;

/* 0, -EINVAL (bad endpoint or bucket name), -ENOMEM. All pointers borrowed
 * for the client's life (the config strings are copied). */
int s3_client_new(const struct s3_config *cfg, struct http_client *http,
		  struct creds_provider *creds, struct stats *stats,
		  const struct retry_policy *retry, struct s3_client **out) WARN_UNUSED;
void s3_client_free(struct s3_client *c);
const char *s3_client_bucket(const struct s3_client *c);

/* A user metadata entry: name without "x-amz-meta-", lowercase. */
struct s3_meta {
	char *name;
	char *value;
};

struct s3_object_info {
	uint64_t size; /* Content-Length of the object (from Content-Range on a range GET) */
	char etag[S3_ETAG_MAX]; /* with quotes, as sent */
	time_t last_modified;
	char content_type[128];
	struct s3_meta meta[S3_MAX_META];
	size_t nmeta;
	bool not_modified; /* the conditional request answered 304 */
};
void s3_object_info_cleanup(struct s3_object_info *i);
/* Value of a user metadata entry (name without prefix), NULL if absent. */
const char *s3_object_info_meta(const struct s3_object_info *i, const char *name);

/* HEAD. if_none_match may be NULL; a 304 sets out->not_modified (and leaves
 * the rest unfilled). -ENOENT, -EACCES, -EIO ... */
int s3_head(struct s3_client *c, const char *key, const char *if_none_match,
	    struct s3_object_info *out, struct aws_error *err) WARN_UNUSED;

struct s3_get_opts {
	uint64_t offset; /* range start */
	uint64_t len;	 /* 0: to the end */
	const char *if_none_match;
	const char *if_match;
};

/*
 * GET, streaming the body into sink. A transfer that breaks after some bytes
 * resumes from where it stopped with If-Match on the first reply's ETag (so
 * the bytes all come from one version of the object); -ESTALE if the object
 * changed meanwhile. out (may be NULL) gets the headers; 304 sets
 * out->not_modified and calls no sink. Checks the bytes received equal the
 * length announced: -EPROTO if not.
 */
int s3_get(struct s3_client *c, const char *key, const struct s3_get_opts *opts, http_sink_fn sink,
	   void *sink_arg, struct s3_object_info *out, struct aws_error *err) WARN_UNUSED;

struct s3_put_opts {
	const char *content_type;   /* NULL: none sent (S3 default) */
	const struct s3_meta *meta; /* user metadata to set */
	size_t nmeta;
	bool content_md5;	   /* send Content-MD5 of the body */
	const char *if_none_match; /* "*" = create only */
	const char *if_match;
};

/* PUT. body may be NULL (empty object). out_etag (S3_ETAG_MAX) may be NULL. */
int s3_put(struct s3_client *c, const char *key, const struct http_body *body,
	   const struct s3_put_opts *opts, char *out_etag, struct aws_error *err) WARN_UNUSED;

int s3_delete(struct s3_client *c, const char *key, struct aws_error *err) WARN_UNUSED;

/* DeleteObjects in batches of 1000 (quiet mode). Keys that fail are an error:
 * -EIO after all batches were tried, the first failing key's code in err. */
int s3_delete_many(struct s3_client *c, const char *const *keys, size_t n,
		   struct aws_error *err) WARN_UNUSED;

/*
 * CopyObject src -> dst in the same bucket. opts NULL: metadata directive
 * COPY; else REPLACE with opts' content type and metadata. src_if_match may be
 * NULL. Objects over 5 GiB need s3_copy_large. out_etag may be NULL.
 */
int s3_copy(struct s3_client *c, const char *src, const char *dst, const struct s3_put_opts *opts,
	    const char *src_if_match, char *out_etag, struct aws_error *err) WARN_UNUSED;

struct s3_list_opts {
	const char *prefix;
	const char *delimiter; /* "/" or NULL */
	const char *start_after;
	const char *continuation; /* token from the previous page */
	int max_keys;		  /* 0: server default (1000) */
};

/* One ListObjectsV2 page, parsed while it streams. *out_next (caller frees)
 * is the continuation token or NULL on the last page. */
int s3_list_page(struct s3_client *c, const struct s3_list_opts *opts, s3_list_fn fn, void *arg,
		 char **out_next, struct aws_error *err) WARN_UNUSED;
/* Every page of a listing. */
int s3_list(struct s3_client *c, const char *prefix, const char *delimiter, s3_list_fn fn,
	    void *arg, struct aws_error *err) WARN_UNUSED;

/* Every key under prefix (no delimiter), for recursive deletes and renames. */
struct s3_key_list {
	char **keys;
	size_t n, cap;
};
/* 0, or the listing's error; on error the list holds what was read (clean it up). */
int s3_list_keys(struct s3_client *c, const char *prefix, struct s3_key_list *out,
		 struct aws_error *err) WARN_UNUSED;
void s3_key_list_cleanup(struct s3_key_list *l);

/* Multipart upload. */
int s3_mpu_create(struct s3_client *c, const char *key, const struct s3_put_opts *opts,
		  char **out_upload_id, struct aws_error *err) WARN_UNUSED;
int s3_mpu_part(struct s3_client *c, const char *key, const char *upload_id, int part_number,
		const struct http_body *body, bool content_md5, char *out_etag,
		struct aws_error *err) WARN_UNUSED;
/* UploadPartCopy of bytes [offset, offset+len) of src. */
int s3_mpu_part_copy(struct s3_client *c, const char *key, const char *upload_id, int part_number,
		     const char *src, uint64_t offset, uint64_t len, const char *src_if_match,
		     char *out_etag, struct aws_error *err) WARN_UNUSED;
/* etags[i] is part i+1's ETag. A 200 reply carrying an <Error> is an error. */
int s3_mpu_complete(struct s3_client *c, const char *key, const char *upload_id,
		    const char *const *etags, int nparts, char *out_etag,
		    struct aws_error *err) WARN_UNUSED;
int s3_mpu_abort(struct s3_client *c, const char *key, const char *upload_id,
		 struct aws_error *err) WARN_UNUSED;
/* In-progress uploads under prefix: one callback per upload (key, upload_id, last_modified =
 * initiated). */
int s3_mpu_list(struct s3_client *c, const char *prefix, s3_list_fn fn, void *arg,
		struct aws_error *err) WARN_UNUSED;

/* Bucket admin (tests, demo): create (ok if already ours) and probe. */
int s3_bucket_create(struct s3_client *c, struct aws_error *err) WARN_UNUSED;
int s3_bucket_head(struct s3_client *c, struct aws_error *err) WARN_UNUSED;

#endif
