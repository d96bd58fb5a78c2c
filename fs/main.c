// SPDX-License-Identifier: MIT
/*
 * main: the s3vfs daemon. Owns option parsing (one fuse_opt table), the
 * start-up checks that make a bad mount fail at once with a one-line error
 * (options, credentials, endpoint, bucket, cache directory), building the
 * struct s3vfs context, the FUSE session, and an orderly exit: pending
 * uploads get a bounded time to reach S3 before the process ends.
 *
 *   s3vfs BUCKET[:/PREFIX] MOUNTPOINT [-o opt,...] [-f] [-d]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config.h"
#include "s3vfs/chain.h"
#include "s3vfs/creds.h"
#include "s3vfs/ddb.h"
#include "s3vfs/datacache.h"
#include "s3vfs/fs.h"
#include "s3vfs/http.h"
#include "s3vfs/log.h"
#include "s3vfs/upload.h"

#define OPT(t, p)                                                                                  \
	{                                                                                          \
		t, offsetof(struct s3vfs_opts, p), 1                                               \
	}

enum { KEY_HELP, KEY_VERSION, KEY_FOREGROUND, KEY_DEBUG };

static const struct fuse_opt opt_spec[] = {
	OPT("endpoint=%s", endpoint),
	OPT("url=%s", endpoint), /* s3fs */
	OPT("region=%s", region),
	OPT("profile=%s", profile),
	OPT("cache_dir=%s", cache_dir),
	OPT("loglevel=%s", loglevel),
	OPT("dbglevel=%s", loglevel), /* s3fs */
	OPT("ca_file=%s", ca_file),
	OPT("uid=%s", uid_s),
	OPT("gid=%s", gid_s),
	OPT("umask=%s", umask_s),
	OPT("use_path_request_style", path_style),
	OPT("no_verify_ssl", no_verify_ssl),
	OPT("stat_ttl=%u", stat_ttl),
	OPT("stat_cache_expire=%u", stat_ttl), /* s3fs */
	OPT("multipart_threshold=%llu", mp_threshold),
	OPT("part_size=%llu", part_size),
	OPT("parallel_count=%u", parallel),
	OPT("read_part_size=%llu", read_part_size),
	OPT("read_parallel=%u", read_parallel),
	OPT("cache_size=%s", cache_size_s),
	OPT("no_stream_writes", no_stream_writes),
	OPT("content_md5", content_md5),
	OPT("enable_content_md5", content_md5), /* s3fs */
	OPT("unmount_timeout=%u", unmount_timeout),
	OPT("connect_timeout=%u", connect_timeout),
	OPT("retries=%u", retries),
	OPT("dynamodb_endpoint=%s", ddb_endpoint),
	OPT("dynamodb_region=%s", ddb_region),
	OPT("chain_table=%s", chain_table),
	OPT("chain_create_table", chain_create_table),
	OPT("chain_consistent_read", chain_consistent),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_END,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: s3vfs BUCKET[:/PREFIX] MOUNTPOINT [-o opt,...] [-f] [-d]\n"
		"\n"
		"s3vfs mounts an S3 bucket (or a prefix of one) as a filesystem.\n"
		"\n"
		"options:\n"
		"  -f                        stay in the foreground\n"
		"  -d, -o debug              foreground, with debug logging (each request)\n"
		"  -h, --help                this text\n"
		"  -V, --version             the version\n"
		"  -o endpoint=URL           S3 endpoint (default "
		"https://s3.REGION.amazonaws.com);\n"
		"                            url=URL is accepted too, as in s3fs\n"
		"  -o region=REGION          signing region (default: AWS_REGION, the profile, "
		"us-east-1)\n"
		"  -o profile=NAME           credentials profile (default: AWS_PROFILE, "
		"\"default\")\n"
		"  -o use_path_request_style path-style addressing (http://host/bucket/key)\n"
		"  -o uid=N, gid=N           owner of objects that carry none (default: the "
		"mounter)\n"
		"  -o umask=OCTAL            permissions of objects that carry none (default 022)\n"
		"  -o stat_ttl=SECONDS       how long metadata is trusted before revalidation "
		"(30)\n"
		"  -o cache_dir=DIR          metadata cache and staging (default per user)\n"
		"  -o multipart_threshold=N  bytes from which uploads are multipart (part_size)\n"
		"  -o part_size=N            multipart part size in bytes (16 MiB, >= 5 MiB)\n"
		"  -o parallel_count=N       parts in flight per file (4)\n"
		"  -o read_part_size=N       bytes per ranged GET of a sequential reader (8 MiB)\n"
		"  -o read_parallel=N        ranged GETs in flight per sequential reader (4)\n"
		"  -o cache_size=N[KMG]      disk cache of object data, LRU (1G; 0: off)\n"
		"  -o no_stream_writes       upload large files at close only, not while written\n"
		"  -o content_md5            send Content-MD5 with every upload, so that S3 "
		"checks\n"
		"                            the bytes it got (costs an MD5 pass over the data)\n"
		"  -o unmount_timeout=SECONDS  wait for pending uploads at unmount (30)\n"
		"  -o connect_timeout=SECONDS  TCP/TLS connect timeout (10)\n"
		"  -o retries=N              attempts after a failed request, with backoff (7)\n"
		"  -o ca_file=FILE           CA bundle for TLS\n"
		"  -o no_verify_ssl          do not verify TLS certificates (testing only)\n"
		"  -o loglevel=LEVEL         error, warn, info or debug (default warn)\n"
		"  -o dynamodb_endpoint=URL  DynamoDB for the heads of chains (default AWS's)\n"
		"  -o dynamodb_region=REGION its region (default: the S3 region)\n"
		"  -o chain_table=NAME       DynamoDB table of chain heads (s3vfs-chains)\n"
		"  -o chain_create_table     create that table (PAY_PER_REQUEST) when missing\n"
		"  -o chain_consistent_read  read chain heads with strongly consistent reads\n"
		"  -o ro, allow_other, ...   and the other FUSE mount options\n"
		"\n"
		"Statistics: getfattr -n user.s3vfs.stats MOUNTPOINT\n"
		"Event streams: setfattr -n user.s3vfs.chain -v events DIR\n"
		"  (or -n user.s3vfs.chain.subdirs -v events DIR: each new subdirectory is one)\n");
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct s3vfs *fs = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!fs->bucket) {
			fs->bucket = strdup(arg);
			fs->source = strdup(arg); /* as given: mount(8) compares it */
			return 0;
		}
		if (!fs->mountpoint) {
			fs->mountpoint = realpath(arg, NULL);
			if (!fs->mountpoint) {
				fprintf(stderr, "s3vfs: bad mount point %s: %s\n", arg,
					strerror(errno));
				return -1;
			}
			return 0;
		}
		fprintf(stderr, "s3vfs: unexpected argument: %s\n", arg);
		return -1;
	case KEY_HELP:
		fs->o.show_help = 1;
		return 0;
	case KEY_VERSION:
		fs->o.show_version = 1;
		return 0;
	case KEY_FOREGROUND:
		fs->o.foreground = 1;
		return 0;
	case KEY_DEBUG:
		fs->o.foreground = 1;
		log_set_level(LOG_LVL_DEBUG);
		return 0;
	default:
		return 1; /* a FUSE option: pass it on */
	}
}

/* Parse "N" in base (10 or 8) into *out. -EINVAL. */
static int parse_uint(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

/* Check and apply the options that need it. A one-line error on failure. */
static int check_options(struct s3vfs *fs)
{
	unsigned long v;

	if (!fs->bucket || !fs->mountpoint) {
		fprintf(stderr, "s3vfs: need BUCKET[:/PREFIX] and MOUNTPOINT (see --help)\n");
		return -EINVAL;
	}
	char *colon = strchr(fs->bucket, ':');
	const char *prefix = "";
	if (colon) {
		*colon = '\0';
		prefix = colon + 1;
	}
	if (objmap_init(&fs->map, prefix, OBJMAP_INTERNAL_DEF) < 0) {
		fprintf(stderr, "s3vfs: bad prefix \"%s\"\n", prefix);
		return -EINVAL;
	}
	if (fs->o.loglevel) {
		enum log_level lvl;
		if (log_parse_level(fs->o.loglevel, &lvl) < 0) {
			fprintf(stderr, "s3vfs: bad loglevel \"%s\"\n", fs->o.loglevel);
			return -EINVAL;
		}
		log_set_level(lvl);
	}
	fs->uid = getuid();
	fs->gid = getgid();
	fs->umask = 022;
	if (fs->o.uid_s && parse_uint(fs->o.uid_s, 10, UINT32_MAX - 1, &v) == 0)
		fs->uid = (uid_t)v;
	else if (fs->o.uid_s)
		goto bad;
	if (fs->o.gid_s && parse_uint(fs->o.gid_s, 10, UINT32_MAX - 1, &v) == 0)
		fs->gid = (gid_t)v;
	else if (fs->o.gid_s)
		goto bad;
	if (fs->o.umask_s && parse_uint(fs->o.umask_s, 8, 0777, &v) == 0)
		fs->umask = (mode_t)v;
	else if (fs->o.umask_s)
		goto bad;
	if (fs->o.chain_table && !ddb_table_name_ok(fs->o.chain_table)) {
		fprintf(stderr, "s3vfs: bad chain_table \"%s\": 3 to 255 of a-z A-Z 0-9 _ - .\n",
			fs->o.chain_table);
		return -EINVAL;
	}
	if (fs->o.part_size && fs->o.part_size < S3_PART_MIN) {
		fprintf(stderr, "s3vfs: part_size must be at least %u bytes\n", S3_PART_MIN);
		return -EINVAL;
	}
	/* s3fs's endpoint= is a region name; ours is a URL. Take both. */
	if (fs->o.endpoint && !strstr(fs->o.endpoint, "://") && !fs->o.region &&
	    !strchr(fs->o.endpoint, '.') && !strchr(fs->o.endpoint, ':')) {
		fs->o.region = fs->o.endpoint;
		fs->o.endpoint = NULL;
	}
	fs->ttl_ms = (int64_t)fs->o.stat_ttl * 1000;
	fs->read_part_size = fs->o.read_part_size ? fs->o.read_part_size : 8u << 20;
	fs->read_parallel = fs->o.read_parallel ? fs->o.read_parallel : 4;
	if (fs->read_part_size < (64u << 10) || fs->read_part_size > (1ull << 30) ||
	    fs->read_parallel > RA_SLOTS - 2) {
		fprintf(stderr,
			"s3vfs: read_part_size must be 64 KiB..1 GiB and read_parallel "
			"at most %d\n",
			RA_SLOTS - 2);
		return -EINVAL;
	}
	return 0;
bad:
	fprintf(stderr, "s3vfs: bad uid, gid or umask option\n");
	return -EINVAL;
}

/* mkdir -p with mode 0700 for each created level. */
static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The cache directory of this bucket+prefix+endpoint, created 0700. */
static int cache_dir(struct s3vfs *fs, char **out)
{
	const char *base = fs->o.cache_dir;
	char dflt[PATH_MAX], id[200];
	unsigned char md[32];
	unsigned int mdlen = 0;
	struct buf b;
	int rc;

	if (!base) {
		const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
		if (geteuid() == 0)
			snprintf(dflt, sizeof(dflt), "/var/cache/s3vfs");
		else if (xdg && xdg[0])
			snprintf(dflt, sizeof(dflt), "%s/s3vfs", xdg);
		else
			snprintf(dflt, sizeof(dflt), "%s/.cache/s3vfs", home ? home : "/tmp");
		base = dflt;
	}
	/* The base holds every bucket's cache: it must be ours and no one
	 * else's to write (a planted database or staging file is never trusted). */
	struct stat bst;
	rc = mkdir_p(base);
	if (rc == 0 && stat(base, &bst) < 0)
		rc = -errno;
	if (rc < 0) {
		fprintf(stderr, "s3vfs: cannot create cache directory %s: %s\n", base,
			strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(bst.st_mode) || bst.st_uid != geteuid() || (bst.st_mode & 022)) {
		fprintf(stderr,
			"s3vfs: cache directory %s must be a directory owned by uid %u and "
			"writable by no one else (it is %s, uid %u, mode %03o)\n",
			base, (unsigned)geteuid(),
			S_ISDIR(bst.st_mode) ? "a directory" : "not a directory",
			(unsigned)bst.st_uid, (unsigned)(bst.st_mode & 0777));
		return -EACCES;
	}
	/* One directory per (endpoint, bucket, prefix): a readable name and a hash. */
	buf_init(&b, 8192);
	rc = buf_printf(&b, "%s\n%s\n%s", fs->o.endpoint ? fs->o.endpoint : "aws", fs->bucket,
			fs->map.prefix);
	if (rc < 0)
		return rc;
	EVP_Digest(buf_str(&b), buf_len(&b), md, &mdlen, EVP_sha256(), NULL);
	buf_cleanup(&b);
	snprintf(id, sizeof(id), "%.64s-%02x%02x%02x%02x%02x%02x", fs->bucket, md[0], md[1], md[2],
		 md[3], md[4], md[5]);
	buf_init(&b, PATH_MAX);
	rc = buf_printf(&b, "%s/%s", base, id);
	if (rc == 0)
		rc = mkdir_p(buf_str(&b));
	if (rc < 0) {
		fprintf(stderr, "s3vfs: cannot create cache directory %s: %s\n", buf_str(&b),
			strerror(-rc));
		buf_cleanup(&b);
		return rc;
	}
	*out = buf_take(&b);
	return 0;
}

/* Credentials, endpoint and bucket: each failure names its cause. */
static int connect_s3(struct s3vfs *fs)
{
	struct http_config hc;
	struct creds_config cc = { .profile = fs->o.profile };
	struct aws_error err;
	char msg[512];
	int rc;

	http_config_default(&hc);
	if (fs->o.connect_timeout)
		hc.connect_timeout_ms = (long)fs->o.connect_timeout * 1000;
	hc.insecure = fs->o.no_verify_ssl;
	hc.ca_file = fs->o.ca_file;
	rc = http_client_new(&hc, &fs->stats, &fs->http);
	if (rc < 0) {
		fprintf(stderr, "s3vfs: cannot start the HTTP client\n");
		return rc;
	}
	rc = creds_provider_new(&cc, fs->http, &fs->creds);
	if (rc < 0) {
		fprintf(stderr, "s3vfs: no usable AWS credentials (%s)\n",
			rc == -ENOENT ? "none found in options, environment, profiles or "
					"instance metadata"
				      : strerror(-rc));
		return rc;
	}
	char *region = fs->o.region ? strdup(fs->o.region) : creds_region(fs->o.profile);
	struct s3_config sc = {
		.endpoint = fs->o.endpoint,
		.region = region ? region : "us-east-1",
		.bucket = fs->bucket,
		.path_style = fs->o.path_style,
	};
	struct retry_policy rp;
	retry_policy_default(&rp);
	if (fs->o.retries != UINT_MAX)
		rp.max_attempts = fs->o.retries > 50 ? 51 : (int)fs->o.retries + 1;
	rc = s3_client_new(&sc, fs->http, fs->creds, &fs->stats, &rp, &fs->s3);
	struct ddb_config dc = {
		.endpoint = fs->o.ddb_endpoint,
		.region = fs->o.ddb_region ? fs->o.ddb_region : sc.region,
	};
	if (rc == 0 && ddb_client_new(&dc, fs->http, fs->creds, &fs->stats, &rp, &fs->ddb) < 0) {
		fprintf(stderr, "s3vfs: bad DynamoDB endpoint \"%s\"\n", fs->o.ddb_endpoint);
		free(region);
		return -EINVAL;
	}
	free(region);
	if (rc < 0) {
		fprintf(stderr, "s3vfs: bad endpoint \"%s\" or bucket name \"%s\"\n",
			fs->o.endpoint ? fs->o.endpoint : "(default)", fs->bucket);
		return rc;
	}
	rc = s3_bucket_head(fs->s3, &err);
	if (rc == 0)
		return 0;
	aws_error_str(&err, msg, sizeof(msg));
	if (rc == -ENOENT)
		fprintf(stderr, "s3vfs: bucket %s does not exist\n", fs->bucket);
	else if (rc == -EACCES)
		fprintf(stderr, "s3vfs: access to bucket %s denied: check the credentials (%s)\n",
			fs->bucket, msg);
	else if (err.transport)
		fprintf(stderr, "s3vfs: cannot reach the endpoint %s: %s\n",
			fs->o.endpoint ? fs->o.endpoint : "(AWS)", err.message);
	else
		fprintf(stderr, "s3vfs: bucket %s: %s\n", fs->bucket, msg);
	return rc;
}

/* "123", "64K", "512M", "1G" -> bytes. -EINVAL. */
static int parse_bytes(const char *s, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;

	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	else if (*end)
		return -EINVAL;
	if ((shift && end[1]) || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int open_datacache(struct s3vfs *fs, const char *dir)
{
	uint64_t cap = 1ull << 30;
	struct buf b;
	int rc;

	if (fs->o.cache_size_s && parse_bytes(fs->o.cache_size_s, &cap) < 0) {
		fprintf(stderr, "s3vfs: bad cache_size \"%s\"\n", fs->o.cache_size_s);
		return -EINVAL;
	}
	if (cap == 0)
		return 0;
	buf_init(&b, PATH_MAX);
	rc = buf_printf(&b, "%s/data", dir);
	fs->dc_block = 1u << 20;
	if (rc == 0)
		rc = datacache_open(buf_str(&b), cap, (uint32_t)fs->dc_block, &fs->dc);
	if (rc < 0)
		fprintf(stderr, "s3vfs: cannot open the data cache in %s: %s\n", buf_str(&b),
			strerror(-rc));
	buf_cleanup(&b);
	return rc;
}

static int open_state(struct s3vfs *fs)
{
	struct upload_config uc;
	char *dir = NULL;
	int rc;

	rc = cache_dir(fs, &dir);
	if (rc < 0)
		return rc;
	rc = meta_cache_open(dir, "meta.db", &fs->mc);
	if (rc < 0) {
		fprintf(stderr, "s3vfs: cannot open the metadata cache in %s: %s\n", dir,
			strerror(-rc));
		goto out;
	}
	/* "running" exists while a mount uses this cache (the cache's lock keeps
	 * out a second one): found at start, the last one died. Its cache may
	 * predate writes it never saw end (a directory rename half done). */
	struct buf rb;
	buf_init(&rb, PATH_MAX);
	if (buf_printf(&rb, "%s/running", dir) == 0) {
		fs->run_marker = buf_take(&rb);
		if (access(fs->run_marker, F_OK) == 0) {
			log_warn("the last mount of this cache did not end cleanly: every cached "
				 "entry is revalidated before use");
			if (meta_cache_expire_all(fs->mc) < 0)
				log_warn(
					"cache entries not expired: they are trusted for stat_ttl");
		}
		int mfd = open(fs->run_marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (mfd >= 0)
			close(mfd);
	}
	buf_cleanup(&rb);
	struct buf b;
	buf_init(&b, PATH_MAX);
	rc = buf_printf(&b, "%s/staging", dir);
	if (rc == 0 && mkdir(buf_str(&b), 0700) < 0 && errno != EEXIST)
		rc = -errno;
	fs->staging_dir = buf_take(&b);
	if (rc < 0) {
		fprintf(stderr, "s3vfs: cannot create %s: %s\n", fs->staging_dir, strerror(-rc));
		goto out;
	}
	rc = open_datacache(fs, dir);
	if (rc < 0)
		goto out;
	upload_config_default(&uc);
	if (fs->o.part_size)
		uc.part_size = fs->o.part_size;
	/* By default a file of one part or more goes in parts, the first one as
	 * soon as it is written: the upload overlaps the writing from the start. */
	uc.multipart_threshold = fs->o.mp_threshold ? fs->o.mp_threshold : uc.part_size;
	if (fs->o.parallel)
		uc.parallel = (int)fs->o.parallel;
	uc.staging_dir = fs->staging_dir;
	fs->up_threshold = uc.multipart_threshold;
	fs->up_part_size = uc.part_size;
	fs->up_parallel = uc.parallel;
	fs->stream_writes = !fs->o.no_stream_writes;
	fs->content_md5 = fs->o.content_md5;
	uc.content_md5 = fs->content_md5;
	rc = upload_engine_new(&uc, fs->s3, fs->mc, &fs->stats, &fs->up);
	if (rc < 0) {
		fprintf(stderr, "s3vfs: cannot start the upload engine: %s\n", strerror(-rc));
		goto out;
	}
	struct chain_config chc = {
		.s3 = fs->s3,
		.ddb = fs->ddb,
		.mc = fs->mc,
		.stats = &fs->stats,
		.bucket = fs->bucket,
		.table = fs->o.chain_table ? fs->o.chain_table : "s3vfs-chains",
		.create_table = fs->o.chain_create_table,
		.consistent_reads = fs->o.chain_consistent,
		.head_ttl_ms = fs->ttl_ms,
	};
	rc = chain_store_new(&chc, &fs->chains);
	if (rc == 0)
		rc = fs_chains_init(fs);
	if (rc == 0)
		rc = fs_content_init(fs);
	if (rc < 0)
		fprintf(stderr, "s3vfs: cannot set up chains: %s\n", strerror(-rc));
out:
	free(dir);
	return rc;
}

void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct s3vfs *fs = fuse_get_context()->private_data;

	/* 1 MiB requests: fewer round trips through the kernel for large I/O. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 4u << 20;
	cfg->use_ino = 1; /* fs_entry_to_stat() */
	cfg->attr_timeout = fs->o.stat_ttl;
	cfg->entry_timeout = fs->o.stat_ttl;
	/* Names can appear without a create through this kernel (a changeset
	 * committed under a new name, another mount's write): negative answers
	 * come from our cache instead, which costs no request within stat_ttl. */
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	cfg->hard_remove = 1;
	return fs;
}

static void teardown(struct s3vfs *fs)
{
	if (fs->run_marker && fs->mc)
		unlink(fs->run_marker); /* a clean end */
	free(fs->run_marker);
	fs_content_cleanup(fs);
	fs_chains_cleanup(fs);
	chain_store_free(fs->chains);
	ddb_client_free(fs->ddb);
	upload_engine_free(fs->up);
	datacache_close(fs->dc);
	meta_cache_close(fs->mc);
	s3_client_free(fs->s3);
	creds_provider_free(fs->creds);
	http_client_free(fs->http);
	free(fs->staging_dir);
	/* fuse_opt_parse() strdup()s the string options for us. */
	char **strs[] = { &fs->o.endpoint,     &fs->o.region,	    &fs->o.profile,
			  &fs->o.cache_dir,    &fs->o.loglevel,	    &fs->o.ca_file,
			  &fs->o.uid_s,	       &fs->o.gid_s,	    &fs->o.umask_s,
			  &fs->o.cache_size_s, &fs->o.ddb_endpoint, &fs->o.ddb_region,
			  &fs->o.chain_table };
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		free(*strs[i]);
	free(fs->bucket);
	free(fs->source);
	free(fs->mountpoint);
	pthread_mutex_destroy(&fs->open_lock);
	pthread_cond_destroy(&fs->files_gone);
	pthread_mutex_destroy(&fs->kc_lock);
	free(fs->kc);
}

static void log_stats(struct s3vfs *fs)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	if (stats_to_json(&fs->stats, &b) == 0)
		log_info("statistics: %s", buf_str(&b));
	buf_cleanup(&b);
}

/* Mount, serve until unmounted, then give pending uploads their time. */
static int serve(struct s3vfs *fs, struct fuse_args *args)
{
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 10 };
	int rc = 1;

	struct fuse *fuse = fuse_new(args, &s3vfs_ops, sizeof(s3vfs_ops), fs);
	if (!fuse)
		return 1;
	if (fuse_mount(fuse, fs->mountpoint) != 0)
		goto out_destroy;
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0)
		goto out_unmount;
	if (fuse_daemonize(fs->o.foreground) != 0)
		goto out_signals;
	if (!fs->o.foreground)
		log_use_syslog("s3vfs");
	/* Threads start after the fork of fuse_daemonize(). */
	if (upload_engine_start(fs->up) < 0)
		log_error("pending uploads of an earlier run could not be resumed");
	if (fs_retire_start(fs) < 0)
		log_warn("no helper thread for retiring inodes: a file that changes while it is "
			 "open shows its new version on the same inode");
	log_info("mounted %s on %s", fs->bucket, fs->mountpoint);
	/* The loop returns the signal that ended it: a SIGTERM is a clean exit. */
	int lrc = fuse_loop_mt(fuse, &lc);
	rc = lrc == 0 || lrc == SIGTERM || lrc == SIGINT || lrc == SIGHUP ? 0 : 1;
	fs_retire_stop(fs);
	fs_files_close_all(fs);
	if (upload_engine_drain(fs->up, (long)fs->o.unmount_timeout * 1000) < 0)
		log_warn("%" PRIu64 " uploads still pending at unmount; they are kept in %s "
			 "and resume at the next mount",
			 upload_engine_pending(fs->up), fs->staging_dir);
	log_stats(fs);
out_signals:
	fuse_remove_signal_handlers(fuse_get_session(fuse));
	/* A SIGTERM from here on (systemd sends one right after ExecStop) must
	 * not turn a clean exit into a death by signal. */
	signal(SIGTERM, SIG_IGN);
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
	return rc;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct s3vfs fs = { 0 };
	int rc = 1;

	fs.o.stat_ttl = 30;
	fs.o.unmount_timeout = 30;
	fs.o.retries = UINT_MAX; /* not given */
	fs.start_time = time(NULL);
	pthread_mutex_init(&fs.open_lock, NULL);
	pthread_cond_init(&fs.files_gone, NULL);
	pthread_mutex_init(&fs.kc_lock, NULL);
	fs.kc = calloc(FS_KC_SLOTS, sizeof(*fs.kc));
	stats_init(&fs.stats);
	log_set_level(LOG_LVL_WARN);
	if (fuse_opt_parse(&args, &fs.o, opt_spec, opt_proc) != 0) {
		fprintf(stderr, "s3vfs: bad options (see --help)\n");
		goto out;
	}
	/* fuse_opt_parse hands nonopts to opt_proc with data = &fs.o: fs.o is
	 * the first member of fs, so the cast there holds. */
	if (fs.o.show_help || fs.o.show_version) {
		if (fs.o.show_help)
			usage(stdout);
		else
			printf("s3vfs %s (libfuse %s)\n", S3VFS_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (check_options(&fs) < 0 || connect_s3(&fs) < 0 || open_state(&fs) < 0)
		goto out;
	fuse_opt_add_arg(&args, "-odefault_permissions");
	fuse_opt_add_arg(&args, "-osubtype=s3vfs");
	/* The source as given (BUCKET:/PREFIX), so that mount(8) knows the line
	 * of fstab is mounted; commas are escaped for the option parser. */
	struct buf fsname;
	buf_init(&fsname, 8192);
	int frc = buf_add(&fsname, "-ofsname=", 9);
	for (const char *p = fs.source ? fs.source : fs.bucket; frc == 0 && *p; p++)
		frc = *p == ',' || *p == '\\' ? buf_printf(&fsname, "\\%c", *p)
					      : buf_add(&fsname, p, 1);
	bool own = false; /* the user's -o fsname= wins */
	for (int i = 0; i < args.argc; i++)
		own = own || strstr(args.argv[i], "fsname=") != NULL;
	if (frc == 0 && !own)
		fuse_opt_add_arg(&args, buf_str(&fsname));
	buf_cleanup(&fsname);
	rc = serve(&fs, &args);
out:
	teardown(&fs);
	fuse_opt_free_args(&args);
	return rc;
}
