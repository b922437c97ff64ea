/* Keywords in Dovecot's format: each folder directory may hold a file
 * "dovecot-keywords" with lines "<n> <name>"; n = 0..25 is the letter 'a'+n
 * that file names carry after the system flags. A new keyword changes only
 * the table in memory; the sink's flush writes the file (temporary file,
 * synced with the batch, then renamed over the old one), so a reader never
 * sees half of it and no fsync happens per keyword. */
#include "maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYWORDS_FILE "dovecot-keywords"

static void parse_line(struct md_keywords *kw, char *line)
{
	char *end;
	unsigned long n = strtoul(line, &end, 10);
	if (end == line || *end != ' ' || n >= MD_KEYWORD_SLOTS)
		return;
	char *name = end + 1;
	name[strcspn(name, "\r\n")] = '\0';
	if (!*name || kw->names[n])
		return;
	kw->names[n] = md_xstrdup(name);
}

bool md_keywords_load(struct md_keywords *kw, const char *folder_dir, char **error)
{
	char *path = md_xasprintf("%s/" KEYWORDS_FILE, folder_dir);
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	kw->loaded = true;
	if (!f) {
		bool missing = errno == ENOENT;
		if (!missing && error)
			*error = md_xasprintf("cannot read %s: %s", path, strerror(errno));
		free(path);
		return missing;
	}
	while (getline(&line, &cap, f) >= 0)
		parse_line(kw, line);
	free(line);
	fclose(f);
	free(path);
	return true;
}

static bool write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= (size_t)n;
	}
	return true;
}

char *md_keywords_stage(const struct md_keywords *kw, const char *folder_dir, char **error)
{
	struct md_str text = {0};
	for (int i = 0; i < MD_KEYWORD_SLOTS; i++) {
		if (!kw->names[i])
			continue;
		char *line = md_xasprintf("%d %s\n", i, kw->names[i]);
		md_str_adds(&text, line);
		free(line);
	}
	char *tmp = md_xasprintf("%s/" KEYWORDS_FILE ".godwit-tmp.%ld", folder_dir, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write_all(fd, text.data ? text.data : "", text.len);
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	if (!ok) {
		int err = errno;
		if (error)
			*error = md_xasprintf("cannot write %s: %s", tmp, strerror(err));
		unlink(tmp);
		free(tmp);
		tmp = NULL;
		errno = err;
	}
	free(text.data);
	return tmp;
}

bool md_keywords_replace(const char *tmp, const char *folder_dir, char **error)
{
	char *path = md_xasprintf("%s/" KEYWORDS_FILE, folder_dir);
	bool ok = rename(tmp, path) == 0;
	if (!ok) {
		int err = errno;
		if (error)
			*error = md_xasprintf("cannot replace %s: %s", path, strerror(err));
		unlink(tmp);
		errno = err;
	}
	free(path);
	return ok;
}

/* A name the "<n> <name>" line format can hold. */
static bool storable(const char *name)
{
	if (!*name)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

int md_keywords_index(struct md_keywords *kw, const char *name)
{
	int free_slot = -1;

	for (int i = 0; i < MD_KEYWORD_SLOTS; i++) {
		if (kw->names[i] && strcmp(kw->names[i], name) == 0)
			return i;
		if (!kw->names[i] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0 || !storable(name))
		return -1;
	kw->names[free_slot] = md_xstrdup(name);
	kw->dirty = true;
	return free_slot;
}

void md_keywords_free(struct md_keywords *kw)
{
	for (int i = 0; i < MD_KEYWORD_SLOTS; i++)
		free(kw->names[i]);
	memset(kw, 0, sizeof(*kw));
}
