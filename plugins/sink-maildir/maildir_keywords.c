/* Keywords in Dovecot's format: each folder directory may hold a file
 * "dovecot-keywords" with lines "<n> <name>"; n = 0..25 is the letter 'a'+n
 * that file names carry after the system flags. The file is replaced
 * atomically (temporary file + rename) when a keyword is added, so a reader
 * never sees half of it. */
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

static bool keywords_save(const struct md_keywords *kw, const char *folder_dir, bool durable,
                          char **error)
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
	char *path = md_xasprintf("%s/" KEYWORDS_FILE, folder_dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write_all(fd, text.data ? text.data : "", text.len);
	if (ok && durable && fsync(fd) != 0)
		ok = false;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	if (ok && rename(tmp, path) != 0)
		ok = false;
	if (!ok) {
		if (error)
			*error = md_xasprintf("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	free(path);
	free(text.data);
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

int md_keywords_index(struct md_keywords *kw, const char *folder_dir, const char *name,
                      bool durable, bool *changed, char **error)
{
	int free_slot = -1;

	*changed = false;
	for (int i = 0; i < MD_KEYWORD_SLOTS; i++) {
		if (kw->names[i] && strcmp(kw->names[i], name) == 0)
			return i;
		if (!kw->names[i] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0 || !storable(name))
		return -1;
	kw->names[free_slot] = md_xstrdup(name);
	if (!keywords_save(kw, folder_dir, durable, error)) {
		free(kw->names[free_slot]);
		kw->names[free_slot] = NULL;
		return -2;
	}
	*changed = true;
	return free_slot;
}

void md_keywords_free(struct md_keywords *kw)
{
	for (int i = 0; i < MD_KEYWORD_SLOTS; i++)
		free(kw->names[i]);
	memset(kw, 0, sizeof(*kw));
}
