/* SPDX-License-Identifier: MIT */
/*
 * fs: the state of one mount, shared by the FUSE driver's files in fs/,
 * and the functions they call in each other. Only fs/ includes this header
 * and FUSE's.
 *
 * One struct s3vfs is built in main() and handed to FUSE as its private
 * data; everything in it is read-only after start-up except where a field
 * says what protects it. Lock order: fs->open_lock, then a handle's lock,
 * then the leaf locks of the modules below (meta_cache, upload, http).
 */
#ifndef S3VFS_FS_H
#define S3VFS_FS_H

#define FUSE_USE_VERSION 35

#include <fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "s3vfs/compiler.h"
#include "s3vfs/meta_cache.h"
#include "s3vfs/objmap.h"
#include "s3vfs/s3.h"
#include "s3vfs/s3attr.h"
#include "s3vfs/stats.h"

struct creds_provider;
struct http_client;
struct upload_engine;
struct datacache;

/* Options, as parsed by fuse_opt (fs/main.c); strings owned by fuse_opt. */
struct s3vfs_opts {
	char *endpoint;
	char *region;
	char *profile;
	char *cache_dir;
	char *loglevel;
	char *ca_file;
	char *uid_s, *gid_s, *umask_s;
	int path_style;
	int ro;
	int no_verify_ssl;
	unsigned stat_ttl;		 /* seconds */
	unsigned long long mp_threshold; /* bytes */
	unsigned long long part_size;	 /* bytes */
	unsigned parallel;
	unsigned long long read_part_size;
	char *cache_size_s; /* bytes, with K/M/G; 0 turns the data cache off */
	unsigned read_parallel;
	unsigned unmount_timeout; /* seconds to wait for pending uploads */
	unsigned connect_timeout; /* seconds */
	int no_stream_writes;
	int show_help;
	int show_version;
	int foreground;
};

struct s3vfs {
	struct s3vfs_opts o;
	char *bucket;
	char *mountpoint;
	struct objmap map;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int64_t ttl_ms;
	time_t start_time;
	uint64_t up_threshold;	 /* multipart from this size */
	uint64_t up_part_size;	 /* multipart part size */
	int up_parallel;	 /* parts in flight per file */
	bool stream_writes;	 /* upload parts while a file is written */
	uint64_t read_part_size; /* sequential readahead chunk */
	unsigned read_parallel;	 /* chunks in flight ahead of a sequential reader */

	struct stats stats;
	struct http_client *http;
	struct creds_provider *creds;
	struct s3_client *s3;
	struct meta_cache *mc;
	struct upload_engine *up;
	struct datacache *dc; /* NULL with cache_size=0 */
	uint64_t dc_block;    /* its block size */
	char *staging_dir;

	pthread_mutex_t open_lock;
	struct fs_file *open_files; /* protected by open_lock */
	int live_files;		    /* allocated fs_files; protected by open_lock */
	pthread_cond_t files_gone;  /* live_files reached 0; with open_lock */

	/* Which version of each file the kernel's page cache holds (ops_file.c). */
	pthread_mutex_t kc_lock;
	struct fs_kc_slot *kc; /* FS_KC_SLOTS slots, protected by kc_lock */
};

#define FS_KC_SLOTS 4096
struct fs_kc_slot {
	uint64_t hash; /* of the key; 0: empty */
	char etag[S3_ETAG_MAX];
};

/* One chunk of an object being read (readahead.c); protected by the file's lock. */
struct ra_chunk {
	uint64_t off;
	size_t len;
	char *data; /* cap bytes; filled by the fetch while state is LOADING */
	size_t cap;
	int state;
	int err;
	uint64_t used; /* last use, for eviction */
};

#define RA_SLOTS 16

struct readahead {
	struct ra_chunk slot[RA_SLOTS];
	uint64_t next_off; /* where a sequential reader reads next */
	uint64_t pos;	   /* where the current read is */
	unsigned run;	   /* consecutive sequential reads */
	unsigned window;   /* chunks fetched ahead of the reader */
	int inflight;	   /* fetches running */
	uint64_t clock;
	pthread_cond_t cond; /* a chunk finished */
};

/* A multipart upload made while a file is written (stream.c); protected by
 * the file's lock. */
struct fs_stream {
	char *upload_id; /* NULL until the written prefix passes the threshold */
	uint64_t end;	 /* bytes written sequentially from 0 */
	int sent;	 /* parts handed to threads */
	int inflight;
	int err;
	bool broken;	    /* not a plain sequential write: upload at flush as usual */
	struct s3attr attr; /* the metadata the upload was created with */
	char (*etags)[S3_ETAG_MAX];
	int cap;
	pthread_cond_t cond;
};

/* The object a staged file was read from, for UploadPartCopy (stream.c). */
struct fs_partcopy {
	bool on;
	char base_etag[S3_ETAG_MAX];
	uint64_t base_size;
	unsigned char *dirty; /* per part: written since staging */
	size_t cap;
};

/* An open file: a staging file holds its content once it is read for
 * writing or written; until then reads go to S3. */
struct fs_file {
	struct fs_file *next; /* protected by fs->open_lock */
	int refs;	      /* protected by fs->open_lock */
	int opens;	      /* descriptors not released yet; protected by fs->open_lock */
	pthread_mutex_t lock;
	char key[OBJMAP_KEY_BUF];
	/* Everything below is protected by lock. */
	int fd; /* staging file, -1 when none */
	char staging[4096];
	bool staged;   /* fd holds the whole content */
	bool dirty;    /* changed since the last upload */
	bool unlinked; /* removed while open: never uploaded again */
	uint64_t size; /* of the remote object when !staged */
	char etag[S3_ETAG_MAX];
	struct s3attr attr;	    /* attributes to upload with */
	struct s3attr_kvlist extra; /* other metadata pairs to keep */
	char content_type[128];
	struct readahead ra;	 /* reads while !staged (readahead.c) */
	struct fs_stream stream; /* uploads while writing (stream.c) */
	struct fs_partcopy pc;	 /* unchanged parts copied server-side (stream.c) */
};

static inline struct s3vfs *fs_ctx(void)
{
	return fuse_get_context()->private_data;
}

/*
 * The cache only saves requests: a failure to record something in it costs
 * a later request, never a wrong answer beyond stat_ttl, so it is logged
 * and the operation goes on. -EAGAIN (a fill that lost to a write) is normal.
 */
void fs_cache_result(int rc, const char *what);
#define fs_cached(call) fs_cache_result((call), #call)

/* fs/node.c: attributes of paths. */
void fs_entry_to_stat(const struct s3vfs *fs, const struct meta_entry *e, struct stat *st);
/* Resolve path: 0 and *out (clean up) or -ENOENT, -EIO... */
int fs_lookup(struct s3vfs *fs, const char *path, struct meta_entry *out) WARN_UNUSED;
/* HEAD key and install the result; out may be NULL. -ENOENT if absent. */
int fs_head_install(struct s3vfs *fs, const char *key, struct meta_entry *out,
		    struct s3_object_info *out_info) WARN_UNUSED;
/* Key of path in file or directory form. */
int fs_key(struct s3vfs *fs, const char *path, enum objmap_type t,
	   char out[OBJMAP_KEY_BUF]) WARN_UNUSED;
/* Defaults for an object without metadata. */
void fs_defaults(const struct s3vfs *fs, bool is_dir, time_t last_modified,
		 struct s3attr_defaults *out);

/* fs/ops_dir.c */
/* The cache entry of an object this mount just wrote with attributes a. */
void fs_attr_entry(const struct s3attr *a, enum meta_kind kind, uint64_t size, const char *etag,
		   struct meta_entry *e);
/* PUT key with attributes a merged over extra pairs (kept verbatim). */
int fs_put_object(struct s3vfs *fs, const char *key, const struct http_body *body,
		  const struct s3attr *a, const struct s3attr_kv *extra, size_t nextra,
		  const char *content_type, char *out_etag) WARN_UNUSED;

/* fs/ops_file.c */
struct fs_file *fs_open_find(struct s3vfs *fs, const char *key); /* takes a ref */
void fs_file_ref(struct s3vfs *fs, struct fs_file *f);		 /* one more ref */

/* fs/stream.c: uploads while writing (f->lock held). */
void fs_stream_init(struct fs_file *f);
void fs_stream_cleanup(struct s3vfs *fs, struct fs_file *f);
void fs_stream_wrote(struct s3vfs *fs, struct fs_file *f, uint64_t off, size_t n);
void fs_stream_break(struct fs_file *f);
/* Complete the streamed upload of a file of size bytes: 0 and *out_etag, or
 * -ENOENT when there is none to complete (the caller uploads as usual). */
int fs_stream_finish(struct s3vfs *fs, struct fs_file *f, uint64_t size, char *out_etag);

void fs_pc_begin(struct s3vfs *fs, struct fs_file *f, const char *etag, uint64_t size);
void fs_pc_touch(struct s3vfs *fs, struct fs_file *f, uint64_t off, uint64_t n);
void fs_pc_off(struct fs_file *f);
/* Upload with unchanged parts copied: 0 and *out_etag, or -ENOENT (upload whole). */
int fs_pc_finish(struct s3vfs *fs, struct fs_file *f, uint64_t size, const struct s3_put_opts *po,
		 char *out_etag);

/* fs/readahead.c: reads of the remote object (f->lock held). */
void fs_ra_init(struct fs_file *f);
void fs_ra_cleanup(struct fs_file *f);
int fs_ra_read(struct s3vfs *fs, struct fs_file *f, char *buf, size_t size, uint64_t off);
void fs_file_put(struct s3vfs *fs, struct fs_file *f);
/* At exit: upload what open files hold unsent, and free them. */
void fs_files_close_all(struct s3vfs *fs);
/* The metadata and content type f's upload carries (f->lock held); po
 * borrows pairs, which the caller cleans up. */
int fs_file_put_opts(const struct fs_file *f, struct s3attr_kvlist *pairs,
		     struct s3_put_opts *po) WARN_UNUSED;
/* Receives a ranged GET into buf (at most cap bytes; more is -EPROTO). */
struct fs_mem_sink {
	char *buf;
	size_t len, cap;
};
int fs_mem_sink_write(void *arg, const void *data, size_t n);
/* Upload f if dirty (f->lock held). */
int fs_file_flush_locked(struct s3vfs *fs, struct fs_file *f) WARN_UNUSED;

/* Remember that the kernel's pages of key are of version etag. */
void fs_kc_note(struct s3vfs *fs, const char *key, const char *etag);

/* The operations table (fs/ops.c gathers the per-file tables). */
extern const struct fuse_operations s3vfs_ops;

/* fuse operations, by file. */
int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi);
int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
	       struct fuse_file_info *fi, enum fuse_readdir_flags flags);
int fs_mkdir(const char *path, mode_t mode);
int fs_rmdir(const char *path);
int fs_rename(const char *from, const char *to, unsigned int flags);
int fs_open(const char *path, struct fuse_file_info *fi);
int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi);
int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi);
int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int fs_flush(const char *path, struct fuse_file_info *fi);
int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int fs_release(const char *path, struct fuse_file_info *fi);
int fs_unlink(const char *path);
int fs_symlink(const char *target, const char *path);
int fs_readlink(const char *path, char *buf, size_t size);
int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi);
int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi);
int fs_setxattr(const char *path, const char *name, const char *value, size_t size, int flags);
int fs_getxattr(const char *path, const char *name, char *value, size_t size);
int fs_listxattr(const char *path, char *list, size_t size);
int fs_removexattr(const char *path, const char *name);
int fs_statfs(const char *path, struct statvfs *st);
int fs_access(const char *path, int mask);
int fs_link(const char *from, const char *to);

#endif
