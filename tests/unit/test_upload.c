// SPDX-License-Identifier: MIT
/*
 * test_upload: the upload engine (fs/upload.c) against a real S3 server and
 * the real metadata cache: a small PUT with metadata; a 40 MiB multipart
 * upload in 8 MiB parts, 4 in flight, with bounded memory; permanent errors
 * that keep nothing; the failure path against a dead endpoint (-EIO, a
 * journal row, a staged snapshot) and its resumption by a second engine on
 * the same cache against the live endpoint, with a leftover multipart upload
 * aborted and orphaned files swept; the newer-write-wins rule; many threads
 * at once. Not a meson unit test: it needs a server, given by
 *   S3VFS_TEST_S3_ENDPOINT, S3VFS_TEST_BUCKET, AWS_ACCESS_KEY_ID,
 *   AWS_SECRET_ACCESS_KEY (AWS_REGION optional)
 * and run by tests/integration/test_upload_engine.py, which checks with boto3
 * the objects this program lists on stdout as "object KEY SIZE SHA256".
 * Work files live under a mkdtemp() root, removed at the end.
 */
#include "s3vfs/upload.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "s3vfs/creds.h"
#include "s3vfs/http.h"
#include "s3vfs/log.h"
#include "s3vfs/meta_cache.h"
#include "s3vfs/meta_journal.h"
#include "s3vfs/stats.h"
#include "unit.h"

#define MIB	 (1024u * 1024)
#define CACHE_DB "meta.db"

static char root[] = "/tmp/s3vfs-test-upload-XXXXXX";
static const char *endpoint;
static const char *bucket;
static char dead_endpoint[64];

/* ---- fixtures ------------------------------------------------------------ */

/* One client stack with its own counters. */
struct world {
	struct stats stats;
	struct http_client *http;
	struct creds_provider *creds;
	struct retry_policy retry;
	struct s3_client *s3;
};

static int world_open(struct world *w, const char *ep, const char *bkt)
{
	struct http_config hc;
	struct creds_config cc = { .no_imds = true };
	struct s3_config sc = { .endpoint = ep, .bucket = bkt, .path_style = true };
	int rc = 0;

	memset(w, 0, sizeof(*w));
	stats_init(&w->stats);
	retry_policy_default(&w->retry);
	if (ep == dead_endpoint) { /* fail fast: nobody listens */
		w->retry.max_attempts = 2;
		w->retry.base_ms = 10;
		w->retry.max_backoff_ms = 20;
	}
	sc.region = getenv("AWS_REGION");
	http_config_default(&hc);
	hc.connect_timeout_ms = 3000;
	rc = http_client_new(&hc, &w->stats, &w->http);
	if (rc == 0)
		rc = creds_provider_new(&cc, w->http, &w->creds);
	if (rc == 0)
		rc = s3_client_new(&sc, w->http, w->creds, &w->stats, &w->retry, &w->s3);
	return rc;
}

static void world_close(struct world *w)
{
	s3_client_free(w->s3);
	creds_provider_free(w->creds);
	http_client_free(w->http);
}

/* dir/name in out[4096]; a path too long for it fails the test. */
static char *join(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, 4096, "%s/%s", dir, name);

	CHECK(n > 0 && n < 4096);
	return out;
}

/* A path under root in out[4096]. */
static char *path_of(char *out, const char *name)
{
	return join(out, root, name);
}

static void config(struct upload_config *c, const char *staging)
{
	upload_config_default(c);
	c->multipart_threshold = 8 * MIB;
	c->part_size = 8 * MIB;
	c->parallel = 4;
	c->retry_interval_ms = 60000; /* rounds only when kicked, so tests are deterministic */
	c->staging_dir = staging;
}

static struct meta_cache *cache_open(const char *name)
{
	char dir[4096];
	struct meta_cache *mc = NULL;

	CHECK_INT(meta_cache_open(path_of(dir, name), CACHE_DB, &mc), 0);
	return mc;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void hex(const unsigned char *md, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Write size pseudo-random bytes (seed) to path in 1 MiB steps; out_sha: hex SHA-256. */
static int make_file(const char *path, uint64_t size, uint64_t seed, char out_sha[65])
{
	unsigned char md[32];
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t *buf = malloc(MIB);
	int rc = fd >= 0 && ctx && buf ? 0 : -1;

	if (rc == 0)
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (uint64_t done = 0; rc == 0 && done < size;) {
		size_t n = size - done < MIB ? (size_t)(size - done) : MIB;
		for (size_t i = 0; i < MIB / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		EVP_DigestUpdate(ctx, buf, n);
		rc = write(fd, buf, n) == (ssize_t)n ? 0 : -1;
		done += n;
	}
	if (rc == 0) {
		EVP_DigestFinal_ex(ctx, md, NULL);
		hex(md, 32, out_sha);
	}
	free(buf);
	EVP_MD_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int sha_fd(int fd, char out[65])
{
	unsigned char md[32], buf[65536];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ssize_t n;
	off_t off = 0;

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += n;
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	hex(md, 32, out);
	return n < 0 ? -1 : 0;
}

static void sha_path(const char *path, char out[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	out[0] = '\0';
	if (fd >= 0) {
		CHECK_INT(sha_fd(fd, out), 0);
		close(fd);
	}
}

static int sha_sink(void *arg, const void *data, size_t n)
{
	EVP_DigestUpdate(arg, data, n);
	return 0;
}

/* SHA-256 of an object as GET returns it, "" if it cannot be read. */
static void sha_object(struct world *w, const char *key, char out[65])
{
	unsigned char md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct s3_get_opts go = { 0 };

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	out[0] = '\0';
	if (s3_get(w->s3, key, &go, sha_sink, ctx, NULL, NULL) == 0) {
		EVP_DigestFinal_ex(ctx, md, NULL);
		hex(md, 32, out);
	}
	EVP_MD_CTX_free(ctx);
}

/* Tell the pytest wrapper what to check with boto3. */
static void report_object(const char *key, uint64_t size, const char *sha)
{
	printf("object %s %" PRIu64 " %s\n", key, size, sha);
	fflush(stdout);
}

/* Upload path's file as key (size: the whole file). */
static int up(struct upload_engine *e, const char *key, const char *path,
	      const struct s3_put_opts *opts, char *etag)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = -errno;

	if (fd < 0)
		return rc;
	rc = fstat(fd, &st) == 0 ? 0 : -errno;
	if (rc == 0)
		rc = upload_file(e, key, fd, path, (uint64_t)st.st_size, opts, etag);
	close(fd);
	return rc;
}

/* Files in dir whose names start with prefix and end with suffix. */
static int count_files(const char *dir, const char *prefix, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name), sl = strlen(suffix);
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && len >= sl &&
		    strcmp(de->d_name + len - sl, suffix) == 0)
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static int count_rows(struct meta_cache *mc)
{
	uint64_t n = 0;
	CHECK_INT(meta_journal_count(mc, &n), 0);
	return (int)n;
}

/* The journal row of key (meta_pending_cleanup), 0 or -ENOENT. */
static int find_row(struct meta_cache *mc, const char *key, struct meta_pending *out)
{
	struct meta_pending *rows = NULL;
	size_t n = 0;
	int rc = -ENOENT;

	CHECK_INT(meta_journal_list(mc, &rows, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (rc != 0 && strcmp(rows[i].key, key) == 0) {
			*out = rows[i];
			memset(&rows[i], 0, sizeof(rows[i]));
			rc = 0;
		}
	}
	meta_journal_list_free(rows, n);
	return rc;
}

static int mpu_count_fn(void *arg, const struct s3_list_entry *e)
{
	(*(int *)arg)++;
	return 0;
}

/* Multipart uploads in progress under prefix. */
static int mpu_count(struct world *w, const char *prefix)
{
	int n = 0;
	CHECK_INT(s3_mpu_list(w->s3, prefix, mpu_count_fn, &n, NULL), 0);
	return n;
}

/* ---- tests ------------------------------------------------------------- */

static void test_config(void)
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct world w;
	char staging[4096];

	upload_config_default(&c);
	CHECK_INT(c.multipart_threshold, 16 * MIB);
	CHECK_INT(c.part_size, 16 * MIB);
	CHECK_INT(c.parallel, 4);
	CHECK_INT(c.retry_interval_ms, 5000);
	CHECK(!c.content_md5);
	CHECK(c.staging_dir == NULL);

	CHECK_INT(world_open(&w, endpoint, bucket), 0);
	struct meta_cache *mc = cache_open("cfg");
	CHECK_INT(upload_engine_new(&c, w.s3, mc, NULL, &e), -EINVAL); /* no staging dir */
	config(&c, path_of(staging, "cfg/staging"));
	c.part_size = S3_PART_MIN - 1;
	CHECK_INT(upload_engine_new(&c, w.s3, mc, NULL, &e), -EINVAL);
	config(&c, staging);
	c.parallel = 0;
	CHECK_INT(upload_engine_new(&c, w.s3, mc, NULL, &e), -EINVAL);
	config(&c, staging);
	c.retry_interval_ms = 0;
	CHECK_INT(upload_engine_new(&c, w.s3, mc, NULL, &e), -EINVAL);
	CHECK(e == NULL);
	config(&c, staging);
	CHECK_INT(upload_engine_new(&c, w.s3, mc, NULL, &e), 0);
	struct stat st;
	CHECK_INT(stat(staging, &st), 0); /* created, private */
	CHECK_INT(st.st_mode & 0777, 0700);
	CHECK_INT(upload_engine_pending(e), 0);
	CHECK_INT(upload_engine_drain(e, 10), 0); /* nothing pending, not started */
	CHECK_INT(upload_engine_start(e), 0);
	CHECK_INT(upload_engine_start(e), 0); /* idempotent */
	CHECK_INT(upload_engine_drain(e, 10), 0);
	upload_engine_free(e);
	upload_engine_free(NULL);
	meta_cache_close(mc);
	world_close(&w);
}

static void test_small_put(void)
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct s3_object_info info = { 0 };
	struct world w;
	char staging[4096], src[4096], sha[65], got[65], etag[S3_ETAG_MAX] = "";
	char mode[] = "mode", mval[] = "33188", mtime[] = "mtime", tval[] = "1700000000";
	const struct s3_meta meta[] = { { mode, mval }, { mtime, tval } };
	const struct s3_put_opts po = { .content_type = "text/plain", .meta = meta, .nmeta = 2 };

	CHECK_INT(world_open(&w, endpoint, bucket), 0);
	struct meta_cache *mc = cache_open("small");
	config(&c, path_of(staging, "small/staging"));
	CHECK_INT(upload_engine_new(&c, w.s3, mc, &w.stats, &e), 0);
	CHECK_INT(make_file(path_of(src, "small.src"), 100000, 1, sha), 0);
	CHECK_INT(up(e, "small/obj.txt", src, &po, etag), 0);
	CHECK(etag[0] == '"' && strlen(etag) == 34);
	CHECK_INT(atomic_load(&w.stats.requests[STAT_PUT]), 1);
	CHECK_INT(atomic_load(&w.stats.requests[STAT_MPU_CREATE]), 0);
	CHECK_INT(atomic_load(&w.stats.pending_uploads), 0);
	CHECK_INT(s3_head(w.s3, "small/obj.txt", NULL, &info, NULL), 0);
	CHECK_INT(info.size, 100000);
	CHECK_STR(info.etag, etag);
	CHECK_STR(info.content_type, "text/plain");
	CHECK_STR(s3_object_info_meta(&info, "mode"), "33188");
	CHECK_STR(s3_object_info_meta(&info, "mtime"), "1700000000");
	s3_object_info_cleanup(&info);
	sha_object(&w, "small/obj.txt", got);
	CHECK_STR(got, sha);
	report_object("small/obj.txt", 100000, sha);

	/* An empty file is one PUT with an empty body. */
	CHECK_INT(make_file(path_of(src, "empty.src"), 0, 1, sha), 0);
	CHECK_INT(up(e, "small/empty", src, NULL, NULL), 0);
	report_object("small/empty", 0, sha);
	CHECK_INT(upload_engine_pending(e), 0);
	CHECK_INT(count_rows(mc), 0);
	CHECK_INT(count_files(staging, "upl-", ""), 0); /* success leaves nothing behind */
	upload_engine_free(e);
	meta_cache_close(mc);
	world_close(&w);
}

/* Peak thread count of the process while a test runs (a sampler thread). */
struct sampler {
	pthread_t t;
	_Atomic bool stop;
	_Atomic int peak;
};

static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;

	while (!atomic_load(&s->stop)) {
		int n = thread_count();
		if (n > atomic_load(&s->peak))
			atomic_store(&s->peak, n);
		usleep(500);
	}
	return NULL;
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* Valgrind's own memory counts in the RSS: the bound means nothing there. */
static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "vgpreload");
}

static void test_multipart(void)
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct sampler smp = { 0 };
	struct world w;
	char staging[4096], src[4096], sha[65], got[65], etag[S3_ETAG_MAX] = "";
	const uint64_t size = 40 * MIB;

	CHECK_INT(world_open(&w, endpoint, bucket), 0);
	struct meta_cache *mc = cache_open("mpu");
	config(&c, path_of(staging, "mpu/staging"));
	CHECK_INT(upload_engine_new(&c, w.s3, mc, &w.stats, &e), 0);
	CHECK_INT(make_file(path_of(src, "big.src"), size, 2, sha), 0);

	long rss0 = maxrss_kib();
	CHECK_INT(pthread_create(&smp.t, NULL, sampler_main, &smp), 0);
	usleep(20000);
	int base = atomic_load(&smp.peak);
	CHECK_INT(up(e, "mpu/big.bin", src, NULL, etag), 0);
	atomic_store(&smp.stop, true);
	pthread_join(smp.t, NULL);
	long grew_kib = maxrss_kib() - rss0;

	CHECK(strlen(etag) > 3 && strcmp(etag + strlen(etag) - 3, "-5\"") == 0);
	CHECK_INT(atomic_load(&w.stats.requests[STAT_MPU_CREATE]), 1);
	CHECK_INT(atomic_load(&w.stats.requests[STAT_MPU_PART]), 5);
	CHECK_INT(atomic_load(&w.stats.requests[STAT_MPU_COMPLETE]), 1);
	CHECK_INT(atomic_load(&w.stats.requests[STAT_PUT]), 0);
	/* parts went out together: the caller plus parallel - 1 workers */
	CHECK(atomic_load(&smp.peak) - base >= 3);
	/* and from the file, not from memory: four 8 MiB parts in flight would
	 * take 32 MiB, the file 40 MiB; ASan's quarantine and fake stacks take
	 * a few MiB of their own */
	if (grew_kib >= 16 * 1024)
		fprintf(stderr, "multipart upload grew the peak RSS by %ld KiB\n", grew_kib);
	CHECK(grew_kib < 16 * 1024 || under_valgrind());
	CHECK_INT(mpu_count(&w, "mpu/"), 0);
	sha_object(&w, "mpu/big.bin", got);
	CHECK_STR(got, sha);
	report_object("mpu/big.bin", size, sha);
	CHECK_INT(count_rows(mc), 0);
	CHECK_INT(count_files(staging, "upl-", ""), 0); /* its record is gone too */
	upload_engine_free(e);
	meta_cache_close(mc);
	world_close(&w);
}

static void test_permanent_errors(void)
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct world w, nob;
	char staging[4096], src[4096], sha[65], key[1100], nobkt[128];
	struct s3_put_opts cond = { .if_none_match = "*" };

	CHECK_INT(world_open(&w, endpoint, bucket), 0);
	struct meta_cache *mc = cache_open("perm");
	config(&c, path_of(staging, "perm/staging"));
	CHECK_INT(upload_engine_new(&c, w.s3, mc, &w.stats, &e), 0);
	CHECK_INT(make_file(path_of(src, "perm.src"), 5000, 3, sha), 0);

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	CHECK_INT(up(e, key, src, NULL, NULL), -ENAMETOOLONG);
	CHECK_INT(up(e, "", src, NULL, NULL), -EINVAL);
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	CHECK_INT(upload_file(e, "perm/short", fd, src, 5001, NULL, NULL), -EINVAL);
	CHECK_INT(upload_file(e, "perm/cond-mpu", fd, src, 8 * MIB, &cond, NULL), -EINVAL);
	close(fd);
	/* create-only over an existing object: the condition's answer */
	CHECK_INT(up(e, "perm/exists", src, NULL, NULL), 0);
	CHECK_INT(up(e, "perm/exists", src, &cond, NULL), -EAGAIN);

	/* a bucket that is not there */
	snprintf(nobkt, sizeof(nobkt), "%s-missing", bucket);
	CHECK_INT(world_open(&nob, endpoint, nobkt), 0);
	struct upload_engine *e2 = NULL;
	CHECK_INT(upload_engine_new(&c, nob.s3, mc, NULL, &e2), 0);
	CHECK_INT(up(e2, "perm/x", src, NULL, NULL), -ENOENT);
	CHECK_INT(upload_engine_pending(e2), 0);
	upload_engine_free(e2);
	world_close(&nob);

	CHECK_INT(upload_engine_pending(e), 0);
	CHECK_INT(count_rows(mc), 0);
	CHECK_INT(count_files(staging, "upl-", ""), 0);
	char now[65];
	sha_path(src, now);
	CHECK_STR(now, sha); /* the caller's file is untouched */
	upload_engine_free(e);
	meta_cache_close(mc);
	world_close(&w);
}

/* Plant what a crashed process leaves: a multipart upload in flight with its
 * record, orphaned files, and a file that is not ours. */
static void plant_leftovers(struct world *live, const char *staging, char **out_upload_id)
{
	char p[4096];
	char *id = NULL;

	CHECK_INT(s3_mpu_create(live->s3, "resume/leftover.bin", NULL, &id, NULL), 0);
	CHECK_INT(mpu_count(live, "resume/leftover.bin"), 1);
	join(p, staging, "upl-mpu-1-1-0.json");
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fprintf(f, "{\"key\": \"resume/leftover.bin\", \"upload_id\": \"%s\"}",
			id ? id : "");
		fclose(f);
	}
	const char *names[] = { "upl-1-1-5.data", "upl-1-1-5.data.meta.json",
				"upl-1-1-6.data.meta.json.tmp", "stage-notours" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		join(p, staging, names[i]);
		f = fopen(p, "w");
		if (f)
			fclose(f);
	}
	*out_upload_id = id;
}

static void check_row(struct meta_cache *mc, const char *key, const char *staging, uint64_t size,
		      const char *sha)
{
	struct meta_pending row = { 0 };
	char got[65];

	CHECK_INT(find_row(mc, key, &row), 0);
	if (!row.key)
		return;
	CHECK_INT(row.state, META_PENDING_FAILED);
	CHECK_INT(row.attempts, 1);
	CHECK(row.last_error && row.last_error[0]);
	CHECK_INT(row.size, size);
	CHECK(strncmp(row.staging_path, staging, strlen(staging)) == 0);
	sha_path(row.staging_path, got);
	CHECK_STR(got, sha);
	meta_pending_cleanup(&row);
}

/* Engine A on a dead endpoint: uploads fail and are kept. */
static void fail_phase(const char *staging, char small_sha[65], char big_sha[65])
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct world dead;
	char src[4096], big[4096], other[65];
	char mode[] = "mode", mval[] = "33152";
	const struct s3_meta meta[] = { { mode, mval } };
	const struct s3_put_opts po = { .content_type = "application/x-test",
					.meta = meta,
					.nmeta = 1 };

	CHECK_INT(world_open(&dead, dead_endpoint, bucket), 0);
	struct meta_cache *mc = cache_open("resume");
	config(&c, staging);
	CHECK_INT(upload_engine_new(&c, dead.s3, mc, &dead.stats, &e), 0);
	CHECK_INT(upload_engine_start(e), 0);
	CHECK_INT(make_file(path_of(src, "resume-small.src"), 300000, 4, small_sha), 0);
	CHECK_INT(make_file(path_of(big, "resume-big.src"), 20 * MIB + 3, 5, big_sha), 0);
	CHECK_INT(up(e, "resume/small.bin", src, &po, NULL), -EIO);
	CHECK(upload_is_pending(e, "resume/small.bin"));
	CHECK(!upload_is_pending(e, "resume/big.bin"));
	CHECK_INT(up(e, "resume/big.bin", big, NULL, NULL), -EIO); /* multipart */
	CHECK_INT(upload_engine_pending(e), 2);
	CHECK_INT(atomic_load(&dead.stats.pending_uploads), 2);
	CHECK_INT(count_rows(mc), 2);
	check_row(mc, "resume/small.bin", staging, 300000, small_sha);
	check_row(mc, "resume/big.bin", staging, 20 * MIB + 3, big_sha);
	CHECK_INT(count_files(staging, "upl-", ".data"), 2);
	CHECK_INT(count_files(staging, "upl-", ".data.meta.json"), 2);

	/* The caller writes on and deletes its files: the pending data is a snapshot. */
	CHECK_INT(make_file(src, 300000, 99, other), 0);
	CHECK(strcmp(other, small_sha) != 0);
	check_row(mc, "resume/small.bin", staging, 300000, small_sha);
	CHECK_INT(unlink(src), 0);
	CHECK_INT(unlink(big), 0);

	/* drain and free are prompt while the endpoint is dead */
	int64_t t0 = now_ms();
	CHECK_INT(upload_engine_drain(e, 300), -ETIMEDOUT);
	upload_engine_free(e);
	CHECK(now_ms() - t0 < 5000);
	CHECK_INT(count_rows(mc), 2); /* rows outlive the engine */
	meta_cache_close(mc);
	world_close(&dead);
}

/* Engine B, same cache, live endpoint: resumes, uploads, cleans up. */
static void resume_phase(const char *staging, const char *small_sha, const char *big_sha)
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct s3_object_info info = { 0 };
	struct world live;
	char got[65], p[4096];
	char *leftover = NULL;

	CHECK_INT(world_open(&live, endpoint, bucket), 0);
	plant_leftovers(&live, staging, &leftover);
	struct meta_cache *mc = cache_open("resume");
	config(&c, staging);
	CHECK_INT(upload_engine_new(&c, live.s3, mc, &live.stats, &e), 0);
	CHECK_INT(upload_engine_pending(e), 2);
	CHECK_INT(atomic_load(&live.stats.pending_uploads), 2);
	CHECK(upload_is_pending(e, "resume/small.bin"));
	/* orphans are swept at once; what is not ours stays */
	CHECK_INT(count_files(staging, "upl-1-1-", ""), 0);
	CHECK_INT(count_files(staging, "stage-notours", ""), 1);
	CHECK_INT(count_files(staging, "upl-mpu-", ".json"), 1);

	CHECK_INT(upload_engine_start(e), 0);
	CHECK_INT(upload_engine_drain(e, 60000), 0);
	CHECK_INT(upload_engine_pending(e), 0);
	CHECK_INT(atomic_load(&live.stats.pending_uploads), 0);
	CHECK(!upload_is_pending(e, "resume/small.bin"));
	CHECK_INT(count_rows(mc), 0);
	CHECK_INT(count_files(staging, "upl-", ""), 0); /* data, sidecars, the record */
	CHECK_INT(mpu_count(&live, "resume/"), 0);	/* the leftover was aborted */

	sha_object(&live, "resume/small.bin", got);
	CHECK_STR(got, small_sha);
	sha_object(&live, "resume/big.bin", got);
	CHECK_STR(got, big_sha);
	CHECK_INT(s3_head(live.s3, "resume/small.bin", NULL, &info, NULL), 0);
	CHECK_STR(s3_object_info_meta(&info, "mode"), "33152"); /* from the sidecar */
	CHECK_STR(info.content_type, "application/x-test");
	s3_object_info_cleanup(&info);
	report_object("resume/small.bin", 300000, small_sha);
	report_object("resume/big.bin", 20 * MIB + 3, big_sha);
	upload_engine_free(e);
	meta_cache_close(mc);
	world_close(&live);
	free(leftover);
	unlink(path_of(p, "resume/staging/stage-notours"));
}

static void test_fail_and_resume(void)
{
	char staging[4096], small_sha[65], big_sha[65];

	path_of(staging, "resume/staging");
	fail_phase(staging, small_sha, big_sha);
	resume_phase(staging, small_sha, big_sha);
}

/* Stage bytes as a crashed engine would have, and journal them. */
static void plant_row(struct meta_cache *mc, const char *staging, const char *name, const char *key,
		      uint64_t seed, char sha[65])
{
	char p[4096];
	struct meta_pending row = { .key = (char *)key,
				    .staging_path = p,
				    .size = 4096,
				    .state = META_PENDING_UPLOADING,
				    .attempts = 3 };

	join(p, staging, name);
	CHECK_INT(make_file(p, 4096, seed, sha), 0);
	CHECK_INT(meta_journal_add(mc, &row, NULL), 0);
}

static void test_newer_write_wins(void)
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct world dead, live;
	char staging[4096], src[4096], got[65];
	char a_old[65], a_new[65], b_old[65], b_new[65], c_old[65], c_new[65];
	struct meta_pending row = { 0 };

	config(&c, path_of(staging, "nww/staging"));
	CHECK_INT(world_open(&dead, dead_endpoint, bucket), 0);
	struct meta_cache *mc = cache_open("nww");
	CHECK_INT(upload_engine_new(&c, dead.s3, mc, NULL, &e), 0);
	CHECK_INT(make_file(path_of(src, "a-old"), 7000, 10, a_old), 0);
	CHECK_INT(up(e, "nww/a", src, NULL, NULL), -EIO);
	/* b: a newer write that fails too replaces the older pending one */
	CHECK_INT(make_file(path_of(src, "b-old"), 7000, 11, b_old), 0);
	CHECK_INT(up(e, "nww/b", src, NULL, NULL), -EIO);
	CHECK_INT(make_file(path_of(src, "b-new"), 9000, 12, b_new), 0);
	CHECK_INT(up(e, "nww/b", src, NULL, NULL), -EIO);
	CHECK_INT(upload_engine_pending(e), 2);
	CHECK_INT(count_rows(mc), 2);
	CHECK_INT(count_files(staging, "upl-", ".data"), 2);
	CHECK_INT(find_row(mc, "nww/b", &row), 0);
	CHECK_INT(row.size, 9000);
	CHECK_INT(row.state, META_PENDING_FAILED);
	sha_path(row.staging_path ? row.staging_path : "", got);
	CHECK_STR(got, b_new);
	meta_pending_cleanup(&row);
	upload_engine_free(e);
	world_close(&dead);

	/* c: two rows of one key, as a crash between add and drop leaves them */
	plant_row(mc, staging, "upl-9-9-1.data", "nww/c", 13, c_old);
	plant_row(mc, staging, "upl-9-9-2.data", "nww/c", 14, c_new);

	CHECK_INT(world_open(&live, endpoint, bucket), 0);
	CHECK_INT(upload_engine_new(&c, live.s3, mc, NULL, &e), 0);
	CHECK_INT(upload_engine_pending(e), 3);
	CHECK_INT(count_files(staging, "upl-9-9-1", ""), 0); /* the older one is dropped */
	CHECK_INT(count_rows(mc), 3);
	/* a: a newer write succeeds before the retry thread runs */
	CHECK(upload_is_pending(e, "nww/a"));
	CHECK_INT(make_file(path_of(src, "a-new"), 5000, 15, a_new), 0);
	CHECK_INT(up(e, "nww/a", src, NULL, NULL), 0);
	CHECK(!upload_is_pending(e, "nww/a"));
	CHECK_INT(upload_engine_pending(e), 2);
	CHECK_INT(find_row(mc, "nww/a", &row), -ENOENT);
	CHECK_INT(upload_engine_start(e), 0);
	CHECK_INT(upload_engine_drain(e, 60000), 0);
	CHECK_INT(upload_engine_drain(e, 200), 0); /* one more round: nothing old comes back */
	sha_object(&live, "nww/a", got);
	CHECK_STR(got, a_new);
	sha_object(&live, "nww/b", got);
	CHECK_STR(got, b_new);
	sha_object(&live, "nww/c", got);
	CHECK_STR(got, c_new);
	CHECK_INT(count_rows(mc), 0);
	CHECK_INT(count_files(staging, "upl-", ""), 0);
	report_object("nww/a", 5000, a_new);
	report_object("nww/b", 9000, b_new);
	report_object("nww/c", 4096, c_new);
	upload_engine_free(e);
	meta_cache_close(mc);
	world_close(&live);
}

/* ---- many threads -------------------------------------------------------- */

#define CONC_THREADS 8
#define CONC_ROUNDS  4

struct conc {
	struct upload_engine *e;
	int id;
	int failures;
	char shas[CONC_ROUNDS][65]; /* what this thread wrote to the shared key */
};

/* Counts its failures instead of CHECKing: the harness's counters are not atomic. */
static void *conc_main(void *arg)
{
	struct conc *t = arg;
	char src[4096], key[64];

	for (int r = 0; r < CONC_ROUNDS; r++) {
		int n = snprintf(src, sizeof(src), "%s/conc-%d-%d.src", root, t->id, r);
		snprintf(key, sizeof(key), "conc/k%d", t->id);
		if (n < 0 || (size_t)n >= sizeof(src) ||
		    make_file(src, 20000 + (uint64_t)t->id * 100 + (uint64_t)r,
			      (uint64_t)(100 + t->id * 10 + r), t->shas[r]) < 0)
			t->failures++;
		t->failures += up(t->e, "conc/shared", src, NULL, NULL) != 0;
		t->failures += up(t->e, key, src, NULL, NULL) != 0;
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct upload_config c;
	struct upload_engine *e = NULL;
	struct conc t[CONC_THREADS];
	pthread_t tids[CONC_THREADS];
	struct world w;
	char staging[4096], got[65];

	CHECK_INT(world_open(&w, endpoint, bucket), 0);
	struct meta_cache *mc = cache_open("conc");
	config(&c, path_of(staging, "conc/staging"));
	CHECK_INT(upload_engine_new(&c, w.s3, mc, &w.stats, &e), 0);
	CHECK_INT(upload_engine_start(e), 0);
	for (int i = 0; i < CONC_THREADS; i++) {
		t[i] = (struct conc){ .e = e, .id = i };
		CHECK_INT(pthread_create(&tids[i], NULL, conc_main, &t[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(tids[i], NULL);
		CHECK_INT(t[i].failures, 0);
	}
	CHECK_INT(atomic_load(&w.stats.requests[STAT_PUT]), 2 * CONC_THREADS * CONC_ROUNDS);
	sha_object(&w, "conc/shared", got);
	bool known = false;
	for (int i = 0; i < CONC_THREADS; i++)
		known = known || strcmp(got, t[i].shas[CONC_ROUNDS - 1]) == 0;
	CHECK(known); /* the last write of one of the threads */
	for (int i = 0; i < CONC_THREADS; i++) {
		char key[64];
		snprintf(key, sizeof(key), "conc/k%d", i);
		sha_object(&w, key, got);
		CHECK_STR(got, t[i].shas[CONC_ROUNDS - 1]);
	}
	CHECK_INT(upload_engine_pending(e), 0);
	upload_engine_free(e);
	meta_cache_close(mc);
	world_close(&w);
}

/* ---- main -------------------------------------------------------------- */

/* A loopback port where nobody listens: bound, then closed. */
static int find_dead_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

int main(void)
{
	endpoint = getenv("S3VFS_TEST_S3_ENDPOINT");
	bucket = getenv("S3VFS_TEST_BUCKET");
	if (!endpoint || !bucket || !getenv("AWS_ACCESS_KEY_ID")) {
		fprintf(stderr, "test_upload: set S3VFS_TEST_S3_ENDPOINT, S3VFS_TEST_BUCKET, "
				"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see "
				"tests/integration/test_upload_engine.py)\n");
		return 2;
	}
	int port = find_dead_port();
	snprintf(dead_endpoint, sizeof(dead_endpoint), "http://127.0.0.1:%d", port);
	if (port < 0 || !mkdtemp(root)) {
		perror("test_upload: setup");
		return 1;
	}
	log_set_level(LOG_LVL_WARN);

	test_config();
	test_small_put();
	test_multipart();
	test_permanent_errors();
	test_fail_and_resume();
	test_newer_write_wins();
	test_concurrent();

	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return unit_end("upload");
}
