/* Names: folder-name escaping (README.md, "Folder names"), over-long names,
 * the per-mailbox path template and the host name used in file names. */
#include "maildir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

void md_sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;

	if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1)
		abort(); /* SHA-256 is always available in OpenSSL 3 */
	for (unsigned i = 0; i < digest_len && i < 32; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[64] = '\0';
}

/* ---- escaping ------------------------------------------------------------- */

/* The escaping is Dovecot's listescape convention exactly as Dovecot applies
 * it, wherever Dovecot accepts the name: Dovecot opens a folder by escaping its
 * name, so a directory escaped differently would be listed but not found. */
static bool needs_escape(unsigned char c, size_t pos, bool fs_layout)
{
	if (c < 0x20 || c == 0x7f || c == '\\' || c == '/')
		return true;
	if (c == '~')
		return pos == 0;       /* "~x" could expand to a home directory */
	return c == '.' && !fs_layout; /* the Maildir++ hierarchy separator */
}

/* Names that mean something inside a maildir directory in the fs layout,
 * where folders are subdirectories of their parent folder, and the two names
 * that are not subdirectories at all. */
static bool fs_reserved(const char *name)
{
	static const char *const exact[] = {
	        ".", "..", "cur", "new", "tmp", "maildirfolder", "subscriptions"};
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(name, exact[i]) == 0)
			return true;
	return strncmp(name, "dovecot", 7) == 0 || strncmp(name, "godwit-", 7) == 0;
}

static void add_escape(struct md_str *out, unsigned char c)
{
	char seq[4];
	snprintf(seq, sizeof(seq), "\\%02x", c);
	md_str_add(out, seq, 3);
}

char *md_escape_component(const char *name, bool fs_layout)
{
	struct md_str out = {0};
	const unsigned char *p = (const unsigned char *)name;
	bool reserved = fs_layout && fs_reserved(name);

	for (size_t pos = 0; p[pos]; pos++) {
		if ((pos == 0 && reserved) || needs_escape(p[pos], pos, fs_layout))
			add_escape(&out, p[pos]);
		else
			md_str_addc(&out, (char)p[pos]);
	}
	return md_str_take(&out);
}

/* ---- over-long names -------------------------------------------------------- */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Length of the unit at @p s that must not be split: an escape sequence or a
 * UTF-8 character; otherwise one byte. */
static size_t unit_len(const char *s)
{
	if (s[0] == '\\' && is_hex(s[1]) && is_hex(s[2]))
		return 3;
	size_t n = 1;
	if ((unsigned char)s[0] >= 0xc0)
		while (n < 4 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n++;
	return n;
}

bool md_fit_name(char **name, size_t limit)
{
	size_t len = strlen(*name);
	const size_t suffix = 1 + 8; /* "~" + 8 hex digits */
	char hex[65];
	size_t keep = 0;

	if (len <= limit)
		return false;
	md_sha256_hex(*name, len, hex);
	while (keep < len) {
		size_t unit = unit_len(*name + keep);
		if (keep + unit > limit - suffix)
			break;
		keep += unit;
	}
	char *cut = md_xasprintf("%.*s~%.8s", (int)keep, *name, hex);
	free(*name);
	*name = cut;
	return true;
}

bool md_component_is_safe(const char *component, size_t len)
{
	if (len == 0 || (len == 1 && component[0] == '.') ||
	    (len == 2 && component[0] == '.' && component[1] == '.'))
		return false;
	return memchr(component, '/', len) == NULL && memchr(component, '\0', len) == NULL;
}

bool md_is_inbox(const struct gw_folder_path *path)
{
	if (path->role == GW_ROLE_INBOX)
		return true;
	return path->count == 1 && strcasecmp(path->components[0], "INBOX") == 0;
}

/* ---- path template ----------------------------------------------------------- */

static const char *const placeholders[] = {"email", "user", "domain", "username", NULL};

static int placeholder_index(const char *name, size_t len)
{
	for (int i = 0; placeholders[i]; i++)
		if (strlen(placeholders[i]) == len && strncmp(placeholders[i], name, len) == 0)
			return i;
	return -1;
}

/* Value of placeholder @p index for @p mailbox, as [start, start+len). */
static void placeholder_value(int index, const struct gw_mailbox *mailbox, const char **start,
                              size_t *len)
{
	const char *email = mailbox->email ? mailbox->email : "";
	const char *at = strrchr(email, '@');

	switch (index) {
	case 0: *start = email, *len = strlen(email); break;
	case 1: *start = email, *len = at ? (size_t)(at - email) : strlen(email); break;
	case 2: *start = at ? at + 1 : "", *len = at ? strlen(at + 1) : 0; break;
	default:
		*start = mailbox->username ? mailbox->username : "";
		*len = strlen(*start);
		break;
	}
}

static void add_sanitised(struct md_str *out, const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		bool bad = c == '/' || c < 0x20 || c == 0x7f || (i == 0 && c == '.');
		md_str_addc(out, bad ? '_' : (char)c);
	}
}

static bool template_fail(char **error, const char *text)
{
	if (error)
		*error = md_xstrdup(text);
	return false;
}

/* Walk the template; with @p mailbox NULL only check it. */
static bool expand(const char *tmpl, const struct gw_mailbox *mailbox, struct md_str *out,
                   char **error)
{
	for (const char *p = tmpl; *p; p++) {
		if (*p != '{') {
			md_str_addc(out, *p);
			continue;
		}
		const char *end = strchr(p, '}');
		if (!end)
			return template_fail(error, "path: '{' without '}'");
		int index = placeholder_index(p + 1, (size_t)(end - p - 1));
		if (index < 0) {
			char *msg =
			        md_xasprintf("path: unknown placeholder {%.*s} (known: {email}, "
			                     "{user}, {domain}, {username})",
			                     (int)(end - p - 1), p + 1);
			if (error)
				*error = msg;
			else
				free(msg);
			return false;
		}
		if (mailbox) {
			const char *value;
			size_t len;
			placeholder_value(index, mailbox, &value, &len);
			if (len == 0) {
				char *msg = md_xasprintf("path: {%s} is empty for this mailbox",
				                         placeholders[index]);
				if (error)
					*error = msg;
				else
					free(msg);
				return false;
			}
			add_sanitised(out, value, len);
		}
		p = end;
	}
	return true;
}

bool md_check_template(const char *tmpl, char **error)
{
	struct md_str out = {0};
	bool ok = expand(tmpl, NULL, &out, error);
	free(out.data);
	return ok;
}

char *md_expand_path(const char *tmpl, const struct gw_mailbox *mailbox, char **error)
{
	struct md_str out = {0};
	if (!expand(tmpl, mailbox, &out, error)) {
		free(out.data);
		return NULL;
	}
	return md_str_take(&out);
}

void md_hostname(char *out, size_t size)
{
	char name[256] = "";
	size_t n = 0;

	if (gethostname(name, sizeof(name) - 1) != 0 || !name[0])
		snprintf(name, sizeof(name), "localhost");
	for (const char *p = name; *p && n + 1 < size && n < 64; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-';
		out[n++] = ok ? c : '_';
	}
	out[n] = '\0';
}
