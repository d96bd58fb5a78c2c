// SPDX-License-Identifier: MIT
/*
 * creds: the AWS credentials chain (see creds.h). Owns the current
 * credentials, the reader of the shared INI files (~/.aws/credentials and
 * ~/.aws/config) and the clients of the two metadata endpoints (ECS container
 * credentials and EC2 IMDSv2). It resolves the chain once, at creation, and
 * later re-runs only the source that gave temporary credentials. It must not
 * know about S3, signing or retries: it speaks HTTP through http.c only, and
 * no secret it holds (keys, tokens, file contents, reply bodies) ever reaches
 * the log or survives in memory it frees.
 *
 * Refresh protocol (creds_get -> refresh_locked), every field under p->lock:
 *   1. p->cur is replaced only whole, by a successful fetch; it is never
 *      partially written.
 *   2. At most one thread fetches at a time (p->refreshing). The fetch runs
 *      without the lock, so other threads keep using p->cur while it is
 *      valid and wait on p->cond only when it has expired.
 *   3. A failed refresh keeps p->cur while it is valid and backs off
 *      CREDS_RETRY_S before the next attempt; once p->cur has expired, every
 *      call tries again and fails with the fetch's error.
 * Lock order: p->lock only; it is never held across http_perform().
 */
#include "s3vfs/creds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3vfs/buf.h"
#include "s3vfs/http.h"
#include "s3vfs/log.h"

#define CREDS_FILE_MAX	   (1024 * 1024) /* shared INI files */
#define CREDS_TOKEN_MAX	   (16 * 1024)	 /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE */
#define CREDS_DOC_MAX	   (64 * 1024)	 /* any reply of a metadata endpoint */
#define CREDS_REFRESH_S	   300		 /* refresh this close to expiry */
#define CREDS_RETRY_S	   30		 /* back-off after a failed refresh */
#define ECS_HOST	   "http://169.254.170.2"
#define IMDS_ENDPOINT_IPV4 "http://169.254.169.254"
#define IMDS_ENDPOINT_IPV6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_PATH	   "/latest/api/token"
#define IMDS_CREDS_PATH	   "/latest/meta-data/iam/security-credentials/"
#define IMDS_TTL_HEADER	   "X-aws-ec2-metadata-token-ttl-seconds: 21600"
#define IMDS_TOKEN_HEADER  "X-aws-ec2-metadata-token"

enum creds_src { SRC_NONE, SRC_OPTIONS, SRC_ENV, SRC_PROFILE, SRC_ECS, SRC_IMDS };

struct creds_provider {
	struct http_client *hc; /* borrowed; NULL: no network sources */
	enum creds_src src;	/* immutable after creation, as are the fields below */
	char *source;		/* for creds_source() */
	char *ecs_url;
	char *ecs_token;      /* secret */
	char *ecs_token_file; /* re-read at each fetch: it rotates */
	char *imds_endpoint;  /* without a trailing '/' */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct creds cur;   /* protected by lock */
	bool refreshing;    /* protected by lock */
	time_t retry_after; /* protected by lock */
	int last_rc;	    /* protected by lock: outcome of the last refresh */
};

/* One shared file, loaded whole. */
struct ini_file {
	char *path;
	char *text; /* NULL if absent; may hold secrets: wiped on cleanup */
	size_t len;
	bool loose; /* readable by group or others */
};

/* ---- small helpers ---- */

static void secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static const char *errstr(int rc, char *b, size_t n)
{
	return strerror_r(rc < 0 ? -rc : rc, b, n);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *rtrim(const char *s, const char *end)
{
	while (end > s && (is_blank(end[-1]) || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	return end;
}

void creds_cleanup(struct creds *c)
{
	if (!c)
		return;
	secret_free(c->access_key);
	secret_free(c->secret_key);
	secret_free(c->session_token);
	c->access_key = NULL;
	c->secret_key = NULL;
	c->session_token = NULL;
	c->expiration = 0;
}

/* Fill out with copies; an empty token counts as none. 0 or -ENOMEM. */
static int creds_set(struct creds *out, const char *ak, const char *sk, const char *tok, time_t exp)
{
	struct creds c = { .expiration = exp };

	tok = nonempty(tok);
	c.access_key = strdup(ak);
	c.secret_key = strdup(sk);
	c.session_token = tok ? strdup(tok) : NULL;
	if (!c.access_key || !c.secret_key || (tok && !c.session_token)) {
		creds_cleanup(&c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

/* "Name: value" for a request header; the value may be a secret. */
static int header_line(const char *name, const char *value, char **out)
{
	size_t n = strlen(name) + strlen(value) + 3;

	if (strpbrk(value, "\r\n"))
		return -EINVAL; /* header injection */
	char *s = malloc(n);
	if (!s)
		return -ENOMEM;
	snprintf(s, n, "%s: %s", name, value);
	*out = s;
	return 0;
}

/* ---- INI parsing ---- */

/*
 * The shared files follow Python's configparser as botocore uses it: "[section]"
 * headers, "key = value" or "key: value", full-line comments with '#' or ';',
 * keys case-insensitive, a line indented deeper than the key before it is a
 * continuation of that value (nested "s3 =" blocks in config). We also drop an
 * inline comment that follows whitespace, as the Go SDK does. Anything else is
 * malformed.
 */
struct ini_scan {
	const char *section; /* wanted; NULL: only check the syntax */
	const char *key;
	bool seen_header;
	bool in_section;
	bool found_section;
	size_t key_indent; /* indent of the last key line + 1; 0: none in this section */
	char *value;	   /* last value of key in section (last wins) */
};

/* Section names compare word by word: "[profile  x]" is "profile x". */
static bool words_eq(const char *p, const char *end, const char *want)
{
	for (;;) {
		while (p < end && is_blank(*p))
			p++;
		while (*want == ' ')
			want++;
		if (p == end || !*want)
			return p == end && !*want;
		while (p < end && !is_blank(*p) && *want && *want != ' ') {
			if (*p++ != *want++)
				return false;
		}
		if ((p < end && !is_blank(*p)) || (*want && *want != ' '))
			return false;
	}
}

static int ini_header(struct ini_scan *sc, const char *p, const char *end)
{
	const char *close = memchr(p, ']', (size_t)(end - p));
	if (!close)
		return -EINVAL;
	const char *rest = close + 1;
	while (rest < end && is_blank(*rest))
		rest++;
	if (rest < end && *rest != '#' && *rest != ';')
		return -EINVAL;
	if (words_eq(p + 1, close, ""))
		return -EINVAL; /* empty name */
	sc->seen_header = true;
	sc->in_section = sc->section && words_eq(p + 1, close, sc->section);
	sc->found_section |= sc->in_section;
	sc->key_indent = 0;
	return 0;
}

static int ini_pair(struct ini_scan *sc, const char *p, const char *end, size_t indent)
{
	const char *delim = p;
	while (delim < end && *delim != '=' && *delim != ':')
		delim++;
	if (delim == end || !sc->seen_header)
		return -EINVAL;
	const char *kend = rtrim(p, delim);
	if (kend == p)
		return -EINVAL;
	sc->key_indent = indent + 1;
	size_t klen = (size_t)(kend - p);
	if (!sc->in_section || strlen(sc->key) != klen || strncasecmp(p, sc->key, klen) != 0)
		return 0;

	const char *v = delim + 1;
	while (v < end && is_blank(*v))
		v++;
	for (const char *c = v; c < end; c++) {
		if ((*c == '#' || *c == ';') && c > v && is_blank(c[-1])) {
			end = rtrim(v, c);
			break;
		}
	}
	char *value = strndup(v, (size_t)(end - v));
	if (!value)
		return -ENOMEM;
	secret_free(sc->value);
	sc->value = value;
	return 0;
}

static int ini_line(struct ini_scan *sc, const char *s, const char *end)
{
	const char *p = s;
	while (p < end && is_blank(*p))
		p++;
	end = rtrim(p, end);
	if (p == end || *p == '#' || *p == ';')
		return 0;
	size_t indent = (size_t)(p - s);
	if (sc->key_indent && indent + 1 > sc->key_indent)
		return 0; /* continuation of the value above */
	if (*p == '[')
		return ini_header(sc, p, end);
	return ini_pair(sc, p, end, indent);
}

/* 0, -EINVAL (*out_line: the malformed line, from 1), -ENOMEM. sc->value is the caller's. */
static int ini_scan_text(struct ini_scan *sc, const char *text, size_t len, size_t *out_line)
{
	const char *p = text, *end = text + len;
	size_t line = 0;
	int rc = 0;

	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3; /* UTF-8 byte order mark */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		line++;
		rc = ini_line(sc, p, eol);
		if (rc < 0)
			break;
		p = nl ? nl + 1 : end;
	}
	if (rc < 0 && out_line)
		*out_line = line;
	return rc;
}

char *creds_ini_lookup(const char *text, const char *section, const char *key)
{
	struct ini_scan sc = { .section = section, .key = key };

	if (!text || !section || !key)
		return NULL;
	if (ini_scan_text(&sc, text, strlen(text), NULL) < 0) {
		secret_free(sc.value);
		return NULL;
	}
	return sc.value;
}

/* ---- files ---- */

/*
 * Read a whole regular file of at most cap bytes into exactly sized memory
 * (no realloc leaves copies of secrets behind). 0, -ENOENT (absent, or
 * unreadable or not a regular file: warned), -EFBIG, -ENOMEM, -EIO.
 */
static int file_read(const char *path, size_t cap, char **out_text, size_t *out_len,
		     mode_t *out_mode)
{
	char eb[64];
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	int rc = 0;

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		if (rc != -ENOENT && rc != -ENOTDIR)
			log_warn("cannot open %s: %s; ignoring it", path,
				 errstr(rc, eb, sizeof(eb)));
		return -ENOENT;
	}
	if (fstat(fd, &st) < 0) {
		rc = -EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_debug("%s is not a regular file; ignoring it", path); /* e.g. /dev/null */
		rc = -ENOENT;
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		log_error("%s is larger than %zu bytes", path, cap);
		rc = -EFBIG;
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -EIO;
			log_error("cannot read %s: %s", path, errstr(-errno, eb, sizeof(eb)));
			goto out;
		}
		if (n == 0)
			break; /* shrank under us */
		got += (size_t)n;
	}
	text[got] = '\0';
	*out_text = text;
	*out_len = got;
	*out_mode = st.st_mode;
	text = NULL;
out:
	if (text) {
		explicit_bzero(text, (size_t)st.st_size);
		free(text);
	}
	close(fd);
	return rc;
}

static void ini_file_cleanup(struct ini_file *f)
{
	if (f->text) {
		explicit_bzero(f->text, f->len);
		free(f->text);
	}
	free(f->path);
	memset(f, 0, sizeof(*f));
}

/*
 * The path of a shared file: the override variable, else $HOME/.aws/NAME.
 * "~/" expands to $HOME as the SDKs do. *out NULL when there is no HOME.
 */
static int shared_path(const char *env_name, const char *name, char **out)
{
	const char *over = nonempty(getenv(env_name));
	const char *home = nonempty(getenv("HOME"));
	struct buf b;
	int rc = 0;

	buf_init(&b, 4096);
	*out = NULL;
	if (over && strncmp(over, "~/", 2) == 0 && home)
		rc = buf_printf(&b, "%s/%s", home, over + 2);
	else if (over)
		rc = buf_addstr(&b, over);
	else if (home)
		rc = buf_printf(&b, "%s/.aws/%s", home, name);
	else
		return 0;
	if (rc < 0)
		return rc;
	*out = buf_take(&b);
	return 0;
}

/* Load and syntax-check one shared file. An absent file is not an error (f->text NULL). */
static int ini_file_load(struct ini_file *f, const char *env_name, const char *name)
{
	struct ini_scan sc = { 0 };
	size_t line = 0;
	mode_t mode = 0;

	int rc = shared_path(env_name, name, &f->path);
	if (rc < 0 || !f->path)
		return rc;
	rc = file_read(f->path, CREDS_FILE_MAX, &f->text, &f->len, &mode);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	f->loose = (mode & (S_IRGRP | S_IROTH)) != 0;
	rc = ini_scan_text(&sc, f->text, f->len, &line);
	if (rc == -EINVAL)
		log_error("%s: line %zu is not a [section], a key = value or a comment", f->path,
			  line);
	return rc;
}

/* Value of key in section; NULL if absent. 0 or -ENOMEM (the file was checked at load). */
static int ini_file_get(const struct ini_file *f, const char *section, const char *key, char **out,
			bool *out_found)
{
	struct ini_scan sc = { .section = section, .key = key };

	*out = NULL;
	if (!f->text)
		return 0;
	int rc = ini_scan_text(&sc, f->text, f->len, NULL);
	if (rc < 0) {
		secret_free(sc.value);
		return rc;
	}
	if (out_found)
		*out_found |= sc.found_section;
	*out = sc.value;
	return 0;
}

/* ---- static sources: options, environment, profile ---- */

/* Both keys or neither: 0, -ENOENT (neither), -EINVAL (one), -ENOMEM. */
static int pair_source(const char *what, const char *ak, const char *sk, const char *tok,
		       struct creds *out)
{
	ak = nonempty(ak);
	sk = nonempty(sk);
	if (!ak && !sk)
		return -ENOENT;
	if (!ak || !sk) {
		log_error("%s: an access key id and a secret access key must be given together",
			  what);
		return -EINVAL;
	}
	return creds_set(out, ak, sk, tok, 0);
}

/* Keys of one section: 0, -ENOENT (no keys), -EINVAL (one key only), -ENOMEM. */
static int profile_keys(const struct ini_file *f, const char *section, const char *profile,
			struct creds *out, bool *found)
{
	char *ak = NULL, *sk = NULL, *tok = NULL;

	int rc = ini_file_get(f, section, "aws_access_key_id", &ak, found);
	if (rc == 0)
		rc = ini_file_get(f, section, "aws_secret_access_key", &sk, NULL);
	if (rc == 0)
		rc = ini_file_get(f, section, "aws_session_token", &tok, NULL);
	if (rc < 0)
		goto out;
	if (!nonempty(ak) && !nonempty(sk)) {
		rc = -ENOENT;
		goto out;
	}
	if (!nonempty(ak) || !nonempty(sk)) {
		log_error("profile %s in %s: aws_access_key_id and aws_secret_access_key must be "
			  "given together",
			  profile, f->path);
		rc = -EINVAL;
		goto out;
	}
	if (f->loose)
		log_warn("%s is readable by group or others; it should be mode 600", f->path);
	rc = creds_set(out, ak, sk, tok, 0);
out:
	secret_free(ak);
	secret_free(sk);
	secret_free(tok);
	return rc;
}

/* Look the profile up in credentials ([NAME]) then config ([profile NAME], [default]). */
static int profile_lookup(struct creds_provider *p, const char *name, const struct ini_file *cred,
			  const struct ini_file *conf, bool *found)
{
	struct buf sec;
	const struct ini_file *f = cred;
	int rc = 0;

	buf_init(&sec, BUF_CAP_SMALL);
	rc = profile_keys(cred, name, name, &p->cur, found);
	if (rc == -ENOENT) {
		f = conf;
		rc = buf_printf(&sec, "profile %s", name);
		if (rc == 0)
			rc = profile_keys(conf, buf_str(&sec), name, &p->cur, found);
	}
	if (rc == -ENOENT && strcmp(name, "default") == 0)
		rc = profile_keys(conf, "default", name, &p->cur, found);
	buf_reset(&sec);
	if (rc == 0)
		rc = buf_printf(&sec, "profile %s (%s)", name, f->path);
	if (rc == 0) {
		p->src = SRC_PROFILE;
		p->source = buf_take(&sec);
	}
	buf_cleanup(&sec);
	return rc;
}

static int profile_source(struct creds_provider *p, const struct creds_config *cfg)
{
	struct ini_file cred = { 0 }, conf = { 0 };
	const char *name = nonempty(cfg->profile);
	bool named = true, found = false;

	if (!name)
		name = nonempty(getenv("AWS_PROFILE"));
	if (!name) {
		name = "default";
		named = false;
	}
	int rc = ini_file_load(&cred, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
	if (rc == 0)
		rc = ini_file_load(&conf, "AWS_CONFIG_FILE", "config");
	if (rc == 0)
		rc = profile_lookup(p, name, &cred, &conf, &found);
	if (rc != -ENOENT)
		goto out;
	if (named && !found) {
		log_error("AWS profile '%s' not found in %s or %s", name,
			  cred.path ? cred.path : "(no credentials file)",
			  conf.path ? conf.path : "(no config file)");
		rc = -EINVAL;
	} else if (named) {
		log_warn("AWS profile '%s' has no aws_access_key_id/aws_secret_access_key (roles, "
			 "SSO and credential_process are not supported); trying ECS and IMDS",
			 name);
	}
out:
	ini_file_cleanup(&cred);
	ini_file_cleanup(&conf);
	return rc;
}

/* ---- credential documents (ECS and IMDS replies) ---- */

static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* ISO 8601 UTC "2026-01-02T03:04:05Z", with optional fraction and 'Z' or ±hh:mm. */
static int parse_time(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, se, oh, om;
	long off = 0;

	if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &se))
		return -EINVAL;
	const char *p = s + 19;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -EINVAL;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
			return -EINVAL;
		off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = t - off;
	return 0;
}

static const char *json_str(json_t *doc, const char *name)
{
	return nonempty(json_string_value(json_object_get(doc, name)));
}

/*
 * Parse {"Code":"Success","AccessKeyId","SecretAccessKey","Token","Expiration"}
 * (Code and Token optional; no Expiration means none). 0, -EPROTO (malformed),
 * -EACCES (Code other than Success), -ENOMEM. jansson's error text quotes the
 * input, which may be secret, so only positions are logged.
 */
static int creds_parse_json(const char *text, size_t len, const char *what, struct creds *out)
{
	json_error_t err;
	time_t exp = 0;
	int rc = 0;

	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	if (!doc) {
		log_warn("%s: malformed JSON reply (line %d, column %d)", what, err.line,
			 err.column);
		return -EPROTO;
	}
	json_t *code = json_object_get(doc, "Code");
	const char *ak = json_str(doc, "AccessKeyId");
	const char *sk = json_str(doc, "SecretAccessKey");
	const char *tok = json_str(doc, "Token");
	const char *expstr = json_str(doc, "Expiration");
	if (!json_is_object(doc)) {
		log_warn("%s: reply is not a JSON object", what);
		rc = -EPROTO;
	} else if (code && (!json_is_string(code) || strcmp(json_string_value(code), "Success"))) {
		log_warn("%s: reply Code is %.64s", what,
			 json_is_string(code) ? json_string_value(code) : "not a string");
		rc = -EACCES;
	} else if (!ak || !sk) {
		log_warn("%s: reply lacks AccessKeyId or SecretAccessKey", what);
		rc = -EPROTO;
	} else if (expstr && parse_time(expstr, &exp) < 0) {
		log_warn("%s: bad Expiration in reply", what);
		rc = -EPROTO;
	} else {
		rc = creds_set(out, ak, sk, tok, exp);
	}
	json_decref(doc);
	return rc;
}

/* ---- HTTP sources: ECS and IMDS ---- */

static int status_errno(long status)
{
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	return -EREMOTEIO; /* the endpoint answered, with an error */
}

/*
 * One request to a credentials endpoint. On 200 with a body, *out_body (NUL-
 * terminated, caller wipes with secret_free) and *out_len. 0, the transport
 * errno, for another status -EACCES (401, 403), -ENOENT (404) or -EREMOTEIO,
 * -EPROTO (empty body), -E2BIG.
 */
static int creds_http(struct creds_provider *p, const char *method, const char *url,
		      const char *const *hdrs, size_t nhdrs, const char *what, char **out_body,
		      size_t *out_len)
{
	static const struct http_body empty = { .data = "", .fd = -1 };
	struct http_request req = {
		.method = method,
		.url = url,
		.headers = hdrs,
		.nheaders = nhdrs,
		.body = strcmp(method, "PUT") == 0 ? &empty : NULL,
		.max_body = CREDS_DOC_MAX,
		.op = STAT_CREDS,
		.connect_timeout_ms = 1000, /* a metadata service answers fast or not at all */
		.timeout_ms = 3000,
	};
	struct http_response resp;
	char eb[64];

	http_response_init(&resp);
	int rc = http_perform(p->hc, &req, &resp);
	if (rc < 0) {
		log_debug("%s: request failed: %s", what, errstr(rc, eb, sizeof(eb)));
	} else if (resp.status != 200) {
		log_debug("%s: HTTP status %ld", what, resp.status);
		rc = status_errno(resp.status);
	} else if (buf_len(&resp.body) == 0) {
		log_debug("%s: empty reply", what);
		rc = -EPROTO;
	} else {
		*out_len = buf_len(&resp.body);
		*out_body = buf_take(&resp.body);
	}
	if (resp.body.ptr)
		explicit_bzero(resp.body.ptr, resp.body.alloc);
	http_response_cleanup(&resp);
	return rc;
}

/* The ECS authorization token: from its file (re-read: it rotates), else the variable. */
static int ecs_token(struct creds_provider *p, char **out)
{
	size_t len = 0;
	mode_t mode;

	*out = NULL;
	if (!p->ecs_token_file) {
		if (p->ecs_token && !(*out = strdup(p->ecs_token)))
			return -ENOMEM;
		return 0;
	}
	int rc = file_read(p->ecs_token_file, CREDS_TOKEN_MAX, out, &len, &mode);
	if (rc < 0) {
		log_error("ecs: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
			  p->ecs_token_file);
		return rc == -ENOENT ? -EACCES : rc;
	}
	(*out)[rtrim(*out, *out + len) - *out] = '\0';
	return 0;
}

static int ecs_fetch(struct creds_provider *p, struct creds *out)
{
	const char *hdrs[2] = { "Accept: application/json" };
	char *token = NULL, *auth = NULL, *doc = NULL;
	size_t nhdrs = 1, len = 0;

	int rc = ecs_token(p, &token);
	if (rc == 0 && token) {
		rc = header_line("Authorization", token, &auth);
		if (rc == -EINVAL)
			log_error("ecs: the authorization token contains a line break");
		if (rc == 0)
			hdrs[nhdrs++] = auth;
	}
	if (rc == 0)
		rc = creds_http(p, "GET", p->ecs_url, hdrs, nhdrs, "ecs", &doc, &len);
	if (rc == 0)
		rc = creds_parse_json(doc, len, "ecs", out);
	secret_free(doc);
	secret_free(auth);
	secret_free(token);
	return rc;
}

static bool host_allowed(const char *host, size_t n)
{
	static const char *const ok[] = { "localhost", "169.254.170.2", "169.254.170.23",
					  "fd00:ec2::23" };
	struct in_addr a4;
	struct in6_addr a6;
	char h[64];

	if (n == 0 || n >= sizeof(h))
		return false;
	memcpy(h, host, n);
	h[n] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		if (strcasecmp(h, ok[i]) == 0)
			return true;
	}
	if (inet_pton(AF_INET, h, &a4) == 1)
		return ntohl(a4.s_addr) >> 24 == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/*
 * AWS_CONTAINER_CREDENTIALS_FULL_URI: https anywhere, plain http only to a
 * loopback host or the ECS / EKS Pod Identity agents (as the SDKs allow).
 */
static bool ecs_full_uri_allowed(const char *uri)
{
	bool https = strncasecmp(uri, "https://", 8) == 0;
	if (!https && strncasecmp(uri, "http://", 7) != 0)
		return false;
	const char *a = uri + (https ? 8 : 7);
	size_t alen = strcspn(a, "/?#");
	if (alen == 0 || memchr(a, '@', alen))
		return false; /* no userinfo tricks: "http://127.0.0.1@evil" */
	if (https)
		return true;
	const char *aend = a + alen, *host = a, *hend, *rest;
	if (*a == '[') {
		host = a + 1;
		hend = memchr(host, ']', alen - 1);
		if (!hend)
			return false;
		rest = hend + 1;
	} else {
		hend = memchr(a, ':', alen);
		if (!hend)
			hend = aend;
		rest = hend;
	}
	if (rest < aend && (*rest != ':' || rest + 1 == aend))
		return false;
	for (const char *c = rest + 1; c < aend; c++) {
		if (*c < '0' || *c > '9')
			return false; /* the port */
	}
	return host_allowed(host, (size_t)(hend - host));
}

/* 0 (configured), -ENOENT (not configured), -EINVAL (bad variables), -ENOMEM. */
static int ecs_setup(struct creds_provider *p)
{
	const char *rel = nonempty(getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
	const char *full = nonempty(getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
	const char *tfile = nonempty(getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
	const char *token = nonempty(getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
	struct buf url;
	int rc = 0;

	if (!rel && !full)
		return -ENOENT;
	buf_init(&url, BUF_CAP_SMALL);
	if (rel && rel[0] != '/') {
		log_error("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
		return -EINVAL;
	}
	if (!rel && !ecs_full_uri_allowed(full)) {
		log_error("AWS_CONTAINER_CREDENTIALS_FULL_URI must use https or a loopback host");
		return -EINVAL;
	}
	rc = rel ? buf_printf(&url, "%s%s", ECS_HOST, rel) : buf_addstr(&url, full);
	if (rc < 0)
		return rc;
	p->ecs_url = buf_take(&url);
	if (tfile && !(p->ecs_token_file = strdup(tfile)))
		return -ENOMEM;
	if (!tfile && token && !(p->ecs_token = strdup(token)))
		return -ENOMEM;
	return 0;
}

/* The first line of the role listing, checked against IAM's name alphabet. */
static int imds_role(char *list, const char **out)
{
	list[strcspn(list, "\r\n")] = '\0';
	size_t n = strlen(list);
	if (n == 0 || n > 128 ||
	    strspn(list, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-") !=
		    n) {
		log_warn("imds: unexpected IAM role listing");
		return -EPROTO;
	}
	*out = list;
	return 0;
}

/* IMDSv2: PUT a session token, GET the role name, GET the role's credentials. */
static int imds_fetch(struct creds_provider *p, struct creds *out)
{
	const char *ttl = IMDS_TTL_HEADER, *role = NULL, *auth = NULL;
	char *token = NULL, *hdr = NULL, *roles = NULL, *doc = NULL;
	size_t len = 0;
	struct buf url;

	buf_init(&url, BUF_CAP_SMALL);
	int rc = buf_printf(&url, "%s%s", p->imds_endpoint, IMDS_TOKEN_PATH);
	if (rc == 0)
		rc = creds_http(p, "PUT", buf_str(&url), &ttl, 1, "imds token", &token, &len);
	if (rc == 0) {
		token[rtrim(token, token + len) - token] = '\0';
		rc = header_line(IMDS_TOKEN_HEADER, token, &hdr);
		if (rc == -EINVAL)
			rc = -EPROTO;
		auth = hdr;
	}
	buf_reset(&url);
	if (rc == 0)
		rc = buf_printf(&url, "%s%s", p->imds_endpoint, IMDS_CREDS_PATH);
	if (rc == 0)
		rc = creds_http(p, "GET", buf_str(&url), &auth, 1, "imds role", &roles, &len);
	if (rc == 0)
		rc = imds_role(roles, &role);
	if (rc == 0)
		rc = buf_addstr(&url, role);
	if (rc == 0)
		rc = creds_http(p, "GET", buf_str(&url), &auth, 1, "imds", &doc, &len);
	if (rc == 0)
		rc = creds_parse_json(doc, len, "imds", out);
	secret_free(doc);
	free(roles);
	secret_free(hdr);
	secret_free(token);
	buf_cleanup(&url);
	return rc;
}

/* 0 (enabled), -ENOENT (disabled), -EINVAL (bad endpoint), -ENOMEM. */
static int imds_setup(struct creds_provider *p, const struct creds_config *cfg)
{
	const char *off = getenv("AWS_EC2_METADATA_DISABLED");
	const char *ep = nonempty(getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"));
	const char *mode = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");

	if (cfg->no_imds || (off && strcasecmp(off, "true") == 0))
		return -ENOENT;
	if (!ep)
		ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_ENDPOINT_IPV6
							   : IMDS_ENDPOINT_IPV4;
	if (strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0) {
		log_error("AWS_EC2_METADATA_SERVICE_ENDPOINT must be an http or https URL");
		return -EINVAL;
	}
	size_t n = strlen(ep);
	while (n > 0 && ep[n - 1] == '/')
		n--;
	p->imds_endpoint = strndup(ep, n);
	return p->imds_endpoint ? 0 : -ENOMEM;
}

static int source_fetch(struct creds_provider *p, struct creds *out)
{
	switch (p->src) {
	case SRC_ECS:
		return ecs_fetch(p, out);
	case SRC_IMDS:
		return imds_fetch(p, out);
	default:
		return -ENOENT; /* static credentials never expire */
	}
}

/* ---- the chain ---- */

static int source_set(struct creds_provider *p, enum creds_src src, const char *name)
{
	p->src = src;
	p->source = strdup(name);
	return p->source ? 0 : -ENOMEM;
}

/* Errors that mean "no metadata service here" rather than "it failed". */
static bool unreachable(int rc)
{
	return rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EHOSTUNREACH ||
	       rc == -ENETUNREACH || rc == -ECONNRESET || rc == -EIO;
}

/* ECS, then IMDS. A configured ECS endpoint that fails is final, as in the SDKs. */
static int network_sources(struct creds_provider *p, const struct creds_config *cfg)
{
	char eb[64];

	int rc = ecs_setup(p);
	if (rc == 0) {
		rc = ecs_fetch(p, &p->cur);
		if (rc < 0) {
			log_error("ecs: cannot get container credentials: %s",
				  errstr(rc, eb, sizeof(eb)));
			return rc == -ENOENT ? -EIO : rc;
		}
		return source_set(p, SRC_ECS, "ecs");
	}
	if (rc != -ENOENT)
		return rc;
	rc = imds_setup(p, cfg);
	if (rc < 0)
		return rc;
	rc = imds_fetch(p, &p->cur);
	if (rc == 0)
		return source_set(p, SRC_IMDS, "imds");
	if (rc == -ENOMEM)
		return rc;
	if (unreachable(rc))
		log_info("imds: no instance metadata: %s", errstr(rc, eb, sizeof(eb)));
	else
		log_warn("imds: no credentials from instance metadata: %s",
			 errstr(rc, eb, sizeof(eb)));
	return -ENOENT;
}

static int chain_resolve(struct creds_provider *p, const struct creds_config *cfg)
{
	int rc = pair_source("options", cfg->access_key, cfg->secret_key, cfg->session_token,
			     &p->cur);
	if (rc != -ENOENT)
		return rc < 0 ? rc : source_set(p, SRC_OPTIONS, "options");
	rc = pair_source("environment", getenv("AWS_ACCESS_KEY_ID"),
			 getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"), &p->cur);
	if (rc != -ENOENT)
		return rc < 0 ? rc : source_set(p, SRC_ENV, "environment");
	rc = profile_source(p, cfg);
	if (rc != -ENOENT || !p->hc)
		return rc;
	return network_sources(p, cfg);
}

int creds_provider_new(const struct creds_config *cfg, struct http_client *hc,
		       struct creds_provider **out)
{
	static const struct creds_config none = { 0 };

	struct creds_provider *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->hc = hc;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);

	int rc = chain_resolve(p, cfg ? cfg : &none);
	if (rc < 0) {
		if (rc == -ENOENT)
			log_info("no AWS credentials found (tried options, environment, shared "
				 "files%s)",
				 hc ? ", ecs and imds" : "");
		creds_provider_free(p);
		return rc;
	}
	log_info("AWS credentials from %s", p->source);
	*out = p;
	return 0;
}

void creds_provider_free(struct creds_provider *p)
{
	if (!p)
		return;
	creds_cleanup(&p->cur);
	free(p->source);
	free(p->ecs_url);
	secret_free(p->ecs_token);
	free(p->ecs_token_file);
	free(p->imds_endpoint);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static bool creds_valid(const struct creds *c, time_t now)
{
	return c->expiration == 0 || now < c->expiration;
}

/* Run the refresh protocol of the file comment. Called and returns with p->lock held. */
static int refresh_locked(struct creds_provider *p)
{
	struct creds fresh = { 0 };
	char eb[64];
	time_t now = time(NULL);

	if (p->cur.expiration == 0 || now + CREDS_REFRESH_S < p->cur.expiration)
		return 0;
	if (p->refreshing) {
		if (now < p->cur.expiration)
			return 0;
		while (p->refreshing)
			pthread_cond_wait(&p->cond, &p->lock);
		return creds_valid(&p->cur, time(NULL)) ? 0 : p->last_rc;
	}
	if (now < p->retry_after && now < p->cur.expiration)
		return 0;

	p->refreshing = true;
	pthread_mutex_unlock(&p->lock);
	int rc = source_fetch(p, &fresh);
	pthread_mutex_lock(&p->lock);
	p->refreshing = false;
	pthread_cond_broadcast(&p->cond);
	p->last_rc = rc;
	now = time(NULL);
	if (rc == 0) {
		creds_cleanup(&p->cur);
		p->cur = fresh;
		p->retry_after = 0;
		log_debug("refreshed AWS credentials from %s", p->source);
		return 0;
	}
	if (now < p->cur.expiration) {
		p->retry_after = now + CREDS_RETRY_S;
		log_warn("refreshing AWS credentials from %s failed (%s); keeping the current ones "
			 "for %lds",
			 p->source, errstr(rc, eb, sizeof(eb)), (long)(p->cur.expiration - now));
		return 0;
	}
	log_error("AWS credentials from %s expired and refreshing them failed: %s", p->source,
		  errstr(rc, eb, sizeof(eb)));
	return rc;
}

int creds_get(struct creds_provider *p, struct creds *out)
{
	pthread_mutex_lock(&p->lock);
	int rc = refresh_locked(p);
	if (rc == 0)
		rc = creds_set(out, p->cur.access_key, p->cur.secret_key, p->cur.session_token,
			       p->cur.expiration);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

const char *creds_source(const struct creds_provider *p)
{
	return p->source;
}

/* ---- region ---- */

static char *config_region(const char *profile)
{
	struct ini_file conf = { 0 };
	char *region = NULL;
	struct buf sec;

	buf_init(&sec, BUF_CAP_SMALL);
	if (ini_file_load(&conf, "AWS_CONFIG_FILE", "config") < 0 ||
	    buf_printf(&sec, "profile %s", profile) < 0)
		goto out;
	if (ini_file_get(&conf, buf_str(&sec), "region", &region, NULL) < 0)
		goto out;
	if (!nonempty(region) && strcmp(profile, "default") == 0) {
		free(region);
		if (ini_file_get(&conf, "default", "region", &region, NULL) < 0)
			goto out;
	}
out:
	buf_cleanup(&sec);
	ini_file_cleanup(&conf);
	if (nonempty(region))
		return region;
	free(region);
	return NULL;
}

char *creds_region(const char *profile)
{
	profile = nonempty(profile);
	if (!profile)
		profile = nonempty(getenv("AWS_PROFILE"));
	/* The SDKs' order: the environment, then the profile's config. */
	const char *env = nonempty(getenv("AWS_REGION"));
	if (!env)
		env = nonempty(getenv("AWS_DEFAULT_REGION"));
	if (env)
		return strdup(env);
	return config_region(profile ? profile : "default");
}
