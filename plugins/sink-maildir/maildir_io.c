/* File-system primitives of the maildir sink: complete writes, directories,
 * fsync. Everything reports errno text; nothing here knows about messages. */
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

/* Keeps errno: callers choose the status scope from it. */
static bool io_fail(char **error, const char *what, const char *path)
{
	int err = errno;
	if (error)
		*error = md_xasprintf("%s %s: %s", what, path, strerror(err));
	errno = err;
	return false;
}

static bool write_fully(int fd, const unsigned char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		if (n == 0) {
			errno = EIO;
			return false;
		}
		data += n;
		len -= (size_t)n;
	}
	return true;
}

/* Copy @p len bytes of @p src_fd from offset 0 in the kernel: the pages never
 * enter this process, and src_fd's own offset stays where it was. Falls back to
 * @p data for what sendfile() cannot do on these file systems. */
static bool copy_fully(int fd, int src_fd, const unsigned char *data, size_t len)
{
	off_t offset = 0;
	while ((size_t)offset < len) {
		ssize_t n = sendfile(fd, src_fd, &offset, len - (size_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS) && offset == 0)
			return write_fully(fd, data, len);
		if (n < 0)
			return false;
		if (n == 0) { /* the file is shorter than announced */
			errno = EIO;
			return false;
		}
	}
	return true;
}

bool md_write_new_file(const char *path, const void *data, size_t len, int src_fd, int64_t mtime,
                       bool set_times, char **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_fail(error, "cannot create", path);
	if (!(src_fd >= 0 ? copy_fully(fd, src_fd, data, len) : write_fully(fd, data, len))) {
		io_fail(error, "cannot write", path);
		close(fd);
		unlink(path);
		return false;
	}
	/* atime too: Maildir readers (Dovecot) take INTERNALDATE from mtime,
	 * and an atime in the future or past of it would look like a read. */
	struct timespec times[2] = {{.tv_sec = (time_t)mtime}, {.tv_sec = (time_t)mtime}};
	if (set_times && futimens(fd, times) != 0) {
		io_fail(error, "cannot set the time of", path);
		close(fd);
		unlink(path);
		return false;
	}
	/* close() reports delayed write errors on some file systems (NFS). */
	if (close(fd) != 0) {
		io_fail(error, "cannot write", path);
		unlink(path);
		return false;
	}
	return true;
}

bool md_mkdir(const char *path, bool *created, char **error)
{
	*created = false;
	if (mkdir(path, 0700) == 0) {
		*created = true;
		return true;
	}
	if (errno != EEXIST)
		return io_fail(error, "cannot create directory", path);
	struct stat st;
	if (stat(path, &st) != 0)
		return io_fail(error, "cannot examine", path);
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return io_fail(error, "cannot use", path);
	}
	return true;
}

bool md_fsync_path(const char *path, bool directory, char **error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
	if (fd < 0)
		return io_fail(error, "cannot open", path);
	int rc;
	while ((rc = fsync(fd)) != 0 && errno == EINTR)
		;
	if (rc != 0) {
		io_fail(error, "cannot fsync", path);
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* "<digits>.P<pid>Q<digits>.<host>": a tmp/ name this sink made on @p host. */
static bool our_tmp_name(const char *name, const char *host, long *pid)
{
	char *end;
	const char *p = name;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == name || strncmp(p, ".P", 2) != 0)
		return false;
	*pid = strtol(p + 2, &end, 10);
	if (end == p + 2 || *end != 'Q' || *pid <= 0)
		return false;
	p = end + 1;
	const char *digits = p;
	while (*p >= '0' && *p <= '9')
		p++;
	return p > digits && *p == '.' && strcmp(p + 1, host) == 0;
}

size_t md_remove_stale_tmp(const char *tmp_dir, const char *host)
{
	DIR *d = opendir(tmp_dir);
	size_t removed = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		long pid;
		if (!our_tmp_name(e->d_name, host, &pid) || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* its writer may still be running */
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
