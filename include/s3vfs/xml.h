/* SPDX-License-Identifier: MIT */
/*
 * xml: parsing of S3's XML replies with libxml2, with entity expansion, DTD
 * loading and network access off, and hard caps on everything sized by the
 * server (document size, element depth, text length, entries per page).
 *
 * ListObjectsV2 and ListMultipartUploads pages are parsed as a stream (SAX
 * push parser): the caller feeds chunks as they arrive and gets one callback
 * per entry, so a 1000-key page never builds a DOM. Small replies (errors,
 * InitiateMultipartUpload, CompleteMultipartUpload, CopyObject, DeleteObjects)
 * are parsed from memory. Malformed, truncated or oversized documents return
 * -EPROTO (-E2BIG for caps), never crash.
 */
#ifndef S3VFS_XML_H
#define S3VFS_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3vfs/buf.h"
#include "s3vfs/compiler.h"
#include "s3vfs/s3_err.h"

#define XML_MAX_DOC	(32u * 1024 * 1024) /* one reply */
#define XML_MAX_DEPTH	32
#define XML_MAX_TEXT	4096  /* one element's text (keys are <= 1024 bytes) */
#define XML_MAX_ENTRIES 10000 /* per list page */
#define S3_ETAG_MAX	80    /* with quotes, "<32 hex>-<parts>" */

/* One entry of a list page. Strings borrowed for the callback's duration. */
struct s3_list_entry {
	const char *key; /* Key, or Prefix of a CommonPrefixes entry */
	bool is_prefix;	 /* a CommonPrefixes entry */
	uint64_t size;
	const char *etag;      /* as sent, with quotes; "" for prefixes */
	time_t last_modified;  /* 0 for prefixes */
	const char *upload_id; /* ListMultipartUploads only */
};

/* Return 0 to go on, a negative errno to stop the parse with that error. */
typedef int (*s3_list_fn)(void *arg, const struct s3_list_entry *e);

struct xml_list_result {
	bool truncated;		     /* IsTruncated */
	char *next_token;	     /* NextContinuationToken (V2), caller frees; NULL */
	char *next_key_marker;	     /* ListMultipartUploads: NextKeyMarker; NULL */
	char *next_upload_id_marker; /* ListMultipartUploads: NextUploadIdMarker; NULL */
	unsigned entries;	     /* callbacks made */
};
void xml_list_result_cleanup(struct xml_list_result *r);

struct xml_list_parser;

/* A streaming parser for ListBucketResult (V2) or ListMultipartUploadsResult. 0, -ENOMEM. */
int xml_list_parser_new(s3_list_fn fn, void *arg, struct xml_list_parser **out) WARN_UNUSED;
/* Feed the next chunk. 0, -EPROTO, -E2BIG, or the callback's error. */
int xml_list_parser_feed(struct xml_list_parser *p, const char *data, size_t n) WARN_UNUSED;
/* End of document: checks it was complete. On 0, out is filled (caller cleans up). */
int xml_list_parser_finish(struct xml_list_parser *p, struct xml_list_result *out) WARN_UNUSED;
void xml_list_parser_free(struct xml_list_parser *p);

/* Parse an S3 <Error> document: fills code, message, request id (RequestId). 0 or -EPROTO. */
int xml_parse_error(const char *data, size_t n, struct aws_error *err) WARN_UNUSED;

/*
 * Text of the first element named `field` under a root element named `root`
 * (e.g. "InitiateMultipartUploadResult", "UploadId"). If the document is an
 * <Error> (S3 may answer 200 with one to CompleteMultipartUpload and
 * CopyObject), err is filled (when non-NULL) and -EREMOTEIO returned. Another
 * root or a malformed document: -EPROTO. Missing field: -ENOENT. *out malloc'd.
 */
int xml_get_field(const char *data, size_t n, const char *root, const char *field, char **out,
		  struct aws_error *err) WARN_UNUSED;

/* DeleteObjects result: calls fn(arg, key, code) for each <Error> entry.
 * Returns 0 if the document parsed (whatever it listed), else -EPROTO. */
int xml_parse_delete_result(const char *data, size_t n,
			    int (*fn)(void *arg, const char *key, const char *code),
			    void *arg) WARN_UNUSED;

/* Parse an HTTP/ISO-8601 time "2013-05-24T00:00:00.000Z". -EINVAL if malformed. */
int xml_parse_iso8601(const char *s, time_t *out) WARN_UNUSED;

/* Append s to out with XML escaping (&, <, >, ", '). 0, -ENOMEM, -E2BIG. */
int xml_escape(struct buf *out, const char *s) WARN_UNUSED;

#endif
