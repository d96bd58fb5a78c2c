// SPDX-License-Identifier: MIT
/*
 * ops: the operations table. Every answer to the kernel passes through
 * fs_errno(), so that a program sees the errnos a filesystem gives (EIO for
 * a failure of the store) and never an internal one: a transport errno
 * (ECONNREFUSED), a parser's (EPROTO, E2BIG) or a retry signal (EAGAIN).
 */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "s3vfs/fs.h"
#include "s3vfs/log.h"

int fs_errno(int rc)
{
	if (rc >= 0)
		return rc;
	switch (-rc) {
	case ENOENT:
	case EACCES:
	case EPERM:
	case EEXIST:
	case ENOTEMPTY:
	case ENOTDIR:
	case EISDIR:
	case EINVAL:
	case ENAMETOOLONG:
	case EROFS:
	case EXDEV:
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
	case EBUSY:
	case ENODATA:
	case ERANGE:
	case ENOTSUP:
	case ENOMEM:
	case EBADF:
	case EIO:
	case EINTR:
	case ENOSYS:
	case EMFILE:
	case ENFILE:
		return rc;
	default:
		log_debug("%s becomes EIO for the caller", strerror(-rc));
		return -EIO;
	}
}

/* The retire helper's own lookup, rename and unlink touch nothing (retire.c). */
static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct meta_entry e;
	int r = fi ? 0 : fs_retire_getattr(fs_ctx(), path, &e);
	if (r > 0) {
		fs_entry_to_stat(fs_ctx(), path, NULL, &e, st);
		meta_entry_cleanup(&e);
	}
	if (r != 0)
		return r > 0 ? 0 : r;
	return fs_errno(fs_getattr(path, st, fi));
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	return fs_errno(fs_readdir(path, buf, filler, off, fi, flags));
}

static int op_mkdir(const char *path, mode_t mode)
{
	return fs_errno(fs_mkdir(path, mode));
}

static int op_rmdir(const char *path)
{
	return fs_errno(fs_rmdir(path));
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	if (fs_retire_rename(fs_ctx(), from, to))
		return 0;
	return fs_errno(fs_rename(from, to, flags));
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	int r = fs_retire_open(fs_ctx(), path);
	if (r < 0)
		return r;
	return fs_errno(fs_open(path, fi));
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return fs_errno(fs_create(path, mode, fi));
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	return fs_errno(fs_read(path, buf, size, off, fi));
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	return fs_errno(fs_write(path, buf, size, off, fi));
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	return fs_errno(fs_truncate(path, size, fi));
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	return fs_errno(fs_flush(path, fi));
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	return fs_errno(fs_fsync(path, datasync, fi));
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	return fs_errno(fs_release(path, fi));
}

static int op_unlink(const char *path)
{
	if (fs_retire_unlink(fs_ctx(), path))
		return 0;
	return fs_errno(fs_unlink(path));
}

static int op_symlink(const char *target, const char *path)
{
	return fs_errno(fs_symlink(target, path));
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	return fs_errno(fs_readlink(path, buf, size));
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return fs_errno(fs_chmod(path, mode, fi));
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	return fs_errno(fs_chown(path, uid, gid, fi));
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	return fs_errno(fs_utimens(path, tv, fi));
}

static int op_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	return fs_errno(fs_setxattr(path, name, value, size, flags));
}

static int op_getxattr(const char *path, const char *name, char *value, size_t size)
{
	return fs_errno(fs_getxattr(path, name, value, size));
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	return fs_errno(fs_listxattr(path, list, size));
}

static int op_removexattr(const char *path, const char *name)
{
	return fs_errno(fs_removexattr(path, name));
}

static int op_statfs(const char *path, struct statvfs *st)
{
	return fs_errno(fs_statfs(path, st));
}

static int op_access(const char *path, int mask)
{
	return fs_errno(fs_access(path, mask));
}

static int op_link(const char *from, const char *to)
{
	return fs_errno(fs_link(from, to));
}

const struct fuse_operations s3vfs_ops = {
	.init = fs_init,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.truncate = op_truncate,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.unlink = op_unlink,
	.symlink = op_symlink,
	.readlink = op_readlink,
	.chmod = op_chmod,
	.chown = op_chown,
	.utimens = op_utimens,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.statfs = op_statfs,
	.access = op_access,
	.link = op_link,
};
