// SPDX-License-Identifier: MIT
/*
 * retire: a new inode for a file whose version changed while descriptors of
 * the old version are open.
 *
 * The kernel keeps one page cache per inode, and libfuse's high-level API
 * names inodes by path: two versions of one path would share pages, and a
 * descriptor of the old version (a slow download, a web server's cached
 * descriptor) could read bytes of the new one, or the other way round. So
 * while a descriptor of the old version is open, the path keeps showing the
 * old version (its attributes, and an open gets the old handle), and a
 * helper thread retires the old inode the way a disk deploy does it, by
 * rename: it renames the path, through the mount, to a hidden name in the
 * same directory. libfuse moves its node with the name, so the next lookup
 * of the path makes a new inode, with the new version and a page cache of
 * its own, while the old descriptors read the old version from theirs.
 *
 * The hidden name ".s3vfs-retired-PID-N" exists in this mount only: its
 * rename and unlink touch nothing in S3, and only the helper's thread can
 * make them (fs_retire_rename/unlink check the caller). Looked up by the old
 * descriptors' fstat(2), it shows the old version; an open of it (a path walk
 * made before the rename) gets ESTALE, and the kernel walks the path again.
 * When the old handle's last descriptor is released, the helper unlinks the
 * hidden name and the old inode goes away.
 *
 * A path: shown old (queued, with a reference to the old handle) -> renamed
 * (the old handle is superseded: opens by key no longer find it) -> hidden
 * until its last descriptor closes -> unlinked. A rename that fails (the name
 * went away, a permission) is logged and ends with the old handle superseded
 * all the same: the path then shows the new version on the old inode, as
 * without this module. Started after fuse_daemonize, stopped after the
 * session loop, before the files are closed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3vfs/fs.h"
#include "s3vfs/log.h"

#define RETIRE_QUEUE  4096
#define RETIRE_PREFIX ".s3vfs-retired-"

/* A job: retire path (f: the old handle, a reference) or unlink a hidden name (f NULL). */
struct retire_job {
	char *path;
	struct fs_file *f;
};

/* A hidden name and the old handle it shows (a reference). */
struct retired {
	struct retired *next;
	char *name; /* a FUSE path */
	struct fs_file *f;
};

struct fs_retire {
	pthread_t thread;
	pid_t tid; /* the helper's thread: the caller FUSE reports for its syscalls */
	pthread_mutex_t lock;
	pthread_cond_t more;
	/* All below protected by lock. */
	struct retire_job *jobs; /* RETIRE_QUEUE of them */
	int n;
	struct retire_job busy; /* the job in the helper's hands (its f: ours until done) */
	char *target;		/* the hidden name busy.path is being renamed to */
	struct retired *hidden;
	bool stop;
	uint64_t seq;
};

static void supersede(struct s3vfs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&fs->open_lock);
	f->superseded = true;
	pthread_mutex_unlock(&fs->open_lock);
}

static bool is_hidden_name(const char *path)
{
	const char *name = path ? strrchr(path, '/') : NULL;
	return name && strncmp(name + 1, RETIRE_PREFIX, strlen(RETIRE_PREFIX)) == 0;
}

static struct retired *hidden_find(struct fs_retire *rt, const char *path)
{
	struct retired *h = rt->hidden;
	while (h && strcmp(h->name, path) != 0)
		h = h->next;
	return h;
}

/* The syscalls, on the mount, without the lock. */
static int retire_rename(struct s3vfs *fs, const char *path, const char *target)
{
	char *src = NULL, *dst = NULL;
	int rc = 0;

	if (asprintf(&src, "%s%s", fs->mountpoint, path) < 0)
		src = NULL;
	if (asprintf(&dst, "%s%s", fs->mountpoint, target) < 0)
		dst = NULL;
	if (!src || !dst)
		rc = -ENOMEM;
	else if (rename(src, dst) < 0)
		rc = -errno;
	free(src);
	free(dst);
	return rc;
}

static void retire_unlink(struct s3vfs *fs, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s%s", fs->mountpoint, name) < 0)
		return;
	if (unlink(p) < 0)
		log_debug("retire: unlink of %s: %s", name, strerror(errno));
	free(p);
}

/* Under rt->lock: a job at the end of the queue (false: full, or stopping). */
static bool push_locked(struct fs_retire *rt, char *path, struct fs_file *f)
{
	if (rt->stop || rt->n >= RETIRE_QUEUE)
		return false;
	rt->jobs[rt->n].path = path;
	rt->jobs[rt->n].f = f;
	rt->n++;
	pthread_cond_signal(&rt->more);
	return true;
}

static void run_job(struct s3vfs *fs, struct fs_retire *rt)
{
	struct retire_job j = rt->busy;
	char *target = NULL;
	const char *slash = strrchr(j.path, '/');

	if (!j.f) { /* an unlink of a hidden name */
		pthread_mutex_unlock(&rt->lock);
		retire_unlink(fs, j.path);
		pthread_mutex_lock(&rt->lock);
		free(j.path);
		rt->busy.path = NULL;
		return;
	}
	if (asprintf(&target, "%.*s/" RETIRE_PREFIX "%d-%" PRIu64, (int)(slash - j.path), j.path,
		     (int)getpid(), ++rt->seq) < 0)
		target = NULL;
	rt->target = target;
	pthread_mutex_unlock(&rt->lock);
	int rc = target ? retire_rename(fs, j.path, target) : -ENOMEM;
	pthread_mutex_lock(&rt->lock);
	rt->target = NULL;
	struct fs_file *f = rt->busy.f; /* NULL: fs_retire_stop took it */
	rt->busy.f = NULL;
	if (rc < 0) {
		log_debug("retire %s: %s; the new version shows on the old inode", j.path,
			  strerror(-rc));
		if (f)
			supersede(fs, f);
	}
	if (rc == 0 && f) {
		/* (superseded by fs_retire_rename, before the kernel let go of the path) */
		pthread_mutex_lock(&fs->open_lock);
		bool open = f->opens > 0;
		pthread_mutex_unlock(&fs->open_lock);
		struct retired *h = open ? calloc(1, sizeof(*h)) : NULL;
		if (h) {
			h->name = target;
			h->f = f;
			h->next = rt->hidden;
			rt->hidden = h;
			target = NULL;
			f = NULL;
		} else if (push_locked(rt, target, NULL)) {
			target = NULL; /* closed meanwhile: unlinked now */
		}
	}
	free(target);
	free(j.path);
	rt->busy.path = NULL;
	if (f) {
		pthread_mutex_unlock(&rt->lock);
		fs_file_put(fs, f);
		pthread_mutex_lock(&rt->lock);
	}
}

static void *retire_main(void *arg)
{
	struct s3vfs *fs = arg;
	struct fs_retire *rt = fs->retire;

	pthread_mutex_lock(&rt->lock);
	rt->tid = gettid();
	for (;;) {
		while (!rt->stop && rt->n == 0)
			pthread_cond_wait(&rt->more, &rt->lock);
		if (rt->stop)
			break;
		rt->busy = rt->jobs[0];
		memmove(&rt->jobs[0], &rt->jobs[1], (size_t)(rt->n - 1) * sizeof(rt->jobs[0]));
		rt->n--;
		run_job(fs, rt);
	}
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

int fs_retire_start(struct s3vfs *fs)
{
	struct fs_retire *rt = calloc(1, sizeof(*rt));
	int rc;

	if (!rt || !(rt->jobs = calloc(RETIRE_QUEUE, sizeof(rt->jobs[0])))) {
		free(rt);
		return -ENOMEM;
	}
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->more, NULL);
	fs->retire = rt;
	rc = pthread_create(&rt->thread, NULL, retire_main, fs);
	if (rc != 0) {
		fs->retire = NULL;
		pthread_cond_destroy(&rt->more);
		pthread_mutex_destroy(&rt->lock);
		free(rt->jobs);
		free(rt);
		return -rc;
	}
	return 0;
}

bool fs_retire_path(struct s3vfs *fs, const char *path, struct fs_file *f)
{
	struct fs_retire *rt = fs->retire;
	bool queued = false;

	if (!rt || !path || !f || strcmp(path, "/") == 0)
		return false;
	pthread_mutex_lock(&rt->lock);
	queued = rt->busy.path && rt->busy.f && strcmp(rt->busy.path, path) == 0;
	for (int i = 0; i < rt->n && !queued; i++)
		queued = rt->jobs[i].f && strcmp(rt->jobs[i].path, path) == 0;
	if (!queued) {
		char *p = strdup(path);
		if (p && push_locked(rt, p, f))
			fs_file_ref(fs, f);
		else
			free(p);
	}
	/* Not queued (full): the path shows its old version until it is asked
	 * for again, and queued then. */
	queued = !rt->stop;
	pthread_mutex_unlock(&rt->lock);
	return queued;
}

/* The caller of this request is the helper (under rt->lock). */
static bool helper_locked(const struct fs_retire *rt)
{
	return fuse_get_context()->pid == rt->tid;
}

int fs_retire_getattr(struct s3vfs *fs, const char *path, struct meta_entry *e)
{
	struct fs_retire *rt = fs->retire;
	struct fs_file *f = NULL;
	int rc = 0;

	if (!rt || !is_hidden_name(path))
		return 0;
	pthread_mutex_lock(&rt->lock);
	struct retired *h = hidden_find(rt, path);
	if (h) {
		f = h->f;
		fs_file_ref(fs, f);
		rc = 1;
	} else if (rt->target && strcmp(rt->target, path) == 0) {
		/* the helper's look before its rename: free; anyone else's: gone */
		rc = helper_locked(rt) ? -ENOENT : -ESTALE;
	}
	pthread_mutex_unlock(&rt->lock);
	if (f) {
		fs_handle_entry(f, e);
		fs_file_put(fs, f);
	}
	return rc;
}

int fs_retire_open(struct s3vfs *fs, const char *path)
{
	struct fs_retire *rt = fs->retire;
	int rc = 0;

	if (!rt || !is_hidden_name(path))
		return 0;
	pthread_mutex_lock(&rt->lock);
	if (hidden_find(rt, path) || (rt->target && strcmp(rt->target, path) == 0))
		rc = -ESTALE; /* a path walk made before the rename: walk again */
	pthread_mutex_unlock(&rt->lock);
	return rc;
}

bool fs_retire_rename(struct s3vfs *fs, const char *from, const char *to)
{
	struct fs_retire *rt = fs->retire;
	bool ours = false;

	if (!rt || !is_hidden_name(to))
		return false;
	pthread_mutex_lock(&rt->lock);
	ours = helper_locked(rt) && rt->target && strcmp(rt->target, to) == 0 && rt->busy.path &&
	       strcmp(rt->busy.path, from) == 0;
	/* Before the kernel moves the name: a lookup of the path right after
	 * must not find the old handle as the path's. */
	if (ours && rt->busy.f)
		supersede(fs, rt->busy.f);
	pthread_mutex_unlock(&rt->lock);
	return ours;
}

bool fs_retire_unlink(struct s3vfs *fs, const char *path)
{
	struct fs_retire *rt = fs->retire;
	bool ours = false;

	if (!rt || !is_hidden_name(path))
		return false;
	pthread_mutex_lock(&rt->lock);
	ours = helper_locked(rt) && rt->busy.path && !rt->busy.f &&
	       strcmp(rt->busy.path, path) == 0;
	pthread_mutex_unlock(&rt->lock);
	return ours;
}

void fs_retire_released(struct s3vfs *fs, struct fs_file *f)
{
	struct fs_retire *rt = fs->retire;
	struct fs_file *put = NULL;

	if (!rt)
		return;
	pthread_mutex_lock(&rt->lock);
	for (struct retired **pp = &rt->hidden; *pp; pp = &(*pp)->next) {
		struct retired *h = *pp;
		if (h->f != f)
			continue;
		*pp = h->next;
		if (!push_locked(rt, h->name, NULL))
			free(h->name); /* stays in the mount until the kernel forgets it */
		put = h->f;
		free(h);
		break;
	}
	pthread_mutex_unlock(&rt->lock);
	if (put)
		fs_file_put(fs, put);
}

void fs_retire_stop(struct s3vfs *fs)
{
	struct fs_retire *rt = fs->retire;
	struct timespec until;

	if (!rt)
		return;
	/* Every reference back first, even if the helper is stuck in a rename
	 * that is answered only when the session goes away: the files must all
	 * be closed before that. */
	pthread_mutex_lock(&rt->lock);
	rt->stop = true;
	pthread_cond_signal(&rt->more);
	struct fs_file *busy = rt->busy.f;
	rt->busy.f = NULL;
	struct retired *hidden = rt->hidden;
	rt->hidden = NULL;
	int n = rt->n;
	rt->n = 0;
	pthread_mutex_unlock(&rt->lock);
	if (busy)
		fs_file_put(fs, busy);
	for (int i = 0; i < n; i++) {
		free(rt->jobs[i].path);
		if (rt->jobs[i].f)
			fs_file_put(fs, rt->jobs[i].f);
	}
	while (hidden) {
		struct retired *h = hidden;
		hidden = h->next;
		fs_file_put(fs, h->f);
		free(h->name);
		free(h);
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	if (pthread_timedjoin_np(rt->thread, NULL, &until) != 0) {
		log_debug("the retire helper is still in a rename; left to the end of the session");
		return; /* its state stays: it may still look at it */
	}
	pthread_cond_destroy(&rt->more);
	pthread_mutex_destroy(&rt->lock);
	free(rt->jobs);
	free(rt);
	fs->retire = NULL;
}
