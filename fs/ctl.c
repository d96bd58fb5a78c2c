// SPDX-License-Identifier: MIT
/*
 * s3vfs-ctl: a command-line driver of the wire layer, for developers,
 * administrators and the integration tests (s3vfs-ctl ls s3://bucket/prefix).
 * It owns argument parsing and output formats only; every request goes
 * through s3/ (s3.h, ddb.h), so the tests that drive it test the wire layer.
 *
 * Exit status: 0 success, 1 failure, 2 usage, 3 no such key/item/table,
 * 4 a conditional write's condition failed (DynamoDB
 * ConditionalCheckFailedException, S3 PreconditionFailed).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "s3vfs/creds.h"
#include "s3vfs/ddb.h"
#include "s3vfs/http.h"
#include "s3vfs/log.h"
#include "s3vfs/s3.h"
#include "s3vfs/stats.h"

#define CTL_MAX_META 32

struct ctl {
	/* options */
	const char *endpoint;
	const char *region;
	const char *profile;
	const char *ddb_endpoint;
	const char *stats_file;
	const char *content_type;
	const char *if_none_match;
	const char *if_match;
	const char *range;
	const char *cond;
	const char *names;
	const char *values;
	struct s3_meta meta[CTL_MAX_META];
	size_t nmeta;
	bool path_style;
	bool md5;
	bool replace;
	bool recursive;
	bool consistent;
	bool insecure;
	const char *ca_file;
	uint64_t part_size;
	int jobs;
	const char *delimiter;
	/* state */
	struct stats stats;
	struct http_client *http;
	struct creds_provider *creds;
	struct retry_policy retry;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: s3vfs-ctl [options] COMMAND ARGS\n"
		"\n"
		"S3 commands (URL s3://BUCKET/KEY):\n"
		"  ls URL                 list keys under a prefix (--delimiter / for one level)\n"
		"  head URL               print an object's attributes as JSON\n"
		"  get URL [FILE]         download (to stdout without FILE); --range A-B,\n"
		"                         --if-none-match ETAG, --if-match ETAG\n"
		"  put URL FILE           upload (FILE '-' reads stdin); --meta k=v, "
		"--content-type,\n"
		"                         --md5, --if-none-match '*'\n"
		"  mpu-put URL FILE       multipart upload; --part-size BYTES, --jobs N, --md5\n"
		"  mpu-ls URL             in-progress multipart uploads under a prefix\n"
		"  mpu-abort URL ID       abort a multipart upload\n"
		"  cp URL URL             server-side copy; --replace with --meta/--content-type\n"
		"  rm URL...              delete keys (-r: everything under each prefix)\n"
		"  mb URL                 create a bucket\n"
		"DynamoDB commands (JSON in DynamoDB's attribute-value form):\n"
		"  ddb-create TABLE HASHKEY    create a PAY_PER_REQUEST table\n"
		"  ddb-get TABLE KEY           print the item (--consistent)\n"
		"  ddb-put TABLE ITEM          put (--cond EXPR --names JSON --values JSON)\n"
		"  ddb-update TABLE KEY EXPR   update (same condition options)\n"
		"  ddb-delete TABLE KEY        delete\n"
		"\n"
		"options: --endpoint URL --region R --path-style --profile P --ddb-endpoint URL\n"
		"         --ca-file FILE --insecure --stats-file FILE -d (debug log) --version\n");
}

static int exit_code(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == -ENOENT)
		return 3;
	if (rc == -ECANCELED || rc == -EAGAIN)
		return 4;
	return 1;
}

static int fail(const char *what, const char *arg, int rc, const struct aws_error *err)
{
	char detail[512] = "";
	if (err && (err->status || err->code[0]))
		aws_error_str(err, detail, sizeof(detail));
	fprintf(stderr, "s3vfs-ctl: %s %s: %s%s%s\n", what, arg ? arg : "", strerror(-rc),
		detail[0] ? ": " : "", detail);
	return exit_code(rc);
}

/* "s3://bucket/key" -> bucket and key (key may be ""). */
static int parse_url(const char *url, char *bucket, size_t blen, const char **key)
{
	if (strncmp(url, "s3://", 5) != 0)
		return -EINVAL;
	const char *b = url + 5;
	size_t n = strcspn(b, "/");
	if (n == 0 || n >= blen)
		return -EINVAL;
	memcpy(bucket, b, n);
	bucket[n] = '\0';
	*key = b[n] == '/' ? b + n + 1 : "";
	return 0;
}

static int s3_open(struct ctl *c, const char *url, struct s3_client **out, const char **key)
{
	char bucket[256];
	int rc = parse_url(url, bucket, sizeof(bucket), key);
	if (rc < 0) {
		fprintf(stderr, "s3vfs-ctl: not an s3://BUCKET/KEY URL: %s\n", url);
		return rc;
	}
	struct s3_config cfg = {
		.endpoint = c->endpoint,
		.region = c->region,
		.bucket = bucket,
		.path_style = c->path_style,
	};
	rc = s3_client_new(&cfg, c->http, c->creds, &c->stats, &c->retry, out);
	if (rc < 0)
		fprintf(stderr, "s3vfs-ctl: bad endpoint or bucket name\n");
	return rc;
}

static void print_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* ---- S3 commands -------------------------------------------------------- */

static int on_ls(void *arg, const struct s3_list_entry *e)
{
	(void)arg;
	if (e->is_prefix)
		printf("PRE %s\n", e->key);
	else
		printf("%" PRIu64 " %s %lld %s\n", e->size, e->etag, (long long)e->last_modified,
		       e->key);
	return 0;
}

static int cmd_ls(struct ctl *c, int argc, char **argv)
{
	struct s3_client *s3 = NULL;
	struct aws_error err;
	const char *key;
	int rc;

	if (argc != 1)
		return -EINVAL;
	rc = s3_open(c, argv[0], &s3, &key);
	if (rc < 0)
		return 2;
	rc = s3_list(s3, key, c->delimiter, on_ls, NULL, &err);
	s3_client_free(s3);
	return rc < 0 ? fail("ls", argv[0], rc, &err) : 0;
}

static void print_info(const struct s3_object_info *i)
{
	printf("{\"size\": %" PRIu64 ", \"etag\": ", i->size);
	print_json_string(stdout, i->etag);
	printf(", \"last_modified\": %lld, \"content_type\": ", (long long)i->last_modified);
	print_json_string(stdout, i->content_type);
	printf(", \"meta\": {");
	for (size_t k = 0; k < i->nmeta; k++) {
		printf("%s", k ? ", " : "");
		print_json_string(stdout, i->meta[k].name);
		printf(": ");
		print_json_string(stdout, i->meta[k].value);
	}
	printf("}}\n");
}

static int cmd_head(struct ctl *c, int argc, char **argv)
{
	struct s3_object_info info = { 0 };
	struct s3_client *s3 = NULL;
	struct aws_error err;
	const char *key;
	int rc;

	if (argc != 1)
		return -EINVAL;
	if (s3_open(c, argv[0], &s3, &key) < 0)
		return 2;
	rc = s3_head(s3, key, c->if_none_match, &info, &err);
	if (rc == 0 && info.not_modified)
		fprintf(stderr, "s3vfs-ctl: not modified\n");
	else if (rc == 0)
		print_info(&info);
	s3_object_info_cleanup(&info);
	s3_client_free(s3);
	return rc < 0 ? fail("head", argv[0], rc, &err) : 0;
}

static int write_sink(void *arg, const void *data, size_t n)
{
	int fd = *(int *)arg;
	const char *p = data;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int parse_range(const char *s, struct s3_get_opts *o)
{
	char *end = NULL;
	errno = 0;
	unsigned long long a = strtoull(s, &end, 10);
	if (errno || end == s || *end != '-')
		return -EINVAL;
	const char *bs = end + 1;
	unsigned long long b = strtoull(bs, &end, 10);
	if (errno || end == bs || *end || b < a)
		return -EINVAL;
	o->offset = a;
	o->len = b - a + 1;
	return 0;
}

static int cmd_get(struct ctl *c, int argc, char **argv)
{
	struct s3_get_opts o = { .if_none_match = c->if_none_match, .if_match = c->if_match };
	struct s3_object_info info = { 0 };
	struct s3_client *s3 = NULL;
	struct aws_error err;
	const char *key;
	int fd = 1, rc;

	if (argc < 1 || argc > 2 || (c->range && parse_range(c->range, &o) < 0))
		return -EINVAL;
	if (s3_open(c, argv[0], &s3, &key) < 0)
		return 2;
	if (argc == 2 && strcmp(argv[1], "-") != 0) {
		fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = -errno;
			s3_client_free(s3);
			return fail("open", argv[1], rc, NULL);
		}
	}
	rc = s3_get(s3, key, &o, write_sink, &fd, &info, &err);
	if (rc == 0 && info.not_modified)
		fprintf(stderr, "s3vfs-ctl: not modified\n");
	if (fd != 1 && close(fd) < 0 && rc == 0)
		rc = -errno;
	s3_object_info_cleanup(&info);
	s3_client_free(s3);
	return rc < 0 ? fail("get", argv[0], rc, &err) : 0;
}

/* Open FILE ('-' = stdin, copied to a temporary file so it can be re-read on retry). */
static int open_input(const char *path, int *out_fd, uint64_t *out_len)
{
	struct stat st;
	int fd;

	if (strcmp(path, "-") == 0) {
		char tmpl[] = "/tmp/s3vfs-ctl-XXXXXX";
		fd = mkstemp(tmpl);
		if (fd < 0)
			return -errno;
		unlink(tmpl);
		char chunk[65536];
		ssize_t n;
		while ((n = read(0, chunk, sizeof(chunk))) > 0) {
			if (write_sink(&fd, chunk, (size_t)n) < 0)
				break;
		}
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	*out_fd = fd;
	*out_len = (uint64_t)st.st_size;
	return 0;
}

static void put_opts(const struct ctl *c, struct s3_put_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->content_type = c->content_type;
	o->meta = c->meta;
	o->nmeta = c->nmeta;
	o->content_md5 = c->md5;
	o->if_none_match = c->if_none_match;
	o->if_match = c->if_match;
}

static int cmd_put(struct ctl *c, int argc, char **argv)
{
	struct s3_client *s3 = NULL;
	struct s3_put_opts o;
	struct aws_error err;
	char etag[S3_ETAG_MAX];
	const char *key;
	uint64_t len;
	int fd, rc;

	if (argc != 2)
		return -EINVAL;
	rc = open_input(argv[1], &fd, &len);
	if (rc < 0)
		return fail("open", argv[1], rc, NULL);
	if (s3_open(c, argv[0], &s3, &key) < 0) {
		close(fd);
		return 2;
	}
	put_opts(c, &o);
	struct http_body body = { .fd = fd, .offset = 0, .len = len };
	rc = s3_put(s3, key, &body, &o, etag, &err);
	if (rc == 0)
		printf("%s\n", etag);
	close(fd);
	s3_client_free(s3);
	return rc < 0 ? fail("put", argv[0], rc, &err) : 0;
}

struct mpu_job {
	struct s3_client *s3;
	const char *key;
	const char *upload_id;
	bool md5;
	int fd;
	uint64_t len;
	uint64_t part_size;
	int nparts;
	char (*etags)[S3_ETAG_MAX];
	pthread_mutex_t lock;
	int next; /* protected by lock */
	int rc;	  /* protected by lock */
	struct aws_error err;
};

static void *mpu_worker(void *arg)
{
	struct mpu_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		int part = j->rc == 0 && j->next < j->nparts ? j->next++ : -1;
		pthread_mutex_unlock(&j->lock);
		if (part < 0)
			return NULL;
		uint64_t off = (uint64_t)part * j->part_size;
		uint64_t n = j->len - off < j->part_size ? j->len - off : j->part_size;
		struct http_body body = { .fd = j->fd, .offset = off, .len = n };
		struct aws_error err;
		int rc = s3_mpu_part(j->s3, j->key, j->upload_id, part + 1, &body, j->md5,
				     j->etags[part], &err);
		if (rc < 0) {
			pthread_mutex_lock(&j->lock);
			if (j->rc == 0) {
				j->rc = rc;
				j->err = err;
			}
			pthread_mutex_unlock(&j->lock);
		}
	}
}

static int mpu_run(struct ctl *c, struct mpu_job *j)
{
	pthread_t th[64];
	int n = c->jobs < 1 ? 1 : c->jobs > 64 ? 64 : c->jobs;
	int started = 0;

	for (; started < n && started < j->nparts; started++) {
		if (pthread_create(&th[started], NULL, mpu_worker, j) != 0)
			break;
	}
	if (started == 0)
		return -EAGAIN;
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return j->rc;
}

static int cmd_mpu_put(struct ctl *c, int argc, char **argv)
{
	struct mpu_job j = { .part_size = c->part_size, .md5 = c->md5 };
	struct s3_put_opts o;
	char *upload_id = NULL, etag[S3_ETAG_MAX];
	const char **etags = NULL;
	int rc;

	if (argc != 2 || j.part_size < S3_PART_MIN)
		return -EINVAL;
	rc = open_input(argv[1], &j.fd, &j.len);
	if (rc < 0)
		return fail("open", argv[1], rc, NULL);
	if (s3_open(c, argv[0], &j.s3, &j.key) < 0) {
		close(j.fd);
		return 2;
	}
	j.nparts = j.len ? (int)((j.len + j.part_size - 1) / j.part_size) : 1;
	put_opts(c, &o);
	rc = j.nparts > S3_PARTS_MAX ? -EFBIG : s3_mpu_create(j.s3, j.key, &o, &upload_id, &j.err);
	if (rc < 0)
		goto out;
	j.upload_id = upload_id;
	j.etags = calloc((size_t)j.nparts, sizeof(*j.etags));
	etags = calloc((size_t)j.nparts, sizeof(*etags));
	pthread_mutex_init(&j.lock, NULL);
	rc = j.etags && etags ? mpu_run(c, &j) : -ENOMEM;
	for (int i = 0; rc == 0 && i < j.nparts; i++)
		etags[i] = j.etags[i];
	if (rc == 0)
		rc = s3_mpu_complete(j.s3, j.key, upload_id, etags, j.nparts, etag, &j.err);
	if (rc < 0) {
		struct aws_error aerr;
		if (s3_mpu_abort(j.s3, j.key, upload_id, &aerr) < 0)
			fprintf(stderr, "s3vfs-ctl: abort of upload %s failed\n", upload_id);
	} else {
		printf("%s\n", etag);
	}
	pthread_mutex_destroy(&j.lock);
out:
	free(etags);
	free(j.etags);
	free(upload_id);
	close(j.fd);
	s3_client_free(j.s3);
	return rc < 0 ? fail("mpu-put", argv[0], rc, &j.err) : 0;
}

static int on_mpu_ls(void *arg, const struct s3_list_entry *e)
{
	(void)arg;
	printf("%s %lld %s\n", e->upload_id ? e->upload_id : "", (long long)e->last_modified,
	       e->key);
	return 0;
}

static int cmd_mpu_ls(struct ctl *c, int argc, char **argv)
{
	struct s3_client *s3 = NULL;
	struct aws_error err;
	const char *key;
	int rc;

	if (argc != 1)
		return -EINVAL;
	if (s3_open(c, argv[0], &s3, &key) < 0)
		return 2;
	rc = s3_mpu_list(s3, key, on_mpu_ls, NULL, &err);
	s3_client_free(s3);
	return rc < 0 ? fail("mpu-ls", argv[0], rc, &err) : 0;
}

static int cmd_mpu_abort(struct ctl *c, int argc, char **argv)
{
	struct s3_client *s3 = NULL;
	struct aws_error err;
	const char *key;
	int rc;

	if (argc != 2)
		return -EINVAL;
	if (s3_open(c, argv[0], &s3, &key) < 0)
		return 2;
	rc = s3_mpu_abort(s3, key, argv[1], &err);
	s3_client_free(s3);
	return rc < 0 ? fail("mpu-abort", argv[0], rc, &err) : 0;
}

static int cmd_cp(struct ctl *c, int argc, char **argv)
{
	struct s3_client *s3 = NULL;
	struct s3_put_opts o;
	struct aws_error err;
	char bucket2[256], etag[S3_ETAG_MAX];
	const char *src, *dst;
	int rc;

	if (argc != 2)
		return -EINVAL;
	if (s3_open(c, argv[0], &s3, &src) < 0)
		return 2;
	if (parse_url(argv[1], bucket2, sizeof(bucket2), &dst) < 0 ||
	    strcmp(bucket2, s3_client_bucket(s3)) != 0) {
		s3_client_free(s3);
		fprintf(stderr, "s3vfs-ctl: cp works within one bucket\n");
		return 2;
	}
	put_opts(c, &o);
	rc = s3_copy(s3, src, dst, c->replace ? &o : NULL, c->if_match, etag, &err);
	if (rc == 0)
		printf("%s\n", etag);
	s3_client_free(s3);
	return rc < 0 ? fail("cp", argv[0], rc, &err) : 0;
}

static int cmd_rm(struct ctl *c, int argc, char **argv)
{
	struct aws_error err;
	int rc = 0;

	for (int i = 0; i < argc && rc == 0; i++) {
		struct s3_client *s3 = NULL;
		struct s3_key_list l = { 0 };
		const char *key;
		if (s3_open(c, argv[i], &s3, &key) < 0)
			return 2;
		if (c->recursive) {
			rc = s3_list_keys(s3, key, &l, &err);
			if (rc == 0)
				rc = s3_delete_many(s3, (const char *const *)l.keys, l.n, &err);
			s3_key_list_cleanup(&l);
		} else {
			rc = s3_delete(s3, key, &err);
		}
		s3_client_free(s3);
		if (rc < 0)
			return fail("rm", argv[i], rc, &err);
	}
	return 0;
}

static int cmd_mb(struct ctl *c, int argc, char **argv)
{
	struct s3_client *s3 = NULL;
	struct aws_error err;
	const char *key;
	int rc;

	if (argc != 1)
		return -EINVAL;
	if (s3_open(c, argv[0], &s3, &key) < 0)
		return 2;
	rc = s3_bucket_create(s3, &err);
	s3_client_free(s3);
	return rc < 0 ? fail("mb", argv[0], rc, &err) : 0;
}

/* ---- DynamoDB commands -------------------------------------------------- */

static int ddb_open(struct ctl *c, struct ddb_client **out)
{
	struct ddb_config cfg = { .endpoint = c->ddb_endpoint, .region = c->region };
	int rc = ddb_client_new(&cfg, c->http, c->creds, &c->stats, &c->retry, out);
	if (rc < 0)
		fprintf(stderr, "s3vfs-ctl: bad DynamoDB endpoint\n");
	return rc;
}

static json_t *parse_json_arg(const char *what, const char *s)
{
	json_error_t je;
	json_t *j = s ? json_loads(s, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (s && !j)
		fprintf(stderr, "s3vfs-ctl: %s is not valid JSON: %s\n", what, je.text);
	return j;
}

/* The condition options as a ddb_cond (the JSON parts owned by the caller). */
static int make_cond(const struct ctl *c, struct ddb_cond *cond)
{
	cond->condition = c->cond;
	cond->names = parse_json_arg("--names", c->names);
	cond->values = parse_json_arg("--values", c->values);
	if ((c->names && !cond->names) || (c->values && !cond->values)) {
		json_decref(cond->names);
		json_decref(cond->values);
		return -EINVAL;
	}
	return 0;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	if (s)
		printf("%s\n", s);
	free(s);
}

/* One DynamoDB command: op is "create", "get", "put", "update" or "delete". */
static int cmd_ddb(struct ctl *c, const char *op, int argc, char **argv)
{
	struct ddb_client *d = NULL;
	struct ddb_cond cond = { 0 };
	struct aws_error err;
	json_t *arg = NULL, *out = NULL;
	int want = strcmp(op, "update") == 0 ? 3 : 2;
	int rc = 0;

	aws_error_clear(&err);
	if (argc != want)
		return -EINVAL;
	if (ddb_open(c, &d) < 0)
		return 2;
	if (strcmp(op, "create") != 0) {
		arg = parse_json_arg("the key/item", argv[1]);
		if (!arg || make_cond(c, &cond) < 0) {
			json_decref(arg);
			ddb_client_free(d);
			return 2;
		}
	}
	if (strcmp(op, "create") == 0)
		rc = ddb_create_table(d, argv[0], argv[1], NULL, 0, &err);
	else if (strcmp(op, "get") == 0)
		rc = ddb_get_item(d, argv[0], arg, c->consistent, &out, &err);
	else if (strcmp(op, "put") == 0)
		rc = ddb_put_item(d, argv[0], arg, &cond, &err);
	else if (strcmp(op, "update") == 0)
		rc = ddb_update_item(d, argv[0], arg, argv[2], &cond, &out, &err);
	else
		rc = ddb_delete_item(d, argv[0], arg, &cond, &err);
	if (rc == 0 && strcmp(op, "create") == 0)
		rc = ddb_wait_active(d, argv[0], 30000, &err);
	if (rc == 0 && out)
		print_json(out);
	json_decref(out);
	json_decref(arg);
	json_decref(cond.names);
	json_decref(cond.values);
	ddb_client_free(d);
	return rc < 0 ? fail(op, argv[0], rc, &err) : 0;
}

/* ---- main --------------------------------------------------------------- */

static int parse_size(const char *s, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	else if (*end)
		return -EINVAL;
	if (shift && end[1])
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

static int add_meta(struct ctl *c, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv || c->nmeta >= CTL_MAX_META)
		return -EINVAL;
	/* Borrowed from argv: name is copied to cut at '='. */
	char *name = strndup(kv, (size_t)(eq - kv));
	if (!name)
		return -ENOMEM;
	c->meta[c->nmeta].name = name;
	c->meta[c->nmeta].value = (char *)(eq + 1);
	c->nmeta++;
	return 0;
}

enum {
	OPT_ENDPOINT = 256,
	OPT_REGION,
	OPT_PATH_STYLE,
	OPT_PROFILE,
	OPT_DDB,
	OPT_STATS,
	OPT_CTYPE,
	OPT_META,
	OPT_MD5,
	OPT_INM,
	OPT_IM,
	OPT_RANGE,
	OPT_REPLACE,
	OPT_PART,
	OPT_JOBS,
	OPT_DELIM,
	OPT_COND,
	OPT_NAMES,
	OPT_VALUES,
	OPT_CONSISTENT,
	OPT_CA,
	OPT_INSECURE,
	OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
	{ "region", required_argument, NULL, OPT_REGION },
	{ "path-style", no_argument, NULL, OPT_PATH_STYLE },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "ddb-endpoint", required_argument, NULL, OPT_DDB },
	{ "stats-file", required_argument, NULL, OPT_STATS },
	{ "content-type", required_argument, NULL, OPT_CTYPE },
	{ "meta", required_argument, NULL, OPT_META },
	{ "md5", no_argument, NULL, OPT_MD5 },
	{ "if-none-match", required_argument, NULL, OPT_INM },
	{ "if-match", required_argument, NULL, OPT_IM },
	{ "range", required_argument, NULL, OPT_RANGE },
	{ "replace", no_argument, NULL, OPT_REPLACE },
	{ "part-size", required_argument, NULL, OPT_PART },
	{ "jobs", required_argument, NULL, OPT_JOBS },
	{ "delimiter", required_argument, NULL, OPT_DELIM },
	{ "cond", required_argument, NULL, OPT_COND },
	{ "names", required_argument, NULL, OPT_NAMES },
	{ "values", required_argument, NULL, OPT_VALUES },
	{ "consistent", no_argument, NULL, OPT_CONSISTENT },
	{ "ca-file", required_argument, NULL, OPT_CA },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Set one option; 1 = exit now with success, 0 = go on, <0 = usage error. */
static int set_option(struct ctl *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_ENDPOINT:
		c->endpoint = arg;
		break;
	case OPT_REGION:
		c->region = arg;
		break;
	case OPT_PATH_STYLE:
		c->path_style = true;
		break;
	case OPT_PROFILE:
		c->profile = arg;
		break;
	case OPT_DDB:
		c->ddb_endpoint = arg;
		break;
	case OPT_STATS:
		c->stats_file = arg;
		break;
	case OPT_CTYPE:
		c->content_type = arg;
		break;
	case OPT_META:
		return add_meta(c, arg);
	case OPT_MD5:
		c->md5 = true;
		break;
	case OPT_INM:
		c->if_none_match = arg;
		break;
	case OPT_IM:
		c->if_match = arg;
		break;
	case OPT_RANGE:
		c->range = arg;
		break;
	case OPT_REPLACE:
		c->replace = true;
		break;
	case OPT_PART:
		return parse_size(arg, &c->part_size);
	case OPT_JOBS: {
		uint64_t j;
		if (parse_size(arg, &j) < 0 || j < 1 || j > 64)
			return -EINVAL;
		c->jobs = (int)j;
		break;
	}
	case OPT_DELIM:
		c->delimiter = arg;
		break;
	case OPT_COND:
		c->cond = arg;
		break;
	case OPT_NAMES:
		c->names = arg;
		break;
	case OPT_VALUES:
		c->values = arg;
		break;
	case OPT_CONSISTENT:
		c->consistent = true;
		break;
	case OPT_CA:
		c->ca_file = arg;
		break;
	case OPT_INSECURE:
		c->insecure = true;
		break;
	case 'r':
		c->recursive = true;
		break;
	case 'd':
		log_set_level(LOG_LVL_DEBUG);
		break;
	case 'h':
		usage(stdout);
		return 1;
	case OPT_VERSION:
		printf("s3vfs-ctl %s\n", S3VFS_VERSION);
		return 1;
	default:
		return -EINVAL;
	}
	return 0;
}

static int dispatch(struct ctl *c, const char *cmd, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct ctl *c, int argc, char **argv);
	} s3_cmds[] = {
		{ "ls", cmd_ls },
		{ "head", cmd_head },
		{ "get", cmd_get },
		{ "put", cmd_put },
		{ "mpu-put", cmd_mpu_put },
		{ "mpu-ls", cmd_mpu_ls },
		{ "mpu-abort", cmd_mpu_abort },
		{ "cp", cmd_cp },
		{ "rm", cmd_rm },
		{ "mb", cmd_mb },
	};
	for (size_t i = 0; i < ARRAY_SIZE(s3_cmds); i++) {
		if (strcmp(cmd, s3_cmds[i].name) == 0)
			return s3_cmds[i].fn(c, argc, argv);
	}
	if (strncmp(cmd, "ddb-", 4) == 0) {
		static const char *const ops[] = { "create", "get", "put", "update", "delete" };
		for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
			if (strcmp(cmd + 4, ops[i]) == 0)
				return cmd_ddb(c, ops[i], argc, argv);
		}
	}
	return -EINVAL;
}

static void write_stats(const struct ctl *c)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	if (buf_printf(&b, "%s", "") < 0 || stats_to_json(&c->stats, &b) < 0)
		return;
	FILE *f = fopen(c->stats_file, "w");
	if (f) {
		fprintf(f, "%s\n", buf_str(&b));
		fclose(f);
	}
	buf_cleanup(&b);
}

static int setup_clients(struct ctl *c)
{
	struct http_config hc;
	http_config_default(&hc);
	hc.insecure = c->insecure;
	hc.ca_file = c->ca_file;
	int rc = http_client_new(&hc, &c->stats, &c->http);
	if (rc < 0)
		return rc;
	struct creds_config cc = { .profile = c->profile };
	rc = creds_provider_new(&cc, c->http, &c->creds);
	if (rc < 0)
		fprintf(stderr, "s3vfs-ctl: no usable AWS credentials (%s)\n", strerror(-rc));
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl c = { .part_size = 8u << 20, .jobs = 4 };
	int opt, rc;

	stats_init(&c.stats);
	retry_policy_default(&c.retry);
	log_set_level(LOG_LVL_WARN);
	while ((opt = getopt_long(argc, argv, "rdh", long_opts, NULL)) != -1) {
		rc = set_option(&c, opt, optarg);
		if (rc != 0) {
			if (rc < 0)
				usage(stderr);
			return rc > 0 ? 0 : 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	char *region = NULL;
	if (!c.region) {
		region = creds_region(c.profile);
		c.region = region ? region : "us-east-1";
	}
	rc = setup_clients(&c);
	if (rc == 0) {
		rc = dispatch(&c, argv[optind], argc - optind - 1, argv + optind + 1);
		if (rc == -EINVAL) {
			usage(stderr);
			rc = 2;
		}
	} else {
		rc = exit_code(rc);
	}
	if (c.stats_file)
		write_stats(&c);
	creds_provider_free(c.creds);
	http_client_free(c.http);
	for (size_t i = 0; i < c.nmeta; i++)
		free(c.meta[i].name);
	free(region);
	return rc;
}
