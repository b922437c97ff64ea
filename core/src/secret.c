/* Secret references. The value of a secret never leaves this file except
 * through *out, and every value is registered with the log first, so that no
 * later log line can show it. Error texts name the reference (an environment
 * variable or a path), which is not itself secret. */
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* A secret file is a password or a client secret, not a document. */
#define SECRET_FILE_MAX (64 * 1024)

bool gw_secret_is_reference(const char *text)
{
	return strncmp(text, "${", 2) == 0;
}

static bool is_env_name(const char *name, size_t len)
{
	if (len == 0 || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(isalnum((unsigned char)name[i]) || name[i] == '_'))
			return false;
	return true;
}

static bool resolve_env(const char *name, char **out, char **error)
{
	const char *value = getenv(name);
	if (!value) {
		*error = gw_xasprintf("environment variable %s is not set", name);
		return false;
	}
	if (!*value) {
		*error = gw_xasprintf("environment variable %s is empty", name);
		return false;
	}
	*out = gw_xstrdup(value);
	return true;
}

/* Editors and `echo` end files with a newline that is not part of the secret. */
static void strip_one_newline(struct gw_buf *b)
{
	if (b->len >= 2 && b->data[b->len - 2] == '\r' && b->data[b->len - 1] == '\n')
		b->len -= 2;
	else if (b->len >= 1 && b->data[b->len - 1] == '\n')
		b->len -= 1;
	b->data[b->len] = '\0';
}

static bool read_secret_file(FILE *f, const char *path, struct gw_buf *b, char **error)
{
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (memchr(chunk, '\0', n)) {
			*error = gw_xasprintf("secret file %s contains a NUL byte", path);
			return false;
		}
		gw_buf_append(b, chunk, n);
		if (b->len > SECRET_FILE_MAX) {
			*error = gw_xasprintf("secret file %s is larger than %d bytes", path,
			                      SECRET_FILE_MAX);
			return false;
		}
	}
	if (ferror(f)) {
		*error = gw_xasprintf("cannot read secret file %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

static bool resolve_file(const char *path, char **out, char **error)
{
	if (!*path) {
		*error = gw_xstrdup("secret reference ${file:} names no file");
		return false;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		*error = gw_xasprintf("cannot read secret file %s: %s", path, strerror(errno));
		return false;
	}
	struct gw_buf b = {0};
	gw_buf_append(&b, "", 0);
	bool ok = read_secret_file(f, path, &b, error);
	fclose(f);
	if (!ok) {
		gw_buf_free(&b);
		return false;
	}
	strip_one_newline(&b);
	if (b.len == 0) {
		*error = gw_xasprintf("secret file %s is empty", path);
		gw_buf_free(&b);
		return false;
	}
	*out = b.data;
	return true;
}

static bool resolve_reference(const char *text, char **out, char **error)
{
	size_t len = strlen(text);
	if (len < 3 || text[len - 1] != '}') {
		*error = gw_xasprintf("invalid secret reference '%s': expected ${ENV_NAME} or "
		                      "${file:/path}",
		                      text);
		return false;
	}
	char *inner = gw_xstrndup(text + 2, len - 3);
	bool ok;
	if (strncmp(inner, "file:", 5) == 0) {
		ok = resolve_file(inner + 5, out, error);
	} else if (is_env_name(inner, strlen(inner))) {
		ok = resolve_env(inner, out, error);
	} else {
		*error = gw_xasprintf("invalid secret reference '%s': expected ${ENV_NAME} or "
		                      "${file:/path}",
		                      text);
		ok = false;
	}
	free(inner);
	return ok;
}

bool gw_secret_resolve(const char *text, char **out, char **error)
{
	*out = NULL;
	*error = NULL;
	bool ok;
	if (strncmp(text, "$${", 3) == 0) {
		/* Escape for a literal that starts with "${". */
		*out = gw_xstrdup(text + 1);
		ok = true;
	} else if (gw_secret_is_reference(text)) {
		ok = resolve_reference(text, out, error);
	} else {
		*out = gw_xstrdup(text);
		ok = true;
	}
	if (ok)
		gw_log_register_secret(*out);
	return ok;
}
