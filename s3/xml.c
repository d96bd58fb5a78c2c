// SPDX-License-Identifier: MIT
/*
 * xml: turns the XML bodies S3 sends into C values (see xml.h). It owns the
 * libxml2 parser contexts, the hard caps on what a server may make us hold
 * (document size, depth, text, entries, ETag length) and the mapping from
 * element names to fields. It must not know about HTTP, requests, retries,
 * paths, the cache or the errno table of s3_err.c: it is handed bytes and
 * returns values or a negative errno, and only fills struct aws_error's fields.
 */
#include "s3vfs/xml.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "s3vfs/log.h"

/*
 * Design. Every document, streamed or in memory, goes through one SAX2 push
 * parser ("struct sax") with our own handler table, never a DOM:
 *
 *  1. Entities are never expanded and no DTD is ever loaded: the handler has
 *     no getEntity/resolveEntity/externalSubset, XML_PARSE_NOENT, DTDLOAD and
 *     HUGE are never set, NONET is. Any <!DOCTYPE> (internalSubset) or entity
 *     declaration stops the parse with -EPROTO before its body is processed,
 *     so a billion-laughs or XXE document costs one scan and reads no file.
 *  2. The caps are checked by us, before libxml2's own (larger) limits:
 *     bytes fed <= XML_MAX_DOC, open elements <= XML_MAX_DEPTH, the text of
 *     one element <= XML_MAX_TEXT, entries per page <= XML_MAX_ENTRIES.
 *     Breaking one is -E2BIG. Only an <Error> document clips its text
 *     instead: its fields end in fixed arrays anyway, and a server error with
 *     an oversized message should still map by its code.
 *  3. Element names are matched by local name: S3 sends the 2006-03-01
 *     namespace, compatible servers sometimes none.
 *  4. The first error wins and is sticky (sax.rc); a callback error stops the
 *     parser with xmlStopParser(). libxml2 reports its errors to a no-op
 *     structured handler in the SAX table (per context, never the global one).
 *  5. A document is good only if libxml2 found it well-formed and the root
 *     element closed; a truncated body is -EPROTO.
 *
 * Thread rules: a parser belongs to one thread at a time; distinct parsers
 * may run in parallel. xmlInitParser() runs once through pthread_once (the
 * once flag is this module's only static state).
 */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

struct sax;

struct sax_ops {
	/* An element opened; s->depth counts it (the root is 1). */
	int (*start)(struct sax *s, const char *name);
	/* An element closed; text is its own character data, NUL-terminated. */
	int (*end)(struct sax *s, const char *name, const char *text, size_t len);
};

struct sax {
	xmlParserCtxtPtr ctxt;
	const struct sax_ops *ops;
	void *user;	 /* the parse's own state, for the ops */
	int rc;		 /* first error (sticky), else 0 */
	unsigned depth;	 /* open elements */
	bool root_done;	 /* the root element closed */
	bool clip_text;	 /* drop text past XML_MAX_TEXT instead of failing */
	bool started;	 /* saw a byte other than leading white space */
	size_t fed;	 /* bytes fed so far, for XML_MAX_DOC */
	struct buf text; /* character data of the innermost open element */
};

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void sax_fail(struct sax *s, int rc)
{
	if (!s->rc)
		s->rc = rc;
	xmlStopParser(s->ctxt);
}

static void on_start(void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri,
		     int nb_ns, const xmlChar **ns, int nb_attrs, int nb_defaulted,
		     const xmlChar **attrs)
{
	struct sax *s = ctx;
	int rc = 0;

	if (s->rc)
		return;
	if (++s->depth > XML_MAX_DEPTH) {
		rc = -E2BIG;
		goto out;
	}
	buf_reset(&s->text);
	rc = s->ops->start(s, (const char *)name);
out:
	if (rc)
		sax_fail(s, rc);
}

static void on_end(void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri)
{
	struct sax *s = ctx;
	int rc = 0;

	if (s->rc)
		return;
	assert(s->depth > 0);
	rc = s->ops->end(s, (const char *)name, buf_str(&s->text), buf_len(&s->text));
	buf_reset(&s->text);
	if (--s->depth == 0)
		s->root_done = true;
	if (rc)
		sax_fail(s, rc);
}

static void on_text(void *ctx, const xmlChar *ch, int len)
{
	struct sax *s = ctx;
	size_t n = len > 0 ? (size_t)len : 0;
	int rc = 0;

	if (s->rc || n == 0)
		return;
	if (s->clip_text && n > XML_MAX_TEXT - buf_len(&s->text))
		n = XML_MAX_TEXT - buf_len(&s->text);
	rc = buf_add(&s->text, ch, n);
	if (rc)
		sax_fail(s, rc);
}

/* <!DOCTYPE ...>: S3 never sends one; refuse before its subset is read. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id)
{
	sax_fail(ctx, -EPROTO);
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
			   const xmlChar *system_id, xmlChar *content)
{
	sax_fail(ctx, -EPROTO);
}

/* libxml2's messages would go to stderr; the errno we return says enough. */
static void on_error(void *ctx, xmlErrorPtr error)
{
}

static int sax_init(struct sax *s, const struct sax_ops *ops, void *user)
{
	xmlSAXHandler h;

	pthread_once(&xml_once, xmlInitParser);
	memset(&h, 0, sizeof(h));
	h.initialized = XML_SAX2_MAGIC;
	h.startElementNs = on_start;
	h.endElementNs = on_end;
	h.characters = on_text;
	h.cdataBlock = on_text;
	h.internalSubset = on_doctype;
	h.entityDecl = on_entity_decl;
	h.serror = on_error;

	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->user = user;
	buf_init(&s->text, XML_MAX_TEXT);
	/* The handler table is copied; s is the user data of every callback. */
	s->ctxt = xmlCreatePushParserCtxt(&h, s, NULL, 0, NULL);
	if (!s->ctxt)
		return -ENOMEM;
	xmlCtxtUseOptions(s->ctxt, XML_PARSE_NONET);
	return 0;
}

static void sax_cleanup(struct sax *s)
{
	if (s->ctxt) {
		/* libxml2 builds a document in SAX mode for "expat compatibility"
		 * when it meets entity declarations; on_doctype should stop it
		 * first, but the document would not be freed with the context. */
		if (s->ctxt->myDoc)
			xmlFreeDoc(s->ctxt->myDoc);
		xmlFreeParserCtxt(s->ctxt);
	}
	s->ctxt = NULL;
	buf_cleanup(&s->text);
}

/* After a libxml2 call: our error, else -EPROTO if the document is broken. */
static int sax_status(struct sax *s, int xrc)
{
	xmlParserCtxtPtr c = s->ctxt;

	if (s->rc)
		return s->rc;
	if (xrc == 0 && c->wellFormed)
		return 0;
	s->rc = c->errNo == XML_ERR_NO_MEMORY ? -ENOMEM : -EPROTO;
	log_debug("xml: malformed reply (libxml2 error %d, line %d)", c->lastError.code,
		  c->lastError.line);
	return s->rc;
}

static int sax_feed(struct sax *s, const char *data, size_t n)
{
	if (s->rc)
		return s->rc;
	if (n > XML_MAX_DOC - s->fed) {
		s->rc = -E2BIG;
		return s->rc;
	}
	s->fed += n;
	/* S3 may send white space ahead of a late error (keep-alive); skip it. */
	while (!s->started && n > 0 && is_space(*data)) {
		data++;
		n--;
	}
	if (n == 0)
		return 0;
	s->started = true;
	return sax_status(s, xmlParseChunk(s->ctxt, data, (int)n, 0));
}

static int sax_finish(struct sax *s)
{
	int rc = 0;

	if (s->rc)
		return s->rc;
	rc = sax_status(s, xmlParseChunk(s->ctxt, NULL, 0, 1));
	if (!rc && !s->root_done) {
		s->rc = -EPROTO;
		rc = s->rc;
	}
	return rc;
}

/* Parse a whole document held in memory. */
static int sax_parse_memory(const struct sax_ops *ops, void *user, const char *data, size_t n)
{
	struct sax s;
	int rc = 0;

	rc = sax_init(&s, ops, user);
	if (rc)
		goto out;
	rc = sax_feed(&s, data, n);
	if (rc)
		goto out;
	rc = sax_finish(&s);
out:
	sax_cleanup(&s);
	return rc;
}

/* ---- values ---- */

static int set_buf(struct buf *b, const char *text, size_t len)
{
	buf_reset(b);
	return buf_add(b, text, len);
}

/* A full decimal uint64: digits only, no sign, no blanks, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v = 0;

	if (!is_digit(*s))
		return -EPROTO;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || *end != '\0')
		return -EPROTO;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (is(s, "true"))
		*out = true;
	else if (is(s, "false"))
		*out = false;
	else
		return -EPROTO;
	return 0;
}

/* Hand a field's text out: NULL if it was absent, "" if empty. */
static int take_opt(struct buf *b, bool present, char **out)
{
	char *s = NULL;

	if (present) {
		s = buf_take(b);
		if (!s)
			s = strdup("");
		if (!s)
			return -ENOMEM;
	}
	*out = s;
	return 0;
}

/* Copy text into a fixed array, cut short on a UTF-8 character boundary. */
static void copy_clip(char *dst, size_t size, const char *text, size_t len)
{
	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;
	}
	snprintf(dst, size, "%.*s", (int)len, text);
}

static int num(const char *s, unsigned n)
{
	int v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static int days_in_month(int year, int mon)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

int xml_parse_iso8601(const char *s, time_t *out)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm;
	const char *p = NULL;
	size_t i = 0;

	/* Checked in order, so a short string fails at its NUL. */
	for (i = 0; pattern[i]; i++) {
		if (pattern[i] == 'd' ? !is_digit(s[i]) : s[i] != pattern[i])
			return -EINVAL;
	}
	p = s + i;
	if (*p == '.') {
		for (i = 1; is_digit(p[i]); i++)
			;
		if (i == 1 || i > 10) /* 1 to 9 fraction digits, ignored */
			return -EINVAL;
		p += i;
	}
	if (p[0] != 'Z' || p[1] != '\0')
		return -EINVAL;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = num(s, 4) - 1900;
	tm.tm_mon = num(s + 5, 2) - 1;
	tm.tm_mday = num(s + 8, 2);
	tm.tm_hour = num(s + 11, 2);
	tm.tm_min = num(s + 14, 2);
	tm.tm_sec = num(s + 17, 2);
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > days_in_month(tm.tm_year + 1900, tm.tm_mon + 1) || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

/* ---- list pages ---- */

enum list_kind { LIST_NONE, LIST_OBJECTS, LIST_UPLOADS };
enum entry_kind { ENTRY_NONE, ENTRY_OBJECT, ENTRY_PREFIX, ENTRY_UPLOAD };

/* Fields of an entry (bits of xml_list_parser.have). */
enum {
	F_KEY = 1 << 0,
	F_SIZE = 1 << 1,
	F_ETAG = 1 << 2,
	F_TIME = 1 << 3,
	F_UPLOAD_ID = 1 << 4,
};

/* Fields of the page itself (bits of xml_list_parser.have_top). */
enum {
	T_TRUNCATED = 1 << 0,
	T_TOKEN = 1 << 1,
	T_KEY_COUNT = 1 << 2,
	T_NEXT_KEY = 1 << 3,
	T_NEXT_UPLOAD_ID = 1 << 4,
};

/* Within `parent` (a list or entry kind), element `name` means `value`. */
struct name_map {
	int parent;
	const char *name;
	int value;
};

static const struct name_map list_entries[] = {
	{ LIST_OBJECTS, "Contents", ENTRY_OBJECT },
	{ LIST_OBJECTS, "CommonPrefixes", ENTRY_PREFIX },
	{ LIST_UPLOADS, "Upload", ENTRY_UPLOAD },
	{ LIST_UPLOADS, "CommonPrefixes", ENTRY_PREFIX },
};

static const struct name_map entry_fields[] = {
	{ ENTRY_OBJECT, "Key", F_KEY },
	{ ENTRY_OBJECT, "Size", F_SIZE },
	{ ENTRY_OBJECT, "ETag", F_ETAG },
	{ ENTRY_OBJECT, "LastModified", F_TIME },
	{ ENTRY_PREFIX, "Prefix", F_KEY },
	{ ENTRY_UPLOAD, "Key", F_KEY },
	{ ENTRY_UPLOAD, "UploadId", F_UPLOAD_ID },
	{ ENTRY_UPLOAD, "Initiated", F_TIME },
};

static const struct name_map top_fields[] = {
	{ LIST_OBJECTS, "IsTruncated", T_TRUNCATED },
	{ LIST_OBJECTS, "NextContinuationToken", T_TOKEN },
	{ LIST_OBJECTS, "KeyCount", T_KEY_COUNT },
	{ LIST_UPLOADS, "IsTruncated", T_TRUNCATED },
	{ LIST_UPLOADS, "NextKeyMarker", T_NEXT_KEY },
	{ LIST_UPLOADS, "NextUploadIdMarker", T_NEXT_UPLOAD_ID },
};

/* The value for (parent, name), or 0. */
static int lookup(const struct name_map *map, size_t n, int parent, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (map[i].parent == parent && is(map[i].name, name))
			return map[i].value;
	}
	return 0;
}

/* Fields an entry must have; ETag and the times may be missing. */
static unsigned entry_required(int entry)
{
	switch (entry) {
	case ENTRY_OBJECT:
		return F_KEY | F_SIZE;
	case ENTRY_UPLOAD:
		return F_KEY | F_UPLOAD_ID;
	default:
		return F_KEY;
	}
}

struct xml_list_parser {
	struct sax sax;
	s3_list_fn fn;
	void *arg;
	int kind;	   /* enum list_kind, set when the root opens */
	int entry;	   /* enum entry_kind of the open entry, or ENTRY_NONE */
	unsigned have;	   /* F_* seen in the open entry */
	unsigned have_top; /* T_* seen */
	struct buf key, etag, upload_id;
	uint64_t size;
	time_t mtime;
	bool truncated;
	struct buf token, next_key, next_upload_id;
	unsigned entries;
	bool finished;
};

static int list_start(struct sax *s, const char *name)
{
	struct xml_list_parser *p = s->user;

	if (s->depth == 1) {
		if (is(name, "ListBucketResult"))
			p->kind = LIST_OBJECTS;
		else if (is(name, "ListMultipartUploadsResult"))
			p->kind = LIST_UPLOADS;
		else
			return -EPROTO;
		return 0;
	}
	if (s->depth != 2)
		return 0;
	p->entry = lookup(list_entries, ARRAY_SIZE(list_entries), p->kind, name);
	if (p->entry == ENTRY_NONE)
		return 0;
	if (p->entries >= XML_MAX_ENTRIES)
		return -E2BIG;
	p->have = 0;
	p->size = 0;
	p->mtime = 0;
	buf_reset(&p->key);
	buf_reset(&p->etag);
	buf_reset(&p->upload_id);
	return 0;
}

static int list_entry_field(struct xml_list_parser *p, const char *name, const char *text,
			    size_t len)
{
	int f = lookup(entry_fields, ARRAY_SIZE(entry_fields), p->entry, name);

	if (!f)
		return 0;
	if (p->have & (unsigned)f)
		return -EPROTO;
	p->have |= (unsigned)f;
	switch (f) {
	case F_KEY:
		return set_buf(&p->key, text, len);
	case F_SIZE:
		return parse_u64(text, &p->size);
	case F_ETAG:
		return len > S3_ETAG_MAX ? -E2BIG : set_buf(&p->etag, text, len);
	case F_TIME:
		return xml_parse_iso8601(text, &p->mtime) ? -EPROTO : 0;
	case F_UPLOAD_ID:
		return set_buf(&p->upload_id, text, len);
	}
	return 0;
}

static int list_entry_end(struct xml_list_parser *p)
{
	unsigned need = entry_required(p->entry);
	struct s3_list_entry e = {
		.key = buf_str(&p->key),
		.is_prefix = p->entry == ENTRY_PREFIX,
		.size = p->size,
		.etag = buf_str(&p->etag),
		.last_modified = p->mtime,
		.upload_id = p->entry == ENTRY_UPLOAD ? buf_str(&p->upload_id) : NULL,
	};
	int rc = 0;

	if ((p->have & need) != need)
		return -EPROTO;
	p->entry = ENTRY_NONE;
	p->entries++;
	rc = p->fn(p->arg, &e);
	return rc < 0 ? rc : 0;
}

static int list_top_field(struct xml_list_parser *p, const char *name, const char *text, size_t len)
{
	int f = lookup(top_fields, ARRAY_SIZE(top_fields), p->kind, name);
	uint64_t count = 0;

	if (!f)
		return 0;
	if (p->have_top & (unsigned)f)
		return -EPROTO;
	p->have_top |= (unsigned)f;
	switch (f) {
	case T_TRUNCATED:
		return parse_bool(text, &p->truncated);
	case T_KEY_COUNT:
		return parse_u64(text, &count);
	case T_TOKEN:
		return set_buf(&p->token, text, len);
	case T_NEXT_KEY:
		return set_buf(&p->next_key, text, len);
	case T_NEXT_UPLOAD_ID:
		return set_buf(&p->next_upload_id, text, len);
	}
	return 0;
}

static int list_end(struct sax *s, const char *name, const char *text, size_t len)
{
	struct xml_list_parser *p = s->user;

	if (p->entry != ENTRY_NONE && s->depth == 3)
		return list_entry_field(p, name, text, len);
	if (p->entry != ENTRY_NONE && s->depth == 2)
		return list_entry_end(p);
	if (s->depth == 2)
		return list_top_field(p, name, text, len);
	return 0;
}

static const struct sax_ops list_ops = { list_start, list_end };

int xml_list_parser_new(s3_list_fn fn, void *arg, struct xml_list_parser **out)
{
	struct xml_list_parser *p = NULL;
	int rc = 0;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	buf_init(&p->key, XML_MAX_TEXT);
	buf_init(&p->etag, XML_MAX_TEXT);
	buf_init(&p->upload_id, XML_MAX_TEXT);
	buf_init(&p->token, XML_MAX_TEXT);
	buf_init(&p->next_key, XML_MAX_TEXT);
	buf_init(&p->next_upload_id, XML_MAX_TEXT);
	rc = sax_init(&p->sax, &list_ops, p);
	if (rc)
		goto err;
	*out = p;
	return 0;
err:
	xml_list_parser_free(p);
	return rc;
}

int xml_list_parser_feed(struct xml_list_parser *p, const char *data, size_t n)
{
	if (p->finished)
		return -EINVAL;
	return sax_feed(&p->sax, data, n);
}

/* A truncated page must say where to go on, or the caller would loop. */
static int list_check_next(const struct xml_list_parser *p)
{
	if (!p->truncated)
		return 0;
	if (p->kind == LIST_OBJECTS && buf_len(&p->token) == 0)
		return -EPROTO;
	if (p->kind == LIST_UPLOADS && buf_len(&p->next_key) == 0)
		return -EPROTO;
	return 0;
}

int xml_list_parser_finish(struct xml_list_parser *p, struct xml_list_result *out)
{
	struct xml_list_result r = { 0 };
	int rc = 0;

	if (p->finished)
		return -EINVAL;
	p->finished = true;
	rc = sax_finish(&p->sax);
	if (rc)
		goto out;
	rc = list_check_next(p);
	if (rc)
		goto out;
	r.truncated = p->truncated;
	r.entries = p->entries;
	rc = take_opt(&p->token, p->have_top & T_TOKEN, &r.next_token);
	if (rc)
		goto out;
	rc = take_opt(&p->next_key, p->have_top & T_NEXT_KEY, &r.next_key_marker);
	if (rc)
		goto out;
	rc = take_opt(&p->next_upload_id, p->have_top & T_NEXT_UPLOAD_ID, &r.next_upload_id_marker);
	if (rc)
		goto out;
	*out = r;
	memset(&r, 0, sizeof(r));
out:
	xml_list_result_cleanup(&r);
	return rc;
}

void xml_list_parser_free(struct xml_list_parser *p)
{
	if (!p)
		return;
	sax_cleanup(&p->sax);
	buf_cleanup(&p->key);
	buf_cleanup(&p->etag);
	buf_cleanup(&p->upload_id);
	buf_cleanup(&p->token);
	buf_cleanup(&p->next_key);
	buf_cleanup(&p->next_upload_id);
	free(p);
}

void xml_list_result_cleanup(struct xml_list_result *r)
{
	if (!r)
		return;
	free(r->next_token);
	free(r->next_key_marker);
	free(r->next_upload_id_marker);
	r->next_token = NULL;
	r->next_key_marker = NULL;
	r->next_upload_id_marker = NULL;
}

/* ---- small documents: <Error> and xml_get_field ---- */

struct doc {
	const char *root;     /* the root expected besides <Error>; NULL: none */
	const char *field;    /* element wanted under root; NULL: none */
	bool is_error;	      /* the root is <Error> */
	bool found;	      /* field seen (the first one wins) */
	struct buf value;     /* its text */
	struct aws_error err; /* code, message, request_id of an <Error> */
};

static int doc_start(struct sax *s, const char *name)
{
	struct doc *d = s->user;

	if (s->depth != 1)
		return 0;
	if (is(name, "Error")) {
		d->is_error = true;
		s->clip_text = true;
		return 0;
	}
	return d->root && is(name, d->root) ? 0 : -EPROTO;
}

static int doc_end(struct sax *s, const char *name, const char *text, size_t len)
{
	struct doc *d = s->user;
	struct aws_error *e = &d->err;

	if (d->is_error && s->depth == 2) {
		if (is(name, "Code"))
			copy_clip(e->code, sizeof(e->code), text, len);
		else if (is(name, "Message"))
			copy_clip(e->message, sizeof(e->message), text, len);
		else if (is(name, "RequestId"))
			copy_clip(e->request_id, sizeof(e->request_id), text, len);
		return 0;
	}
	if (!d->is_error && d->field && !d->found && s->depth >= 2 && is(name, d->field)) {
		d->found = true;
		return set_buf(&d->value, text, len);
	}
	return 0;
}

static const struct sax_ops doc_ops = { doc_start, doc_end };

/* Copy what an <Error> said; status and transport are the caller's. */
static void doc_copy_error(const struct doc *d, struct aws_error *err)
{
	snprintf(err->code, sizeof(err->code), "%s", d->err.code);
	snprintf(err->message, sizeof(err->message), "%s", d->err.message);
	snprintf(err->request_id, sizeof(err->request_id), "%s", d->err.request_id);
}

int xml_parse_error(const char *data, size_t n, struct aws_error *err)
{
	struct doc d;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	buf_init(&d.value, XML_MAX_TEXT);
	rc = sax_parse_memory(&doc_ops, &d, data, n);
	if (rc)
		goto out;
	assert(d.is_error); /* any other root failed in doc_start */
	doc_copy_error(&d, err);
out:
	buf_cleanup(&d.value);
	return rc == 0 || rc == -ENOMEM ? rc : -EPROTO;
}

int xml_get_field(const char *data, size_t n, const char *root, const char *field, char **out,
		  struct aws_error *err)
{
	struct doc d;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	d.root = root;
	d.field = field;
	buf_init(&d.value, XML_MAX_TEXT);
	rc = sax_parse_memory(&doc_ops, &d, data, n);
	if (rc) {
		if (rc != -ENOMEM)
			rc = -EPROTO;
		goto out;
	}
	if (d.is_error) {
		if (err)
			doc_copy_error(&d, err);
		rc = -EREMOTEIO;
		goto out;
	}
	if (!d.found) {
		rc = -ENOENT;
		goto out;
	}
	rc = take_opt(&d.value, true, out);
out:
	buf_cleanup(&d.value);
	return rc;
}

/* ---- DeleteObjects result ---- */

enum { D_KEY = 1 << 0, D_CODE = 1 << 1 };

struct del {
	int (*fn)(void *arg, const char *key, const char *code);
	void *arg;
	int fn_rc;	/* the callback's error, returned as is */
	bool in_error;	/* inside an <Error> entry */
	unsigned have;	/* D_* seen in the open <Error> */
	unsigned count; /* entries, for XML_MAX_ENTRIES */
	struct buf key, code;
};

static int del_start(struct sax *s, const char *name)
{
	struct del *d = s->user;

	if (s->depth == 1)
		return is(name, "DeleteResult") ? 0 : -EPROTO;
	if (s->depth != 2)
		return 0;
	if (++d->count > XML_MAX_ENTRIES)
		return -E2BIG;
	d->in_error = is(name, "Error");
	d->have = 0;
	buf_reset(&d->key);
	buf_reset(&d->code);
	return 0;
}

static int del_end(struct sax *s, const char *name, const char *text, size_t len)
{
	struct del *d = s->user;
	unsigned f = 0;

	if (!d->in_error)
		return 0;
	if (s->depth == 3) {
		f = is(name, "Key") ? D_KEY : is(name, "Code") ? D_CODE : 0;
		if (!f)
			return 0;
		if (d->have & f)
			return -EPROTO;
		d->have |= f;
		return set_buf(f == D_KEY ? &d->key : &d->code, text, len);
	}
	if (s->depth != 2)
		return 0;
	d->in_error = false;
	if (!(d->have & D_KEY))
		return -EPROTO;
	d->fn_rc = d->fn(d->arg, buf_str(&d->key), buf_str(&d->code));
	return d->fn_rc < 0 ? d->fn_rc : 0;
}

static const struct sax_ops del_ops = { del_start, del_end };

int xml_parse_delete_result(const char *data, size_t n,
			    int (*fn)(void *arg, const char *key, const char *code), void *arg)
{
	struct del d;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	d.fn = fn;
	d.arg = arg;
	buf_init(&d.key, XML_MAX_TEXT);
	buf_init(&d.code, XML_MAX_TEXT);
	rc = sax_parse_memory(&del_ops, &d, data, n);
	if (rc && d.fn_rc < 0)
		rc = d.fn_rc;
	else if (rc && rc != -ENOMEM)
		rc = -EPROTO;
	buf_cleanup(&d.key);
	buf_cleanup(&d.code);
	return rc;
}

/* ---- escaping ---- */

/* The reference standing for c, or NULL if c stands for itself. */
static const char *xml_entity(unsigned char c, char tmp[8])
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return "&quot;";
	case '\'':
		return "&apos;";
	}
	/*
	 * Control characters as references, as AWS asks for CR and LF in keys:
	 * a raw CR would be read back as LF. Those other than TAB, LF and CR
	 * are not XML 1.0 even so; the server decides what to make of them.
	 */
	if (c < 0x20) {
		snprintf(tmp, 8, "&#%u;", c);
		return tmp;
	}
	return NULL;
}

int xml_escape(struct buf *out, const char *s)
{
	const char *run = s;
	char tmp[8];
	int rc = 0;

	for (const char *p = s; *p; p++) {
		const char *ent = xml_entity((unsigned char)*p, tmp);

		if (!ent)
			continue;
		rc = buf_add(out, run, (size_t)(p - run));
		if (rc)
			return rc;
		rc = buf_addstr(out, ent);
		if (rc)
			return rc;
		run = p + 1;
	}
	return buf_add(out, run, strlen(run));
}
