/* SPDX-License-Identifier: MIT */
/*
 * fs: the state of one mount, shared by the FUSE driver's files in fs/,
 * and the functions they call in each other. Only fs/ includes this header
 * and FUSE's.
 *
 * One struct s3vfs is built in main() and handed to FUSE as its private
 * data; everything in it is read-only after start-up except where a field
 * says what protects it. Lock order: a handle's lock, then fs->open_lock
 * (taking a reference), then the leaf locks of the modules below
 * (meta_cache, upload, http). Never a handle's lock under open_lock.
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
struct ddb_client;
struct chain_store;
struct chain;
struct fs_kinds;
struct fs_content;

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
	unsigned retries;	  /* attempts after the first; UINT_MAX: the default */
	int no_stream_writes;
	int content_md5;    /* send Content-MD5 with data uploads */
	char *ddb_endpoint; /* DynamoDB for chain heads; NULL: AWS's, in ddb_region */
	char *ddb_region;   /* NULL: the S3 region */
	char *chain_table;  /* NULL: "s3vfs-chains" */
	int chain_create_table;
	int chain_consistent;
	int show_help;
	int show_version;
	int foreground;
};

struct s3vfs {
	struct s3vfs_opts o;
	char *bucket;
	char *source; /* BUCKET[:/PREFIX] as given */
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
	bool content_md5;	 /* Content-MD5 on every data PUT and part */
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
	char *run_marker;	    /* exists while mounted: found at start, the last run died */
	struct ddb_client *ddb;	    /* NULL: chains unavailable */
	struct chain_store *chains; /* NULL: chains unavailable */
	struct fs_kinds *kinds;	    /* which directories are chains (ops_chain.c) */
	struct fs_content *content; /* trees, transactions, pins (ops_content.c) */

	pthread_mutex_t open_lock;
	struct fs_file *open_files; /* protected by open_lock */
	uint64_t appends;	    /* appends started; protected by open_lock */
	int live_files;		    /* allocated fs_files; protected by open_lock */
	pthread_cond_t files_gone;  /* live_files reached 0; with open_lock */

	/* Which version of each file the kernel's page cache holds (ops_file.c). */
	pthread_mutex_t kc_lock;
	struct fs_kc_slot *kc;	  /* FS_KC_SLOTS slots, protected by kc_lock */
	struct fs_retire *retire; /* new inodes for changed files (retire.c) */
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
	char *upload_id;	    /* NULL until the written prefix passes the threshold */
	struct upload_track *track; /* its record, for a crash (upload.h) */
	uint64_t end;		    /* bytes written sequentially from 0 */
	uint64_t ready_end;	    /* end of the last ready part */
	int ready;		    /* parts written whole, to be sent */
	int sent;		    /* parts taken by a sender (<= ready) */
	int inflight;		    /* sender threads */
	int err;
	time_t t0;	    /* when the upload was created */
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

/* A changeset being written into an events chain (ops_chain.c); protected
 * by the file's lock. */
struct fs_chainfile {
	struct chain *ch; /* NULL: an ordinary file */
	int kind;	  /* CHAIN_EVENTS (0 too) or CHAIN_CONTENT */
	uint64_t expect;  /* the version the name asserts; 0: the next one */
	char name[1025];  /* the changeset's name (events), the path (content) */
	char *pkey;	  /* key of the path it was created as (the file's own key is
			   * unique: two appends of one name never share a file) */
	bool written;	  /* a write came: a flush commits */
	bool fresh;	  /* content: created or truncated, not saved yet */
	bool committed;	  /* commit tried (err says how it went): immutable now */
	int err;
};

/* An open file: a staging file holds its content once it is read for
 * writing or written; until then reads go to S3. */
struct fs_file {
	struct fs_file *next; /* protected by fs->open_lock */
	int refs;	      /* protected by fs->open_lock */
	int opens;	      /* descriptors not released yet; protected by fs->open_lock */
	/* A newer version of key was opened beside it: it only serves the
	 * descriptors it has, and opens by key no longer find it. */
	bool superseded; /* protected by fs->open_lock */
	/* A content chain's blob: the path it was first opened at, so that the
	 * path's older version is found while it is open (retire.c); a blob
	 * shown at two paths is known at the first. Protected by fs->open_lock. */
	char *kpath;
	pthread_mutex_t lock;
	char key[OBJMAP_KEY_BUF];
	/* Everything below is protected by lock. */
	int fd; /* staging file, -1 when none */
	char staging[4096];
	bool staged;   /* fd holds the whole content */
	bool dirty;    /* changed since the last upload */
	bool unlinked; /* removed while open: never uploaded again */
	bool failed;   /* its last upload failed (pending in the engine): flushes say EIO */
	uint64_t size; /* of the remote object when !staged */
	char etag[S3_ETAG_MAX];
	struct s3attr attr;	    /* attributes to upload with */
	struct s3attr_kvlist extra; /* other metadata pairs to keep */
	char content_type[128];
	struct readahead ra;	 /* reads while !staged (readahead.c) */
	struct fs_stream stream; /* uploads while writing (stream.c) */
	struct fs_partcopy pc;	 /* unchanged parts copied server-side (stream.c) */
	struct fs_chainfile cf;	 /* an append to an events chain (ops_chain.c) */
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
/*
 * The attributes of e, at path dir (name NULL) or at dir/name. Its inode
 * number is made of the path and, for a file, the version (ETag) it shows:
 * a file whose content changes gets a new number, as a file replaced by
 * rename(2) does on a disk, so programs that keep a descriptor while they
 * watch the name (nginx's open_file_cache, tail -F) open it again.
 */
void fs_entry_to_stat(const struct s3vfs *fs, const char *dir, const char *name,
		      const struct meta_entry *e, struct stat *st);
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

/* fs/ops_attr.c: set one metadata pair on directory marker dkey (PUT it
 * when the directory is implicit), keeping every other pair. */
int fs_set_dir_meta(struct s3vfs *fs, const char *dkey, const char *name,
		    const char *value) WARN_UNUSED;

/* fs/ops_chain.c: event-stream directories. */
struct fs_cpath {
	struct chain *ch;
	int kind;		   /* CHAIN_EVENTS or CHAIN_CONTENT */
	char dkey[OBJMAP_KEY_BUF]; /* the chain directory's key */
	const char *path;	   /* the whole path (borrowed) */
	const char *rel;	   /* the path below the chain directory (into path) */
	bool deep;		   /* rel has a '/' */
	const char *name;	   /* last component of the path (into it) */
	bool head_file;		   /* ".head" */
	bool explicit_v;	   /* "<version>-<rest>" */
	uint64_t version;
	const char *rest; /* the changeset name: after the version, or name */
};
int fs_chains_init(struct s3vfs *fs) WARN_UNUSED;
void fs_chains_cleanup(struct s3vfs *fs);
/* A HEAD of directory marker dkey answered (info) or found nothing (NULL). */
void fs_chain_note_marker(struct s3vfs *fs, const char *dkey, const struct s3_object_info *info);
/* A listing of dkey was made; has_internal: it showed the internal folder. */
void fs_chain_note_listing(struct s3vfs *fs, const char *dkey, bool has_internal);
/* Is dkey a chain: 1 (events) or 2 (content) and *out, 0 not, <0 error
 * (unknown kind: -EIO). check: ask S3 when not known, else not known means no. */
int fs_chain_dir(struct s3vfs *fs, const char *dkey, bool check, struct chain **out) WARN_UNUSED;
/* Is dkey known to be a chain (a marking is for good: no request)? */
bool fs_chain_known(struct s3vfs *fs, const char *dkey);
/* Does path lie in a chain (below its directory): 1 and *out, 0 not, <0
 * error. check: ask S3 about the parent when not known. */
int fs_chain_route(struct s3vfs *fs, const char *path, bool check,
		   struct fs_cpath *out) WARN_UNUSED;
int fs_chain_lookup(struct s3vfs *fs, const struct fs_cpath *cp,
		    struct meta_entry *out) WARN_UNUSED;
int fs_chain_readdir(struct s3vfs *fs, struct chain *ch, const char *path, void *buf,
		     fuse_fill_dir_t filler, enum fuse_fill_dir_flags flags) WARN_UNUSED;
int fs_chain_create(struct s3vfs *fs, const struct fs_cpath *cp, const char *path, mode_t mode,
		    struct fuse_file_info *fi) WARN_UNUSED;
int fs_chain_open(struct s3vfs *fs, const struct fs_cpath *cp, const char *path,
		  struct fuse_file_info *fi) WARN_UNUSED;
/* Commit an append (f->lock held): at a flush after a write, or always
 * (force: fsync, release). Once tried, the same answer every time. */
int fs_chain_flush_locked(struct s3vfs *fs, struct fs_file *f, bool force) WARN_UNUSED;
/* An append still being written as path key pkey: a new reference, or NULL. */
struct fs_file *fs_chain_pending(struct s3vfs *fs, const char *pkey);
bool fs_chain_xattr(const char *name);
int fs_chain_setxattr(struct s3vfs *fs, const char *path, const char *name, const char *value,
		      size_t size) WARN_UNUSED;
int fs_chain_getxattr(struct s3vfs *fs, const char *path, const char *name, char *value,
		      size_t size) WARN_UNUSED;
/* mkdir of path: -EPERM inside a chain; *out_kind: the kind the new
 * directory gets from its parent's marking, or NULL. */
int fs_chain_mkdir_meta(struct s3vfs *fs, const char *path, const char **out_kind) WARN_UNUSED;
/* After the marker of a new directory was written: its hint and kind. */
int fs_chain_mkdir_done(struct s3vfs *fs, const char *dkey, const char *kind) WARN_UNUSED;
/* rmdir of chain dkey: -ENOTEMPTY unless it has no changeset; removes the
 * hint. fs_chain_rmdir_done after the marker went. */
int fs_chain_rmdir(struct s3vfs *fs, const char *dkey, struct chain *ch) WARN_UNUSED;
void fs_chain_rmdir_done(struct s3vfs *fs, const char *dkey);

/* fs/ops_content.c: content chains (cp->kind == CHAIN_CONTENT). */
#define FS_XATTR_TXN	  "user.s3vfs.txn"
#define FS_XATTR_ROLLBACK "user.s3vfs.rollback"
int fs_content_init(struct s3vfs *fs) WARN_UNUSED;
void fs_content_cleanup(struct s3vfs *fs);
int fs_content_lookup(struct s3vfs *fs, const struct fs_cpath *cp,
		      struct meta_entry *out) WARN_UNUSED;
int fs_content_readdir(struct s3vfs *fs, const struct fs_cpath *cp, void *buf,
		       fuse_fill_dir_t filler, enum fuse_fill_dir_flags flags) WARN_UNUSED;
int fs_content_mkdir(struct s3vfs *fs, const struct fs_cpath *cp, mode_t mode) WARN_UNUSED;
int fs_content_rmdir(struct s3vfs *fs, const struct fs_cpath *cp) WARN_UNUSED;
int fs_content_unlink(struct s3vfs *fs, const struct fs_cpath *cp) WARN_UNUSED;
/* -EXDEV between chains (mv then copies). */
int fs_content_rename(struct s3vfs *fs, const struct fs_cpath *from, const struct fs_cpath *to,
		      unsigned int flags) WARN_UNUSED;
/* chmod (mode) or utimens (mtime); either may be NULL. */
int fs_content_attr(struct s3vfs *fs, const struct fs_cpath *cp, const mode_t *mode,
		    const struct timespec *mtime) WARN_UNUSED;
int fs_content_create(struct s3vfs *fs, const struct fs_cpath *cp, mode_t mode,
		      struct fuse_file_info *fi) WARN_UNUSED;
int fs_content_open(struct s3vfs *fs, const struct fs_cpath *cp,
		    struct fuse_file_info *fi) WARN_UNUSED;
int fs_content_truncate(struct s3vfs *fs, const struct fs_cpath *cp, off_t size) WARN_UNUSED;
/* Save a written file as a change (f->lock held); as fs_chain_flush_locked. */
int fs_content_flush_locked(struct s3vfs *fs, struct fs_file *f, bool force) WARN_UNUSED;
/* setxattr of FS_XATTR_TXN (begin, commit, abort) or FS_XATTR_ROLLBACK (N) on the chain. */
int fs_content_control(struct s3vfs *fs, struct chain *ch, const char *name,
		       const char *value) WARN_UNUSED;
/* The attributes of f, open as path, were just told to the kernel (fstat):
 * a content chain's file keeps that version for path (its pin). */
void fs_content_note_open(struct s3vfs *fs, const char *path, struct fs_file *f);
/* 1 and the staged changes when a transaction is open on ch in this mount. */
int fs_content_txn_state(struct s3vfs *fs, struct chain *ch, size_t *out_n);

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
/*
 * fs/retire.c: a new inode for a path whose version changed while
 * descriptors of the old one (f) are open; see there.
 * fs_retire_path: queue path (with a reference to f); true: the path shows
 * f's version until it is retired (false: show the new one on the old
 * inode). The others answer the operations on the hidden names: 0 (or
 * false) when path is not one of them; fs_retire_getattr fills e (1) or
 * says -ENOENT/-ESTALE; fs_retire_open says -ESTALE; rename and unlink are
 * the helper's own. fs_retire_released: f's last descriptor is gone.
 */
int fs_retire_start(struct s3vfs *fs) WARN_UNUSED;
bool fs_retire_path(struct s3vfs *fs, const char *path, struct fs_file *f);
int fs_retire_getattr(struct s3vfs *fs, const char *path, struct meta_entry *e);
int fs_retire_open(struct s3vfs *fs, const char *path);
bool fs_retire_rename(struct s3vfs *fs, const char *from, const char *to);
bool fs_retire_unlink(struct s3vfs *fs, const char *path);
void fs_retire_released(struct s3vfs *fs, struct fs_file *f);
void fs_retire_stop(struct s3vfs *fs);
/*
 * The open handle of key reading a version other than e's (the object
 * changed since it was opened) while a descriptor has it open: a reference,
 * or NULL. fs_handle_entry: the attributes (and ETag) such a handle reads.
 */
struct fs_file *fs_old_version_open(struct s3vfs *fs, const char *key, const struct meta_entry *e);
void fs_handle_entry(struct fs_file *f, struct meta_entry *e);
/* Does the kernel hold pages of this version of key? (and note it) */
bool fs_kc_keep(struct s3vfs *fs, const char *key, const char *etag);
/* The open file of key (a new reference), made from e when there is none. */
int fs_file_get(struct s3vfs *fs, const char *key, const struct meta_entry *e,
		struct fs_file **out) WARN_UNUSED;
/* A descriptor now holds f (the reference from fs_file_get). */
void fs_file_opened(struct s3vfs *fs, struct fs_file *f, struct fuse_file_info *fi);
/* Copy object key (version etag) into f's staging file (f->lock held). */
int fs_file_fill(struct s3vfs *fs, struct fs_file *f, const char *key,
		 const char *etag) WARN_UNUSED;
/* Drop a handle opened by the filesystem itself (no upload). */
void fs_file_release_handle(struct s3vfs *fs, struct fs_file *f);
/* Give f its staging file, with the object's content if want_content (f->lock held). */
int fs_file_stage(struct s3vfs *fs, struct fs_file *f, bool want_content) WARN_UNUSED;

/* The operations table (fs/ops.c): each entry maps its answer with fs_errno. */
extern const struct fuse_operations s3vfs_ops;
/* An errno a program may see: the store's failures become EIO. */
int fs_errno(int rc);
/* fs/main.c: FUSE's init. */
void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg);

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
